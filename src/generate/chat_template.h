// ChatTemplate: renders a conversation into the prompt text a chat model was trained on, for the
// families recognised from the model's Jinja template (no Jinja engine: the markers pick a family).
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mk {

class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class ChatFamily {
  kNone,     // no template: the contents one after another
  kChatMl,   // SmolLM2, Qwen: <|im_start|>role\ncontent<|im_end|>\n
  kLlama3,   // <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
  kMistral,  // <s>[INST] user [/INST]assistant</s> (Llama 2's <<SYS>> variant when the template has it)
};

const char* chat_family_name(ChatFamily family);

class ChatTemplate {
 public:
  ChatTemplate() = default;
  explicit ChatTemplate(ChatFamily family) : family_(family) {}

  // Recognises the family from the markers of `template_text` (GGUF tokenizer.chat_template or
  // an HF chat_template), else from the special tokens the tokenizer has; kNone when neither.
  static ChatTemplate detect(std::string_view template_text, const Tokenizer* tokenizer);
  // `name`: auto | chatml | llama3 | mistral | none. A named family still takes its details
  // (default system prompt, BOS/EOS text) from the template text and tokenizer. Throws mk::Error
  // for an unknown name.
  static ChatTemplate select(std::string_view name, std::string_view template_text, const Tokenizer* tokenizer);

  ChatFamily family() const { return family_; }
  // The system prompt the template inserts when the conversation has none (SmolLM2, Qwen2.5).
  const std::string& default_system() const { return default_system_; }
  // The token text that ends a turn ("<|im_end|>", "<|eot_id|>", "</s>"); "" for kNone.
  std::string end_of_turn() const;

  // The text HF's tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt)
  // gives for this family. Encode it without adding special tokens: BOS is part of the text.
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;

 private:
  void take_details(std::string_view template_text, const Tokenizer* tokenizer);

  ChatFamily family_ = ChatFamily::kNone;
  std::string default_system_;
  bool llama2_sys_ = false;      // Mistral family: Llama 2's <<SYS>> system block and spacing
  bool llama31_header_ = false;  // Llama 3.1+: the system turn always opens with the knowledge date
  bool strftime_date_ = false;   // ... and today's date instead of the fixed "26 Jul 2024"
  std::string bos_ = "<s>", eos_ = "</s>";
};

// The chat template text shipped with a model: GGUF `tokenizer.chat_template`, or in an HF folder
// chat_template.jinja or tokenizer_config.json's "chat_template" (for a tokenizer.json path, its
// folder is searched). "" when there is none.
std::string load_chat_template_text(const std::filesystem::path& model);

}  // namespace mk
