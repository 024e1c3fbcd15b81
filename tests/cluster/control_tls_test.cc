// Mutual TLS on the control plane, with certificates made by openssl in the test: a coordinator and workers whose
// certificates the cluster's CA signed compute the same tokens as one process; a coordinator signed by another CA,
// one without TLS, and a worker whose certificate names another host are all refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/worker_processes.h"

namespace phx::testing {
namespace {

namespace fs = std::filesystem;

// A CA and certificates for the test: worker (127.0.0.1: kj checks the dialled host as a DNS name, so the address
// is a DNS entry too), coordinator (client), elsewhere (a worker certificate
// for another host), and a rogue CA's coordinator certificate. EC keys: quick to make.
class Certificates {
 public:
  // One directory per process: ctest runs these tests side by side, each in its own process.
  Certificates() : dir_(fs::path(::testing::TempDir()) / ("phalanx-tls-" + std::to_string(getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem "
        "-days 2 -subj /CN=phalanx-test-ca");
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout rogue.key "
        "-out rogue.pem -days 2 -subj /CN=rogue-ca");
    issue("worker", "ca", "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
    issue("elsewhere", "ca", "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth");
    issue("coordinator", "ca", "extendedKeyUsage=clientAuth");
    issue("intruder", "rogue", "extendedKeyUsage=clientAuth");
  }
  ~Certificates() { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  ControlTlsFiles files(const std::string& name) const {
    return {path(name + ".pem"), path(name + ".key"), path("ca.pem")};
  }
  std::vector<std::string> workerFlags(const std::string& name) const {
    return {"--tls-cert", path(name + ".pem"), "--tls-key", path(name + ".key"), "--tls-ca", path("ca.pem")};
  }

 private:
  void run(const std::string& command) const {
    const std::string line = "cd '" + dir_.string() + "' && " + command + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(line.c_str()), 0) << line;
  }
  void issue(const std::string& name, const std::string& ca, const std::string& extensions) const {
    std::ofstream(dir_ / (name + ".ext")) << extensions << "\n";
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + name + ".key -out " + name +
        ".csr -subj /CN=" + name);
    run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca + ".key -CAcreateserial -out " + name +
        ".pem -days 2 -extfile " + name + ".ext");
  }
  fs::path dir_;
};

ClusterExecutorOptions tinyCluster(const std::vector<std::string>& endpoints) {
  return clusterOptions("tiny", endpoints);
}

std::string refusal(ClusterExecutorOptions options) {
  try {
    ClusterExecutor::start(std::move(options));
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(ControlTlsTest, MutualTlsClusterComputesWhatOneProcessDoes) {
  const Certificates certificates;
  UcxWorkers workers(2, certificates.workerFlags("worker"));
  ClusterExecutorOptions options = tinyCluster(workers.endpoints());
  options.tls = certificates.files("coordinator");
  auto cluster = ClusterExecutor::start(options);
  EXPECT_EQ(runSchedule(*cluster, 3, kDefaultCandidates).greedy,
            runSchedule(localEngine("tiny").runner(), 3, kDefaultCandidates).greedy);
}

TEST(ControlTlsTest, CoordinatorsWithoutTheClustersCertificateAreRefused) {
  const Certificates certificates;
  UcxWorkers workers(1, certificates.workerFlags("worker"));
  ClusterExecutorOptions rogue = tinyCluster(workers.endpoints());
  rogue.tls = ControlTlsFiles{certificates.path("intruder.pem"), certificates.path("intruder.key"),
                              certificates.path("ca.pem")};
  EXPECT_NE(refusal(rogue), "") << "a coordinator signed by another CA was served";
  ClusterExecutorOptions plain = tinyCluster(workers.endpoints());
  plain.connectTimeout = std::chrono::milliseconds(3000);  // a plain client waits for a hello that never comes
  EXPECT_NE(refusal(plain), "") << "a coordinator without TLS was served";
  // The worker is unharmed: the cluster's own coordinator still gets in.
  ClusterExecutorOptions good = tinyCluster(workers.endpoints());
  good.tls = certificates.files("coordinator");
  EXPECT_EQ(refusal(good), "");
}

TEST(ControlTlsTest, AWorkerWhoseCertificateNamesAnotherHostIsRefused) {
  const Certificates certificates;
  UcxWorkers workers(1, certificates.workerFlags("elsewhere"));
  ClusterExecutorOptions options = tinyCluster(workers.endpoints());
  options.tls = certificates.files("coordinator");
  const std::string why = refusal(options);
  EXPECT_NE(why.find("the TLS handshake failed"), std::string::npos) << why;
}

}  // namespace
}  // namespace phx::testing
