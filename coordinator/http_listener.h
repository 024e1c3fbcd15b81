// The HTTP API's accept loop, in place of kj::HttpServer::listenHttp(listener): at most maxConnections open at
// once (one more is answered 503 with Retry-After and closed, rather than left to exhaust file descriptors), and a
// failed accept (EMFILE: out of file descriptors) waits a moment and accepts again instead of ending the listener.
#pragma once

#include <kj/async-io.h>
#include <kj/compat/http.h>

namespace phx {

class HttpListener final : private kj::TaskSet::ErrorHandler {
 public:
  HttpListener(kj::HttpServer& server, kj::ConnectionReceiver& listener, kj::Timer& timer, int maxConnections)
      : server_(server), listener_(listener), timer_(timer), maxConnections_(maxConnections), connections_(*this) {}

  // Never resolves; cancel it to stop accepting.
  kj::Promise<void> run();
  int openConnections() const { return open_; }

 private:
  void refuse(kj::Own<kj::AsyncIoStream> stream);
  void taskFailed(kj::Exception&&) override {}

  kj::HttpServer& server_;
  kj::ConnectionReceiver& listener_;
  kj::Timer& timer_;
  const int maxConnections_;
  int open_ = 0;
  kj::TaskSet connections_;
};

}  // namespace phx
