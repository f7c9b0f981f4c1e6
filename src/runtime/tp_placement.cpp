#include "runtime/tp_placement.h"

#include <algorithm>
#include <string>

#include "model/error.h"

namespace mk {
namespace {

// The first pair among GPUs [0, n) that cannot reach each other, or {-1, -1}.
std::pair<int, int> unreachable_pair(uint32_t n, const std::function<bool(int, int)>& peer) {
  for (int a = 0; a < int(n); ++a)
    for (int b = 0; b < int(n); ++b)
      if (a != b && !peer(a, b)) return {a, b};
  return {-1, -1};
}

}  // namespace

TpPlacement place_ranks(uint32_t tp, uint32_t tp_gpus, uint32_t requested_sms, const std::vector<cuda::DeviceInfo>& gpus,
                        const std::function<bool(int, int)>& peer) {
  if (tp == 0) throw Error("--tp 0: tensor parallelism needs at least one rank");
  if (gpus.empty()) throw Error("internal: placing ranks without a GPU");
  const std::string tp_s = std::to_string(tp);
  uint32_t n = tp_gpus;
  if (n) {
    if (tp % n)
      throw Error("--tp-gpus " + std::to_string(n) + " does not divide --tp " + tp_s +
                  ": every GPU holds the same number of ranks");
    if (n > gpus.size())
      throw Error("--tp-gpus " + std::to_string(n) + ": the host has " + std::to_string(gpus.size()) + " GPU" +
                  (gpus.size() == 1 ? "" : "s"));
    if (auto [a, b] = unreachable_pair(n, peer); a >= 0)
      throw Error("--tp-gpus " + std::to_string(n) + ": GPU " + std::to_string(a) + " cannot access GPU " +
                  std::to_string(b) + "'s memory (no peer access), which the ranks' all-reduce needs");
  } else {
    // The most GPUs that divide tp and reach each other; one when nothing more fits.
    n = 1;
    for (uint32_t d = std::min<uint32_t>(tp, uint32_t(gpus.size())); d > 1; --d)
      if (tp % d == 0 && unreachable_pair(d, peer).first < 0) {
        n = d;
        break;
      }
  }
  const uint32_t per_gpu = tp / n;
  TpPlacement p;
  p.gpus = n;
  uint32_t share = UINT32_MAX;  // the fewest SMs a rank gets on any of the GPUs used
  int narrowest = 0;
  for (uint32_t r = 0; r < tp; ++r) {
    const int g = int(r / per_gpu);
    p.device.push_back(g);
    const uint32_t s = uint32_t(gpus[g].sms) / per_gpu;
    if (s < share) share = s, narrowest = g;
  }
  const std::string why = per_gpu == 1 ? "GPU " + std::to_string(narrowest) + "'s " + std::to_string(gpus[narrowest].sms) + " SMs"
                                       : "GPU " + std::to_string(narrowest) + "'s " + std::to_string(gpus[narrowest].sms) +
                                             " SMs shared by " + std::to_string(per_gpu) + " ranks";
  if (share == 0) throw Error("--tp " + tp_s + ": more ranks than SMs (" + why + ")");
  if (requested_sms > share)
    throw Error(tp == 1 ? "--sms " + std::to_string(requested_sms) + ": the GPU has " + std::to_string(share) + " SMs"
                        : "--sms " + std::to_string(requested_sms) + " with --tp " + tp_s + ": a rank has at most " +
                              std::to_string(share) + " SMs (" + why + ")");
  p.sms = requested_sms ? requested_sms : share;
  return p;
}

}  // namespace mk
