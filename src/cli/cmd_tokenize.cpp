// `mk tokenize`: encodes text to token ids or decodes ids to text with a model's tokenizer
// (tokenizer.json, a folder holding one, or a .gguf), one output line per input line.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "model/error.h"
#include "tokenizer/tokenizer.h"

namespace mk::cli {
namespace {

struct Options {
  std::string tokenizer;
  std::string text;
  std::string file;
  bool no_special = false;
  bool decode = false;
  bool skip_special = false;
  bool stream = false;
  bool json = false;
  bool stats = false;
};

// --file: the lines without their "\n" ("-" is stdin); --text: the whole string as one input.
std::vector<std::string> read_inputs(const Options& o) {
  if (o.file.empty()) return {o.text};
  std::string data;
  if (o.file == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    data = ss.str();
  } else {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) throw Error(o.file + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    data = ss.str();
  }
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < data.size()) {
    size_t nl = data.find('\n', start);
    if (nl == std::string::npos) nl = data.size();
    lines.push_back(data.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

// --json: a line is a JSON string (to encode) or a JSON array of ids (to decode).
nlohmann::json parse_json_line(const std::string& line, size_t line_no) {
  try {
    return nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    throw Error("input line " + std::to_string(line_no) + " is not JSON");
  }
}

std::string json_text(const std::string& line, size_t line_no) {
  nlohmann::json v = parse_json_line(line, line_no);
  if (!v.is_string()) throw Error("input line " + std::to_string(line_no) + " is not a JSON string");
  return v.get<std::string>();
}

std::vector<int32_t> json_ids(const std::string& line, size_t line_no) {
  nlohmann::json v = parse_json_line(line, line_no);
  std::vector<int32_t> ids;
  if (!v.is_array()) throw Error("input line " + std::to_string(line_no) + " is not a JSON array");
  for (const auto& e : v) {
    if (!e.is_number_integer() || e.get<int64_t>() < INT32_MIN || e.get<int64_t>() > INT32_MAX)
      throw Error("input line " + std::to_string(line_no) + ": not a token id: " + e.dump());
    ids.push_back(int32_t(e.get<int64_t>()));
  }
  return ids;
}

std::vector<int32_t> parse_ids(const std::string& line, size_t line_no) {
  std::vector<int32_t> ids;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < INT32_MIN || v > INT32_MAX)
      throw Error("input line " + std::to_string(line_no) + ": \"" + word + "\" is not a token id");
    ids.push_back(int32_t(v));
  }
  return ids;
}

int run(const Options& o) {
  auto tok = Tokenizer::from_path(o.tokenizer);
  std::vector<std::string> inputs = read_inputs(o);
  std::string out;
  size_t tokens = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (o.decode) {
      std::vector<int32_t> ids = o.json ? json_ids(inputs[i], i + 1) : parse_ids(inputs[i], i + 1);
      tokens += ids.size();
      std::string text;
      if (o.stream) {
        StreamDecoder sd(*tok, o.skip_special);
        for (int32_t id : ids) text += sd.push(id);
        text += sd.flush();
      } else {
        text = tok->decode(ids, o.skip_special);
      }
      out += o.json ? nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    : text;
    } else {
      std::vector<int32_t> ids =
          tok->encode(o.json ? json_text(inputs[i], i + 1) : inputs[i], !o.no_special);
      tokens += ids.size();
      if (o.json) out += '[';
      for (size_t k = 0; k < ids.size(); ++k) {
        if (k) out += o.json ? "," : " ";
        out += std::to_string(ids[k]);
      }
      if (o.json) out += ']';
    }
    out += '\n';
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (o.stats)
    std::fprintf(stderr, "%zu lines, %zu tokens, %.3f ms (%s)\n", inputs.size(), tokens,
                 secs * 1e3, o.decode ? "decode" : "encode");
  return 0;
}

const RegisterCommand registered{
    "tokenize", "Encode text to token ids, or decode ids to text, with a model's tokenizer",
    [](CLI::App& sub) -> std::function<int()> {
      auto o = std::make_shared<Options>();
      sub.add_option("--tokenizer", o->tokenizer,
                     "tokenizer.json, a folder holding one, or a .gguf file")
          ->required();
      auto* text = sub.add_option("--text", o->text, "the input, as one text (may hold newlines)");
      auto* file = sub.add_option("--file", o->file, "input file, one input per line; - is stdin");
      text->excludes(file);
      file->excludes(text);
      sub.add_flag("--no-special", o->no_special, "encode without BOS/EOS");
      sub.add_flag("--decode", o->decode, "inputs are lines of space-separated ids; print text");
      sub.add_flag("--skip-special", o->skip_special, "decode without special tokens");
      sub.add_flag("--stream", o->stream, "decode through StreamDecoder, token by token");
      sub.add_flag("--json", o->json,
                   "inputs and outputs are JSON, one per line: strings of text, arrays of ids");
      sub.add_flag("--stats", o->stats, "print the line and token counts and time to stderr");
      return [o, text, file] {
        if (text->count() == 0 && file->count() == 0)
          throw Error("tokenize: give --text or --file");
        return run(*o);
      };
    }};

}  // namespace
}  // namespace mk::cli
