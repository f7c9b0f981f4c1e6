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

// kPipeInflight: the build's cap on the weight pipe's copies in flight per SM (0: none, the ring's
// depth), what `--pipe-inflight auto` takes.
struct GenericSpec {
  static constexpr uint32_t kHidden = 0, kInter = 0, kHeadDim = 0, kHeads = 0, kKvHeads = 0;
  static constexpr uint32_t kPipeInflight = 0;
  static constexpr const char* kName = "generic";
};

template <uint32_t H, uint32_t I, uint32_t D, uint32_t Hq, uint32_t Hkv>
struct FixedSpec {
  static constexpr uint32_t kHidden = H, kInter = I, kHeadDim = D, kHeads = Hq, kKvHeads = Hkv;
};

// Llama-3.2-1B (hidden 2048, intermediate 8192, 32 heads of 64 over 8 KV heads). No cap on the
// copies in flight, as in the generic build (where every cap tried, 3-8, cost Qwen2.5-1.5B ~3%): on
// the H100 (sessions 46-47) 3 was 0.9-2.2% faster than the whole ring of 12 pages, but on the H200
// (session 48, interleaved A/B) no cap was 8.4-9.0% faster than 3 at contexts 32 and 1024 (6.0-6.9%
// with session 48's producer loop), and 6 was as slow as 3. `--pipe-inflight 3` keeps the H100's
// choice at hand.
struct Llama32_1BSpec : FixedSpec<2048, 8192, 64, 32, 8> {
  static constexpr uint32_t kPipeInflight = 0;
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
