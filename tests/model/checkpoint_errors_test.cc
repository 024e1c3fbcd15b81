// Checkpoint::open on each bad checkpoint of the corruption table: a phx::Error of the stated kind whose message
// names the file and says what is wrong. Runs under AddressSanitizer too (label asan).
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/checkpoint.h"
#include "tests/model/checkpoint_corruptions.h"
#include "tests/model/test_checkpoint.h"

namespace phx::testing {
namespace {

class CheckpointErrors : public ::testing::TestWithParam<CorruptionCase> {};

TEST_P(CheckpointErrors, OpenRefusesWithAMessageNamingTheFile) {
  const CorruptionCase& bad = GetParam();
  ScratchDir temp;
  const auto dir = temp.path() / "model";
  writeTestCheckpoint(dir);
  // The same checkpoint loads before it is corrupted, so the error below is the corruption's doing.
  ASSERT_NO_THROW(Checkpoint::open(dir));
  bad.corrupt(dir);
  try {
    Checkpoint::open(dir);
    FAIL() << bad.name << ": a corrupt checkpoint was accepted";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(error.kind(), bad.kind) << message;
    const std::string file = bad.file.empty() ? dir.filename().string() : bad.file;
    EXPECT_NE(message.find(file), std::string::npos) << "message does not name " << file << ": " << message;
    EXPECT_NE(message.find(bad.says), std::string::npos) << "message does not say '" << bad.says << "': " << message;
  }
}

INSTANTIATE_TEST_SUITE_P(Corruptions, CheckpointErrors, ::testing::ValuesIn(corruptionCases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace phx::testing
