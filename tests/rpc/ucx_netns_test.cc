// UCX over TCP between two ranks in separate network namespaces joined by a veth pair (netns.sh): the all-reduce
// result must be right and the bytes must show up on the veth interfaces, so the traffic really crossed them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rpc/ucx_communicator.h"
#include "tests/rpc/rank_launcher.h"

namespace phx::testing {
namespace {

const std::string kScript = std::string(PHX_SOURCE_DIR) + "/tests/rpc/netns.sh";

std::string run(const std::string& command, int* status) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  char buffer[512];
  while (pipe && fgets(buffer, sizeof buffer, pipe)) output += buffer;
  *status = pipe ? pclose(pipe) : -1;
  return output;
}

// Brings the namespaces up in the constructor and always down in the destructor, even when a check fails.
class NamespacePair {
 public:
  NamespacePair() : name_("phx" + std::to_string(getpid() % 100000)) {
    upOutput_ = run(kScript + " up " + name_, &status_);
  }
  ~NamespacePair() {
    int ignored;
    run(kScript + " down " + name_, &ignored);
  }
  bool up() const { return status_ == 0; }
  const std::string& why() const { return upOutput_; }
  std::string ns(char side) const { return name_ + "-" + side; }
  std::string device(char side) const { return name_ + side; }
  long long counter(char side, const char* statistic) const {
    int status;
    const std::string text = run("ip netns exec " + ns(side) + " cat /sys/class/net/" + device(side) +
                                     "/statistics/" + statistic, &status);
    return status == 0 ? std::atoll(text.c_str()) : -1;
  }

 private:
  std::string name_;
  std::string upOutput_;
  int status_ = -1;
};

TEST(UcxAcrossNamespaces, AllReduceCrossesTheVethPair) {
  NamespacePair pair;
  if (!pair.up()) {
    if (geteuid() == 0) FAIL() << "netns.sh up failed as root: " << pair.why();
    GTEST_SKIP() << "cannot create network namespaces (needs root): " << pair.why();
  }
  const long long before = pair.counter('b', "rx_bytes");
  constexpr std::size_t kCount = 1 << 18;  // 1 MiB of floats
  SharedDir dir;
  std::vector<ChildEnv> envs;
  for (char side : {'a', 'b'}) {
    envs.push_back({{{"UCX_TLS", "tcp,self"}, {"UCX_NET_DEVICES", pair.device(side)}}, pair.ns(side)});
  }
  const auto results = runChildren(2, envs, [&](int self) {
    auto comm = UcxCommunicator::create();
    connectThroughDir(*comm, dir, "addr", 2, self, {0, 1});
    for (std::size_t count : {std::size_t{5120}, kCount}) {
      std::vector<float> data(count);
      for (std::size_t i = 0; i < count; ++i) data[i] = static_cast<float>((i % 1000) * (self + 1));
      comm->allReduceSum(data);
      for (std::size_t i = 0; i < count; ++i) {
        PHX_CHILD_CHECK(data[i] == static_cast<float>((i % 1000) * 3), "element " + std::to_string(i));
      }
    }
  });
  EXPECT_EQ(results, (std::vector<int>{0, 0}));
  const long long received = pair.counter('b', "rx_bytes") - before;
  EXPECT_GE(received, static_cast<long long>(kCount * sizeof(float))) << "bytes received on " << pair.device('b');
}

}  // namespace
}  // namespace phx::testing
