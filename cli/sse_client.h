// A small client for Phalanx's own HTTP API on the KJ event loop: POST a JSON body and receive the server-sent
// events of a streamed completion one `data:` payload at a time. `generate --cluster` and `bench-serve` use it;
// many requests may run at once on one loop.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <kj/async-io.h>
#include <kj/compat/http.h>

namespace phx::cli {

struct HttpTarget {
  std::string host;  // from "HOST:PORT" or "http://HOST:PORT[/...]"
  int port = 0;
  std::string apiKey;  // sent as Authorization: Bearer when set

  static HttpTarget parse(const std::string& address);  // throws phx::Error (invalid argument)
  std::string url(const std::string& path) const { return "http://" + host + ":" + std::to_string(port) + path; }
};

struct HttpReply {
  int status = 0;
  std::string body;  // the whole body when the reply is not an event stream (an error)
};

class SseClient {
 public:
  SseClient(kj::AsyncIoContext& io, HttpTarget target);

  // POSTs `json` to `path`; onData gets each event's payload (without "data: "), "[DONE]" excluded. Resolves with
  // the status (and the body of a non-200 reply).
  kj::Promise<HttpReply> postStream(const std::string& path, std::string json,
                                    std::function<void(std::string_view data)> onData);
  // GET or POST with a whole body in reply.
  kj::Promise<HttpReply> request(kj::HttpMethod method, const std::string& path, std::string json = "");

 private:
  HttpTarget target_;
  kj::Own<kj::HttpHeaderTable> table_;
  kj::HttpHeaderId authorization_;
  kj::Own<kj::HttpClient> client_;
};

}  // namespace phx::cli
