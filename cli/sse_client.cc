#include "cli/sse_client.h"

#include <memory>

#include "common/error.h"
#include "common/host_port.h"

namespace phx::cli {

HttpTarget HttpTarget::parse(const std::string& address) {
  std::string rest = address;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  if (const size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const std::optional<HostPort> hostPort = parseHostPort(rest);
  if (!hostPort) throwInvalidArgument("expected HOST:PORT or http://HOST:PORT, got '" + address + "'");
  HttpTarget target;
  target.host = hostPort->host;
  target.port = hostPort->port;
  return target;
}

SseClient::SseClient(kj::AsyncIoContext& io, HttpTarget target) : target_(std::move(target)) {
  kj::HttpHeaderTable::Builder builder;
  authorization_ = builder.add("Authorization");
  table_ = builder.build();
  kj::HttpClientSettings settings;
  settings.idleTimeout = 30 * kj::SECONDS;
  client_ = kj::newHttpClient(io.provider->getTimer(), *table_, io.provider->getNetwork(), nullptr, settings);
}

namespace {

// Reads a streamed body, cutting it into events at blank lines.
struct EventReader {
  kj::Own<kj::AsyncInputStream> body;
  std::function<void(std::string_view)> onData;
  std::string buffered;
  char chunk[16384];
  bool done = false;

  kj::Promise<void> pump() {
    return body->tryRead(chunk, 1, sizeof(chunk)).then([this](size_t n) -> kj::Promise<void> {
      if (n == 0) return kj::READY_NOW;
      buffered.append(chunk, n);
      for (size_t end; (end = buffered.find("\n\n")) != std::string::npos;) {
        const std::string event = buffered.substr(0, end);
        buffered.erase(0, end + 2);
        if (event.rfind("data: ", 0) != 0) continue;
        const std::string_view data = std::string_view(event).substr(6);
        if (data == "[DONE]") {
          done = true;
        } else if (!done) {
          onData(data);
        }
      }
      return pump();  // after [DONE] too, to the end of the body, so the connection closes cleanly
    });
  }
};

}  // namespace

kj::Promise<HttpReply> SseClient::postStream(const std::string& path, std::string json,
                                             std::function<void(std::string_view)> onData) {
  kj::HttpHeaders headers(*table_);
  headers.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json");
  auto key = kj::str("Bearer ", target_.apiKey.c_str());
  if (!target_.apiKey.empty()) headers.set(authorization_, key);
  auto body = std::make_shared<std::string>(std::move(json));
  auto call = client_->request(kj::HttpMethod::POST, target_.url(path).c_str(), headers, uint64_t(body->size()));
  auto sent = call.body->write(body->data(), body->size()).attach(kj::mv(call.body), kj::cp(body));
  return sent.then([response = kj::mv(call.response)]() mutable { return kj::mv(response); })
      .then([onData = std::move(onData)](kj::HttpClient::Response&& response) mutable -> kj::Promise<HttpReply> {
        const int status = int(response.statusCode);
        if (status != 200) {
          return response.body->readAllText().attach(kj::mv(response.body)).then([status](kj::String text) {
            return HttpReply{status, std::string(text.cStr())};
          });
        }
        auto reader = kj::heap<EventReader>();
        reader->body = kj::mv(response.body);
        reader->onData = std::move(onData);
        auto done = reader->pump();
        return done.attach(kj::mv(reader)).then([status]() { return HttpReply{status, ""}; });
      });
}

kj::Promise<HttpReply> SseClient::request(kj::HttpMethod method, const std::string& path, std::string json) {
  kj::HttpHeaders headers(*table_);
  auto key = kj::str("Bearer ", target_.apiKey.c_str());
  if (!target_.apiKey.empty()) headers.set(authorization_, key);
  if (!json.empty()) headers.set(kj::HttpHeaderId::CONTENT_TYPE, "application/json");
  auto body = std::make_shared<std::string>(std::move(json));
  auto call = client_->request(method, target_.url(path).c_str(), headers, uint64_t(body->size()));
  auto sent = body->empty() ? kj::Promise<void>(kj::READY_NOW).attach(kj::mv(call.body))
                            : call.body->write(body->data(), body->size()).attach(kj::mv(call.body), kj::cp(body));
  return sent.then([response = kj::mv(call.response)]() mutable { return kj::mv(response); })
      .then([](kj::HttpClient::Response&& response) {
        const int status = int(response.statusCode);
        return response.body->readAllText().attach(kj::mv(response.body)).then([status](kj::String text) {
          return HttpReply{status, std::string(text.cStr())};
        });
      });
}

}  // namespace phx::cli
