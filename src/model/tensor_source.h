// TensorSource: a read-only set of named tensors from a model file (safetensors, GGUF), seen with
// Hugging Face names and shapes so that every architecture's weight mapping is written once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mk {

enum class DType : uint8_t { F32, F16, BF16 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;   // row-major, outermost first (as in safetensors / PyTorch)
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // nullptr when absent.
  virtual const TensorInfo* find(std::string_view name) const = 0;
  virtual std::vector<std::string> names() const = 0;
  // Where a tensor comes from when its name in the file differs (a GGUF tensor name), for errors.
  virtual std::string origin(std::string_view /*name*/) const { return {}; }
};

// Converts any supported dtype to float32 (count = info.numel()).
void convert_to_f32(const TensorInfo& info, float* out);

float bf16_to_f32(uint16_t v);
float f16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);  // round to nearest even

}  // namespace mk
