// `phalanx bench-comm` as a user runs it: a small run prints every transport asked for at every size, tuned UCX
// included; what it cannot do is refused by name before any rank starts (an unknown transport; shared memory
// across network namespaces, which would bypass the links being measured).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/cli_process.h"

namespace phx::testing {
namespace {

using ::testing::HasSubstr;

TEST(BenchCommCli, MeasuresEachTransportAskedForAtEachSize) {
  const ProcessResult run =
      runPhalanx({"bench-comm", "--sizes", "4KiB..16KiB", "--reps", "20", "--transports", "ucx-sm,ucx-tcp"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("ucx-sm (UCX_TLS=sm,self)"));
  EXPECT_THAT(run.out, HasSubstr("ucx-tcp (UCX_TLS=tcp,self UCX_NET_DEVICES=lo)"));
  EXPECT_THAT(run.err, HasSubstr("bench-comm: UCX all-reduce direct up to")) << "the ranks tune at connect";
  for (const char* bytes : {"        4096 ", "       10240 ", "       16384 "}) EXPECT_THAT(run.out, HasSubstr(bytes));
}

TEST(BenchCommCli, RefusesWhatItCannotMeasureByName) {
  ProcessResult run = runPhalanx({"bench-comm", "--transports", "ucx-sm,carrier-pigeon"});
  EXPECT_NE(run.exitCode, 0);
  EXPECT_THAT(run.err, HasSubstr("unknown transport 'carrier-pigeon'"));
  run = runPhalanx({"bench-comm", "--netns", "nowhere", "--transports", "ucx-sm"});
  EXPECT_NE(run.exitCode, 0);
  EXPECT_THAT(run.err, HasSubstr("ucx-sm shares memory"));
}

}  // namespace
}  // namespace phx::testing
