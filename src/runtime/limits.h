// Resource limits checked before a long load, each failing with one line that gives the sizes:
// host memory for the fp32 weights and KV cache, GPU memory for the bf16 weights and KV cache, and
// (with --check-weights) a scan of the loaded weights for NaN and Inf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "model/tensor_source.h"
#include "runtime/weights.h"

namespace mk {

// What the engine will hold for a model, in bytes.
struct MemoryEstimate {
  size_t weights = 0;  // every WeightDecl of the graph (RoPE tables included)
  size_t kv = 0;       // the KV cache at the context length
  size_t total() const { return weights + kv; }
  MemoryEstimate& operator+=(const MemoryEstimate& o) {
    weights += o.weights;
    kv += o.kv;
    return *this;
  }
};

// The KV cache of a graph's KV heads (one rank's with tensor parallelism) at its dims.max_ctx
// positions, in elements.
size_t kv_cache_elements(const ModelDims& dims);

// What the engine holds for graph `g` (one rank's with tensor parallelism). On the host: fp32
// weights and an fp32 KV cache.
MemoryEstimate host_memory_estimate(const OpGraph& g);
// On the GPU: bf16 weights (each tensor 256-byte aligned, as DeviceModel allocates them) and a bf16
// KV cache.
MemoryEstimate gpu_memory_estimate(const OpGraph& g);

// Host memory available to us: $MK_HOST_MEMORY_LIMIT_BYTES when set (a testing and operations
// knob; mk::Error when it is not a byte count), else /proc/meminfo's MemAvailable; nullopt when
// neither is known (the check is then skipped).
std::optional<size_t> host_memory_available();

// mk::ResourceError "model needs X GiB of host memory, Y GiB available (...)" when need > available.
void check_host_memory(const MemoryEstimate& need, size_t available, uint32_t max_ctx);
// mk::ResourceError "GPU out of memory: the model needs X MiB (...), Y MiB free of Z MiB" when the
// weights and KV cache do not fit the device's free memory; `gpu` names the device ("GPU 1" where
// the ranks of --tp spread over several).
void check_gpu_memory(const MemoryEstimate& need, size_t free_bytes, size_t total_bytes, uint32_t max_ctx,
                      const std::string& gpu = "GPU");

// A GPU's memory as the checks see it (0 total: unknown, not checked).
struct GpuMemory {
  size_t free_bytes = 0, total_bytes = 0;
};

// Every rank of `go` (one without --tp) against the host's memory (all of them together) and, on
// GPUs, each GPU against the ranks placed on it: rank r on gpus[rank_device[r]] (no `gpus`: the
// CPU). With --tp N the engine holds N ranks' weights (what they replicate, N times) and KV caches
// (each its own KV heads). A GPU is named by its number where the ranks use several ("GPU 1 out of
// memory"). mk::ResourceError as the checks above.
void check_ranks_memory(const ModelConfig& c, const GraphOptions& go, uint32_t max_ctx, const std::vector<GpuMemory>& gpus,
                        const std::vector<int>& rank_device);

// "1.25 GiB" (at least 0.1 GiB), else "12.3 MiB".
std::string format_bytes(size_t bytes);

// The first NaN or Inf among loaded weights, in declaration order.
struct NonFinite {
  size_t weight = 0;  // index into the declarations
  size_t index = 0;   // flat index into the engine tensor
  float value = 0;
};
std::optional<NonFinite> find_non_finite(const HostWeights& weights);

// mk::Error "--check-weights: weight 3.qkv holds nan at index 17 (source tensor '...' [GGUF
// '...'] element 17)" for the first non-finite value; nothing when every weight is finite.
void check_weights_finite(const HostWeights& weights, const std::vector<WeightDecl>& decls,
                          const TensorSource& source);

}  // namespace mk
