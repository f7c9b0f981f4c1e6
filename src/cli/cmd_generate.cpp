// `mk generate`: text in, text out: one prompt (raw, or wrapped in the model's chat template),
// streamed to stdout, with a loading bar and a stats line on stderr.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/interrupt.h"
#include "generate/cli_flags.h"
#include "model/error.h"

namespace mk::cli {
namespace {

const char* kDefaultRawPrompt = "Once upon a time,";
const char* kDefaultChatPrompt = "Hello! Tell me a fun fact about the ocean.";

struct GenerateFlags {
  ModelFlags model;
  SamplingFlags sampling{128};
  std::string prompt, prompt_file, system, messages_file;
  bool chat = false, raw = false, truncate = false, json = false, show_prompt = false, no_echo = false;
};

std::string read_text(const std::string& path) {
  std::ostringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open");
    ss << in.rdbuf();
  }
  return ss.str();
}

// --messages: [{"role": "user", "content": "..."}, ...], as HF's apply_chat_template takes them.
std::vector<ChatMessage> read_messages(const std::string& path) {
  const nlohmann::json j = nlohmann::json::parse(read_text(path), nullptr, false);
  if (j.is_discarded() || !j.is_array()) throw Error(path + ": not a JSON array of {role, content} messages");
  std::vector<ChatMessage> out;
  for (const auto& m : j) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw Error(path + ": message " + std::to_string(out.size()) + " is not {\"role\": ..., \"content\": ...}");
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  if (out.empty()) throw Error(path + ": no messages");
  return out;
}

// Too long for the context: keep the last tokens (and a leading BOS), leaving room for the
// reply: -n tokens, but at most half the context.
std::vector<int32_t> truncate_prompt(std::vector<int32_t> ids, size_t ctx, size_t max_tokens, int32_t bos) {
  const size_t room = std::min(max_tokens, ctx / 2);
  const size_t keep = std::max<size_t>(1, ctx - room);
  if (ids.size() <= keep) return ids;
  const bool has_bos = bos >= 0 && ids.front() == bos && keep > 1;
  std::vector<int32_t> out;
  if (has_bos) out.push_back(bos);
  out.insert(out.end(), ids.end() - (keep - out.size()), ids.end());
  return out;
}

int run(GenerateFlags& f) {
  if (f.chat && f.raw) throw Error("--chat and --raw exclude each other");
  const bool chat = f.chat || !f.messages_file.empty();
  if (!f.system.empty() && !chat) throw Error("--system needs --chat");
  std::string prompt = !f.prompt_file.empty() ? read_text(f.prompt_file)
                       : !f.prompt.empty()    ? f.prompt
                       : chat                 ? kDefaultChatPrompt
                                              : kDefaultRawPrompt;

  auto session = open_session(f.model.session(), !f.show_prompt);
  const ChatTemplate& tpl = session->chat;
  bool add_special = true;
  if (chat) {
    if (tpl.family() == ChatFamily::kNone && f.model.chat_template != "none")
      throw Error(session->model_path.string() +
                  ": no chat template recognised; choose one with --chat-template chatml|llama3|mistral|none");
    std::vector<ChatMessage> messages;
    if (!f.messages_file.empty()) {
      messages = read_messages(f.messages_file);
    } else {
      if (!f.system.empty()) messages.push_back({"system", f.system});
      messages.push_back({"user", prompt});
    }
    // The template writes BOS itself; with no template the tokenizer must add it.
    add_special = tpl.family() == ChatFamily::kNone;
    const bool open_turn = messages.back().role != "assistant";
    prompt = tpl.render(messages, open_turn);
  }
  if (f.show_prompt) {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
    return 0;
  }

  Engine& engine = *session->engine;
  std::vector<int32_t> ids = session->tokenizer->encode(prompt, add_special);
  if (ids.empty()) throw Error("the prompt is empty (no tokens)");
  const size_t ctx = engine.max_context();
  if (ids.size() > ctx) {
    if (!f.truncate)
      throw Error("the prompt has " + std::to_string(ids.size()) + " tokens but the context holds " +
                  std::to_string(ctx) + " (--ctx); shorten it or pass --truncate to keep its end");
    const size_t before = ids.size();
    ids = truncate_prompt(std::move(ids), ctx, f.sampling.max_tokens, session->tokenizer->bos_id());
    std::fprintf(stderr, "note: prompt truncated from %zu to its last %zu tokens to fit the context of %zu\n",
                 before, ids.size(), ctx);
    prompt = session->tokenizer->decode(ids, true);  // echo what the model sees
  }

  GenerateOptions opts = f.sampling.options(session->stop_ids);
  InterruptGuard interrupt;  // Ctrl-C: stop after the current token, print what there is, exit 130
  opts.cancel = &InterruptGuard::flag();
  Generator gen(engine, *session->tokenizer);
  const bool stream = !f.json;
  char last = '\n';  // the last character on stdout, to end the output with a line break
  auto print = [&](std::string_view text) {
    if (!stream || text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    last = text.back();
  };
  // A raw prompt is the start of the text, so it is shown; a chat prompt is markup.
  if (!chat && !f.no_echo) print(prompt);
  GenerateResult r = gen.generate(ids, opts, print);

  if (f.json) {
    nlohmann::json j;
    j["prompt_ids"] = ids;
    j["ids"] = r.tokens;
    j["text"] = r.text;
    j["stop"] = stop_reason_name(r.stop);
    if (r.stop == StopReason::kEos) j["stop_token"] = r.stop_token;
    j["prefill_ms"] = r.prefill_ms;
    j["decode_tok_per_s"] = r.decode_tok_per_s();
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else if (last != '\n') {
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);

  if (r.stop == StopReason::kContextFull)
    std::fprintf(stderr, "note: stopped at the end of the context (%zu tokens); a larger --ctx allows more\n", ctx);
  std::string seed = opts.sampling.greedy() ? "greedy" : "seed " + std::to_string(opts.sampling.seed);
  const std::string device =
      engine.device_name() + (engine.on_gpu() ? " (" + engine.decode_build() + " decode build)" : "");
  std::fprintf(stderr,
               "prompt: %zu tokens, prefill %.0f ms (%.1f tok/s) | generated: %zu tokens, %.1f tok/s | "
               "stop: %s | %s | load %.0f ms | %s\n",
               r.prompt_tokens, r.prefill_ms, r.prefill_ms > 0 ? r.prompt_tokens * 1000.0 / r.prefill_ms : 0.0,
               r.tokens.size(), r.decode_tok_per_s(), stop_reason_name(r.stop), seed.c_str(), session->load_ms,
               device.c_str());
  return r.stop == StopReason::kInterrupted ? kExitInterrupted : 0;
}

RegisterCommand reg("generate", "Generate text from a prompt (default model: SmolLM2-135M-Instruct)",
                    [](CLI::App& app) -> std::function<int()> {
  auto f = std::make_shared<GenerateFlags>();
  app.add_option("-p,--prompt", f->prompt, std::string("the prompt (default: \"") + kDefaultRawPrompt +
                                               "\", or with --chat \"" + kDefaultChatPrompt + "\")");
  app.add_option("--prompt-file", f->prompt_file, "read the prompt from this file (- = stdin)")->excludes("--prompt");
  app.add_flag("--chat", f->chat, "wrap the prompt in the model's chat template as a user turn");
  app.add_flag("--raw", f->raw, "give the prompt to the model as it is (the default)");
  app.add_option("--system", f->system, "with --chat: a system message (else the template's default, if any)");
  app.add_option("--messages", f->messages_file,
                 "a JSON file [{\"role\": ..., \"content\": ...}, ...] rendered with the chat template (implies --chat)");
  app.add_flag("--no-echo", f->no_echo, "without --chat: print only the continuation, not the prompt before it");
  app.add_flag("--show-prompt", f->show_prompt, "print the prompt text as the model would see it and exit (no weights loaded)");
  app.add_flag("--truncate", f->truncate,
               "when the prompt does not fit the context, keep its last tokens (room for -n, at most half the context)");
  app.add_flag("--json", f->json,
               "instead of streaming, print one JSON object: prompt_ids, ids, text, stop, prefill_ms, decode_tok_per_s");
  f->model.add(app);
  f->sampling.add(app);
  app.footer(
      "Sampling applies, in this order: repetition penalty, temperature, top-k, top-p, min-p (as HF transformers "
      "does). Generation stops at an end-of-sequence token, a --stop string, -n tokens or the end of the context. "
      "Text streams to stdout; the loading bar and the stats line go to stderr.");
  return [f] { return run(*f); };
});

}  // namespace
}  // namespace mk::cli
