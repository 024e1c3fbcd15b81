// config.json: any bytes as the file's text, through the same parse the loader uses.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/error.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  try {
    phx::parseModelConfig(json, "fuzz/config.json");
  } catch (const phx::Error&) {
  }
  return 0;
}
