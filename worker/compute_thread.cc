#include "worker/compute_thread.h"

namespace phx {

ComputeThread::ComputeThread() : thread_([this] { loop(); }) {}

ComputeThread::~ComputeThread() {
  bool busy;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
    busy = busy_;
  }
  wake_.notify_all();
  // A job still running (a long load) would hold SIGTERM up: the process is about to exit, so let it go.
  if (busy) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

bool ComputeThread::busy() {
  std::lock_guard lock(mutex_);
  return busy_;
}

bool ComputeThread::pending() {
  std::lock_guard lock(mutex_);
  return busy_ || !jobs_.empty();
}

void ComputeThread::post(kj::Function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void ComputeThread::loop() {
  for (;;) {
    kj::Maybe<kj::Function<void()>> next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      next = kj::mv(jobs_.front());
      jobs_.pop_front();
      busy_ = true;
    }
    KJ_IF_MAYBE(job, next) { (*job)(); }
    std::lock_guard lock(mutex_);
    busy_ = false;
  }
}

}  // namespace phx
