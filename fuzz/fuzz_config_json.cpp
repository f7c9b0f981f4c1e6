// config.json: mk::parse_config_json on arbitrary text.
#include <cstdint>
#include <string_view>

#include "model/config.h"
#include "model/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const mk::ModelConfig c =
        mk::parse_config_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
    (void)mk::arch_name(c.arch);
  } catch (const mk::Error&) {
  }
  return 0;
}
