// Chat template tests: family detection from template markers and special tokens, SmolLM2's
// default system prompt, and each family's rendering against the text HF's templates print.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "generate/chat_template.h"
#include "model/error.h"
#include "tokenizer/tokenizer.h"

namespace mk {
namespace {

// SmolLM2-135M-Instruct's template as its GGUF stores it (real newlines inside the literals).
const char* kSmolLm2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' "
    "}}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

// The same as tokenizer_config.json holds it: "\n" escapes inside the Jinja literals.
const char* kSmolLm2Escaped =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' "
    "}}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char* kQwen2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";

const char* kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

const char* kMistral =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
    "eos_token}}{% endif %}{% endfor %}";

const std::string kSmolSystem =
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n";

std::vector<ChatMessage> conv(std::initializer_list<std::pair<const char*, const char*>> m) {
  std::vector<ChatMessage> out;
  for (auto [r, c] : m) out.push_back({r, c});
  return out;
}

TEST(ChatTemplate, SmolLm2DefaultSystemPrompt) {
  for (const char* tpl : {kSmolLm2, kSmolLm2Escaped}) {
    const ChatTemplate t = ChatTemplate::detect(tpl, nullptr);
    EXPECT_EQ(t.family(), ChatFamily::kChatMl);
    EXPECT_EQ(t.default_system(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
    EXPECT_EQ(t.render(conv({{"user", "Hi"}}), true),
              kSmolSystem + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  }
}

TEST(ChatTemplate, SmolLm2ExplicitSystemAndTurns) {
  const ChatTemplate t = ChatTemplate::detect(kSmolLm2, nullptr);
  EXPECT_EQ(t.render(conv({{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Bye"}}), true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render(conv({{"user", "Hi"}, {"assistant", "Hello!"}}), false),
            kSmolSystem + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n");
  // The template writes the default inside its loop: no messages, no system turn.
  EXPECT_EQ(t.render({}, true), "<|im_start|>assistant\n");
  EXPECT_EQ(t.end_of_turn(), "<|im_end|>");
}

TEST(ChatTemplate, QwenDefaultSystem) {
  const ChatTemplate t = ChatTemplate::detect(kQwen2, nullptr);
  EXPECT_EQ(t.default_system(), "You are a helpful assistant.");
  EXPECT_EQ(t.render(conv({{"user", "x"}}), false),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplate, ChatMlWithoutDefaultSystem) {
  const ChatTemplate t = ChatTemplate::select("chatml", "", nullptr);
  EXPECT_EQ(t.default_system(), "");
  EXPECT_EQ(t.render(conv({{"user", "x"}}), true), "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama3) {
  const ChatTemplate t = ChatTemplate::detect(kLlama3, nullptr);
  EXPECT_EQ(t.family(), ChatFamily::kLlama3);
  EXPECT_EQ(t.render(conv({{"system", "Sys "}, {"user", " Hi\n"}, {"assistant", "Yo"}}), true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nYo<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t.end_of_turn(), "<|eot_id|>");
}

TEST(ChatTemplate, Llama31KnowledgeDateHeader) {
  const std::string tpl = std::string(kLlama3) + "{{- \"Cutting Knowledge Date: December 2023\\n\" }}";
  const ChatTemplate t = ChatTemplate::detect(tpl, nullptr);
  EXPECT_EQ(t.render(conv({{"user", "Hi"}}), true),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, MistralAndLlama2) {
  const ChatTemplate m = ChatTemplate::detect(kMistral, nullptr);
  EXPECT_EQ(m.family(), ChatFamily::kMistral);
  EXPECT_EQ(m.render(conv({{"user", "Hi"}, {"assistant", "Hello"}, {"user", "More"}}), true),
            "<s>[INST] Hi [/INST]Hello</s>[INST] More [/INST]");
  EXPECT_EQ(m.end_of_turn(), "</s>");
  const ChatTemplate l2 = ChatTemplate::detect(std::string(kMistral) + "<<SYS>>", nullptr);
  EXPECT_EQ(l2.render(conv({{"system", "S"}, {"user", "Hi "}, {"assistant", "Hello"}, {"user", "More"}}), true),
            "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] More [/INST]");
}

TEST(ChatTemplate, FallsBackToSpecialTokens) {
  TokenizerSpec spec;
  spec.source = "toy";
  spec.vocab = {"a", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"};
  for (int32_t id = 1; id < 4; ++id) spec.added_tokens.push_back({id, spec.vocab[id]});
  const auto tok = Tokenizer::from_spec(spec);
  EXPECT_EQ(ChatTemplate::detect("", tok.get()).family(), ChatFamily::kLlama3);
  EXPECT_EQ(ChatTemplate::detect("", nullptr).family(), ChatFamily::kNone);
  // An explicit choice wins over what the template shows.
  EXPECT_EQ(ChatTemplate::select("chatml", kLlama3, tok.get()).family(), ChatFamily::kChatMl);
  EXPECT_EQ(ChatTemplate::select("auto", kSmolLm2, tok.get()).family(), ChatFamily::kChatMl);
  EXPECT_EQ(ChatTemplate::select("none", kSmolLm2, tok.get()).family(), ChatFamily::kNone);
  EXPECT_THROW(ChatTemplate::select("vicuna", "", nullptr), Error);
}

TEST(ChatTemplate, NoneJoinsTheContents) {
  const ChatTemplate t(ChatFamily::kNone);
  EXPECT_EQ(t.render(conv({{"user", "a"}, {"assistant", "b"}}), true), "a\nb\n");
  EXPECT_EQ(t.end_of_turn(), "");
}

TEST(ChatTemplate, LoadsTemplateFromHfFolder) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("mk_chat_tpl_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]})";
  }
  EXPECT_EQ(load_chat_template_text(dir), "D");
  EXPECT_EQ(load_chat_template_text(dir / "tokenizer.json"), "D");
  { std::ofstream(dir / "chat_template.jinja") << "J"; }
  EXPECT_EQ(load_chat_template_text(dir), "J");  // the newer, separate file wins
  fs::remove_all(dir);
  EXPECT_EQ(load_chat_template_text(dir), "");
}

}  // namespace
}  // namespace mk
