// What one launch of the megakernel receives: the program's queues and counters, the weight table,
// the arena, the KV cache, the step and a hang report. Plain data, shared by host and device code.
#pragma once

#include <stdint.h>

#include "mk/isa.h"

struct __nv_bfloat16;

namespace mk::cuda {

// Written by the first SM whose wait times out; the host turns it into an error that names
// every SM's position (positions[] is updated by each SM at every instruction).
struct HangReport {
  uint32_t hung;        // 0: fine
  uint32_t sm, index, counter, value, target;
};

// What builds configured with -DMK_TRACE_PHASES=ON record per instruction when tracing
// (runtime/trace.h reads them): when three phases ended (%globaltimer: the input row loaded, the
// weight pages done, the signal begun); two counts of warp 0's waits on weight pages (how many
// pages had not landed when it first looked, and the ns it waited for them: a consumer that never
// waits sets the pace, one that always waits is waiting on memory); and when thread 0's part of a
// decode input row landed in shared memory, and when every thread's part had (the rest of the input
// phase is its norm and conversion);
// and how many of the instruction's weight pages had landed in the ring when its consumers came for
// them (a full ring there and consumers that never wait: they set the pace).
enum TracePhase : uint32_t {
  kPhaseInput = 0,
  kPhaseWeights = 1,
  kPhaseSignal = 2,
  kPhasePageStalls = 3,
  kPhasePageStallNs = 4,
  kPhaseRowLanded = 5,
  kPhaseRingReady = 6,
  kPhaseRowWhole = 7,
  kTracePhases = 8
};

// At most this many TMA maps of activation buffers (KernelParams::act_maps): a prefill's GEMM inputs
// are the normalized input, attention's output and the MLP's activations.
constexpr uint32_t kMaxActMaps = 4;

struct KernelParams {
  const Instruction* instructions;
  // This launch's instructions of SM s: [queue_begin[s], queue_end[s]) (one launch a step: the
  // program's queue offsets, queue_end = queue_begin + 1; Program::launch_begin for several).
  const uint32_t* queue_begin;
  const uint32_t* queue_end;
  uint32_t* counters;
  const __nv_bfloat16* const* weights;
  float* arena;
  int32_t* io;
  __nv_bfloat16* kv;             // [layer][k|v][kv_head][max_ctx][head_dim]
  ModelDims dims;
  StepParams step;
  uint32_t smem_floats;          // dynamic shared memory the ops may use, in floats; the pipe's pages follow
  uint32_t pipe_pages;           // pages of the weight pipe's ring; 0: every matvec uses plain loads
  uint32_t pipe_cp_async;        // the pipe copies with 16-byte cp.async even where cp.async.bulk exists
  uint32_t pipe_inflight;        // at most this many of the producer's copies in flight (0 or >= pipe_pages: the ring's)
  uint32_t hold_fenced;          // the producer holds its look-ahead while a fenced instruction runs (megakernel.cuh)
  uint32_t feedback_slot;        // kNone, or an io slot the Argmax of row 0 also writes (greedy loop)
  int32_t* history;              // nullptr, or where the Argmax of row 0 appends the token
  uint32_t history_index;
  uint32_t* positions;           // [num_sms]: index of the instruction each SM is at
  HangReport* hang;
  uint64_t timeout_ns;           // a wait longer than this is a hang
  uint64_t* trace;               // nullptr, or [instructions][2] start/end %globaltimer
  uint64_t* phases;              // nullptr, or [instructions][kTracePhases] %globaltimer (MK_TRACE_PHASES)
  // Tensor parallelism: how many ranks, and every rank's arena and counters by rank (this one's
  // too; another GPU's through peer access). tp_size 1: both null, and the tensor-parallel
  // instructions read this arena alone (ranks that meet between launches, Program::exchanges).
  uint32_t tp_size;
  float* const* rank_arenas;
  uint32_t* const* rank_counters;
  // Prefill on sm_90a: TMA maps (CUtensorMap, 128 bytes each, cuda/tensor_map.h) of the bf16
  // activation buffers the GEMM passes read, map i over arena buffer act_map_in[i], with MK_TMA=1
  // only. n_act_maps 0 otherwise: the passes then copy with cp.async.
  const void* act_maps;
  uint32_t act_map_in[kMaxActMaps];
  uint32_t n_act_maps;
};

}  // namespace mk::cuda
