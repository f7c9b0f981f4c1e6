// NCCL as the exchange between launches (`--tp-comm nccl`): the step cut into a launch per
// all-reduce as with `--tp-comm launches`, the partial sums all-reduced and the ranks' candidates
// all-gathered by NCCL on each rank's stream, as a launch per layer with an NCCL all-reduce between
// launches does. The library is found at run time (dlopen), so mk builds and runs without it.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"

namespace mk::cuda {

class DeviceProgram;

// The NCCL library's version ("2.28.9"), loading it on first use from $MK_NCCL_LIBRARY, else
// libnccl.so.2 on the loader's path or beside the CUDA toolkit. mk::Error naming what was tried when
// it cannot be loaded. Needs no GPU.
std::string nccl_version();

// One NCCL communicator per GPU of one process (ncclCommInitAll), NVLink multicast off
// (NCCL_NVLS_ENABLE=0: it can put shared GPUs out of service).
class NcclGroup {
 public:
  explicit NcclGroup(const std::vector<int>& devices);  // rank r on GPU devices[r], every GPU once
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;
  // The exchange `x` over `ranks` (rank r's program on GPU devices[r]), each on its program's
  // stream after its launches so far; asynchronous, as the launches are.
  void exchange(const std::vector<DeviceProgram*>& ranks, const Exchange& x);

 private:
  const void* api_ = nullptr;  // the library it was made with (nccl_exchange.cu's NcclApi)
  std::vector<void*> comms_;   // ncclComm_t
};

}  // namespace mk::cuda
