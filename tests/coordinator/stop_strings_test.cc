#include "coordinator/stop_strings.h"

#include <gtest/gtest.h>

namespace phx {
namespace {

// Feeds `pieces` one at a time and returns everything shown to the client.
std::string stream(StopStringFilter& filter, const std::vector<std::string>& pieces) {
  std::string shown;
  for (const auto& piece : pieces) shown += filter.push(piece);
  return shown + filter.finish();
}

TEST(StopStrings, StopsBeforeTheStopStringAcrossPieces) {
  StopStringFilter filter({"STOP"});
  EXPECT_EQ(stream(filter, {"hello S", "TO", "P world"}), "hello ");
  EXPECT_TRUE(filter.stopped());
}

TEST(StopStrings, HoldsBackOnlyWhatCouldStartAStop) {
  StopStringFilter filter({"\n\n", "END"});
  EXPECT_EQ(filter.push("abc E"), "abc ");
  EXPECT_EQ(filter.push("x"), "Ex");
  EXPECT_EQ(filter.push("\n"), "");
  EXPECT_EQ(filter.push("y"), "\ny");
  EXPECT_FALSE(filter.stopped());
}

TEST(StopStrings, EarliestOfSeveralWins) {
  StopStringFilter filter({"world", "lo"});
  EXPECT_EQ(stream(filter, {"hello world"}), "hel");
}

TEST(StopStrings, NoStopsPassEverything) {
  StopStringFilter filter({});
  EXPECT_EQ(stream(filter, {"a", "b"}), "ab");
  EXPECT_FALSE(filter.stopped());
}

}  // namespace
}  // namespace phx
