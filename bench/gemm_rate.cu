// Prefill's GEMM pass alone (ops/mma_gemm.cuh): is each form right, and how fast is it? For the
// mma.sync form and, on sm_90a, the wgmma form, this checks passes of every width the ops use
// against a host reference (whole and ragged tiles: fewer tokens, fewer rows, K not a multiple of a
// stage), then times one block per SM running passes of 128 tokens by kN rows (K = 2048, weights
// from an L2-sized set of rows), as the prefill tiles do, and prints TFLOP/s.
//
// Build (from the repository root):
//   nvcc -O3 -std=c++20 -Isrc -Iinclude -gencode=arch=compute_90a,code=sm_90a bench/gemm_rate.cu -o gemm_rate
// Run:   ./gemm_rate [--check] [--tokens N] [--rows N]
//   --check: the checks only, no timing (exit status 1 if a check fails); --tokens: tokens per timed
//   pass (default 128; fewer leave the rest of the pass's rows zero-filled, as a short prompt's
//   tiles do); --rows: weight rows the timed passes cycle through (default 8192: 32 MB, L2-resident;
//   65536 streams them from HBM, as a prefill's first token block does).
// tests/py/test_gemm_pass_gpu.py builds and runs it with --check where a GPU and nvcc are present.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cuda/ops/mma_gemm.cuh"
#include "cuda/tensor_map.h"

namespace {

using namespace mk::cuda;

enum class Form { kMma, kWgmma, kTma };

// Each block runs `passes` passes over rows (block * passes + i) * kN mod `rows` of W, with token
// block (block % x_blocks) of X, columns [k0, k0 + klen) (a split matvec's range); the last pass's
// C goes to out (block 0 only). x_map: X as a TMA tensor map (the TMA form's).
template <uint32_t kN, Form kForm>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_kernel(const __nv_bfloat16* X, const __grid_constant__ CUtensorMap x_map, uint32_t mc, uint32_t K, uint32_t k0,
                uint32_t klen, const __nv_bfloat16* W, uint32_t rows, uint32_t nrows, uint32_t passes,
                uint32_t x_blocks, float* out) {
  extern __shared__ __align__(1024) float smem[];  // as the megakernel's: swizzled wgmma operands need it
  float* work = smem + kSmemHead;
  constexpr uint32_t ldc = gemm_ldc(kN);
  const uint32_t x_row0 = blockIdx.x % x_blocks * kGemmM;
  X += size_t(x_row0) * K + k0;
  for (uint32_t i = 0; i < passes; ++i) {
    const uint32_t r0 = (blockIdx.x * passes + i) * kN % rows;
    auto row = [&](uint32_t n) { return PagedRowFrom{paged_row(W, (r0 + n) % rows, K), k0}; };
    if constexpr (kForm == Form::kWgmma) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
      gemm_pass_wgmma<kN>(X, K, mc, klen, row, nrows, work, ldc, work);
#endif
    } else if constexpr (kForm == Form::kTma) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
      __shared__ uint64_t bars[8];
      gemm_pass_tma<kN>(&x_map, x_row0, k0, mc, klen, row, nrows, work, ldc, work, bars);
#endif
    } else {
      gemm_pass_mma<kN>(X, K, mc, klen, row, nrows, work, ldc, work);
    }
  }
  if (blockIdx.x == 0)
    for (uint32_t e = threadIdx.x; e < mc * nrows; e += kThreads) out[e] = work[e / nrows * ldc + e % nrows];
}

float bf16_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

struct Data {
  uint32_t M, K, rows;
  std::vector<__nv_bfloat16> x, w;  // x [M][K] row-major; w [rows][K] row-major
  __nv_bfloat16 *dx = nullptr, *dw = nullptr;
  float* dout = nullptr;
  Data(uint32_t M_, uint32_t K_, uint32_t rows_, uint32_t seed)
      : M(M_), K(K_), rows(rows_), x(size_t(M_) * K_), w(size_t(rows_) * K_) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto& v : x) v = __float2bfloat16(u(rng));
    for (auto& v : w) v = __float2bfloat16(u(rng));
    std::vector<__nv_bfloat16> paged(paged_size(rows, K), __float2bfloat16(0.f));
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t k = 0; k < K; ++k) paged[paged_index(r, k, K)] = w[size_t(r) * K + k];
    cudaMalloc(&dx, x.size() * 2);
    cudaMalloc(&dw, paged.size() * 2);
    cudaMalloc(&dout, size_t(kGemmM) * kGemmWgmmaWideN * 4);
    cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dw, paged.data(), paged.size() * 2, cudaMemcpyHostToDevice);
  }
  ~Data() { cudaFree(dx), cudaFree(dw), cudaFree(dout); }
};

// X ([M][K] bf16) as the TMA form reads it: boxes of 128 rows by 64 columns, 128-byte swizzled,
// zeros past the edges.
CUtensorMap x_tensor_map(const Data& d) {
  CUtensorMap map{};
  if (!encode_bf16_tensor_map(&map, d.dx, d.M, d.K, kGemmM, kGemmK)) {
    std::fprintf(stderr, "gemm_rate: no tensor map for X (cuTensorMapEncodeTiled missing or refused)\n");
    std::exit(1);
  }
  return map;
}

template <uint32_t kN, Form kForm>
void launch(const Data& d, uint32_t mc, uint32_t nrows, uint32_t blocks, uint32_t passes, uint32_t x_blocks = 1,
            uint32_t k0 = 0, uint32_t klen = 0) {
  // gemm_work_floats is the device's figure (it depends on the form); the host takes the larger.
  const size_t work = std::max(kGemmStages * gemm_stage_floats(kN), wgmma_slots(kN) * wgmma_stage_floats(kN));
  const size_t bytes = (kSmemHead + work) * sizeof(float);
  cudaFuncSetAttribute(gemm_kernel<kN, kForm>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  const CUtensorMap map = kForm == Form::kTma ? x_tensor_map(d) : CUtensorMap{};
  gemm_kernel<kN, kForm><<<blocks, kThreads, bytes>>>(d.dx, map, mc, d.K, k0, klen ? klen : d.K - k0, d.dw, d.rows, nrows,
                                                      passes, x_blocks, d.dout);
}

const char* name(Form f) { return f == Form::kMma ? "mma.sync" : f == Form::kWgmma ? "wgmma" : "tma"; }

// One block, one pass over rows [0, nrows): the largest error against the host's sums, relative to
// the largest |C|.
// k0, klen: a split matvec's range of the columns (klen 0: all of K).
template <uint32_t kN, Form kForm>
bool check(uint32_t mc, uint32_t nrows, uint32_t K, uint32_t k0 = 0, uint32_t klen = 0) {
  if (klen == 0) klen = K - k0;
  Data d(mc, K, nrows, 1234 + mc + K);
  launch<kN, kForm>(d, mc, nrows, 1, 1, 1, k0, klen);
  std::vector<float> got(size_t(mc) * nrows);
  const cudaError_t err = cudaMemcpy(got.data(), d.dout, got.size() * 4, cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) {
    std::printf("check %-8s kN=%3u: CUDA error %s\n", name(kForm), kN, cudaGetErrorString(err));
    return false;
  }
  double worst = 0, scale = 0;
  for (uint32_t m = 0; m < mc; ++m)
    for (uint32_t n = 0; n < nrows; ++n) {
      double ref = 0;
      for (uint32_t k = k0; k < k0 + klen; ++k)
        ref += double(bf16_to_float(d.x[size_t(m) * K + k])) * bf16_to_float(d.w[size_t(n) * K + k]);
      worst = std::fmax(worst, std::fabs(ref - got[size_t(m) * nrows + n]));
      scale = std::fmax(scale, std::fabs(ref));
    }
  const bool ok = worst <= 1e-4 * scale + 1e-3;
  std::printf("check %-8s kN=%3u tokens=%3u rows=%3u K=%4u [%u, %u): max error %.3g of %.3g  %s\n", name(kForm), kN,
              mc, nrows, K, k0, k0 + klen, worst, scale, ok ? "ok" : "FAILED");
  return ok;
}

// What the timed passes multiply: `tokens` of each pass's 128 (the rest zero-filled) by weights from
// a set of `rows` rows.
struct Timing {
  uint32_t tokens = kGemmM, rows = 8192;
};

// x_blocks: how many token blocks the SMs share out (a prefill of 512 tokens has 4), so that each
// is read by sms / x_blocks SMs at once.
// The timed passes' operands, made once per token-block count and kept: a set of 65536 rows takes
// seconds to make on the host, and every width and form times over the same one.
const Data& timing_data(uint32_t x_blocks, uint32_t rows) {
  static std::map<std::pair<uint32_t, uint32_t>, std::unique_ptr<Data>> made;
  auto& d = made[{x_blocks, rows}];
  if (!d) d = std::make_unique<Data>(kGemmM * x_blocks, 2048, rows, 7);
  return *d;
}

template <uint32_t kN, Form kForm>
void time_it(uint32_t sms, uint32_t x_blocks, Timing t) {
  const uint32_t K = 2048, passes = 64;
  const Data& d = timing_data(x_blocks, t.rows);
  launch<kN, kForm>(d, t.tokens, kN, sms, passes, x_blocks);  // warm-up
  cudaEvent_t a, b;
  cudaEventCreate(&a), cudaEventCreate(&b);
  cudaEventRecord(a);
  constexpr int kReps = 5;
  for (int i = 0; i < kReps; ++i) launch<kN, kForm>(d, t.tokens, kN, sms, passes, x_blocks);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  const double flop = 2.0 * t.tokens * kN * K * passes * sms * kReps;
  std::printf("rate  %-8s kN=%3u, %u token blocks of %u, %u rows: %.3f ms for %d x %u blocks x %u passes, "
              "%.1f TFLOP/s, %.2f us a pass\n",
              name(kForm), kN, x_blocks, t.tokens, t.rows, ms / kReps, kReps, sms, passes, flop / (ms * 1e-3) / 1e12,
              ms * 1e3 / kReps / passes);
}

template <Form kForm>
bool run_all(uint32_t sms, bool timing, Timing t) {
  bool ok = true;
  ok &= check<kGemmN, kForm>(128, 64, 2048);
  ok &= check<kGemmN, kForm>(100, 40, 1000);
  ok &= check<kGemmQkvN, kForm>(128, 96, 2048);
  ok &= check<kGemmQkvN, kForm>(20, 50, 8192);
  ok &= check<kGemmWideN, kForm>(128, 128, 2048);
  ok &= check<kGemmWideN, kForm>(77, 120, 200);
  ok &= check<kGemmWideN, kForm>(64, 128, 8192);
  if constexpr (kForm != Form::kMma) {  // gated tiles' widest pass, sm_90a only
    ok &= check<kGemmWgmmaWideN, kForm>(128, 256, 2048);
    ok &= check<kGemmWgmmaWideN, kForm>(77, 200, 200);
    ok &= check<kGemmWgmmaWideN, kForm>(64, 256, 8192);
    ok &= check<kGemmWgmmaWideN, kForm>(128, 256, 8192, 2048, 2048);  // a split projection's range
  }
  ok &= check<kGemmN, kForm>(100, 64, 8192, 6144, 2048);
  if constexpr (kForm != Form::kTma) ok &= check<kGemmN, kForm>(40, 64, 200, 128, 72);  // a ragged last range
  if (!timing) return ok;
  for (uint32_t x_blocks : {1u, 4u}) {
    time_it<kGemmN, kForm>(sms, x_blocks, t);
    time_it<kGemmQkvN, kForm>(sms, x_blocks, t);
    time_it<kGemmWideN, kForm>(sms, x_blocks, t);
    if constexpr (kForm != Form::kMma) time_it<kGemmWgmmaWideN, kForm>(sms, x_blocks, t);
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  bool timing = true;
  Timing t;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--check") {
      timing = false;
    } else if ((arg == "--tokens" || arg == "--rows") && i + 1 < argc) {
      const long v = std::strtol(argv[++i], nullptr, 10);
      if (arg == "--tokens" ? v < 1 || v > long(kGemmM) : v < 256 || v > (1l << 17) || v % 128 != 0) {
        std::fprintf(stderr, "gemm_rate: %s %ld out of range (tokens 1-%u; rows 256-131072, a multiple of 128)\n",
                     arg.c_str(), v, kGemmM);
        return 2;
      }
      (arg == "--tokens" ? t.tokens : t.rows) = uint32_t(v);
    } else {
      std::fprintf(stderr, "usage: gemm_rate [--check] [--tokens N] [--rows N]\n");
      return 2;
    }
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::printf("no GPU\n");
    return 1;
  }
  std::printf("%s, %d SMs\n", prop.name, prop.multiProcessorCount);
  bool ok = run_all<Form::kMma>(prop.multiProcessorCount, timing, t);
  if (prop.major == 9) ok &= run_all<Form::kWgmma>(prop.multiProcessorCount, timing, t);
  if (prop.major == 9) ok &= run_all<Form::kTma>(prop.multiProcessorCount, timing, t);
  std::printf(ok ? "all checks passed\n" : "SOME CHECKS FAILED\n");
  return ok ? 0 : 1;
}
