// GGUF: GgufFile::open on an arbitrary file, every metadata getter on every key (the right type
// and the wrong ones), the config and tokenizer built from the metadata, then GgufModel::open
// (config + dequantization of every tensor).
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "model/error.h"
#include "model/gguf/gguf_file.h"
#include "model/gguf/gguf_model.h"
#include "tokenizer/tokenizer.h"

namespace {

template <typename F>
void quietly(F&& f) {  // a getter may reject the value: only mk::Error is allowed
  try {
    f();
  } catch (const mk::Error&) {
  }
}

void poke_metadata(const mk::GgufFile& g) {
  for (const std::string& key : g.keys()) {
    if (!g.has(key)) mk::fuzz::invariant_failed("keys() lists a key that has() denies");
    (void)mk::gguf_value_type_name(g.type(key));
    quietly([&] { (void)g.get_string(key); });
    quietly([&] { (void)g.get_int(key); });
    quietly([&] { (void)g.get_float(key); });
    quietly([&] { (void)g.get_bool(key); });
    quietly([&] { (void)g.array_type(key); });
    quietly([&] { (void)g.array_size(key); });
    quietly([&] { (void)g.get_string_array(key); });
    quietly([&] { (void)g.get_float_array(key); });
    quietly([&] { (void)g.get_int_array(key); });
    quietly([&] { (void)g.get_string_or(key, "x"); });
    quietly([&] { (void)g.get_int_or(key, 1); });
  }
  quietly([&] { (void)g.get_int("no.such.key"); });
  (void)g.get_int_or("no.such.key", 7);
  for (const mk::GgufTensorInfo& t : g.tensors()) {
    if (g.find_tensor(t.name) == nullptr) mk::fuzz::invariant_failed("tensor not found by its name");
    (void)mk::gguf_to_hf_name("llama", t.name);
    (void)mk::gguf_to_hf_name("gpt2", t.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mk::fuzz::MemFile file("fuzz_gguf");
  const std::string& path = file.write(data, size);
  try {
    auto g = mk::GgufFile::open(path);
    poke_metadata(*g);
    quietly([&] { (void)mk::gguf_model_config(*g); });
    quietly([&] {
      auto tok = mk::Tokenizer::from_gguf(*g);
      const std::vector<int32_t> ids = tok->encode("Hello world! 123 caf\xc3\xa9 \xff\xfe", true);
      (void)tok->decode(ids);
      (void)tok->decode(ids, true);
    });
  } catch (const mk::Error&) {
    return 0;  // what GgufModel::open would fail on first anyway
  }
  try {
    auto m = mk::GgufModel::open(path, [](size_t done, size_t total) {
      if (done > total) mk::fuzz::invariant_failed("progress past its total");
    });
    for (const std::string& name : m->names()) {
      const mk::TensorInfo* t = m->find(name);
      if (!t) mk::fuzz::invariant_failed("names() lists a tensor that find() does not");
      if (size_t(t->numel()) * mk::dtype_size(t->dtype) != t->nbytes)
        mk::fuzz::invariant_failed("tensor byte size does not match its shape");
    }
  } catch (const mk::Error&) {
  }
  return 0;
}
