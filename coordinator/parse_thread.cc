#include "coordinator/parse_thread.h"

#include <memory>

#include "common/error.h"

namespace phx {

ParseThread::ParseThread(const Tokenizer& tokenizer, const ApiLimits& limits)
    : tokenizer_(tokenizer), limits_(limits), thread_([this] { loop(); }) {}

ParseThread::~ParseThread() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  wake_.notify_all();
  thread_.join();
}

kj::Promise<ParsedRequest> ParseThread::parse(std::string body, ApiEndpoint endpoint) {
  auto paf = kj::newPromiseAndCrossThreadFulfiller<ParsedRequest>();
  // std::function needs a copyable callable: the fulfiller travels in a shared_ptr.
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<ParsedRequest>>>(kj::mv(paf.fulfiller));
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back([this, body = std::move(body), endpoint, fulfiller] {
      ParsedRequest parsed;
      try {
        parsed.request = parseApiRequest(body, endpoint, tokenizer_, limits_);
      } catch (const ApiError& error) {
        parsed.error = error;
      } catch (const Error& error) {
        parsed.error = ApiError{.status = 400, .message = error.what()};
      }
      (*fulfiller)->fulfill(std::move(parsed));
    });
  }
  wake_.notify_one();
  return kj::mv(paf.promise);
}

void ParseThread::loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace phx
