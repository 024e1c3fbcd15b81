// Serves Prometheus registries over HTTP on their own port (prometheus-cpp's Exposer, a civetweb server): how a
// worker, which has no HTTP server of its own, is scraped. The coordinator answers GET /metrics on its client port
// instead (CoordinatorMetrics::serialize()).
#pragma once

#include <memory>
#include <string>

#include <prometheus/collectable.h>

namespace prometheus {
class Exposer;
}

namespace phx {

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
  // The port it listens on.
  int port() const { return port_; }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace phx
