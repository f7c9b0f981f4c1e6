// Host side of the CUDA backend: device query, weight upload (fp32 -> bf16), KV cache, per-program
// buffers and the cooperative launch of the megakernel, with errors that say what went wrong.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "cuda/cuda_backend.h"
#include "cuda/megakernel.cuh"
#include "cuda/rank_exchange.h"
#include "cuda/tensor_map.h"
#include "model/error.h"

namespace mk::cuda {

// Phase stamps per instruction, after the start/end stamps in the trace buffer (MK_TRACE_PHASES).
#if MK_TRACE_PHASES
constexpr size_t kPhaseStamps = kTracePhases;
#else
constexpr size_t kPhaseStamps = 0;
#endif

namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(err));
}

std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

void* device_alloc(size_t bytes, const char* what) {
  void* p = nullptr;
  if (bytes == 0) bytes = 16;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw ResourceError(std::string("GPU out of memory: ") + what + " needs " + mib(bytes) + ", " + mib(free_b) +
                " free of " + mib(total_b));
  }
  check(err, what);
  return p;
}

void device_free(void* p) {
  if (p) cudaFree(p);
}

// Makes GPU `ordinal` the calling thread's current device for the scope, and restores the one
// before: the engine's ranks may sit on several GPUs, and every allocation, copy, launch and
// synchronization must go to the right one. Throws only when the GPU cannot be selected, and never
// with `quiet` (destructors, query_device).
class OnDevice {
 public:
  explicit OnDevice(int ordinal, bool quiet = false) {
    if (cudaGetDevice(&before_) != cudaSuccess || before_ == ordinal) {
      cudaGetLastError();
      before_ = -1;
      return;
    }
    const cudaError_t err = cudaSetDevice(ordinal);
    if (err != cudaSuccess && !quiet) check(err, "selecting the GPU");
    if (err != cudaSuccess) cudaGetLastError();
  }
  ~OnDevice() {
    if (before_ >= 0) cudaSetDevice(before_);
  }
  OnDevice(const OnDevice&) = delete;
  OnDevice& operator=(const OnDevice&) = delete;

 private:
  int before_ = -1;
};

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

bool peer_access(int from, int to) {
  if (from == to) return true;
  int can = 0;
  if (cudaDeviceCanAccessPeer(&can, from, to) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return can != 0;
}

DeviceInfo query_device(int ordinal) {
  DeviceInfo info;
  info.ordinal = ordinal;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    info.why_absent = err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device";
    return info;
  }
  if (ordinal < 0 || ordinal >= count) {
    info.why_absent = "no CUDA device " + std::to_string(ordinal) + " (the host has " + std::to_string(count) + ")";
    return info;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, ordinal) != cudaSuccess) {
    cudaGetLastError();
    info.why_absent = "cannot read the device's properties";
    return info;
  }
  info.present = true;
  info.name = prop.name;
  info.sms = prop.multiProcessorCount;
  info.smem_per_block = prop.sharedMemPerBlockOptin;
  info.major = prop.major;
  info.minor = prop.minor;
  // Double data rate: two transfers a clock (kHz) over the bus (bits).
  int mem_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, ordinal) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, ordinal) == cudaSuccess)
    info.peak_bandwidth_gbps = 2.0 * mem_khz * 1e3 * (bus_bits / 8) / 1e9;
  cudaGetLastError();
  OnDevice on(ordinal, /*quiet=*/true);
  cudaMemGetInfo(&info.free_bytes, &info.total_bytes);
  cudaGetLastError();
  return info;
}

// Whether weight `d` is stored in pages on the GPU (cuda/paged_weights.h): every rank-2 loaded weight.
static bool paged(const WeightDecl& d) { return d.kind == WeightDecl::Kind::Loaded && d.shape.size() == 2; }

DeviceModel::DeviceModel(const std::vector<WeightDecl>& decls, const HostWeights& w, const ModelDims& dims,
                         int ordinal) {
  info_ = query_device(ordinal);
  if (!info_.present) throw Error("no usable CUDA device: " + info_.why_absent);
  OnDevice on(ordinal);
#if MK_UNSAFE_NO_WAITS
  std::fprintf(stderr, "mk: warning: an MK_UNSAFE_NO_WAITS build: no instruction waits for its inputs, so every "
                       "result is garbage (for timing only)\n");
#endif
  if (decls.size() != w.data.size()) throw Error("internal: weight declarations and data differ in number");
  // One allocation, every tensor 256-byte aligned so 16-byte vector loads are always legal.
  std::vector<size_t> offsets, elems;
  size_t total = 0;
  for (size_t i = 0; i < decls.size(); ++i) {
    const size_t n = paged(decls[i]) ? paged_size(size_t(decls[i].shape[0]), uint32_t(decls[i].shape[1])) : w.data[i].size();
    offsets.push_back(total);
    elems.push_back(n);
    total += (n * sizeof(__nv_bfloat16) + 255) / 256 * 256;
  }
  weight_bytes_ = total;
  kv_bytes_ = size_t(dims.n_layers) * 2 * dims.n_kv_heads * dims.max_ctx * dims.head_dim * sizeof(__nv_bfloat16);
  weights_ = device_alloc(total, "the weights (bf16)");
  kv_ = device_alloc(kv_bytes_, "the KV cache (bf16)");
  table_ = device_alloc(w.data.size() * sizeof(void*), "the weight table");
  check(cudaMemset(kv_, 0, kv_bytes_), "clearing the KV cache");
  std::vector<__nv_bfloat16> staging;
  std::vector<const void*> table(w.data.size());
  for (size_t i = 0; i < w.data.size(); ++i) {
    const std::vector<float>& src = w.data[i];
    staging.assign(elems[i], __float2bfloat16(0.0f));
    if (paged(decls[i])) {
      // Row by row, each block of 8 columns of a row one contiguous run of its page.
      const uint32_t K = uint32_t(decls[i].shape[1]), rows = uint32_t(decls[i].shape[0]);
      for (uint32_t r = 0; r < rows; ++r)
        for (uint32_t k0 = 0; k0 < K; k0 += 8) {
          const size_t at = paged_index(r, k0, K), from = size_t(r) * K + k0;
          for (uint32_t k = 0; k < std::min(8u, K - k0); ++k) staging[at + k] = __float2bfloat16(src[from + k]);
        }
    } else {
      for (size_t k = 0; k < src.size(); ++k) staging[k] = __float2bfloat16(src[k]);
    }
    char* dst = static_cast<char*>(weights_) + offsets[i];
    check(cudaMemcpy(dst, staging.data(), staging.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice),
          "uploading weights");
    table[i] = dst;
  }
  check(cudaMemcpy(table_, table.data(), table.size() * sizeof(void*), cudaMemcpyHostToDevice), "weight table");
}

DeviceModel::~DeviceModel() {
  OnDevice on(info_.ordinal, /*quiet=*/true);
  device_free(weights_);
  device_free(table_);
  device_free(kv_);
}

const char* specialized_build(const ModelDims& dims) {
  return spec_matches<Llama32_1BSpec>(dims) ? Llama32_1BSpec::kName : nullptr;
}

DeviceProgram::DeviceProgram(DeviceModel& model, const Program& program) : model_(model), program_(program) {
  const DeviceInfo& dev = model.info_;
  OnDevice on(dev.ordinal);
  if (program.num_sms > static_cast<uint32_t>(dev.sms))
    throw Error("program scheduled for " + std::to_string(program.num_sms) + " SMs, the GPU has " +
                std::to_string(dev.sms));
  if (program.dims.head_dim > kMaxHeadDim)
    throw Error("head_dim " + std::to_string(program.dims.head_dim) + " exceeds the GPU path's limit of " +
                std::to_string(kMaxHeadDim));
  smem_bytes_ = dev.smem_per_block - 2048;  // leave room for the static shared memory
  const size_t smem_floats = smem_bytes_ / sizeof(float);
  // Every op keeps at least one input row (plus its tile's outputs for QkvRope) in shared memory;
  // attention keeps a query and a block of scores per warp.
  const ModelDims& dims = program.dims;
  const size_t widest = std::max<size_t>({dims.hidden, dims.intermediate, size_t(dims.n_heads) * dims.head_dim});
  const size_t qkv_rows = size_t(dims.n_heads + 2 * dims.n_kv_heads) * dims.head_dim;
  const size_t ops_floats =
      (kSmemHead + std::max<size_t>({widest, dims.hidden + qkv_rows, kWarps * (kMaxHeadDim + kKeyBlock)}) + 255) / 256 * 256;
  if (ops_floats > smem_floats)
    throw Error("model too wide for this GPU's " + std::to_string(dev.smem_per_block / 1024) +
                " KB of shared memory per block");
  // Decode programs give the rest to the weight pipe's ring; prefill uses plain loads and all of it.
  const WeightPipe mode = model.weight_pipe;
  if (mode == WeightPipe::Bulk && dev.major < 9)
    throw Error("--weight-pipe bulk needs cp.async.bulk (sm_90 or newer); this GPU is sm_" +
                std::to_string(dev.major) + std::to_string(dev.minor));
  if (dims.n_tokens == 1 && mode != WeightPipe::Off)
    pipe_pages_ = std::min<uint32_t>(model.max_pipe_pages ? std::min(model.max_pipe_pages, kMaxPages) : kMaxPages,
                                     uint32_t((smem_bytes_ - ops_floats * sizeof(float)) / kPageBytes));
  if (pipe_pages_ < 2) pipe_pages_ = 0;
  ops_smem_floats_ = uint32_t(pipe_pages_ ? ops_floats : smem_floats);
  kernel_ = dims.n_tokens > 1 ? reinterpret_cast<const void*>(&megakernel<true, GenericSpec>)
                              : reinterpret_cast<const void*>(&megakernel<false, GenericSpec>);
  if (dims.n_tokens == 1 && decode_build(model.kernel_build, dims) == KernelBuild::Specialized) {
    if (!spec_matches<Llama32_1BSpec>(dims))
      throw Error(std::string("--kernel specialized: the only specialized build is for ") + Llama32_1BSpec::kName +
                  "'s dimensions (hidden 2048, intermediate 8192, 32 heads of 64, 8 KV heads)");
    kernel_ = reinterpret_cast<const void*>(&megakernel<false, Llama32_1BSpec>);
  }
  // The producer's hold (megakernel.cuh) measured 1.8-2.5% faster where only QKV and each buffer's
  // first write fence (session 46); where every instruction fences it would stop the look-ahead.
  hold_fenced_ = fences_are_rare(program_);
  // `--pipe-inflight auto`: by the card's memory and the model's pages (auto_pipe_inflight), in
  // programs like those it was measured on (one rank, the tagged handoff: fences are rare); else none.
  const bool bulk = pipe_pages_ && dev.major >= 9 && mode != WeightPipe::CpAsync;
  pipe_inflight_ = model.pipe_inflight ? *model.pipe_inflight
                   : hold_fenced_      ? auto_pipe_inflight(dev.peak_bandwidth_gbps, bulk, dims)
                                       : 0;
  check(cudaFuncSetAttribute(kernel_, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem_bytes_)),
        "raising the shared memory limit");

  const size_t n = program.instructions.size();
  instructions_ = device_alloc(n * sizeof(Instruction), "instructions");
  queue_begin_ = device_alloc(program.queue_begin.size() * sizeof(uint32_t), "queues");
  counters_ = device_alloc(program.num_counters * sizeof(uint32_t), "counters");
  arena_ = device_alloc(program.arena_floats * sizeof(float), "the activation arena");
  io_ = device_alloc(program.io_slots * sizeof(int32_t), "token slots");
  history_ = device_alloc(size_t(program.dims.max_ctx) * sizeof(int32_t), "token history");
  positions_ = device_alloc(program.num_sms * sizeof(uint32_t), "positions");
  hang_ = device_alloc(sizeof(HangReport), "hang report");
  const size_t logits_bytes = size_t(program.logits_rows) * program.logits_cols * sizeof(float);
  // Page-locked up to kMaxPinnedLogits (one row of logits is 0.5 MB for a 128k vocabulary; a prefill
  // keeping every row's, as `mk logits` does, can be hundreds of MB, which are not worth locking).
  constexpr size_t kMaxPinnedLogits = size_t(16) << 20;
  logits_pinned_ = logits_bytes <= kMaxPinnedLogits &&
                   cudaMallocHost(reinterpret_cast<void**>(&logits_host_), logits_bytes) == cudaSuccess;
  if (!logits_pinned_) {  // the copy still works from pageable memory, only slower
    cudaGetLastError();
    logits_host_ = static_cast<float*>(std::malloc(logits_bytes));
    if (!logits_host_) throw Error("out of host memory for the logits");
  }
  check(cudaMemcpy(instructions_, program.instructions.data(), n * sizeof(Instruction), cudaMemcpyHostToDevice),
        "uploading instructions");
  check(cudaMemcpy(queue_begin_, program.queue_begin.data(), program.queue_begin.size() * sizeof(uint32_t),
                   cudaMemcpyHostToDevice),
        "uploading queues");
  if (program.launches > 1) {
    launch_begin_ = device_alloc(program.launch_begin.size() * sizeof(uint32_t), "the launches' queues");
    check(cudaMemcpy(launch_begin_, program.launch_begin.data(), program.launch_begin.size() * sizeof(uint32_t),
                     cudaMemcpyHostToDevice),
          "uploading the launches' queues");
  }
  check(cudaMemset(counters_, 0, program.num_counters * sizeof(uint32_t)), "clearing counters");
  // NaN-fill the arena so a value nobody wrote can never pass for a result.
  check(cudaMemset(arena_, 0xFF, program.arena_floats * sizeof(float)), "poisoning the arena");
  check(cudaMemset(io_, 0, program.io_slots * sizeof(int32_t)), "clearing token slots");
  check(cudaMemset(hang_, 0, sizeof(HangReport)), "clearing the hang report");
  if (dims.n_tokens > 1 && dev.major == 9) make_act_maps();
}

// Prefill on Hopper with MK_TMA=1: a TMA map of each bf16 activation buffer that a GEMM pass reads
// (by its arena offset; [n_tokens][columns]), so that the sm_90a passes take the TMA form
// (ops/mma_gemm.cuh). Not by default: the passes' own cp.async copies are faster at every width
// measured (a 128-row pass 14.4 us against 25.2, H200, session 19). None where one cannot be made:
// the passes then copy with cp.async.
void DeviceProgram::make_act_maps() {
  if (const char* on = std::getenv("MK_TMA"); !on || !*on || std::string(on) == "0") return;
  const ModelDims& dims = program_.dims;
  std::vector<std::pair<uint32_t, uint32_t>> inputs;  // (arena offset, columns)
  for (const Instruction& ins : program_.instructions) {
    const Opcode op = static_cast<Opcode>(ins.opcode);
    if (!(ins.flags & kFlagBf16In)) continue;
    uint32_t in = kNone, cols = 0;
    if (op == Opcode::MatvecResidual || op == Opcode::MatvecAct)
      in = ins.a.mv.in, cols = ins.a.mv.in_dim;
    else if (op == Opcode::QkvRope)
      in = ins.a.qkv.in, cols = dims.hidden;
    if (in == kNone || std::any_of(inputs.begin(), inputs.end(), [&](auto& e) { return e.first == in; })) continue;
    inputs.push_back({in, cols});
  }
  if (inputs.empty() || inputs.size() > kMaxActMaps) return;
  std::vector<CUtensorMap> maps(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const void* base = static_cast<const float*>(arena_) + inputs[i].first;  // bf16 rows at half the float stride
    if (!encode_bf16_tensor_map(&maps[i], base, dims.n_tokens, inputs[i].second, kGemmM, kGemmK)) return;
  }
  static_assert(sizeof(CUtensorMap) == 128, "act_map() steps 128 bytes a map");
  act_maps_ = device_alloc(maps.size() * sizeof(CUtensorMap), "tensor maps");
  check(cudaMemcpy(act_maps_, maps.data(), maps.size() * sizeof(CUtensorMap), cudaMemcpyHostToDevice),
        "uploading tensor maps");
  for (const auto& e : inputs) act_map_in_.push_back(e.first);
}

DeviceProgram::~DeviceProgram() {
  OnDevice on(model_.info_.ordinal, /*quiet=*/true);
  for (void* p : {instructions_, queue_begin_, launch_begin_, counters_, arena_, io_, history_, positions_, hang_,
                  trace_, rank_arenas_, rank_counters_, act_maps_})
    device_free(p);
  if (logits_pinned_)
    cudaFreeHost(logits_host_);
  else
    std::free(logits_host_);
  if (stream_) cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
  for (void* e : {run_events_[0], run_events_[1], launched_event_, exchanged_event_})
    if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
}

float DeviceProgram::last_run_ms() const {
  if (!run_events_[1]) throw Error("last_run_ms: no timed run (enable_timing first)");
  OnDevice on(model_.info_.ordinal);
  float ms = 0;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(run_events_[0]), static_cast<cudaEvent_t>(run_events_[1])),
        "reading a run's time");
  return ms;
}

void DeviceProgram::join_ranks(const std::vector<DeviceProgram*>& ranks) {
  const int mine = model_.info_.ordinal;
  OnDevice on(mine);
  std::vector<float*> arenas;
  std::vector<uint32_t*> counters;
  for (DeviceProgram* r : ranks) {
    if (r->program_.arena_floats != program_.arena_floats || r->program_.num_counters != program_.num_counters)
      throw Error("internal: tensor-parallel ranks' programs differ in shape");
    // A rank on another GPU: its arena and counters are read (and polled) through peer access.
    if (const int peer = r->model_.info_.ordinal; peer != mine) {
      if (!peer_access(mine, peer))
        throw Error("--tp: GPU " + std::to_string(mine) + " cannot access GPU " + std::to_string(peer) +
                    "'s memory (no peer access between them), which the ranks' all-reduce needs; --tp-gpus 1 "
                    "runs every rank on one GPU");
      const cudaError_t err = cudaDeviceEnablePeerAccess(peer, 0);
      if (err == cudaErrorPeerAccessAlreadyEnabled)
        cudaGetLastError();
      else
        check(err, "enabling peer access between the ranks' GPUs");
    }
    arenas.push_back(static_cast<float*>(r->arena_));
    counters.push_back(static_cast<uint32_t*>(r->counters_));
  }
  tp_size_ = uint32_t(ranks.size());
  ranks_ = ranks;
  rank_arenas_ = device_alloc(arenas.size() * sizeof(float*), "the ranks' arena table");
  rank_counters_ = device_alloc(counters.size() * sizeof(uint32_t*), "the ranks' counter table");
  check(cudaMemcpy(rank_arenas_, arenas.data(), arenas.size() * sizeof(float*), cudaMemcpyHostToDevice),
        "uploading the ranks' arenas");
  check(cudaMemcpy(rank_counters_, counters.data(), counters.size() * sizeof(uint32_t*), cudaMemcpyHostToDevice),
        "uploading the ranks' counters");
  // A blocking stream: ordered after the token uploads (legacy stream), concurrent with the other
  // ranks' streams.
  cudaStream_t s = nullptr;
  check(cudaStreamCreate(&s), "creating a rank's stream");
  stream_ = s;
  for (void** e : {&launched_event_, &exchanged_event_}) {
    cudaEvent_t made = nullptr;
    check(cudaEventCreateWithFlags(&made, cudaEventDisableTiming), "creating a rank's event");
    *e = made;
  }
}

void DeviceProgram::exchange_after(uint32_t launch) {
  if (launch + 1 >= program_.launches) throw Error("internal: no exchange after launch " + std::to_string(launch));
  if (ranks_.empty()) throw Error("internal: an exchange without ranks (join_ranks first)");
  OnDevice on(model_.info_.ordinal);
  const cudaStream_t mine = static_cast<cudaStream_t>(stream_);
  // After every rank's launch so far (on its GPU, its stream)...
  for (DeviceProgram* r : ranks_) {
    OnDevice theirs(r->model_.info_.ordinal);
    check(cudaEventRecord(static_cast<cudaEvent_t>(r->launched_event_), static_cast<cudaStream_t>(r->stream_)),
          "marking a rank's launch");
    check(cudaStreamWaitEvent(mine, static_cast<cudaEvent_t>(r->launched_event_), 0), "ordering an exchange");
  }
  launch_rank_exchange(static_cast<float* const*>(rank_arenas_), tp_size_, program_.exchanges[launch], mine);
  // ... and before any rank's next.
  check(cudaEventRecord(static_cast<cudaEvent_t>(exchanged_event_), mine), "marking an exchange");
  for (DeviceProgram* r : ranks_)
    if (r != this) {
      OnDevice theirs(r->model_.info_.ordinal);
      check(cudaStreamWaitEvent(static_cast<cudaStream_t>(r->stream_), static_cast<cudaEvent_t>(exchanged_event_), 0),
            "ordering a launch after an exchange");
    }
}

void DeviceProgram::set_tokens(const int32_t* ids, uint32_t n) {
  OnDevice on(model_.info_.ordinal);
  check(cudaMemcpy(static_cast<int32_t*>(io_) + program_.tokens_in, ids, n * sizeof(int32_t), cudaMemcpyHostToDevice),
        "uploading tokens");
}

void DeviceProgram::run(uint32_t pos, bool feedback, uint32_t history_index) {
  if (program_.launches > 1) throw Error("internal: a program of several launches runs launch by launch");
  launch(pos, feedback, history_index, 0);
}

void DeviceProgram::run_launch(uint32_t pos, uint32_t k, bool feedback, uint32_t history_index) {
  if (k >= program_.launches) throw Error("internal: no launch " + std::to_string(k) + " in the program");
  launch(pos, feedback, history_index, k);
}

void DeviceProgram::launch(uint32_t pos, bool feedback, uint32_t history_index, uint32_t k) {
  OnDevice on(model_.info_.ordinal);
  if (k == 0) ++epoch_;  // the step's counters keep counting across its launches
  last_launch_ = k;
  KernelParams p{};
  p.instructions = static_cast<const Instruction*>(instructions_);
  if (program_.launches > 1) {
    p.queue_begin = static_cast<const uint32_t*>(launch_begin_) + size_t(k) * program_.num_sms;
    p.queue_end = p.queue_begin + program_.num_sms;
  } else {
    p.queue_begin = static_cast<const uint32_t*>(queue_begin_);
    p.queue_end = p.queue_begin + 1;
  }
  p.counters = static_cast<uint32_t*>(counters_);
  p.weights = static_cast<const __nv_bfloat16* const*>(model_.table_);
  p.arena = static_cast<float*>(arena_);
  p.io = static_cast<int32_t*>(io_);
  p.kv = static_cast<__nv_bfloat16*>(model_.kv_);
  p.dims = program_.dims;
  p.step = {epoch_, pos};
  p.smem_floats = ops_smem_floats_;
  p.pipe_pages = pipe_pages_;
  p.pipe_inflight = pipe_inflight_;
  p.hold_fenced = hold_fenced_;
  p.pipe_cp_async = model_.weight_pipe == WeightPipe::CpAsync;
  p.feedback_slot = feedback ? program_.tokens_in : kNone;
  p.history = feedback ? static_cast<int32_t*>(history_) : nullptr;
  p.history_index = history_index;
  p.positions = static_cast<uint32_t*>(positions_);
  p.hang = static_cast<HangReport*>(hang_);
  p.timeout_ns = 5'000'000'000ull;
  p.trace = tracing_ ? static_cast<uint64_t*>(trace_) : nullptr;
  p.phases = tracing_ && kPhaseStamps ? p.trace + program_.instructions.size() * 2 : nullptr;
  // Ranks that meet between launches read no peer inside the kernel (the exchanges do).
  const bool peers = tp_size_ > 1 && program_.launches == 1;
  p.tp_size = peers ? tp_size_ : 1;
  p.rank_arenas = peers ? static_cast<float* const*>(rank_arenas_) : nullptr;
  p.rank_counters = peers ? static_cast<uint32_t* const*>(rank_counters_) : nullptr;
  p.act_maps = act_maps_;
  p.n_act_maps = uint32_t(act_map_in_.size());
  for (size_t i = 0; i < act_map_in_.size(); ++i) p.act_map_in[i] = act_map_in_[i];
  void* args[] = {&p};
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  if (timing_) {
    for (void*& e : run_events_)
      if (!e) {
        cudaEvent_t made = nullptr;
        check(cudaEventCreate(&made), "creating a timing event");
        e = made;
      }
    if (k == 0) check(cudaEventRecord(static_cast<cudaEvent_t>(run_events_[0]), stream), "timing a run");
  }
  // Cooperative launch: every block must be resident at once, or blocks would wait on counters
  // of blocks that never start.
  check(cudaLaunchCooperativeKernel(kernel_, dim3(program_.num_sms),
                                    dim3(kBlockThreads), args, smem_bytes_, stream),
        "launching the megakernel");
  if (timing_ && k + 1 == program_.launches)
    check(cudaEventRecord(static_cast<cudaEvent_t>(run_events_[1]), stream), "timing a run");
}

void DeviceProgram::synchronize() {
  OnDevice on(model_.info_.ordinal);
  check(cudaDeviceSynchronize(), "running the megakernel");
  HangReport h{};
  check(cudaMemcpy(&h, hang_, sizeof h, cudaMemcpyDeviceToHost), "reading the hang report");
  if (!h.hung) return;
  std::vector<uint32_t> pos(program_.num_sms);
  cudaMemcpy(pos.data(), positions_, pos.size() * sizeof(uint32_t), cudaMemcpyDeviceToHost);
  // Positions count from the launch's first instruction of each queue.
  auto in_queue = [&](uint32_t sm, uint32_t at) {
    return program_.launches == 1 ? at
                                  : at + program_.launch_begin[size_t(last_launch_) * program_.num_sms + sm] -
                                        program_.queue_begin[sm];
  };
  std::ostringstream os;
  os << "megakernel hang: SM " << h.sm << " waited at instruction " << in_queue(h.sm, h.index) << " ("
     << program_.counter_names[program_.queue(h.sm)[in_queue(h.sm, h.index)].node] << ") for counter " << h.counter << " = "
     << h.value << " < " << h.target << "; SM positions:";
  for (uint32_t s = 0; s < pos.size(); ++s) os << " " << in_queue(s, pos[s]) << "/" << program_.queue_size(s);
  throw Error(os.str());
}

const float* DeviceProgram::read_logits() const {
  OnDevice on(model_.info_.ordinal);
  check(cudaMemcpy(logits_host_, static_cast<float*>(arena_) + program_.logits,
                   size_t(program_.logits_rows) * program_.logits_cols * sizeof(float), cudaMemcpyDeviceToHost),
        "reading logits");
  return logits_host_;
}

int32_t DeviceProgram::read_token(uint32_t row) const {
  OnDevice on(model_.info_.ordinal);
  int32_t t = -1;
  check(cudaMemcpy(&t, static_cast<int32_t*>(io_) + program_.tokens_out + row, sizeof t, cudaMemcpyDeviceToHost),
        "reading the token");
  return t;
}

std::vector<int32_t> DeviceProgram::read_history(uint32_t n) const {
  OnDevice on(model_.info_.ordinal);
  std::vector<int32_t> h(n);
  check(cudaMemcpy(h.data(), history_, n * sizeof(int32_t), cudaMemcpyDeviceToHost), "reading tokens");
  return h;
}

void DeviceProgram::enable_trace(bool on) {
  tracing_ = on;
  if (on && !trace_) {
    OnDevice dev(model_.info_.ordinal);
    const size_t n = program_.instructions.size() * (2 + kPhaseStamps);
    trace_ = device_alloc(n * sizeof(uint64_t), "the trace");
    check(cudaMemset(trace_, 0, n * sizeof(uint64_t)), "clearing the trace");  // 0: a phase not stamped
  }
}

std::vector<uint64_t> DeviceProgram::read_trace() const {
  OnDevice on(model_.info_.ordinal);
  std::vector<uint64_t> t(program_.instructions.size() * 2);
  if (trace_)
    check(cudaMemcpy(t.data(), trace_, t.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost), "reading the trace");
  return t;
}

std::vector<uint64_t> DeviceProgram::read_phases() const {
  OnDevice on(model_.info_.ordinal);
  std::vector<uint64_t> t(program_.instructions.size() * kPhaseStamps);
  if (trace_ && !t.empty())
    check(cudaMemcpy(t.data(), static_cast<uint64_t*>(trace_) + program_.instructions.size() * 2,
                     t.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost),
          "reading the phase stamps");
  return t;
}

}  // namespace mk::cuda
