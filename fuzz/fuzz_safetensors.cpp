// Safetensors: SafetensorsFile::open on an arbitrary file, then every tensor it accepted is
// looked up and converted to f32 (its byte range must lie inside the file and match its shape).
#include <cstdint>
#include <vector>

#include "fuzz_util.h"
#include "model/error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mk::fuzz::MemFile file("fuzz_safetensors");
  const std::string& path = file.write(data, size);
  try {
    auto st = mk::SafetensorsFile::open(path);
    for (const auto& [k, v] : st->metadata()) (void)(k.size() + v.size());
    for (const std::string& name : st->names()) {
      const mk::TensorInfo* t = st->find(name);
      if (!t) mk::fuzz::invariant_failed("names() lists a tensor that find() does not");
      if (size_t(t->numel()) * mk::dtype_size(t->dtype) != t->nbytes)
        mk::fuzz::invariant_failed("tensor byte size does not match its shape");
      if (t->nbytes > size) mk::fuzz::invariant_failed("tensor larger than the file");
      std::vector<float> out(size_t(t->numel()));
      mk::convert_to_f32(*t, out.data());
    }
    (void)st->find("no such tensor");
  } catch (const mk::Error&) {
  }
  return 0;
}
