// Parses and tokenizes request bodies on a thread of its own: tokenizing a megabyte prompt takes tens of
// milliseconds, which on the HTTP event loop would stall every other connection (streams included) for as long.
// Results come back to the event loop through cross-thread fulfillers, in submission order.
#pragma once

#include <kj/async.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "coordinator/openai_protocol.h"

namespace phx {

// A parsed request, or the error to answer with.
struct ParsedRequest {
  std::optional<ApiRequest> request;
  std::optional<ApiError> error;
};

class ParseThread {
 public:
  ParseThread(const Tokenizer& tokenizer, const ApiLimits& limits);
  ~ParseThread();  // drops what is queued (those promises reject), joins the thread
  ParseThread(const ParseThread&) = delete;
  ParseThread& operator=(const ParseThread&) = delete;

  // Call on the event loop thread; the promise resolves on it.
  kj::Promise<ParsedRequest> parse(std::string body, ApiEndpoint endpoint);

 private:
  void loop();

  const Tokenizer& tokenizer_;
  const ApiLimits& limits_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace phx
