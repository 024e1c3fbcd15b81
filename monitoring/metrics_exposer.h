// Serves Prometheus registries at /metrics, and any other fixed replies such as a worker's /health, over HTTP on
// their own port (civetweb, the server prometheus-cpp's own Exposer is built on): how a worker, which has no HTTP
// server of its own, is scraped and probed. The coordinator answers GET /metrics and /health on its client port
// instead (CoordinatorMetrics::serialize()).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

class CivetServer;

namespace phx {

// One HTTP reply, made fresh for each request.
struct HttpReply {
  int status = 200;
  std::string contentType = "text/plain";
  std::string body;
};

class MetricsExposer {
 public:
  // `address` is "HOST:PORT"; port 0 picks a free one (see port()). Throws phx::Error (kIo) naming the address
  // when it cannot be bound, (kInvalidArgument) when it is not HOST:PORT.
  explicit MetricsExposer(const std::string& address);
  ~MetricsExposer();
  MetricsExposer(const MetricsExposer&) = delete;
  MetricsExposer& operator=(const MetricsExposer&) = delete;

  // Served at /metrics while `collectable` lives (the exposer keeps only a weak reference).
  void add(const std::weak_ptr<prometheus::Collectable>& collectable);
  // GET `path` answers reply(), called on one of the server's threads for every request; set before serving it.
  void serve(const std::string& path, std::function<HttpReply()> reply);
  // The port it listens on.
  int port() const { return port_; }

 private:
  class Handler;
  class MetricsHandler;

  std::vector<std::unique_ptr<Handler>> handlers_;
  std::unique_ptr<MetricsHandler> metrics_;
  std::unique_ptr<CivetServer> server_;  // last: stops serving before the handlers go
  int port_ = 0;
};

}  // namespace phx
