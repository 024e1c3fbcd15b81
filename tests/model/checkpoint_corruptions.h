// The bad checkpoints the loader must refuse, as a table shared by the loader's unit tests and the inspect CLI
// tests: each case corrupts a freshly written valid 3-shard test checkpoint in one way and says what a good error
// message must contain.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "common/error.h"

namespace phx::testing {

struct CorruptionCase {
  std::string name;  // a test name: letters and digits only
  std::function<void(const std::filesystem::path& dir)> corrupt;
  std::string file;  // the file (or directory) name the message must mention
  std::string says;  // what the message must say is wrong
  ErrorKind kind = ErrorKind::kInvalidCheckpoint;
};

const std::vector<CorruptionCase>& corruptionCases();

// gtest prints a case by its name.
inline void PrintTo(const CorruptionCase& bad, std::ostream* out) { *out << bad.name; }

// The name of shard i (1-based) of the 3-shard test checkpoint the cases start from.
std::string testShardName(int index);

}  // namespace phx::testing
