// Hopper's warpgroup MMA (wgmma, sm_90a only): a warpgroup of four warps multiplies a 64-row A by an
// N-row B, both read from shared memory through descriptors, accumulating fp32 in registers,
// asynchronously: the issuing warps go on until they wait for the group. Prefill's GEMM passes use
// it on sm_90a (ops/mma_gemm.cuh); everything else, and other targets, keep mma.sync.
//
// Operand layout: "K-major, 128-byte swizzle". Each row (a token of A, a weight row of B) keeps its
// 64 bf16 of a stage in 128 bytes, rows one after another; the 16-byte piece b of row r lies at
// piece b ^ (r % 8). The hardware undoes the swizzle from address bits, so an 8-row group (1 KB)
// must start 1024-byte aligned; its stride along M or N is the descriptor's stride byte offset, and
// a k16 step moves the start address by 32 bytes. Session 16 started with "no swizzle" (8x8 core
// matrices of 128 contiguous bytes, which the paged weights already are): the same passes took up
// to 1.5x as long (64 rows: 32 us against 21; bench/gemm_rate.cu, H200).
//
// Only sm_90a code calls these (inline helpers, and the MMA a template): the ptxas of other targets
// never sees the instructions.
#pragma once

#include <stdint.h>

#include "cuda/mbarrier.cuh"  // smem_addr

namespace mk::cuda {

// A shared-memory operand's descriptor, 128-byte swizzle: the start address and the stride between
// 8-row groups in 16-byte units (the leading byte offset is unused for swizzled K-major operands).
__device__ __forceinline__ uint64_t wgmma_desc_sw128(const void* smem, uint32_t group_step_bytes) {
  return uint64_t((smem_addr(smem) & 0x3FFFF) >> 4) | uint64_t(1) << 16 | uint64_t(group_step_bytes >> 4) << 32 |
         uint64_t(1) << 62;
}

// The same without swizzle (K-major core matrices: 8 rows by 16 bytes, 128 contiguous bytes): the
// stride between core matrices along K (leading byte offset) and along M or N (stride byte offset).
// The paged weights' 8 x 64 blocks are such core matrices already (cuda/paged_weights.h).
__device__ __forceinline__ uint64_t wgmma_desc_core(const void* smem, uint32_t k_step_bytes, uint32_t mn_step_bytes) {
  return uint64_t((smem_addr(smem) & 0x3FFFF) >> 4) | uint64_t(k_step_bytes >> 4) << 16 |
         uint64_t(mn_step_bytes >> 4) << 32;
}

// Before a warpgroup's first wgmma of a batch: its earlier register writes (the accumulators'
// zeroing) are ordered before the wgmma reads them.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
// Closes the wgmmas issued so far into one group.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
// Waits until at most kPending of this warpgroup's groups are still running.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
}
// The shared memory that cp.async (the generic proxy) wrote becomes visible to wgmma's reads (the
// async proxy). Each writing thread, after its copies landed and before the barrier.
__device__ __forceinline__ void fence_proxy_async_shared() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// d[64 x N] += A[64 x 16] * B[N x 16]^T, bf16 in, fp32 accumulators: N / 2 per thread; thread t's
// d[4j + 2i + e] is row 16 (t / 32 % 4) + t % 32 / 4 + 8i, column 8j + 2 (t % 4) + e, the layout of
// mma.sync's C fragments side by side. The operand lists are spelled out per N: inline asm takes
// one literal string.
template <uint32_t N>
__device__ void wgmma_bf16(float (&d)[N / 2], uint64_t a, uint64_t b);

template <>
__device__ __forceinline__ void wgmma_bf16<64>(float (&d)[32], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(a), "l"(b), "r"(1));
}

template <>
__device__ __forceinline__ void wgmma_bf16<96>(float (&d)[48], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %50, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n96k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47"
      "}, %48, %49, p, 1, 1, 0, 0;\n}"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47])
      : "l"(a), "l"(b), "r"(1));
}

template <>
__device__ __forceinline__ void wgmma_bf16<128>(float (&d)[64], uint64_t a, uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n}"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(a), "l"(b), "r"(1));
}
}  // namespace mk::cuda
