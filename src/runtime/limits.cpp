// Resource limits: memory estimates from the graph's weight declarations, the host and GPU
// checks, and the NaN/Inf scan of --check-weights with the source tensor of the bad element.
#include "runtime/limits.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "model/error.h"

namespace mk {
namespace {

std::string value_str(float v) {
  if (std::isnan(v)) return "nan";
  return v > 0 ? "inf" : "-inf";
}

}  // namespace

size_t kv_cache_elements(const ModelDims& d) {
  return size_t(d.n_layers) * 2 * size_t(d.n_kv_heads) * d.max_ctx * size_t(d.head_dim);
}

MemoryEstimate host_memory_estimate(const OpGraph& g) {
  MemoryEstimate m;
  for (const WeightDecl& d : g.weights) m.weights += size_t(d.numel()) * sizeof(float);
  m.kv = kv_cache_elements(g.dims) * sizeof(float);
  return m;
}

MemoryEstimate gpu_memory_estimate(const OpGraph& g) {
  MemoryEstimate m;
  for (const WeightDecl& d : g.weights) m.weights += (size_t(d.numel()) * 2 + 255) / 256 * 256;
  m.kv = kv_cache_elements(g.dims) * 2;
  return m;
}

std::optional<size_t> host_memory_available() {
  if (const char* env = std::getenv("MK_HOST_MEMORY_LIMIT_BYTES"); env && *env) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(env, &end, 10);
    if (errno || *end || *env == '-' || *env == '+')
      throw Error("MK_HOST_MEMORY_LIMIT_BYTES: " + quote(env) + " is not a byte count");
    return static_cast<size_t>(v);
  }
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1) return static_cast<size_t>(kb) * 1024;
  }
  return std::nullopt;
}

std::string format_bytes(size_t bytes) {
  char buf[64];
  const double gib = double(bytes) / double(size_t(1) << 30);
  if (gib >= 0.1) std::snprintf(buf, sizeof buf, "%.2f GiB", gib);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", double(bytes) / double(1 << 20));
  return buf;
}

void check_host_memory(const MemoryEstimate& need, size_t available, uint32_t max_ctx) {
  if (need.total() <= available) return;
  throw ResourceError("model needs " + format_bytes(need.total()) + " of host memory, " +
                      format_bytes(available) + " available (fp32 weights " + format_bytes(need.weights) +
                      " + KV cache " + format_bytes(need.kv) + " for " + std::to_string(max_ctx) +
                      " tokens; a smaller --ctx shrinks the cache)");
}

void check_gpu_memory(const MemoryEstimate& need, size_t free_bytes, size_t total_bytes, uint32_t max_ctx,
                      const std::string& gpu) {
  if (need.total() <= free_bytes) return;
  auto mib = [](size_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; };
  throw ResourceError(gpu + " out of memory: the model needs " + mib(need.total()) + " (bf16 weights " +
                      mib(need.weights) + " + KV cache " + mib(need.kv) + " for " + std::to_string(max_ctx) +
                      " tokens), " + mib(free_bytes) + " free of " + mib(total_bytes) +
                      "; a smaller --ctx or --device cpu");
}

void check_ranks_memory(const ModelConfig& c, const GraphOptions& go, uint32_t max_ctx, const std::vector<GpuMemory>& gpus,
                        const std::vector<int>& rank_device) {
  MemoryEstimate host;
  std::vector<MemoryEstimate> device(gpus.size());
  for (uint32_t r = 0; r < std::max(1u, go.tp_size); ++r) {
    GraphOptions o = go;
    o.tp_rank = r;
    const OpGraph g = build_graph(c, o);
    host += host_memory_estimate(g);
    if (!gpus.empty()) device.at(rank_device.at(r)) += gpu_memory_estimate(g);
  }
  if (const std::optional<size_t> avail = host_memory_available()) check_host_memory(host, *avail, max_ctx);
  const bool several = std::count_if(device.begin(), device.end(), [](const MemoryEstimate& m) { return m.total(); }) > 1;
  for (size_t i = 0; i < device.size(); ++i)
    if (gpus[i].total_bytes)
      check_gpu_memory(device[i], gpus[i].free_bytes, gpus[i].total_bytes, max_ctx,
                       several ? "GPU " + std::to_string(i) : "GPU");
}

std::optional<NonFinite> find_non_finite(const HostWeights& weights) {
  for (size_t w = 0; w < weights.data.size(); ++w) {
    const std::vector<float>& t = weights.data[w];
    for (size_t i = 0; i < t.size(); ++i)
      if (!std::isfinite(t[i])) return NonFinite{w, i, t[i]};
  }
  return std::nullopt;
}

void check_weights_finite(const HostWeights& weights, const std::vector<WeightDecl>& decls,
                          const TensorSource& source) {
  const std::optional<NonFinite> bad = find_non_finite(weights);
  if (!bad) return;
  const WeightDecl& d = decls.at(bad->weight);
  std::string msg = "--check-weights: weight " + d.name + " holds " + value_str(bad->value) + " at index " +
                    std::to_string(bad->index);
  // Walk the parts concatenated along dim 0 to find the source tensor and its element.
  const int64_t cols = d.shape.size() == 2 ? d.shape[1] : 1;
  const int64_t row = static_cast<int64_t>(bad->index) / cols, col = static_cast<int64_t>(bad->index) % cols;
  int64_t first = 0;
  for (const std::string& part : d.parts) {
    const TensorInfo* t = source.find(part);
    if (!t || t->shape.empty()) break;
    const int64_t rows = d.transpose && t->shape.size() == 2 ? t->shape[1] : t->shape[0];
    if (row < first + rows) {
      const int64_t r = row - first;
      const int64_t src = d.transpose && t->shape.size() == 2 ? col * rows + r : r * cols + col;
      msg += " (source tensor " + quote(part);
      if (const std::string o = source.origin(part); !o.empty()) msg += ", GGUF " + quote(o);
      msg += ", element " + std::to_string(src) + ")";
      break;
    }
    first += rows;
  }
  if (d.kind == WeightDecl::Kind::RopeTable) msg += " (computed RoPE table)";
  throw Error(msg);
}

}  // namespace mk
