// The weight pipe: a producer warp walks its SM's instruction queue ahead of the consumer warps and
// streams every decode matvec's weights into a ring of shared-memory pages, completing each page on
// an mbarrier. Weights never depend on the step's activations, so the producer does not wait on
// dependency counters: while the consumers wait for an instruction's inputs, the ring is already
// filling with that instruction's weights (and the next ones'), and the memory system never idles
// between instructions.
//
// A page is one group of kPageRows weight rows by one column chunk of up to kPageCols: one
// contiguous run of the paged weights (cuda/paged_weights.h), in blocks of 8 rows by 8 columns.
// The pages of an instruction run: for each group of output rows, for each part (the up then the
// gate matrix, or a rotary pair's two halves), for each column chunk. Producer and
// consumers derive that sequence from the same PipeSpan, so they agree on every page's slot and
// phase without talking.
//
// Copies: cp.async.bulk (sm_90+, one instruction per page) or, before sm_90 or when asked, 16-byte
// cp.async with cp.async.mbarrier.arrive (sm_80+).
#pragma once

#include "cuda/l2_policy.cuh"
#include "cuda/mbarrier.cuh"
#include "cuda/tensor_core.cuh"

namespace mk::cuda {

static_assert(kPageRows == 8, "a page's rows are the n = 8 of the consumers' mma.m16n8k16");
constexpr uint32_t kPageBytes = kPageRows * kPageCols * 2;  // 16 KB
constexpr uint32_t kMaxPages = 16;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr bool kHasBulkCopy = true;
#else
constexpr bool kHasBulkCopy = false;
#endif

// Waits until the phase of `bar` with this parity has completed. A page that never lands means the
// producer and consumers disagree on the page sequence, a bug: trap rather than hang the GPU.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity, const volatile int* abort_flag = nullptr) {
  if (mbar_test(bar, parity)) return;
  const uint64_t start = globaltimer();
  while (!mbar_test(bar, parity)) {
    if (abort_flag && *abort_flag) return;
    trap_if_stuck(start);
  }
}

// The weights one instruction streams, as groups of up to kPageRows output rows with one or two
// dot products (parts) each: a matvec's rows r0 + 8g of W (and of the gate G, part 1); a QkvRope
// tile's 8 rotary pairs, first-half rows as part 0 and their partners as part 1. Each group is one
// group of the paged layout (its first row a multiple of kPageRows).
struct PipeSpan {
  const __nv_bfloat16* mats[2];  // part m reads mats[m]
  uint32_t parts, groups, K;
  uint32_t r0, rows;             // matvec: the tile's rows
  uint32_t unit0, D, P, pw;      // QkvRope (pw > 0): the tile's first unit, head dim, parts per head, pairs per unit
  __device__ uint32_t chunks() const { return (K + kPageCols - 1) / kPageCols; }
  __device__ uint32_t rows_in(uint32_t g) const {
    return pw || rows - g * kPageRows >= kPageRows ? kPageRows : rows - g * kPageRows;
  }
  __device__ uint32_t first_row(uint32_t g, uint32_t m) const {
    if (!pw) return r0 + g * kPageRows;
    const uint32_t per_unit = pw / kPageRows;
    return qkv_unit_row(unit0 + g / per_unit, m * pw + g % per_unit * kPageRows, D, P);
  }
};

// Decides whether `ins` takes the pipe, and what it streams. Both sides call this on the same
// instruction, so they agree. Only decode programs (one token) pipe; prefill uses plain loads.
__device__ __forceinline__ bool pipe_span(const Instruction& ins, const KernelParams& p, PipeSpan* s) {
  if (p.pipe_pages == 0 || p.dims.n_tokens != 1) return false;
  const Opcode op = static_cast<Opcode>(ins.opcode);
  s->pw = 0;
  if (op == Opcode::MatvecResidual || op == Opcode::MatvecAct || op == Opcode::LmHead) {
    const MatvecArgs& a = ins.a.mv;
    if (a.rows != 1) return false;
    s->mats[0] = p.weights[a.weight];
    s->mats[1] = a.gate == kNone ? nullptr : p.weights[a.gate];
    s->parts = a.gate == kNone ? 1 : 2;
    s->r0 = ins.tile_begin;
    s->rows = ins.tile_end - ins.tile_begin;
    s->groups = (s->rows + kPageRows - 1) / kPageRows;
    s->K = a.in_dim;
    if (s->r0 % kPageRows != 0) return false;  // the scheduler aligns matvec tiles to 8 rows
  } else if (op == Opcode::QkvRope) {
    const QkvRopeArgs& a = ins.a.qkv;
    s->mats[0] = s->mats[1] = p.weights[a.weight];
    s->parts = 2;
    s->unit0 = ins.tile_begin;
    s->D = p.dims.head_dim;
    s->P = a.head_parts;
    s->pw = s->D / 2 / s->P;
    if (s->pw % kPageRows != 0) return false;
    s->groups = (ins.tile_end - ins.tile_begin) * (s->pw / kPageRows);
    s->K = p.dims.hidden;
  } else {
    return false;
  }
  return s->K % 32 == 0;  // the consumers' tensor-core steps take 32 columns
}

// The ring as one thread sees it: the slot of the page this thread is at, and the parity of the
// number of times it has gone round the ring (the mbarriers' phase parity). Kept as they advance
// rather than derived from a page count, whose division by the run-time n_pages cost the consumers
// a dozen instructions per page.
struct Pipe {
  char* pages;
  uint64_t* full;   // [n_pages]: the page has landed
  uint64_t* empty;  // [n_pages]: every consumer warp is done with it
  uint32_t n_pages;
  uint32_t slot = 0, phase = 0;
  bool bulk;        // cp.async.bulk, else 16-byte cp.async
  __device__ uint32_t parity() const { return phase; }
  __device__ char* page() const { return pages + size_t(slot) * kPageBytes; }
  __device__ void advance() {
    if (++slot == n_pages) slot = 0, phase ^= 1;
  }
};

// Thread 0, before the block's first barrier.
__device__ __forceinline__ void pipe_init(Pipe& pipe) {
  for (uint32_t i = 0; i < pipe.n_pages; ++i) {
    mbar_init(&pipe.full[i], pipe.bulk ? 1 : 32);
    mbar_init(&pipe.empty[i], kWarps);
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}

// The producer warp: every page of every piped instruction of queue [begin, end), in order.
// Stops early when the consumers abort (a hang elsewhere).
__device__ void pipe_produce(Pipe& pipe, const KernelParams& p, uint32_t begin, uint32_t end,
                             const volatile int* abort_flag, const uint32_t* hold_after) {
  const uint32_t lane = threadIdx.x % 32;
  // The weights pass through L2 once a step and are never read again before the next step has
  // streamed the other 2.5 GB: marked evict-first, they leave L2's lines to the KV cache and the
  // activations that the stages hand each other. H100, session 40: decode 4-7% faster at contexts
  // 32-2048 on Llama-3.2-1B and Qwen2.5-1.5B, both builds (interleaved A/B). The sm_80 path's
  // cp.async copies take it too: 0-1.1% faster with --weight-pipe cp-async (H100, session 41).
  const uint64_t evict_first = l2_evict_first_policy();
  // At most F copies in flight (p.pipe_inflight, --pipe-inflight): before the n-th is issued,
  // the (n - F)-th has landed. Fewer bytes queued on an SM shorten the round trips of the loads and
  // stores that hand rows between stages (bench/stage_handoff.cu, session 9).
  const uint32_t F = p.pipe_inflight < pipe.n_pages ? p.pipe_inflight : 0;
  uint32_t issued = 0;
  for (uint32_t idx = begin; idx < end; ++idx) {
    PipeSpan s;
    if (!pipe_span(p.instructions[idx], p, &s)) continue;
    const uint32_t chunks = s.chunks();
    for (uint32_t g = 0; g < s.groups; ++g) {
      for (uint32_t m = 0; m < s.parts; ++m) {
        // The group's first page, once per group and part. Indexed by m in the page loop, s.mats
        // lived in local memory: a load before every copy, on the producer's path from one page to
        // the next (and QKV's first_row divides). H200, session 48, interleaved A/B: decode 2.3-2.7%
        // faster on Llama-3.2-1B's generic build, 4.9-5.2% on its specialized one (with its cap of 3
        // then), 3.4-3.5% on Qwen2.5-1.5B, at contexts 32 and 1024.
        const __nv_bfloat16* group_src = (m == 0 ? s.mats[0] : s.mats[1]) + paged_page(s.first_row(g, m) / kPageRows, 0, s.K);
        for (uint32_t c = 0; c < chunks; ++c, pipe.advance()) {
          const uint32_t col0 = c * kPageCols;
          const uint32_t cols = s.K - col0 < kPageCols ? s.K - col0 : kPageCols;
          mbar_wait(&pipe.empty[pipe.slot], pipe.parity() ^ 1, abort_flag);
          if (*abort_flag) return;
          if (F && issued >= F) {  // the copy F slots back, of this lap or the one before
            const bool same_lap = pipe.slot >= F;
            mbar_wait(&pipe.full[same_lap ? pipe.slot - F : pipe.slot + pipe.n_pages - F],
                      same_lap ? pipe.parity() : pipe.parity() ^ 1, abort_flag);
            if (*abort_flag) return;
          }
          ++issued;
          // No copy for a later instruction while the consumers run one that signals with a fence
          // (megakernel.cuh): its fence would wait for the copy too.
          while (idx > *reinterpret_cast<const volatile uint32_t*>(hold_after)) {
            if (*abort_flag) return;
            __nanosleep(100);
          }
          const __nv_bfloat16* src = group_src + paged_page(0, c, s.K);
          // All 8 rows, also of a short group (its padding rows are zeros): the consumers' blocks
          // are 8 rows tall.
          const uint32_t bytes = kPageRows * cols * 2;
          char* dst = pipe.page();
          uint64_t* full = &pipe.full[pipe.slot];
          if (pipe.bulk) {
            if (lane == 0) {
              mbar_expect_tx(full, bytes);
              bulk_copy(dst, src, bytes, full, evict_first);
            }
            __syncwarp();
          } else {
            for (uint32_t q = lane; q < bytes / 16; q += 32) cp_async16_hinted(dst + q * 16, src + q * 8, evict_first);
            cp_async_arrive(full);
          }
        }
      }
    }
  }
}

// The consumer side of one instruction: the dot products of every row of the span with x, on the
// tensor cores. Each warp takes a slice of kSliceCols columns of every page (with 1024-column
// pages, 4 steps of 32 columns: 4 ldmatrix, 4 mma), so x is read once per page per warp. A step's
// A operand is the page's 8 rows twice, at the step's first 16 columns (A rows 0-7) and at its next
// 16 (rows 8-15), its B operand x's hi and lo parts of those columns (store_hi_lo):
// D[r][0] + D[r][1] + D[8 + r][2] + D[8 + r][3] is row r's dot product over the step, in fp32,
// which lanes 4r and 4r + 1 hold between them. Every mma thus takes 256 weights; with the weights
// as B (8 rows by 16 columns) and x as A it took 128, and each lane kept 16 bytes of x per mma where
// it now keeps 8 (decode 2-4% faster, H200, 1B shape).
//
// A 16 KB page costs the consumers ~0.3-0.5 us whatever they compute: with no ldmatrix, mma or x
// loads at all still 0.22-0.39 (bench/consumer_rate.cu). That is the page loop's per-iteration
// latency, not its barriers (releasing slots two pages at a time changed nothing).
//
// The warps' partial sums meet in shared memory (`red`), a batch of groups at a time: each warp
// leaves its sums of a group there, and after every batch one barrier lets thread t add up the
// kWarps partials of one (group, row) and run the epilogue for it: one barrier and a few loads per
// batch. A barrier and a 5-step shuffle reduction per group drew 15% of Nsight Compute's stall
// samples of a decode step; batched, the 1B shape's step went from 1.099 to 1.081 ms (H200, A/B).
//
// Why the tensor cores: with fp32 FMAs a page cost each warp ~150 instructions (unpacking bf16,
// 32 FMAs, addresses) at 8.5 cycles each, and the consumers, not the memory system, set the pace
// (under ncu, H200, 1B shape: their first wait on a page never failed, while the producer found the
// ring full). Every load of a page is issued before its mma, in four accumulator chains: with loads
// and mma interleaved the chain was serial, and the LM head took 171 us against 147 with FMAs; as
// below, 133 us.
//
// x: the input row as load_rows<kK, true> leaves it (B fragments, store_hi_lo), 16-byte aligned.
// red: `red_floats` floats of shared memory that nothing else uses meanwhile, at least
// 2 * kRedGroupFloats (one group a batch); batches hold up to kThreads / kPageRows groups.
// Calls epilogue(g, r, dot[0], dot[1]) once, in one thread, for each row r of each group g.
constexpr uint32_t kSliceCols = kPageCols / kWarps;  // a warp's columns of each page
constexpr uint32_t kSliceSteps = kSliceCols / 32;    // its mma steps
static_assert(kSliceCols % 32 == 0, "a warp's slice is whole steps");
constexpr uint32_t kRedGroupFloats = kWarps * 2 * kPageRows;  // every warp's sums of one group, both parts
static_assert(2 * kRedGroupFloats <= kSmemHead, "the ops' head holds a batch of one group, double-buffered");

// Where pipe_rows may keep its sums: the ops' shared memory past the first `used` floats (what the op
// keeps meanwhile) when that holds batches of two groups or more, else the ops' head.
struct RedSpace {
  float* at;
  uint32_t floats;
};
__device__ __forceinline__ RedSpace pipe_red_space(float* smem, const KernelParams& p, uint32_t used) {
  const uint32_t free = p.smem_floats > used ? p.smem_floats - used : 0;
  if (free >= 4 * kRedGroupFloats) return {smem + used, free};
  return {smem, kSmemHead};
}

// How many of the ring's next `n` pages have landed, from the consumers' place in it (MK_TRACE_PHASES).
__device__ __forceinline__ uint32_t pipe_pages_landed(const Pipe& pipe, uint32_t n) {
  uint32_t slot = pipe.slot, phase = pipe.phase, k = 0;
  for (; k < n && mbar_done_now(&pipe.full[slot], phase); ++k)
    if (++slot == pipe.n_pages) slot = 0, phase ^= 1;
  return k;
}

// The pages warp 0 found not yet landed and the ns it waited on them (MK_TRACE_PHASES builds).
struct PageStalls {
  uint32_t n = 0;
  uint64_t ns = 0;
};

// Waits for the page the pipe is at.
__device__ __forceinline__ void pipe_wait_page(const Pipe& pipe, PageStalls& stalls) {
#if MK_TRACE_PHASES
  if (!mbar_done_now(&pipe.full[pipe.slot], pipe.parity())) {
    const uint64_t t0 = globaltimer();
    mbar_wait(&pipe.full[pipe.slot], pipe.parity());
    ++stalls.n;
    stalls.ns += globaltimer() - t0;
  }
#else
  (void)stalls;
  mbar_wait(&pipe.full[pipe.slot], pipe.parity());
#endif
}

// kK: the span's width at compile time (a specialized build, cuda/spec.h), or 0 for s.K.
template <uint32_t kK = 0, class Epilogue>
__device__ void pipe_rows(Pipe& pipe, const PipeSpan& s, const float* x, float* red, uint32_t red_floats,
                          Epilogue&& epilogue) {
  const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t K = kK ? kK : s.K;
  const uint2* xa = reinterpret_cast<const uint2*>(x) + lane;  // lanes 0-15: B's columns 0-3
  // Lane l points matrix l / 8 of an ldmatrix at row l % 8 of block {0, 2, 1, 3}[l / 8] of a step's
  // four: the matrices are A's rows 0-7 then 8-15 at k 0-7, then the same at k 8-15.
  const uint32_t a_lane = (lane / 8 == 1 ? 2 : lane / 8 == 2 ? 1 : lane / 8) * 128 + lane % 8 * 16;
  const uint32_t chunks = (K + kPageCols - 1) / kPageCols;
  // Groups per batch: as many as red holds twice (a batch's sums are read while the next one's are
  // written), and as the threads can finish in one go.
  const uint32_t fit = red_floats / (2 * kRedGroupFloats);
  const uint32_t batch = min(min(fit, uint32_t(kThreads / kPageRows)), s.groups);
  // The sums of group g (the gi-th of its batch), part m, row r, warp w: red[w][m][r][gi] in the
  // batch's buffer, so that in the epilogue thread t = r * batch + gi reads consecutive words.
  const uint32_t per_batch = batch * kRedGroupFloats;
  PageStalls stalls;
#if MK_TRACE_PHASES
  if (threadIdx.x == 0) trace_count(kPhaseRingReady, pipe_pages_landed(pipe, min(pipe.n_pages, s.groups * s.parts * chunks)));
#endif
  uint32_t gi = 0, b = 0;  // the group's place in its batch; the batch
  for (uint32_t g = 0; g < s.groups; ++g) {
    float* buf = red + (b % 2) * per_batch;
#pragma unroll 1
    for (uint32_t m = 0; m < s.parts; ++m) {
      // Four mma chains; lanes 16-31 keep xv zero (B's columns 4-7).
      float d[4][4] = {};
      uint2 xv[kSliceSteps] = {};
      uint32_t c = 0;
      // Two whole pages per iteration while they last: the page loop's cost is per iteration
      // (consumers 10-15% quicker per page, bench/consumer_rate.cu; decode 1-3%, H200 A/B). The loads
      // and mma repeat the single page's below on purpose: this exact form measured 2-3% faster a
      // step than the same work as one template for both (waiting for and moving past one page at
      // a time) with the same registers and spills; ptxas schedules the two differently.
      for (; c + 1 < chunks && K - (c + 1) * kPageCols >= kPageCols; c += 2) {
        Pipe second = pipe;
        second.advance();
        pipe_wait_page(pipe, stalls);
        pipe_wait_page(second, stalls);
        const char* bp0 = pipe.page() + warp * kSliceCols * kPageRows * 2 + a_lane;
        const char* bp1 = second.page() + warp * kSliceCols * kPageRows * 2 + a_lane;
        const uint2* xs = xa + (c * kPageCols + warp * kSliceCols) / 32 * 16;
        uint32_t w[2 * kSliceSteps][4];
        uint2 xp[2 * kSliceSteps] = {};
#pragma unroll
        for (uint32_t i = 0; i < kSliceSteps; ++i) ldmatrix_x4(w[i], bp0 + i * 512);
#pragma unroll
        for (uint32_t i = 0; i < kSliceSteps; ++i) ldmatrix_x4(w[kSliceSteps + i], bp1 + i * 512);
        if (lane < 16)
#pragma unroll
          for (uint32_t i = 0; i < 2 * kSliceSteps; ++i) xp[i] = xs[i % kSliceSteps * 16 + i / kSliceSteps * (kPageCols / 32 * 16)];
#pragma unroll
        for (uint32_t i = 0; i < 2 * kSliceSteps; ++i) mma_bf16(d[i % 4], w[i], xp[i].x, xp[i].y);
        __syncwarp();
        if (lane == 0) mbar_arrive(&pipe.empty[pipe.slot]), mbar_arrive(&second.empty[second.slot]);
        pipe = second;
        pipe.advance();
      }
      for (; c < chunks; ++c, pipe.advance()) {
        const uint32_t col0 = c * kPageCols + warp * kSliceCols;  // this warp's slice
        const uint32_t cols = K - c * kPageCols < kPageCols ? K - c * kPageCols : kPageCols;
        const uint32_t steps = cols > warp * kSliceCols ? min(kSliceSteps, (cols - warp * kSliceCols) / 32) : 0u;
        pipe_wait_page(pipe, stalls);
        const char* bp = pipe.page() + warp * kSliceCols * kPageRows * 2 + a_lane;
        const uint2* xs = xa + col0 / 32 * 16;
        if (steps == kSliceSteps) {
          // A whole slice: every load first, then the mma, so that the page costs one load latency
          // and a few mma latencies rather than one of each per step.
          uint32_t w[kSliceSteps][4];
#pragma unroll
          for (uint32_t i = 0; i < kSliceSteps; ++i) ldmatrix_x4(w[i], bp + i * 512);
          if (lane < 16)
#pragma unroll
            for (uint32_t i = 0; i < kSliceSteps; ++i) xv[i] = xs[i * 16];
#pragma unroll
          for (uint32_t i = 0; i < kSliceSteps; ++i) mma_bf16(d[i % 4], w[i], xv[i].x, xv[i].y);
        } else {
          // The narrower last chunk of a width that is not a multiple of kPageCols.
#pragma unroll
          for (uint32_t i = 0; i < kSliceSteps; ++i) {
            if (i >= steps) break;
            uint32_t w[4];
            ldmatrix_x4(w, bp + i * 512);
            if (lane < 16) xv[i] = xs[i * 16];
            mma_bf16(d[i % 4], w, xv[i].x, xv[i].y);
          }
        }
        __syncwarp();
        if (lane == 0) mbar_arrive(&pipe.empty[pipe.slot]);
      }
#pragma unroll
      for (uint32_t e = 0; e < 4; ++e) d[0][e] += d[1][e] + d[2][e] + d[3][e];
      // Lane 4r holds row r's sum over the steps' first halves (D[r][0] + D[r][1]), lane 4r + 1 over
      // their second halves (D[8 + r][2] + D[8 + r][3]).
      float v = lane % 4 == 0 ? d[0][0] + d[0][1] : d[0][2] + d[0][3];
      v += __shfl_xor_sync(0xFFFFFFFFu, v, 1);
      if (lane % 4 == 0) buf[((warp * 2 + m) * kPageRows + lane / 4) * batch + gi] = v;
    }
    if (++gi < batch && g + 1 < s.groups) continue;
    // The batch's groups g + 1 - gi .. g are complete: thread t finishes row t / batch of its
    // (t % batch)-th group.
    sync_consumers();
    const uint32_t t_gi = threadIdx.x % batch, r = threadIdx.x / batch, tg = g + 1 - gi + t_gi;
    if (t_gi < gi && r < kPageRows && r < s.rows_in(tg)) {
      float dot[2] = {0.0f, 0.0f};
#pragma unroll
      for (uint32_t w = 0; w < kWarps; ++w)
#pragma unroll
        for (uint32_t m = 0; m < 2; ++m)
          if (m < s.parts) dot[m] += buf[((w * 2 + m) * kPageRows + r) * batch + t_gi];
      epilogue(tg, r, dot[0], dot[1]);
    }
    gi = 0;
    ++b;
  }
#if MK_TRACE_PHASES
  trace_count(kPhasePageStalls, stalls.n);
  trace_count(kPhasePageStallNs, stalls.ns);
#endif
  sync_consumers();  // every thread is done with red before the caller reuses it
}

}  // namespace mk::cuda
