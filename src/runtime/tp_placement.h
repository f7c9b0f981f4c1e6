// Where the ranks of a tensor-parallel engine run on the GPUs of one host: a GPU per rank when the
// host has enough of them that can reach each other's memory, else several ranks to a GPU, each on
// its share of the SMs (one GPU shared by every rank is how the GPU path is tested on one card).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "cuda/cuda_backend.h"

namespace mk {

struct TpPlacement {
  std::vector<int> device;  // rank r's GPU (CUDA ordinal); consecutive ranks share a GPU
  uint32_t sms = 0;         // the SMs every rank's program is scheduled for: the same on every rank,
                            // so that a counter index names the same producer on all of them
  uint32_t gpus = 1;        // distinct GPUs
};

// `gpus`: the host's GPUs in ordinal order (present ones; gpus[0] at least). `tp_gpus`: how many of
// them to spread the `tp` ranks over (--tp-gpus), or 0 for the most that the host has, that divide
// tp and that all reach each other by peer access. `requested_sms`: --sms, or 0 for each rank's
// share of its GPU. `peer(a, b)`: whether GPU a can access GPU b's memory (cuda::peer_access).
// Throws mk::Error, in one line, when the request cannot be met.
TpPlacement place_ranks(uint32_t tp, uint32_t tp_gpus, uint32_t requested_sms, const std::vector<cuda::DeviceInfo>& gpus,
                        const std::function<bool(int, int)>& peer);

}  // namespace mk
