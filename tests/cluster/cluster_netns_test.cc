// Workers on separate hosts: each `phalanx worker` runs in its own network namespace with its own address on a
// bridge (scripts/netns_hosts.sh), the coordinator (this process) reaches them over TCP, and UCX carries
// the all-reduces over TCP between the namespaces (UCX_TLS=tcp,self on the worker's own interface), so every byte
// really crosses interfaces. Needs root (CI runs as root); elsewhere it is skipped, saying why.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/worker_processes.h"

namespace phx::testing {
namespace {

constexpr const char* kName = "phxnt";
constexpr int kWorkers = 2;

std::string run(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return output;
  char buffer[512];
  while (fgets(buffer, sizeof(buffer), pipe)) output += buffer;
  pclose(pipe);
  return output;
}

// The namespaces and bridge, removed again even when the test fails.
class NamespaceHosts {
 public:
  NamespaceHosts() {
    up_ = std::system(command("up").c_str()) == 0;
  }
  ~NamespaceHosts() { (void)std::system(command("down").c_str()); }
  bool up() const { return up_; }

 private:
  static std::string command(const char* action) {
    return std::string(PHX_SOURCE_DIR "/scripts/netns_hosts.sh ") + action + " " + kName + " " +
           std::to_string(kWorkers);
  }
  bool up_ = false;
};

std::string address(int worker) { return "10.78.0." + std::to_string(worker + 1); }
std::string ns(int worker) { return std::string(kName) + "-" + std::to_string(worker); }

TEST(ClusterAcrossNamespaces, WorkersOnTheirOwnAddressesMatchOneProcess) {
  if (geteuid() != 0) GTEST_SKIP() << "ip netns needs root; CI runs as root";
  NamespaceHosts hosts;
  ASSERT_TRUE(hosts.up()) << "netns_hosts.sh up failed (no CAP_NET_ADMIN in this container?)";

  std::vector<std::unique_ptr<ListeningProcess>> workers;
  std::vector<std::string> endpoints;
  for (int w = 0; w < kWorkers; ++w) {
    const std::string endpoint = address(w) + ":7400";
    workers.push_back(std::make_unique<ListeningProcess>(
        std::vector<std::string>{"ip", "netns", "exec", ns(w), PHX_BINARY, "worker", "--listen", endpoint,
                                 "--threads", "1", "--model-root", PHX_TEST_DATA_DIR},
        std::map<std::string, std::string>{{"UCX_TLS", "tcp,self"},
                                           {"UCX_NET_DEVICES", std::string(kName) + std::to_string(w)},
                                           {"OMP_WAIT_POLICY", "passive"}}));
    workers.back()->waitListening(1, std::chrono::seconds(30));
    endpoints.push_back(endpoint);
  }

  const ShardPlan plan = planFor("tiny", kWorkers, 1);
  auto cluster = startCluster("tiny", plan, endpoints);
  ASSERT_TRUE(cluster->ready());
  const ScheduleResult expected = runSchedule(localEngine("tiny").runner(), 6, 0);
  const ScheduleResult got = runSchedule(*cluster, 6, kDefaultCandidates);
  EXPECT_EQ(got.greedy, expected.greedy);
  ASSERT_EQ(got.prefillLogits.size(), expected.prefillLogits.size());
  double error = 0, power = 0;
  for (size_t i = 0; i < expected.prefillLogits.size(); ++i) {
    error += std::pow(double(got.prefillLogits[i]) - expected.prefillLogits[i], 2);
    power += std::pow(double(expected.prefillLogits[i]), 2);
  }
  EXPECT_LT(error / power, 1e-4);

  // The data plane is a TCP connection from one worker's address to the other's: worker to worker, not via us.
  const std::string sockets = run("ip netns exec " + ns(0) + " ss -tnH state established");
  EXPECT_NE(sockets.find(address(1) + ":"), std::string::npos)
      << "no TCP connection from " << address(0) << " to " << address(1) << "; sockets:\n" << sockets;
}

}  // namespace
}  // namespace phx::testing
