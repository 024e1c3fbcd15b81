// Files and the generated models the tests read: one definition each, for every test directory.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace phx::testing {

// The whole file as bytes; empty when it cannot be read (the comparison that follows then fails, naming it).
std::string slurp(const std::filesystem::path& file);

// A fresh, empty directory under the system's temporary directory (mkdtemp: unique to this process and this
// object, so tests ctest runs in parallel never share one), removed with everything in it on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(std::string_view prefix = "phx-test");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The checkpoint the ctest fixtures generate for `preset` ("tiny", "small", "phi4-L4"): PHX_TEST_DATA_DIR/preset.
std::filesystem::path testModelDir(std::string_view preset);

}  // namespace phx::testing
