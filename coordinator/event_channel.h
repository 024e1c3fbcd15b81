// Hands a request's sequence events from the scheduler thread to the HTTP thread's KJ event loop: the scheduler
// pushes under a mutex and fulfils a cross-thread promise the HTTP side waits on; the HTTP side takes everything
// queued at once (events come in bursts of one per step).
#pragma once

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include <kj/async.h>

#include "coordinator/scheduler.h"

namespace phx {

struct ChoiceEvent {
  int32_t choice = 0;
  SequenceEvent event;
};

class EventChannel {
 public:
  // Any thread.
  void push(ChoiceEvent event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
    // The fulfiller is dropped on the KJ thread (whenReady), never here: its promise belongs to that loop.
    if (waiter_.get() != nullptr && waiter_->isWaiting()) waiter_->fulfill();
  }

  // The KJ thread: resolves once events are queued.
  kj::Promise<void> whenReady() {
    std::lock_guard lock(mutex_);
    if (!events_.empty()) return kj::READY_NOW;
    auto pair = kj::newPromiseAndCrossThreadFulfiller<void>();
    waiter_ = kj::mv(pair.fulfiller);
    return kj::mv(pair.promise);
  }

  // The KJ thread, when the request ends: drops the waiter there, so the scheduler thread (which may hold the
  // channel last) never disposes of a fulfiller belonging to the HTTP loop.
  void close() {
    std::lock_guard lock(mutex_);
    waiter_ = nullptr;
  }

  std::vector<ChoiceEvent> take() {
    std::lock_guard lock(mutex_);
    return std::exchange(events_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<ChoiceEvent> events_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> waiter_;
};

}  // namespace phx
