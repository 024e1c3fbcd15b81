// tokenizer.json: the input written as a model directory's tokenizer.json and loaded as Tokenizer::load does; a
// tokenizer that loads then encodes and decodes a short text.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() / ("phx-fuzz-tokenizer-" + std::to_string(getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  std::ofstream(dir / "tokenizer.json", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), std::streamsize(size));
  try {
    const phx::Tokenizer tokenizer = phx::Tokenizer::load(dir);
    const auto ids = tokenizer.encode("Hello, world! <|im_start|>", true);
    (void)tokenizer.decode(ids);
  } catch (const phx::Error&) {
  }
  return 0;
}
