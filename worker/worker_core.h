// What one `phalanx worker` process shares between its control connections (worker/worker_session.h): the engine
// and its compute thread, the worker's state for health, and the newest coordinator epoch it has accepted. The
// calls here are the Worker interface's work once a session has admitted the caller; they answer a failure in the
// reply's `failure` field (kind as the schema's enum), never as an RPC exception. Event loop thread only.
#pragma once

#include <kj/async-io.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "rpc/phalanx.capnp.h"
#include "worker/compute_thread.h"
#include "worker/worker_engine.h"
#include "worker/worker_server.h"

namespace phx {

class WorkerCore : private kj::TaskSet::ErrorHandler {
 public:
  template <typename Params, typename Results>
  using Context = capnp::CallContext<Params, Results>;
  using LoadShardContext = Context<proto::Worker::LoadShardParams, proto::Worker::LoadShardResults>;
  using DataPlaneAddressContext =
      Context<proto::Worker::DataPlaneAddressParams, proto::Worker::DataPlaneAddressResults>;
  using ConnectPeersContext = Context<proto::Worker::ConnectPeersParams, proto::Worker::ConnectPeersResults>;
  using StepContext = Context<proto::Worker::StepParams, proto::Worker::StepResults>;
  WorkerCore(const WorkerServerOptions& options, int worldRank, ComputeThread& compute, kj::Timer& timer,
             kj::PromiseFulfiller<void>& stop);

  void describe(proto::Worker::HelloResults::Builder results) const;  // identity fields of a hello reply
  kj::Promise<void> loadShard(LoadShardContext context);
  kj::Promise<void> dataPlaneAddress(DataPlaneAddressContext context);
  kj::Promise<void> connectPeers(ConnectPeersContext context);
  kj::Promise<void> step(StepContext context);
  void health(proto::Worker::HealthResults::Builder results);
  void shutdown();

  // Fencing: a coordinator epoch is accepted when it is at least the newest seen; the newer one then owns the
  // worker and every session of an older epoch is refused.
  bool claimEpoch(uint64_t epoch);
  uint64_t acceptedEpoch() const { return acceptedEpoch_; }
  const std::optional<std::string>& secret() const { return options_.clusterSecret; }

  unsigned boundPort = 0;

 private:
  struct ProgressBox;
  void taskFailed(kj::Exception&& exception) override;
  void setState(proto::WorkerState state, const std::string& error);
  // The checkpoint directory if it lies under --model-root; else a permission-denied Error naming both.
  std::filesystem::path checkedCheckpointDir(const std::string& requested) const;
  kj::Promise<void> sendProgress(ProgressBox& box, kj::Maybe<proto::LoadProgress::Client>& progress);
  kj::Promise<void> reportProgress(std::shared_ptr<ProgressBox> box, kj::Maybe<proto::LoadProgress::Client> progress,
                                   uint64_t sent);

  const WorkerServerOptions options_;
  const int worldRank_;
  ComputeThread& compute_;
  kj::Timer& timer_;
  kj::PromiseFulfiller<void>& stop_;
  kj::TaskSet tasks_;
  WorkerEngine engine_{options_.transport, options_.metrics};  // touched only on the compute thread
  std::atomic<uint64_t> steps_{0};
  std::atomic<uint64_t> fingerprint_{0};
  uint64_t acceptedEpoch_ = 0;
  std::mutex stateMutex_;
  proto::WorkerState state_ = proto::WorkerState::IDLE;
  std::string lastError_;
};

}  // namespace phx
