#include "cuda/nccl_exchange.h"

#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>

#include "cuda/cuda_backend.h"
#include "model/error.h"

#if __has_include(<nccl.h>)
#include <nccl.h>
#define MK_HAVE_NCCL_H 1
#endif

namespace mk::cuda {

#if MK_HAVE_NCCL_H
namespace {

// The NCCL entry points mk uses, resolved from the library loaded at run time.
struct NcclApi {
  std::string version;
  ncclResult_t (*get_version)(int*);
  ncclResult_t (*comm_init_all)(ncclComm_t*, int, const int*);
  ncclResult_t (*comm_destroy)(ncclComm_t);
  ncclResult_t (*all_reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*all_gather)(const void*, void*, size_t, ncclDataType_t, ncclComm_t, cudaStream_t);
  ncclResult_t (*group_start)();
  ncclResult_t (*group_end)();
  const char* (*error_string)(ncclResult_t);
};

NcclApi load_nccl(const std::string& asked) {
  std::vector<std::string> tried;
  if (!asked.empty())
    tried.push_back(asked);
  else
    tried = {"libnccl.so.2", "/usr/local/cuda/lib/libnccl.so.2", "/usr/local/cuda/lib64/libnccl.so.2"};
  void* lib = nullptr;
  std::string why;
  for (const std::string& name : tried) {
    if ((lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL))) break;
    why = dlerror();
  }
  if (!lib) {
    std::string names;
    for (const std::string& n : tried) names += (names.empty() ? "" : ", ") + n;
    throw Error("--tp-comm nccl: cannot load the NCCL library (tried " + names + ": " + why +
                "); $MK_NCCL_LIBRARY names it");
  }
  NcclApi api{};
  auto resolve = [&](auto& fn, const char* symbol) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, symbol));
    if (!fn) throw Error(std::string("--tp-comm nccl: the NCCL library lacks ") + symbol);
  };
  resolve(api.get_version, "ncclGetVersion");
  resolve(api.comm_init_all, "ncclCommInitAll");
  resolve(api.comm_destroy, "ncclCommDestroy");
  resolve(api.all_reduce, "ncclAllReduce");
  resolve(api.all_gather, "ncclAllGather");
  resolve(api.group_start, "ncclGroupStart");
  resolve(api.group_end, "ncclGroupEnd");
  resolve(api.error_string, "ncclGetErrorString");
  int code = 0;
  api.get_version(&code);
  // NCCL_VERSION_CODE: major * 10000 + minor * 100 + patch since 2.9.
  api.version = std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." + std::to_string(code % 100);
  return api;
}

// Loaded once for each $MK_NCCL_LIBRARY seen; a failed load is tried again by the next call.
const NcclApi& nccl() {
  static std::mutex m;
  static std::map<std::string, std::unique_ptr<NcclApi>> loaded;
  const char* env = std::getenv("MK_NCCL_LIBRARY");
  const std::string asked = env ? env : "";
  std::lock_guard<std::mutex> lock(m);
  auto& api = loaded[asked];
  if (!api) api = std::make_unique<NcclApi>(load_nccl(asked));
  return *api;
}

void check(const NcclApi& api, ncclResult_t r, const char* what) {
  if (r != ncclSuccess) throw Error(std::string("NCCL: ") + what + ": " + api.error_string(r));
}

}  // namespace

std::string nccl_version() { return nccl().version; }

NcclGroup::NcclGroup(const std::vector<int>& devices) {
  const NcclApi& api = nccl();
  api_ = &api;
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // never NVLink multicast (docs/TENSOR_PARALLEL.md)
  std::vector<ncclComm_t> comms(devices.size());
  check(api, api.comm_init_all(comms.data(), int(devices.size()), devices.data()), "creating the ranks' communicators");
  for (ncclComm_t c : comms) comms_.push_back(c);
}

NcclGroup::~NcclGroup() {
  for (void* c : comms_) static_cast<const NcclApi*>(api_)->comm_destroy(static_cast<ncclComm_t>(c));
}

void NcclGroup::exchange(const std::vector<DeviceProgram*>& ranks, const Exchange& x) {
  if (ranks.size() != comms_.size()) throw Error("internal: NCCL exchange over another number of ranks");
  const NcclApi& api = *static_cast<const NcclApi*>(api_);
  const size_t slice = x.floats / ranks.size();
  check(api, api.group_start(), "starting an exchange");
  for (size_t r = 0; r < ranks.size(); ++r) {
    float* buf = ranks[r]->arena_ptr() + x.offset;
    const auto stream = static_cast<cudaStream_t>(ranks[r]->stream_handle());
    const auto comm = static_cast<ncclComm_t>(comms_[r]);
    // In place: the sum into every rank's partial; rank r's slice r into every rank's buffer.
    const ncclResult_t res = x.kind == Exchange::Kind::Sum
                                 ? api.all_reduce(buf, buf, x.floats, ncclFloat32, ncclSum, comm, stream)
                                 : api.all_gather(buf + r * slice, buf, slice, ncclFloat32, comm, stream);
    if (res != ncclSuccess) {
      api.group_end();
      check(api, res, "queueing an exchange");
    }
  }
  check(api, api.group_end(), "exchanging between the ranks' launches");
}

#else  // no nccl.h at build time

std::string nccl_version() { throw Error("--tp-comm nccl: this build of mk had no nccl.h"); }
NcclGroup::NcclGroup(const std::vector<int>&) { nccl_version(); }
NcclGroup::~NcclGroup() = default;
void NcclGroup::exchange(const std::vector<DeviceProgram*>&, const Exchange&) { nccl_version(); }

#endif

}  // namespace mk::cuda
