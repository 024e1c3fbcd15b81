#include "tests/common/test_files.h"

#include <fstream>
#include <sstream>

namespace phx::testing {

std::string slurp(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::filesystem::path testModelDir(std::string_view preset) {
  return std::filesystem::path(PHX_TEST_DATA_DIR) / preset;
}

}  // namespace phx::testing
