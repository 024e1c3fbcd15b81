// The control plane as an attacker meets it, with raw Cap'n Proto clients against real `phalanx worker` processes:
// a worker with a cluster secret refuses every call but hello until the caller proves the secret (and proves
// itself back); a newer coordinator epoch fences an older one; loadShard refuses directories outside --model-root;
// a step whose fields would overflow (issue 11: cachedTokens = INT64_MAX crashed the worker) is refused with a clear
// error and the worker keeps serving. At the executor level: a coordinator with the wrong secret, or none, is
// refused naming the worker, and a second coordinator takes a cluster over from the first.
#include <capnp/ez-rpc.h>
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <memory>

#include "common/error.h"
#include "model/checkpoint.h"
#include "partition/rank_shard.h"
#include "rpc/cluster_auth.h"
#include "rpc/control_codec.h"
#include "rpc/phalanx.capnp.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/cluster/worker_processes.h"

namespace phx::testing {
namespace {

constexpr const char* kSecret = "correct horse battery staple, 32b";

std::string secretFile(const std::string& name, const std::string& secret) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << secret << "\n";
  return path;
}

capnp::Data::Reader dataOf(const std::vector<uint8_t>& bytes) { return {bytes.data(), bytes.size()}; }
std::vector<uint8_t> bytesOf(capnp::Data::Reader data) { return {data.begin(), data.end()}; }

// One raw control connection: what any process that reaches the port can do.
class RawClient {
 public:
  explicit RawClient(const std::string& endpoint) : client_(std::make_unique<capnp::EzRpcClient>(endpoint)) {}
  proto::Worker::Client worker() { return client_->getMain<proto::Worker>(); }
  kj::WaitScope& wait() { return client_->getWaitScope(); }

  capnp::Response<proto::Worker::HelloResults> hello(uint64_t epoch) {
    auto request = worker().helloRequest();
    request.setProtocolVersion(proto::PROTOCOL_VERSION);
    request.setClientName("raw test client");
    request.setCoordinatorEpoch(epoch);
    return request.send().wait(wait());
  }

  // Proves `secret` against the challenge; returns the reply (its proof checked by the caller).
  capnp::Response<proto::Worker::AuthenticateResults> authenticate(const std::vector<uint8_t>& challenge,
                                                                   const std::string& secret, uint64_t epoch) {
    nonce_ = randomNonce();
    auto request = worker().authenticateRequest();
    request.setClientNonce(dataOf(nonce_));
    request.setProof(dataOf(authProof(secret, AuthRole::kCoordinator, challenge, nonce_, epoch)));
    return request.send().wait(wait());
  }
  const std::vector<uint8_t>& nonce() const { return nonce_; }

  // The failure kind of a health call (NONE-like: -1 when it succeeded).
  int healthFailure() {
    const auto reply = worker().healthRequest().send().wait(wait());
    return reply.hasFailure() ? int(reply.getFailure().getKind()) : -1;
  }

 private:
  std::unique_ptr<capnp::EzRpcClient> client_;  // its destructor may throw: held by pointer
  std::vector<uint8_t> nonce_;
};

template <typename Reply>
void expectDenied(const Reply& reply, const std::string& fragment, const char* call) {
  ASSERT_TRUE(reply.hasFailure()) << call << " was served";
  EXPECT_EQ(reply.getFailure().getKind(), proto::ErrorKind::PERMISSION_DENIED) << call;
  EXPECT_NE(std::string(reply.getFailure().getMessage().cStr()).find(fragment), std::string::npos)
      << call << ": " << reply.getFailure().getMessage().cStr();
}

TEST(WorkerSecurityTest, WithASecretEveryCallButHelloIsRefusedUntilAuthenticated) {
  UcxWorkers workers(1, {"--cluster-secret-file", secretFile("secret-a", kSecret)});
  RawClient raw(workers.endpoints()[0]);
  auto w = raw.worker();
  const auto hello = raw.hello(1);
  ASSERT_FALSE(hello.hasFailure());
  EXPECT_TRUE(hello.getAuthRequired());
  const std::vector<uint8_t> challenge = bytesOf(hello.getChallenge());
  EXPECT_EQ(challenge.size(), kAuthNonceBytes);

  auto load = w.loadShardRequest();
  load.setCheckpointDir(modelPath("tiny"));
  expectDenied(load.send().wait(raw.wait()), "not authenticated", "loadShard");
  expectDenied(w.dataPlaneAddressRequest().send().wait(raw.wait()), "not authenticated", "dataPlaneAddress");
  expectDenied(w.connectPeersRequest().send().wait(raw.wait()), "not authenticated", "connectPeers");
  expectDenied(w.stepRequest().send().wait(raw.wait()), "not authenticated", "step");
  expectDenied(w.healthRequest().send().wait(raw.wait()), "not authenticated", "health");
  expectDenied(w.shutdownRequest().send().wait(raw.wait()), "not authenticated", "shutdown");

  // A wrong secret is refused, and the challenge is spent: the right proof for it no longer works either.
  expectDenied(raw.authenticate(challenge, "the wrong secret, also 32 bytes", 1), "does not match", "authenticate");
  expectDenied(raw.authenticate(challenge, kSecret, 1), "no challenge is pending", "authenticate again");

  const auto fresh = raw.hello(1);
  const std::vector<uint8_t> next = bytesOf(fresh.getChallenge());
  EXPECT_NE(next, challenge);
  const auto accepted = raw.authenticate(next, kSecret, 1);
  ASSERT_FALSE(accepted.hasFailure()) << accepted.getFailure().getMessage().cStr();
  // The worker proves the secret back, over this exchange's nonces.
  EXPECT_TRUE(proofMatches(bytesOf(accepted.getProof()), authProof(kSecret, AuthRole::kWorker, raw.nonce(), next, 1)));
  EXPECT_EQ(raw.healthFailure(), -1);
}

TEST(WorkerSecurityTest, ANewerCoordinatorEpochFencesTheOlderOne) {
  UcxWorkers workers(1);
  RawClient first(workers.endpoints()[0]);
  RawClient second(workers.endpoints()[0]);
  ASSERT_FALSE(first.hello(100).hasFailure());
  EXPECT_EQ(first.healthFailure(), -1);
  ASSERT_FALSE(second.hello(200).hasFailure());
  EXPECT_EQ(second.healthFailure(), -1);
  EXPECT_EQ(first.healthFailure(), int(proto::ErrorKind::PERMISSION_DENIED));
  expectDenied(first.worker().stepRequest().send().wait(first.wait()), "fenced", "step from the older epoch");
  RawClient stale(workers.endpoints()[0]);
  expectDenied(stale.hello(150), "a newer coordinator (epoch 200)", "hello from an older epoch");
}

TEST(WorkerSecurityTest, LoadShardRefusesDirectoriesOutsideTheModelRoot) {
  UcxWorkers workers(1, {"--model-root", modelPath("tiny")});
  RawClient raw(workers.endpoints()[0]);
  ASSERT_FALSE(raw.hello(1).hasFailure());
  for (const std::string& outside : {modelPath("small"), modelPath("tiny") + "/../small", std::string("/etc")}) {
    auto load = raw.worker().loadShardRequest();
    load.setCheckpointDir(outside);
    load.getKv().setBlockSize(16);
    load.getKv().setBlocks(4);
    expectDenied(load.send().wait(raw.wait()), "outside this worker's --model-root", outside.c_str());
  }
}

// A loaded, connected single-worker cluster driven by hand: an overflowing step is refused, the next one served.
TEST(WorkerSecurityTest, AnOverflowingStepIsRefusedAndTheWorkerKeepsServing) {
  UcxWorkers workers(1);
  RawClient raw(workers.endpoints()[0]);
  ASSERT_FALSE(raw.hello(1).hasFailure());
  auto load = raw.worker().loadShardRequest();
  load.setCheckpointDir(modelPath("tiny"));
  encodeRankShard(wholeModelShard(Checkpoint::open(modelPath("tiny"))->config()), load.initShard());
  load.getKv().setBlockSize(16);
  load.getKv().setBlocks(4);
  load.setMaxStepTokens(64);
  ASSERT_FALSE(load.send().wait(raw.wait()).hasFailure());
  const auto address = raw.worker().dataPlaneAddressRequest().send().wait(raw.wait());
  auto connect = raw.worker().connectPeersRequest();
  connect.initAddresses(1).set(0, address.getAddress());
  connect.initGroup(1).set(0, 0);
  connect.setPreviousStagePeer(-1);
  connect.setNextStagePeer(-1);
  ASSERT_FALSE(connect.send().wait(raw.wait()).hasFailure());

  auto send = [&](int64_t cached, int64_t fresh) {
    StepBatch batch;
    batch.tokens = {1000};
    batch.sequences = {{cached, fresh, {0}, LogitsFor::kLast}};
    batch.candidates = 4;
    auto step = raw.worker().stepRequest();
    encodeStepBatch(batch, step.initBatch());
    return step.send().wait(raw.wait());
  };
  const auto hostile = send(std::numeric_limits<int64_t>::max(), 1);
  ASSERT_TRUE(hostile.hasFailure());
  EXPECT_EQ(hostile.getFailure().getKind(), proto::ErrorKind::INVALID_ARGUMENT);
  EXPECT_NE(std::string(hostile.getFailure().getMessage().cStr()).find("cachedTokens 9223372036854775807"),
            std::string::npos)
      << hostile.getFailure().getMessage().cStr();
  ASSERT_TRUE(send(1, std::numeric_limits<int64_t>::max()).hasFailure());
  const auto served = send(0, 1);
  ASSERT_FALSE(served.hasFailure()) << served.getFailure().getMessage().cStr();
  EXPECT_EQ(served.getOutput().getCandidates().size(), 1u);
}

ClusterExecutorOptions tinyCluster(const std::vector<std::string>& endpoints) {
  return clusterOptions("tiny", endpoints);
}

void expectRefused(ClusterExecutorOptions options, const std::string& fragment) {
  try {
    ClusterExecutor::start(std::move(options));
    ADD_FAILURE() << "the cluster started; expected a refusal with '" << fragment << "'";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kPermissionDenied) << error.what();
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(WorkerSecurityTest, CoordinatorsAuthenticateBothWays) {
  UcxWorkers secured(2, {"--cluster-secret-file", secretFile("secret-b", kSecret)});
  ClusterExecutorOptions right = tinyCluster(secured.endpoints());
  right.clusterSecret = kSecret;
  auto cluster = ClusterExecutor::start(right);
  const ScheduleResult result = runSchedule(*cluster, 2, kDefaultCandidates);
  EXPECT_EQ(result.greedy, runSchedule(localEngine("tiny").runner(), 2, kDefaultCandidates).greedy);
  cluster.reset();

  ClusterExecutorOptions wrong = tinyCluster(secured.endpoints());
  wrong.clusterSecret = "not the cluster's secret at all";
  expectRefused(wrong, "refused authentication: authenticate: the proof does not match");
  expectRefused(tinyCluster(secured.endpoints()), "requires a cluster secret");

  // A worker without a secret cannot prove it holds one: a coordinator with a secret does not drive it.
  UcxWorkers open(1);
  ClusterExecutorOptions toOpen = tinyCluster(open.endpoints());
  toOpen.clusterSecret = kSecret;
  expectRefused(toOpen, "has no cluster secret");
}

TEST(WorkerSecurityTest, ASecondCoordinatorTakesTheClusterOverAndFencesTheFirst) {
  UcxWorkers workers(2);
  ClusterExecutorOptions options = tinyCluster(workers.endpoints());
  options.epoch = 10;
  options.reconnectInterval = std::chrono::milliseconds(100000);  // the fenced one must not win it back
  auto first = ClusterExecutor::start(options);
  const ScheduleResult before = runSchedule(*first, 2, kDefaultCandidates);
  options.epoch = 20;
  auto second = ClusterExecutor::start(options);
  for (const WorkerLoadReport& report : second->loadReports()) {
    EXPECT_TRUE(report.reused) << report.endpoint << " loaded again";
    EXPECT_EQ(report.bytesRead, 0) << report.endpoint;
  }
  EXPECT_EQ(runSchedule(*second, 2, kDefaultCandidates).greedy, before.greedy);
  StepBatch step;
  step.tokens = {1};
  step.sequences = {{0, 1, {0}, LogitsFor::kLast}};
  try {
    first->run(step);
    ADD_FAILURE() << "the fenced coordinator's step ran";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kPermissionDenied) << error.what();
    EXPECT_NE(std::string(error.what()).find("fenced"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace phx::testing
