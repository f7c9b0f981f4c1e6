// ChatTemplate: family detection from template markers, the default system prompt a ChatML
// template embeds, and the per-family rendering that mirrors what HF's Jinja templates print.
#include "generate/chat_template.h"

#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/error.h"
#include "model/gguf/gguf_file.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

bool has(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

// Jinja's `trim` and Python's str.strip() on the ASCII whitespace chat contents use.
std::string trim(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(ws) - b + 1));
}

// Undoes the escapes of a Jinja string literal ('\n', '\'', '\\').
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
  }
  return out;
}

// A ChatML template that writes a fixed system turn when the conversation has none (SmolLM2:
// "{{ '<|im_start|>system\nYou are ...<|im_end|>\n' }}"): the literal text of that turn.
std::string default_system_of(std::string_view tpl) {
  const std::string_view open = "<|im_start|>system";
  for (size_t at = tpl.find(open); at != std::string_view::npos; at = tpl.find(open, at + 1)) {
    size_t p = at + open.size();
    if (tpl.substr(p, 1) == "\n") p += 1;
    else if (tpl.substr(p, 2) == "\\n") p += 2;
    else continue;
    const size_t end = tpl.find("<|im_end|>", p);
    if (end == std::string_view::npos) continue;
    const std::string_view body = tpl.substr(p, end - p);
    // A Jinja expression there (message['content'], a quote closing the literal) is not fixed text.
    if (body.empty() || body.find_first_of("'\"{}+") != std::string_view::npos) continue;
    return unescape(body);
  }
  return {};
}

ChatFamily family_from_markers(std::string_view tpl, const Tokenizer* tok) {
  if (has(tpl, "<|im_start|>")) return ChatFamily::kChatMl;
  if (has(tpl, "<|start_header_id|>")) return ChatFamily::kLlama3;
  if (has(tpl, "[INST]")) return ChatFamily::kMistral;
  if (tok) {
    if (tok->token_id("<|im_start|>")) return ChatFamily::kChatMl;
    if (tok->token_id("<|start_header_id|>")) return ChatFamily::kLlama3;
    if (tok->token_id("[INST]")) return ChatFamily::kMistral;
  }
  return ChatFamily::kNone;
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%d %b %Y", &tm);
  return buf;
}

}  // namespace

const char* chat_family_name(ChatFamily f) {
  switch (f) {
    case ChatFamily::kNone: return "none";
    case ChatFamily::kChatMl: return "chatml";
    case ChatFamily::kLlama3: return "llama3";
    case ChatFamily::kMistral: return "mistral";
  }
  return "?";
}

void ChatTemplate::take_details(std::string_view tpl, const Tokenizer* tok) {
  if (family_ == ChatFamily::kChatMl) default_system_ = default_system_of(tpl);
  llama2_sys_ = has(tpl, "<<SYS>>");
  llama31_header_ = has(tpl, "Cutting Knowledge Date");
  strftime_date_ = has(tpl, "strftime_now");
  if (tok) {
    if (tok->bos_id() >= 0) bos_ = tok->token_text(tok->bos_id());
    const std::vector<int32_t> eos = tok->eos_ids();
    if (!eos.empty()) eos_ = tok->token_text(eos.front());
  }
}

ChatTemplate ChatTemplate::detect(std::string_view tpl, const Tokenizer* tok) {
  ChatTemplate t(family_from_markers(tpl, tok));
  t.take_details(tpl, tok);
  return t;
}

ChatTemplate ChatTemplate::select(std::string_view name, std::string_view tpl, const Tokenizer* tok) {
  if (name.empty() || name == "auto") return detect(tpl, tok);
  ChatTemplate t;
  if (name == "chatml") t.family_ = ChatFamily::kChatMl;
  else if (name == "llama3") t.family_ = ChatFamily::kLlama3;
  else if (name == "mistral") t.family_ = ChatFamily::kMistral;
  else if (name == "none") t.family_ = ChatFamily::kNone;
  else throw Error("--chat-template: unknown template '" + std::string(name) + "' (auto, chatml, llama3, mistral, none)");
  // The model's own template text only describes this family when it is the family it shows.
  t.take_details(family_from_markers(tpl, nullptr) == t.family_ ? tpl : std::string_view(), tok);
  return t;
}

std::string ChatTemplate::end_of_turn() const {
  switch (family_) {
    case ChatFamily::kChatMl: return "<|im_end|>";
    case ChatFamily::kLlama3: return "<|eot_id|>";
    case ChatFamily::kMistral: return eos_;
    case ChatFamily::kNone: return "";
  }
  return "";
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
  std::string out;
  switch (family_) {
    case ChatFamily::kChatMl:
      for (size_t i = 0; i < messages.size(); ++i) {
        if (i == 0 && messages[0].role != "system" && !default_system_.empty())
          out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
        out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;

    case ChatFamily::kLlama3: {
      out += "<|begin_of_text|>";
      auto turn = [&](const std::string& role, const std::string& content) {
        out += "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + content + "<|eot_id|>";
      };
      size_t first = 0;
      if (llama31_header_) {
        // Llama 3.1+ always writes a system turn that opens with the knowledge cutoff and date.
        std::string system;
        if (!messages.empty() && messages[0].role == "system") system = trim(messages[0].content), first = 1;
        turn("system", "Cutting Knowledge Date: December 2023\nToday Date: " +
                           (strftime_date_ ? today() : std::string("26 Jul 2024")) + "\n\n" + system);
      }
      for (size_t i = first; i < messages.size(); ++i) turn(messages[i].role, trim(messages[i].content));
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }

    case ChatFamily::kMistral: {
      // Neither template has a system turn: Llama 2 wraps it in <<SYS>> inside the first user
      // turn; for Mistral it is put before the first user message.
      std::string system;
      size_t first = 0;
      if (!messages.empty() && messages[0].role == "system") system = messages[0].content, first = 1;
      if (!llama2_sys_) out += bos_;
      bool first_user = true;
      for (size_t i = first; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role == "user") {
          std::string content = m.content;
          if (first_user && !system.empty())
            content = llama2_sys_ ? "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content : system + "\n\n" + content;
          first_user = false;
          if (llama2_sys_) out += bos_ + "[INST] " + trim(content) + " [/INST]";
          else out += "[INST] " + content + " [/INST]";
        } else if (m.role == "assistant") {
          if (llama2_sys_) out += " " + trim(m.content) + " " + eos_;
          else out += m.content + eos_;
        }
      }
      break;
    }

    case ChatFamily::kNone:
      for (const ChatMessage& m : messages) out += m.content + "\n";
      break;
  }
  return out;
}

std::string load_chat_template_text(const std::filesystem::path& model) {
  namespace fs = std::filesystem;
  if (model.extension() == ".gguf" && fs::is_regular_file(model))
    return GgufFile::open(model)->get_string_or("tokenizer.chat_template", "");
  const fs::path dir = fs::is_directory(model) ? model : model.parent_path();
  auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  if (fs::is_regular_file(dir / "chat_template.jinja")) return read(dir / "chat_template.jinja");
  const fs::path cfg = dir / "tokenizer_config.json";
  if (!fs::is_regular_file(cfg)) return {};
  const nlohmann::json j = nlohmann::json::parse(read(cfg), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("chat_template")) return {};
  const nlohmann::json& t = j["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  // Several named templates: [{"name": "default", "template": ...}, {"name": "tool_use", ...}].
  if (t.is_array()) {
    std::string first;
    for (const auto& e : t) {
      if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
      if (e.value("name", "") == "default") return e["template"].get<std::string>();
      if (first.empty()) first = e["template"].get<std::string>();
    }
    return first;
  }
  return {};
}

}  // namespace mk
