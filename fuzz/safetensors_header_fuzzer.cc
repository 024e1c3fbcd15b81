// The safetensors header: the first 8 bytes give the header length, the rest is the JSON header of a file whose
// size is taken from the input (so offsets past the end, overlaps and size mismatches are all reachable).
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/error.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t fileSize = 0;
  std::memcpy(&fileSize, data, 8);
  const std::string_view header(reinterpret_cast<const char*>(data + 8), size - 8);
  try {
    phx::parseSafetensorsHeader(header, header.size(), fileSize % (uint64_t(1) << 40), "fuzz.safetensors");
  } catch (const phx::Error&) {
  }
  return 0;
}
