// The CUDA backend of a build made without nvcc: no device is ever present, so the engine runs on
// the CPU and `--device cuda` says why it cannot. Compiled only when the CUDA compiler is absent.
#include "cuda/cuda_backend.h"
#include "cuda/nccl_exchange.h"
#include "model/error.h"

namespace mk::cuda {
namespace {
[[noreturn]] void unavailable() { throw Error("this build of mk has no CUDA support (nvcc was not found)"); }
}  // namespace

DeviceInfo query_device(int ordinal) {
  DeviceInfo info;
  info.ordinal = ordinal;
  info.why_absent = "this build of mk has no CUDA support";
  return info;
}
int device_count() { return 0; }
bool peer_access(int from, int to) { return from == to; }
double measure_read_bandwidth_gbps(size_t) { unavailable(); }
const char* specialized_build(const ModelDims&) { return nullptr; }
DeviceModel::DeviceModel(const std::vector<WeightDecl>&, const HostWeights&, const ModelDims&, int) { unavailable(); }
DeviceModel::~DeviceModel() = default;
DeviceProgram::DeviceProgram(DeviceModel& model, const Program& program) : model_(model), program_(program) {
  unavailable();
}
DeviceProgram::~DeviceProgram() = default;
void DeviceProgram::set_tokens(const int32_t*, uint32_t) { unavailable(); }
void DeviceProgram::run(uint32_t, bool, uint32_t) { unavailable(); }
void DeviceProgram::run_launch(uint32_t, uint32_t, bool, uint32_t) { unavailable(); }
void DeviceProgram::exchange_after(uint32_t) { unavailable(); }
void DeviceProgram::synchronize() { unavailable(); }
const float* DeviceProgram::read_logits() const { unavailable(); }
void DeviceProgram::join_ranks(const std::vector<DeviceProgram*>&) { unavailable(); }
int32_t DeviceProgram::read_token(uint32_t) const { unavailable(); }
std::vector<int32_t> DeviceProgram::read_history(uint32_t) const { unavailable(); }
void DeviceProgram::enable_trace(bool) { unavailable(); }
float DeviceProgram::last_run_ms() const { unavailable(); }
std::vector<uint64_t> DeviceProgram::read_trace() const { unavailable(); }
std::vector<uint64_t> DeviceProgram::read_phases() const { unavailable(); }
std::string nccl_version() { unavailable(); }
NcclGroup::NcclGroup(const std::vector<int>&) { unavailable(); }
NcclGroup::~NcclGroup() = default;
void NcclGroup::exchange(const std::vector<DeviceProgram*>&, const Exchange&) { unavailable(); }

}  // namespace mk::cuda
