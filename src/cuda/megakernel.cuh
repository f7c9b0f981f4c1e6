// The megakernel: one persistent block per SM runs its queue of instructions, waiting on and
// signalling dependency counters in global memory (acquire/release), with a watchdog on every wait.
// A producer warp beside the consumers streams decode weights ahead of them (ops/weight_pipe.cuh).
#pragma once

#include <cuda/atomic>

#include "cuda/ops/attention.cuh"
#include "cuda/ops/embed_norm.cuh"
#include "cuda/ops/matvec.cuh"
#include "cuda/ops/qkv_rope.cuh"
#include "cuda/ops/tensor_parallel.cuh"

namespace mk::cuda {

template <bool kMma, class Spec>
__device__ __forceinline__ void dispatch(const Instruction& ins, const KernelParams& p, float* smem, Pipe& pipe) {
  switch (static_cast<Opcode>(ins.opcode)) {
    case Opcode::Barrier: break;
    case Opcode::Embed: run_embed(ins, p, smem); break;
    case Opcode::Norm: run_norm(ins, p, smem); break;
    case Opcode::QkvRope: run_qkv_rope<kMma, Spec>(ins, p, smem, pipe); break;
    case Opcode::AttnPartial: run_attn_partial<kMma, Spec>(ins, p, smem); break;
    case Opcode::AttnReduce: run_attn_reduce(ins, p, smem); break;
    case Opcode::MatvecResidual:
    case Opcode::MatvecAct:
    case Opcode::LmHead: run_matvec<kMma, Spec>(ins, p, smem, pipe); break;
    case Opcode::Argmax: run_argmax(ins, p, smem); break;
    case Opcode::AllReduce: run_all_reduce(ins, p); break;
    case Opcode::ArgmaxRanks: run_argmax_ranks(ins, p); break;
    default: __trap();
  }
}

// Waits until `counter` reaches `target`. Returns false (after writing the hang report) if it does
// not within the timeout. Scope: the device, or the system for another rank's counter (possibly on
// another GPU).
template <::cuda::thread_scope kScope>
__device__ bool wait_counter(const KernelParams& p, uint32_t& c, uint32_t counter_id, uint32_t target,
                             uint32_t sm, uint32_t index) {
  ::cuda::atomic_ref<uint32_t, kScope> counter(c);
  uint32_t value = counter.load(::cuda::memory_order_acquire);
  if (value >= target) return true;
  const uint64_t start = globaltimer();
  while ((value = counter.load(::cuda::memory_order_acquire)) < target) {
    __nanosleep(32);
    if (globaltimer() - start > p.timeout_ns) {
      if (atomicCAS(&p.hang->hung, 0u, 1u) == 0u) {
        p.hang->sm = sm;
        p.hang->index = index;
        p.hang->counter = counter_id;
        p.hang->value = value;
        p.hang->target = target;
      }
      return false;
    }
  }
  return true;
}

// Waits until every counter of `ins` has reached its target for this epoch (with
// kFlagWaitAllRanks, on every tensor-parallel rank: their programs are alike, and each runs once
// per step). Returns false if one does not within the timeout.
__device__ bool wait_for(const Instruction& ins, const KernelParams& p, uint32_t sm, uint32_t index) {
#if MK_UNSAFE_NO_WAITS
  return true;  // a timing-only build: every SM runs its queue through without waiting (CMakeLists.txt)
#endif
  // With kFlagWaitByData the last wait is for the writer of the input row, whose tags the tile
  // awaits as it loads the row instead (isa.h).
  const uint16_t n_waits = ins.n_waits - (ins.flags & kFlagWaitByData ? 1 : 0);
  for (uint16_t w = 0; w < n_waits; ++w) {
    const uint32_t id = ins.waits[w].counter, target = ins.waits[w].count * p.step.epoch;
    if (!wait_counter<::cuda::thread_scope_device>(p, p.counters[id], id, target, sm, index)) return false;
    if (ins.flags & kFlagWaitAllRanks)
      for (uint32_t r = 0; r < p.tp_size; ++r)
        if (!wait_counter<::cuda::thread_scope_system>(p, p.rank_counters[r][id], id, target, sm, index)) return false;
  }
  return true;
}

// Whether the producer holds its copies for later instructions while `ins` runs (hold_after below).
__device__ __forceinline__ bool holds(const Instruction& ins, const KernelParams& p) {
  return p.hold_fenced && !(ins.flags & kFlagNoFence);
}

// Two builds of the kernel: kMma = true for prefill programs (more than one token), whose matvec,
// QKV and attention tiles may run on the tensor cores and split by token blocks, and kMma = false
// for decode, which does neither. One build with both made the register allocator spill in the
// decode paths (ptxas: 720 bytes of stack against 144), and decode slowed by 12% (H200, 1B shape,
// context 32). Spec: GenericSpec (dimensions read at run time), or a model's fixed dimensions for a
// specialized decode build (cuda/spec.h), run only on programs that match it.
template <bool kMma, class Spec>
__global__ void __launch_bounds__(kBlockThreads, 1) megakernel(const KernelParams p) {
  // 1 KB aligned, and the ops' part a whole number of KB (cuda_backend.cu), so that every page of
  // the ring is too: the copies into pages 16 bytes off a 128-byte line measured slower.
  extern __shared__ __align__(1024) float4 dynamic_smem[];
  float* smem = reinterpret_cast<float*>(dynamic_smem);
  __shared__ Instruction ins;
  __shared__ int abort_run;
  __shared__ uint64_t full[kMaxPages], empty[kMaxPages];
  // While the consumers run an instruction that signals with a fence, its index (else ~0u): the
  // producer then issues no copy for a later instruction, as the fence waits for the SM's copies in
  // flight (at decode QKV's fence took 1.41 us a tile, on the path to attention). H100, session 46:
  // decode 1.8-2.5% faster on Llama-3.2-1B (both builds, contexts 32-4096), 0.1-0.9% on Qwen2.5-1.5B.
  // Every fenced instruction is held alike, so also layer 0's gate/up (the first write of its buffer
  // keeps its fence), which then streams without down's pages queued behind it. Only in programs
  // where fences are the exception (p.hold_fenced).
  __shared__ uint32_t hold_after;
  const uint32_t sm = blockIdx.x;
  const uint32_t begin = p.queue_begin[sm], end = p.queue_end[sm];
  // The ring sits past the ops' shared memory (p.smem_floats), so no op ever touches a page the
  // producer may be filling for a later instruction.
  Pipe pipe;
  pipe.pages = reinterpret_cast<char*>(smem + p.smem_floats);
  pipe.full = full;
  pipe.empty = empty;
  pipe.n_pages = p.pipe_pages;
  pipe.bulk = kHasBulkCopy && !p.pipe_cp_async;
  if (threadIdx.x == 0) {
    abort_run = 0;
    hold_after = ~0u;
    pipe_init(pipe);
  }
  __syncthreads();  // the only barrier of the whole block: afterwards the producer warp goes its own way
  hand_registers_to_consumers();
  if (threadIdx.x >= kThreads) {
    if (threadIdx.x < kThreads + 32) pipe_produce(pipe, p, begin, end, &abort_run, &hold_after);
    return;
  }
  for (uint32_t idx = begin; idx < end; ++idx) {
    static_assert(sizeof(Instruction) == 32 * sizeof(uint32_t), "one word per lane");
    if (threadIdx.x < 32)
      reinterpret_cast<uint32_t*>(&ins)[threadIdx.x] = reinterpret_cast<const uint32_t*>(p.instructions + idx)[threadIdx.x];
    sync_consumers();
    if (threadIdx.x == 0) {
      p.positions[sm] = idx - begin;
      if (!wait_for(ins, p, sm, idx - begin)) abort_run = 1;
      if (holds(ins, p)) *reinterpret_cast<volatile uint32_t*>(&hold_after) = idx;
      if (p.trace) p.trace[2 * idx] = globaltimer();
#if MK_TRACE_PHASES
      phase_row() = p.phases ? p.phases + size_t(idx) * kTracePhases : nullptr;
#endif
    }
    sync_consumers();
    if (abort_run) return;
    dispatch<kMma, Spec>(ins, p, smem, pipe);
    // Read before the barrier: once past it, other threads may already fetch the next instruction.
    const uint32_t signal = ins.signal;
    const bool fence = !(ins.flags & kFlagNoFence);
    const bool held = holds(ins, p);
    sync_consumers();
    if (threadIdx.x == 0) {
      trace_phase(kPhaseSignal);
      // Every thread's writes are ordered before the signal by the barrier above; a release add
      // makes them visible device-wide before the counter moves (CUTLASS's GenericBarrier
      // arrives so). On sm_90a that is MEMBAR.ALL.GPU and the add, where __threadfence() before a
      // relaxed add was MEMBAR.SC.GPU, CCTL.IVALL (the whole L1 invalidated) and the add. A decode
      // matvec whose outputs carry tags (kFlagNoFence) adds relaxed: its readers re-read what is not
      // there yet. The fence waited behind the SM's bulk copies in flight, 0.4-2.2 us a stage
      // (docs/PERFORMANCE.md, session 14). With tensor parallelism other ranks (other GPUs) read
      // what this block wrote and its counter: release and count for the whole system then.
      if (p.tp_size > 1) {
        ::cuda::atomic_ref<uint32_t, ::cuda::thread_scope_system>(p.counters[signal])
            .fetch_add(1, ::cuda::memory_order_release);
      } else {
        ::cuda::atomic_ref<uint32_t, ::cuda::thread_scope_device>(p.counters[signal])
            .fetch_add(1, fence ? ::cuda::memory_order_release : ::cuda::memory_order_relaxed);
      }
      if (held) *reinterpret_cast<volatile uint32_t*>(&hold_after) = ~0u;
      if (p.trace) p.trace[2 * idx + 1] = globaltimer();
    }
  }
  if (threadIdx.x == 0) p.positions[sm] = end - begin;
}

}  // namespace mk::cuda
