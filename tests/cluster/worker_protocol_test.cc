// The control plane of one real `phalanx worker` as a client sees it: a client speaking another protocol version is
// refused naming both versions; calls out of order (a step before any shard is loaded) fail with a clear error
// whose kind arrives as the schema's enum; health answers at any time; SIGTERM lets the running step finish; a bad
// --listen is refused by the command line.
#include <capnp/ez-rpc.h>
#include <signal.h>
#include <sys/wait.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "model/checkpoint.h"
#include "partition/rank_shard.h"
#include "rpc/control_codec.h"
#include "rpc/phalanx.capnp.h"
#include "tests/cluster/worker_processes.h"
#include "tests/common/test_files.h"

namespace phx::testing {
namespace {

class WorkerProtocolTest : public ::testing::Test {
 protected:
  WorkerProtocolTest()
      : workers_(1), client_(std::make_unique<capnp::EzRpcClient>(workers_.endpoints()[0])) {}
  proto::Worker::Client worker() { return client_->getMain<proto::Worker>(); }
  kj::WaitScope& wait() { return client_->getWaitScope(); }
  capnp::RemotePromise<proto::Worker::StepResults> startLongPrefill();
  void greet() {
    auto hello = worker().helloRequest();
    hello.setProtocolVersion(proto::PROTOCOL_VERSION);
    hello.setClientName("test client");
    ASSERT_FALSE(hello.send().wait(wait()).hasFailure());
  }

  UcxWorkers workers_;
  std::unique_ptr<capnp::EzRpcClient> client_;  // EzRpcClient's destructor may throw: held by pointer
};

TEST_F(WorkerProtocolTest, HelloRefusesAnotherProtocolVersionNamingBoth) {
  auto request = worker().helloRequest();
  request.setProtocolVersion(proto::PROTOCOL_VERSION + 1);
  request.setClientName("test client");
  {
    const auto refused = request.send().wait(wait());
    ASSERT_TRUE(refused.hasFailure()) << "hello with another protocol version was accepted";
    EXPECT_EQ(refused.getFailure().getKind(), proto::ErrorKind::INVALID_ARGUMENT);
    const std::string text = refused.getFailure().getMessage().cStr();
    EXPECT_NE(text.find("protocol version mismatch"), std::string::npos) << text;
    EXPECT_NE(text.find("version " + std::to_string(proto::PROTOCOL_VERSION + 1)), std::string::npos) << text;
    EXPECT_NE(text.find("version " + std::to_string(proto::PROTOCOL_VERSION)), std::string::npos) << text;
  }
  auto ok = worker().helloRequest();
  ok.setProtocolVersion(proto::PROTOCOL_VERSION);
  ok.setClientName("test client");
  const auto reply = ok.send().wait(wait());
  EXPECT_FALSE(reply.hasFailure());
  EXPECT_EQ(reply.getProtocolVersion(), proto::PROTOCOL_VERSION);
  EXPECT_FALSE(reply.getAuthRequired());
  EXPECT_NE(std::string(reply.getCpu().cStr()).find("family"), std::string::npos) << reply.getCpu().cStr();
  EXPECT_EQ(reply.getPid(), workers_.pid(0));
  EXPECT_EQ(std::string(reply.getTransport().cStr()), "ucx");
}

TEST_F(WorkerProtocolTest, StepBeforeLoadFailsClearlyAndHealthAnswers) {
  greet();
  auto step = worker().stepRequest();
  auto batch = step.initBatch();
  batch.initTokens(1).set(0, 1);
  auto sequence = batch.initSequences(1)[0];
  sequence.setNewTokens(1);
  sequence.initBlockTable(1).set(0, 0);
  {
    const auto refused = step.send().wait(wait());
    ASSERT_TRUE(refused.hasFailure()) << "a step before loadShard succeeded";
    EXPECT_EQ(refused.getFailure().getKind(), proto::ErrorKind::INVALID_ARGUMENT);
    EXPECT_NE(std::string(refused.getFailure().getMessage().cStr()).find("not connected to its peers"),
              std::string::npos)
        << refused.getFailure().getMessage().cStr();
  }
  auto load = worker().loadShardRequest();
  load.setCheckpointDir(std::string(PHX_TEST_DATA_DIR) + "/nonexistent-model");
  load.getKv().setBlockSize(16);
  load.getKv().setBlocks(4);
  const auto failed = load.send().wait(wait());
  ASSERT_TRUE(failed.hasFailure());
  const auto health = worker().healthRequest().send().wait(wait());
  EXPECT_EQ(health.getState(), proto::WorkerState::FAILED);
  EXPECT_FALSE(health.getLoaded());
  EXPECT_NE(std::string(health.getLastError().cStr()).find("nonexistent-model"), std::string::npos)
      << health.getLastError().cStr();
  EXPECT_GT(health.getRssBytes(), 0);
}

// Loads the whole small model and joins a one-worker data plane, then sends a 512-token prefill (about a second).
capnp::RemotePromise<proto::Worker::StepResults> WorkerProtocolTest::startLongPrefill() {
  greet();
  const std::string model = ::phx::testing::testModelDir("small").string();
  const RankShard shard = wholeModelShard(Checkpoint::open(model)->config());
  auto load = worker().loadShardRequest();
  load.setCheckpointDir(model);
  encodeRankShard(shard, load.initShard());
  load.getKv().setBlockSize(16);
  load.getKv().setBlocks(32);
  load.setThreads(1);
  load.setMaxStepTokens(512);
  const auto loaded = load.send().wait(wait());
  EXPECT_GT(loaded.getWeightBytes(), 0);
  const auto address = worker().dataPlaneAddressRequest().send().wait(wait());
  auto connect = worker().connectPeersRequest();
  connect.initAddresses(1).set(0, address.getAddress());
  connect.initGroup(1).set(0, 0);
  connect.setSelf(0);
  connect.setPreviousStagePeer(-1);
  connect.setNextStagePeer(-1);
  connect.send().wait(wait());

  StepBatch prefill;
  for (int i = 0; i < 512; ++i) prefill.tokens.push_back(1000 + i);
  std::vector<int32_t> blocks;
  for (int b = 0; b < 32; ++b) blocks.push_back(b);
  prefill.sequences = {{0, 512, blocks, LogitsFor::kLast}};
  prefill.candidates = 8;
  auto step = worker().stepRequest();
  encodeStepBatch(prefill, step.initBatch());
  return step.send();
}

// The compute thread runs the step; the event loop stays free: health answers while a long prefill runs.
TEST_F(WorkerProtocolTest, HealthAnswersDuringALongPrefill) {
  auto running = startLongPrefill();
  const auto health = worker().healthRequest().send().wait(wait());
  EXPECT_FALSE(running.poll(wait())) << "health waited for the step";
  EXPECT_EQ(health.getState(), proto::WorkerState::READY);
  const auto done = running.wait(wait());
  EXPECT_EQ(done.getOutput().getCandidates().size(), 1u);
  EXPECT_GT(done.getTimings().getComputeSeconds(), 0);
}

// SIGTERM drains: the step in progress finishes and its reply arrives, then the worker exits 0.
TEST_F(WorkerProtocolTest, SigtermLetsTheRunningStepFinishThenExits) {
  auto running = startLongPrefill();
  EXPECT_FALSE(running.poll(wait()));  // runs this client's loop once: the step is written to the socket
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_EQ(kill(workers_.pid(0), SIGTERM), 0);
  const auto done = running.wait(wait());
  EXPECT_FALSE(done.hasFailure());
  EXPECT_EQ(done.getOutput().getCandidates().size(), 1u);
  int status = -1;
  for (int i = 0; i < 200 && waitpid(workers_.pid(0), &status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST(WorkerCommandTest, BadListenAddressIsRefused) {
  for (const char* listen : {"nonsense", "127.0.0.1:70000", "127.0.0.1:x"}) {
    ListeningProcess worker({PHX_BINARY, "worker", "--listen", listen}, {});
    EXPECT_THROW(worker.waitListening(1, std::chrono::seconds(10)), std::runtime_error) << listen;
  }
}

}  // namespace
}  // namespace phx::testing
