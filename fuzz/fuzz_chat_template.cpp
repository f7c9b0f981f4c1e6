// Chat templates: ChatTemplate::detect / select with template text from the input, then render
// a conversation built from the input and encode it as `mk generate --chat` does.
// Input, cut at NUL bytes: [0] the template text; [1] a byte choosing the tokenizer (none,
// ChatML, Llama 3, Mistral vocabularies) and the generation prompt, then the family name for
// select(); [2..] messages, each a role byte (s/u/a, anything else: the role is the text up to
// the first newline) then the content.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "generate/chat_template.h"
#include "model/error.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Tokenizers {
  std::unique_ptr<mk::Tokenizer> chatml = mk::fuzz::load_test_tokenizer("mini-smollm.json");
  std::unique_ptr<mk::Tokenizer> llama3 = mk::fuzz::load_test_tokenizer("mini-llama3.json");
  std::unique_ptr<mk::Tokenizer> mistral = mk::fuzz::load_test_tokenizer("mini-llama2.json");
};

const Tokenizers& tokenizers() {
  static const Tokenizers t;
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = mk::fuzz::split(data, size);
  const std::string_view tpl_text = parts[0];
  std::string_view opts = parts.size() > 1 ? parts[1] : std::string_view();
  const uint8_t sel = opts.empty() ? 0 : uint8_t(opts[0]);
  if (!opts.empty()) opts.remove_prefix(1);
  const mk::Tokenizer* tok = nullptr;
  switch (sel & 3) {
    case 1: tok = tokenizers().chatml.get(); break;
    case 2: tok = tokenizers().llama3.get(); break;
    case 3: tok = tokenizers().mistral.get(); break;
    default: break;
  }
  const bool add_generation_prompt = (sel & 4) != 0;

  std::vector<mk::ChatMessage> messages;
  for (size_t i = 2; i < parts.size(); ++i) {
    std::string_view m = parts[i];
    mk::ChatMessage msg;
    const char r = m.empty() ? 'u' : m[0];
    if (!m.empty()) m.remove_prefix(1);
    if (r == 's') msg.role = "system";
    else if (r == 'u') msg.role = "user";
    else if (r == 'a') msg.role = "assistant";
    else {
      const size_t nl = m.find('\n');
      msg.role = std::string(m.substr(0, nl));
      m = nl == std::string_view::npos ? std::string_view() : m.substr(nl + 1);
    }
    msg.content = std::string(m);
    messages.push_back(std::move(msg));
  }

  std::vector<mk::ChatTemplate> templates;
  templates.push_back(mk::ChatTemplate::detect(tpl_text, tok));
  try {
    templates.push_back(mk::ChatTemplate::select(opts, tpl_text, tok));
  } catch (const mk::Error&) {
  }
  for (const char* name : {"chatml", "llama3", "mistral", "none"})
    templates.push_back(mk::ChatTemplate::select(name, tpl_text, tok));

  for (const mk::ChatTemplate& t : templates) {
    (void)mk::chat_family_name(t.family());
    (void)t.default_system();
    (void)t.end_of_turn();
    try {
      const std::string prompt = t.render(messages, add_generation_prompt);
      if (tok) {
        const std::vector<int32_t> ids = tok->encode(prompt, false);
        (void)tok->decode(ids, true);
      }
    } catch (const mk::Error&) {
    }
  }
  return 0;
}
