// Files and the generated models the tests read: one definition each, for every test directory.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace phx::testing {

// The whole file as bytes; empty when it cannot be read (the comparison that follows then fails, naming it).
std::string slurp(const std::filesystem::path& file);

// The checkpoint the ctest fixtures generate for `preset` ("tiny", "small", "phi4-L4"): PHX_TEST_DATA_DIR/preset.
std::filesystem::path testModelDir(std::string_view preset);

}  // namespace phx::testing
