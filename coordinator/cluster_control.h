// The I/O-thread side of a ClusterExecutor: one Cap'n Proto connection per worker, driven by a kj event loop on a
// thread of its own. Every member below the public calls is touched only on that thread; the public calls hand
// work to it (kj::Executor::executeSync) and turn its failures into phx::Error naming the worker.
//
// Errors keep their kind end to end: a worker's failure arrives as the schema's enum (rpc/phalanx.capnp Failure),
// and every error raised on the loop is recorded (raise()) so that the blocking call rethrows it as it was, kind
// included; what the RPC system itself throws (the connection broke) is a disconnect. Handshake and
// authentication: coordinator/cluster_handshake.cc.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "coordinator/cluster_executor.h"
#include "rpc/phalanx.capnp.h"

namespace phx {

inline kj::Duration toKj(std::chrono::milliseconds ms) { return ms.count() * kj::MILLISECONDS; }

struct ClusterExecutor::PendingStep {
  const StepBatch* batch = nullptr;
  std::chrono::steady_clock::time_point launchedAt;
  std::vector<StepOutput> outputs;        // by global worker index
  std::vector<RankStepTimings> timings;
  bool done = false;  // guarded by Control's pending mutex
  std::optional<Error> error;
};

struct ClusterExecutor::Control {
  explicit Control(ClusterExecutorOptions options);
  ~Control();

  // Blocking calls, from the executor's caller thread.
  void startUp();  // connect, hello, load, swap: throws phx::Error naming the worker
  // Sends the step to every worker and returns; await() blocks until every worker answered, then outputs[i] and
  // timings[i] are worker i's, or throws phx::Error (kDisconnected naming the worker; kInvalidArgument when the
  // workers refuse the batch). Steps launched together run in launch order on every worker.
  void launch(const StepBatch& batch, const std::shared_ptr<PendingStep>& step);
  void await(PendingStep& step);
  std::vector<WorkerLoadReport> loadReports();
  void shutdownWorkers();
  MatmulCompute compute() const { return MatmulCompute(compute_.load()); }

  std::atomic<bool> ready{false};
  std::atomic<uint64_t> kvEpoch{0};  // bumped each time the whole cluster is (back) up
  const ClusterExecutorOptions options;

 private:
  struct Link {
    int index = 0;
    std::string endpoint;
    std::string host;
    unsigned port = 0;
    kj::Own<kj::AsyncIoStream> stream;
    kj::Own<capnp::TwoPartyClient> rpc;
    kj::Maybe<proto::Worker::Client> client;
    uint64_t generation = 0;  // bumped per connection: a stale disconnect watcher does nothing
    bool loaded = false;
    std::optional<MatmulCompute> defaultCompute;  // the worker's own table choice, from hello
    std::vector<std::byte> address;
    WorkerLoadReport report;
    std::string name() const { return "worker " + std::to_string(index) + " (" + endpoint + ")"; }
  };
  class ProgressLogger;
  class TaskErrors : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&&) override {}
  };

  void threadMain();
  template <typename Func>
  void call(Func&& func);
  void log(const std::string& line) const;

  kj::Promise<void> bringUp();
  kj::Promise<void> connectWithRetry(Link& link, kj::TimePoint deadline);
  kj::Promise<void> connectAndHello(Link& link);
  kj::Promise<void> openConnection(Link& link);
  kj::Promise<void> greet(Link& link);
  kj::Promise<void> authenticate(Link& link, std::vector<uint8_t> challenge);
  void chooseCompute();
  kj::Promise<void> load(Link& link);
  kj::Promise<void> swapAddresses();
  kj::Promise<void> heartbeat();
  kj::Promise<void> stepAll(const StepBatch& batch, std::vector<StepOutput>& outputs,
                            std::vector<RankStepTimings>& timings);
  void finish(PendingStep& step, std::optional<Error> error);
  void drop(Link& link, const std::string& reason);
  void startRecovery(const std::string& reason);
  kj::Promise<void> recoveryLoop();
  template <typename T>
  kj::Promise<T> withTimeout(kj::Promise<T> promise, kj::Duration timeout, std::string message);
  // Records the error for the blocking call that waits on this loop (the first one wins) and returns it as the
  // kj exception that travels through the promises: DISCONNECTED for kDisconnected, FAILED otherwise.
  kj::Exception raise(Error error);
  // A worker's failure reported in a reply, or an RPC-level failure (a disconnect), named after the worker.
  kj::Exception workerFailure(const Link& link, const std::string& what, proto::Failure::Reader failure);
  kj::Exception lostWorker(const Link& link, const std::string& what, const kj::Exception& e);
  Error toError(const kj::Exception& e) const;

  std::vector<Link> links_;
  std::unique_ptr<ControlTls> tls_;
  std::optional<Error> raised_;
  std::atomic<int> compute_{int(MatmulCompute::kF32Fma)};
  std::string lastFailure_;
  bool recovering_ = false;
  bool stopping_ = false;
  // Rejected when a worker disconnects while steps run: they fail at once rather than when a surviving peer's
  // data-plane wait for the dead worker times out. One per step in flight.
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> stepAborts_;
  int stepsInFlight_ = 0;
  std::mutex pendingMutex_;
  std::condition_variable pendingDone_;

  // The I/O thread and its loop.
  std::thread thread_;
  std::mutex startMutex_;
  std::condition_variable started_;
  const kj::Executor* executor_ = nullptr;
  kj::AsyncIoContext* io_ = nullptr;
  kj::PromiseFulfiller<void>* stop_ = nullptr;
  TaskErrors taskErrors_;
  kj::Own<kj::TaskSet> tasks_;
};

}  // namespace phx
