// The coordinator against a worker that misbehaves: a scripted Worker (a real Cap'n Proto server in this process,
// standing in for a buggy or hostile worker, which no real one can be made to be on demand) whose step replies are
// chosen by the test. An internal worker error arrives as kInternal (issue 11, case 5: on main it was read as a
// disconnect), and replies that do not add up (ids outside the vocabulary, the wrong number of rows) fail that
// step with a clear error, never the coordinator.
#include <capnp/ez-rpc.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/error.h"
#include "rpc/control_codec.h"
#include "rpc/phalanx.capnp.h"
#include "tests/cluster/cluster_harness.h"

namespace phx::testing {
namespace {

enum class StepScript { kInternalFailure, kForeignIds, kTooManyRows, kValid };

class ScriptedWorkerImpl final : public proto::Worker::Server {
 public:
  explicit ScriptedWorkerImpl(std::atomic<StepScript>& script) : script_(script) {}

 protected:
  kj::Promise<void> hello(HelloContext context) override {
    auto results = context.getResults();
    results.setProtocolVersion(proto::PROTOCOL_VERSION);
    results.setWorkerName("scripted");
    results.setCompute(proto::MatmulCompute::F32FMA);
    return kj::READY_NOW;
  }
  kj::Promise<void> loadShard(LoadShardContext context) override {
    context.getResults().setFingerprint(1);
    return kj::READY_NOW;
  }
  kj::Promise<void> dataPlaneAddress(DataPlaneAddressContext) override { return kj::READY_NOW; }
  kj::Promise<void> connectPeers(ConnectPeersContext) override { return kj::READY_NOW; }
  kj::Promise<void> health(HealthContext context) override {
    context.getResults().setState(proto::WorkerState::READY);
    return kj::READY_NOW;
  }
  kj::Promise<void> step(StepContext context) override {
    StepOutput output;
    output.vocabBegin = 0;
    output.vocabCount = 100352;
    output.rows = 1;
    output.candidates = {{{5, 6}, {1.0f, 0.5f}, 2.0f}};
    switch (script_.load()) {
      case StepScript::kInternalFailure:
        encodeFailure(Error(ErrorKind::kInternal, "simulated kernel bug"), context.getResults().initFailure());
        return kj::READY_NOW;
      case StepScript::kForeignIds:
        output.candidates[0].ids[1] = 200000;
        break;
      case StepScript::kTooManyRows:
        output.rows = 2;
        output.candidates.push_back(output.candidates[0]);
        break;
      case StepScript::kValid:
        break;
    }
    encodeStepOutput(output, context.getResults().initOutput());
    return kj::READY_NOW;
  }

 private:
  std::atomic<StepScript>& script_;
};

// The scripted worker's own event loop on a thread of its own, as a real worker's would be in its process.
class ScriptedWorker {
 public:
  ScriptedWorker() {
    thread_ = std::thread([this] {
      capnp::EzRpcServer server(kj::heap<ScriptedWorkerImpl>(script), "127.0.0.1", 0);
      auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
      stop_ = kj::mv(stop.fulfiller);
      port_ = int(server.getPort().wait(server.getWaitScope()));
      stop.promise.wait(server.getWaitScope());
    });
    while (port_.load() == 0) std::this_thread::yield();
  }
  ~ScriptedWorker() noexcept {
    stop_->fulfill();
    thread_.join();
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_.load()); }
  std::atomic<StepScript> script{StepScript::kValid};

 private:
  std::thread thread_;
  std::atomic<int> port_{0};
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stop_;
};

Error stepError(ClusterExecutor& cluster) {
  StepBatch step;
  step.tokens = {1};
  step.sequences = {{0, 1, {0}, LogitsFor::kLast}};
  step.candidates = 2;
  try {
    cluster.run(step);
  } catch (const Error& error) {
    return error;
  }
  return Error(ErrorKind::kInvalidArgument, "(the step succeeded)");
}

class ScriptedWorkerTest : public ::testing::Test {
 protected:
  ScriptedWorkerTest() : cluster_(startCluster("tiny", planFor("tiny", 1, 1), {worker_.endpoint()})) {}
  ScriptedWorker worker_;
  std::unique_ptr<ClusterExecutor> cluster_;
};

TEST_F(ScriptedWorkerTest, AnInternalWorkerErrorArrivesAsInternal) {
  worker_.script = StepScript::kInternalFailure;
  const Error error = stepError(*cluster_);
  EXPECT_EQ(error.kind(), ErrorKind::kInternal) << error.what();
  EXPECT_NE(std::string(error.what()).find("simulated kernel bug"), std::string::npos) << error.what();
}

TEST_F(ScriptedWorkerTest, RepliesThatDoNotAddUpFailTheStepNotTheCoordinator) {
  worker_.script = StepScript::kForeignIds;
  Error error = stepError(*cluster_);
  EXPECT_EQ(error.kind(), ErrorKind::kInternal) << error.what();
  EXPECT_NE(std::string(error.what()).find("names token 200000, outside its vocab slice"), std::string::npos)
      << error.what();

  ASSERT_TRUE(cluster_->waitReady(std::chrono::seconds(30)));
  worker_.script = StepScript::kTooManyRows;
  error = stepError(*cluster_);
  EXPECT_EQ(error.kind(), ErrorKind::kInternal) << error.what();
  EXPECT_NE(std::string(error.what()).find("answered 2 logit rows for a batch that asked for 1"), std::string::npos)
      << error.what();

  ASSERT_TRUE(cluster_->waitReady(std::chrono::seconds(30)));
  worker_.script = StepScript::kValid;
  EXPECT_EQ(stepError(*cluster_).kind(), ErrorKind::kInvalidArgument) << "a valid reply after bad ones failed";
}

}  // namespace
}  // namespace phx::testing
