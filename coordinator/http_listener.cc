#include "coordinator/http_listener.h"

#include <cstdio>

namespace phx {
namespace {

constexpr kj::StringPtr kBusyResponse =
    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
    "Content-Length: 95\r\nConnection: close\r\n\r\n"
    "{\"error\":{\"message\":\"too many open connections\",\"type\":\"server_unavailable_error\",\"code\":null}}"_kj;

}  // namespace

kj::Promise<void> HttpListener::run() {
  return listener_.accept().then(
      [this](kj::Own<kj::AsyncIoStream> stream) {
        if (open_ >= maxConnections_) {
          refuse(kj::mv(stream));
        } else {
          ++open_;
          connections_.add(
              server_.listenHttp(kj::mv(stream)).then([this] { --open_; }, [this](kj::Exception&&) { --open_; }));
        }
        return run();
      },
      [this](kj::Exception&& e) {
        std::fprintf(stderr, "serve: accept failed (%s); accepting again in 100 ms\n", e.getDescription().cStr());
        return timer_.afterDelay(100 * kj::MILLISECONDS).then([this] { return run(); });
      });
}

void HttpListener::refuse(kj::Own<kj::AsyncIoStream> stream) {
  auto& connection = *stream;
  connections_.add(connection.write(kBusyResponse.begin(), kBusyResponse.size())
                       .then([&connection] { connection.shutdownWrite(); })
                       .attach(kj::mv(stream)));
}

}  // namespace phx
