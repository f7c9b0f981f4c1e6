// Specialized builds of the megakernel: the same op templates with a model's dimensions fixed at
// compile time, so that the decode matvecs' widths, their page counts and the attention head size
// are constants (loops unrolled, no run-time division). The generic build (GenericSpec) reads them
// from the program at run time, and any model runs on it; a specialized build runs only programs
// whose dimensions match its spec (spec_matches), else the host picks the generic one.
#pragma once

#include <stdint.h>

#include <type_traits>

#include "mk/isa.h"

namespace mk::cuda {

struct GenericSpec {
  static constexpr uint32_t kHidden = 0, kInter = 0, kHeadDim = 0, kHeads = 0, kKvHeads = 0;
  static constexpr const char* kName = "generic";
};

template <uint32_t H, uint32_t I, uint32_t D, uint32_t Hq, uint32_t Hkv>
struct FixedSpec {
  static constexpr uint32_t kHidden = H, kInter = I, kHeadDim = D, kHeads = Hq, kKvHeads = Hkv;
};

// Llama-3.2-1B (hidden 2048, intermediate 8192, 32 heads of 64 over 8 KV heads).
struct Llama32_1BSpec : FixedSpec<2048, 8192, 64, 32, 8> {
  static constexpr const char* kName = "llama-3.2-1b";
};

template <class Spec>
MK_HD inline bool spec_matches(const ModelDims& d) {
  return Spec::kHidden == 0 || (d.hidden == Spec::kHidden && d.intermediate == Spec::kInter &&
                                d.head_dim == Spec::kHeadDim && d.n_heads == Spec::kHeads &&
                                d.n_kv_heads == Spec::kKvHeads);
}

#if defined(__CUDACC__)
// Calls f(std::integral_constant<uint32_t, W>{}) with W the width (a matvec's input length) that
// the spec fixes and that equals `width`, else with W = 0 (the width is read at run time).
template <class Spec, class F>
__device__ __forceinline__ void with_width(uint32_t width, F&& f) {
  if constexpr (Spec::kHidden != 0) {
    if (width == Spec::kHidden) return f(std::integral_constant<uint32_t, Spec::kHidden>{});
    if (width == Spec::kInter) return f(std::integral_constant<uint32_t, Spec::kInter>{});
  }
  f(std::integral_constant<uint32_t, 0>{});
}
#endif

}  // namespace mk::cuda
