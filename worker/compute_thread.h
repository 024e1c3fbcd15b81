// The worker's compute thread: control-plane calls that take long (loading a shard, a step, joining the data
// plane) run here, one at a time in arrival order, so the event loop thread stays free to answer health during a
// long prefill. A job's result comes back to the event loop as a promise through a cross-thread fulfiller; if the
// caller goes away first (the coordinator disconnected) the job still runs to its end and its result is dropped.
// A job that throws resolves with its error as a phx::Error (kind kept), which the reply carries as a Failure.
#pragma once

#include <kj/async.h>
#include <kj/function.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "common/error.h"
#include "rpc/control_codec.h"

namespace phx {

// What a job gave: its value, or the error it threw.
template <typename T>
struct JobOutcome {
  std::optional<T> value;
  std::optional<Error> error;
};
template <>
struct JobOutcome<void> {
  std::optional<Error> error;
};

class ComputeThread {
 public:
  ComputeThread();
  // Drops the queued jobs (their promises reject); waits for an idle thread, detaches a busy one.
  ~ComputeThread();
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;

  // A job is running now.
  bool busy();
  // A job is running or waiting to run.
  bool pending();

  // Call on the event loop thread: runs job() on the compute thread; the promise resolves on this thread.
  template <typename T>
  kj::Promise<JobOutcome<T>> run(kj::Function<T()> job) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<JobOutcome<T>>();
    post([job = std::move(job), fulfiller = kj::mv(paf.fulfiller)]() mutable {
      JobOutcome<T> outcome;
      try {
        if constexpr (std::is_void_v<T>) {
          job();
        } else {
          outcome.value = job();
        }
      } catch (...) {
        outcome.error = errorFromException(std::current_exception());
      }
      fulfiller->fulfill(kj::mv(outcome));
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
