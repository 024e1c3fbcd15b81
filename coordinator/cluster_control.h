// The I/O-thread side of a ClusterExecutor: one Cap'n Proto connection per worker, driven by a kj event loop on a
// thread of its own. Every member below the public calls is touched only on that thread; the public calls hand
// work to it (kj::Executor::executeSync) and turn its failures into phx::Error naming the worker.
#pragma once

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/cluster_executor.h"
#include "rpc/phalanx.capnp.h"

namespace phx {

struct ClusterExecutor::Control {
  explicit Control(ClusterExecutorOptions options);
  ~Control();

  // Blocking calls, from the executor's caller thread.
  void startUp();  // connect, hello, load, swap: throws phx::Error naming the worker
  // Runs the step on every worker; outputs[i] and timings[i] are worker i's. Throws phx::Error (kDisconnected
  // naming the worker; kInvalidArgument when the workers refuse the batch).
  void step(const StepBatch& batch, std::vector<StepOutput>& outputs, std::vector<RankStepTimings>& timings);
  std::vector<WorkerLoadReport> loadReports();
  void shutdownWorkers();

  std::atomic<bool> ready{false};
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
  kj::Promise<void> load(Link& link);
  kj::Promise<void> swapAddresses();
  kj::Promise<void> heartbeat();
  kj::Promise<void> stepAll(const StepBatch& batch, std::vector<StepOutput>& outputs,
                            std::vector<RankStepTimings>& timings);
  void drop(Link& link, const std::string& reason);
  void startRecovery(const std::string& reason);
  kj::Promise<void> recoveryLoop();
  template <typename T>
  kj::Promise<T> withTimeout(kj::Promise<T> promise, kj::Duration timeout, std::string message);

  std::vector<Link> links_;
  std::string lastFailure_;
  bool recovering_ = false;
  bool stopping_ = false;
  // Rejected when a worker disconnects while a step runs: the step fails at once rather than when a surviving
  // peer's data-plane wait for the dead worker times out.
  kj::Own<kj::PromiseFulfiller<void>> stepAbort_;

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
