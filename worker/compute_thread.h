// The worker's compute thread: control-plane calls that take long (loading a shard, a step, joining the data
// plane) run here, one at a time in arrival order, so the event loop thread stays free to answer health during a
// long prefill. A job's result comes back to the event loop as a promise through a cross-thread fulfiller; if the
// caller goes away first (the coordinator disconnected) the job still runs to its end and its result is dropped.
#pragma once

#include <kj/async.h>
#include <kj/function.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

namespace phx {

// A phx::Error or other exception as the kj exception the RPC system sends back: DISCONNECTED for kDisconnected,
// OVERLOADED for kOverloaded, FAILED otherwise, the description starting with the kind's name.
kj::Exception toKjException(std::exception_ptr error);

class ComputeThread {
 public:
  ComputeThread();
  // Drops the queued jobs (their promises reject); waits for an idle thread, detaches a busy one.
  ~ComputeThread();
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;

  // A job is running now.
  bool busy();

  // Call on the event loop thread: runs job() on the compute thread; the promise resolves on this thread.
  template <typename T>
  kj::Promise<T> run(kj::Function<T()> job) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
    post([job = std::move(job), fulfiller = kj::mv(paf.fulfiller)]() mutable {
      try {
        if constexpr (std::is_void_v<T>) {
          job();
          fulfiller->fulfill();
        } else {
          fulfiller->fulfill(job());
        }
      } catch (...) {
        fulfiller->reject(toKjException(std::current_exception()));
      }
    });
    return kj::mv(paf.promise);
  }

 private:
  void post(kj::Function<void()> job);
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<kj::Function<void()>> jobs_;
  bool stopping_ = false;
  bool busy_ = false;
  std::thread thread_;
};

}  // namespace phx
