// `mk chat`: an interactive conversation on stdin/stdout. Each turn renders the whole history
// with the chat template; the Generator keeps the KV cache of the unchanged prefix.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "cli/interrupt.h"
#include "generate/cli_flags.h"
#include "model/error.h"

namespace mk::cli {
namespace {

struct ChatFlags {
  ModelFlags model;
  SamplingFlags sampling{512};
  std::string system;
  bool stats = false;
};

// The history minus its oldest exchanges until the rendered prompt leaves `room` tokens free;
// empty when even the latest message alone does not fit.
std::vector<int32_t> fit_history(std::vector<ChatMessage>& history, const Session& s, size_t ctx, size_t room,
                                 bool& dropped) {
  const bool add_special = s.chat.family() == ChatFamily::kNone;
  for (;;) {
    std::vector<int32_t> ids = s.tokenizer->encode(s.chat.render(history, true), add_special);
    if (ids.size() + room <= ctx) return ids;
    // Drop the oldest user turn and the reply to it; a leading system message stays.
    const size_t first = !history.empty() && history[0].role == "system" ? 1 : 0;
    if (history.size() - first <= 1) return ids.size() <= ctx ? ids : std::vector<int32_t>{};
    size_t n = 1;
    while (first + n < history.size() - 1 && history[first + n].role != "user") ++n;
    history.erase(history.begin() + first, history.begin() + first + n);
    dropped = true;
  }
}

int run(ChatFlags& f) {
  auto session = open_session(f.model.session());
  if (session->chat.family() == ChatFamily::kNone && f.model.chat_template != "none")
    throw Error(session->model_path.string() +
                ": no chat template recognised; choose one with --chat-template chatml|llama3|mistral|none");
  Engine& engine = *session->engine;
  Generator gen(engine, *session->tokenizer);
  GenerateOptions opts = f.sampling.options(session->stop_ids);
  const uint64_t seed = opts.sampling.seed;
  const bool tty = isatty(STDIN_FILENO);
  const size_t ctx = engine.max_context();
  if (tty)
    std::fprintf(stderr, "chatting with %s (%s template); /reset clears the history, /exit or Ctrl-D ends\n",
                 session->model_path.filename().c_str(), chat_family_name(session->chat.family()));

  std::vector<ChatMessage> history;
  auto start = [&] {
    history.clear();
    if (!f.system.empty()) history.push_back({"system", f.system});
  };
  start();
  std::string line;
  for (uint64_t turn = 0;; ++turn) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      start();
      gen.reset();
      std::fputs("(history cleared)\n", stderr);
      continue;
    }
    history.push_back({"user", line});
    bool dropped = false;
    const std::vector<int32_t> ids = fit_history(history, *session, ctx, std::min<size_t>(opts.max_tokens, ctx / 2), dropped);
    if (ids.empty()) {
      history.pop_back();
      std::fprintf(stderr, "error: that message does not fit the context of %zu tokens (--ctx)\n", ctx);
      continue;
    }
    if (dropped) std::fputs("(oldest turns dropped to fit the context)\n", stderr);
    opts.sampling.seed = seed + turn;  // reproducible per turn, yet not the same draws each turn
    GenerateResult r;
    {
      // Ctrl-C while a reply streams: stop after the current token, show it, exit 130. At the
      // prompt, Ctrl-C keeps its default (ends mk at once).
      InterruptGuard interrupt;
      opts.cancel = &InterruptGuard::flag();
      r = gen.generate(ids, opts, [](std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      });
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    history.push_back({"assistant", r.text});
    if (r.stop == StopReason::kContextFull)
      std::fputs("(the context is full: the reply was cut; /reset starts over)\n", stderr);
    if (f.stats || r.stop == StopReason::kInterrupted)
      std::fprintf(stderr, "[prompt %zu tokens (%zu cached), prefill %.0f ms | %zu tokens, %.1f tok/s | stop: %s]\n",
                   r.prompt_tokens, r.reused_tokens, r.prefill_ms, r.tokens.size(), r.decode_tok_per_s(),
                   stop_reason_name(r.stop));
    if (r.stop == StopReason::kInterrupted) return kExitInterrupted;
  }
  return 0;
}

RegisterCommand reg("chat", "Chat with a model on stdin/stdout, keeping the conversation (default model: SmolLM2)",
                    [](CLI::App& app) -> std::function<int()> {
  auto f = std::make_shared<ChatFlags>();
  app.add_option("--system", f->system, "system message that opens the conversation (else the template's default)");
  app.add_flag("--stats", f->stats, "after each reply, print token counts, cache reuse and speed to stderr");
  f->model.add(app);
  f->sampling.add(app);
  app.footer(
      "Type a message and press Enter; the reply streams back. Commands: /reset forgets the conversation, "
      "/exit (or end of input) quits. -n limits each reply. When the conversation outgrows the context, the "
      "oldest exchanges are dropped.");
  return [f] { return run(*f); };
});

}  // namespace
}  // namespace mk::cli
