#include "monitoring/metrics_exposer.h"

#include <exception>

#include <prometheus/exposer.h>

#include "common/error.h"
#include "common/host_port.h"

namespace phx {

MetricsExposer::MetricsExposer(const std::string& address) {
  if (!parseHostPort(address, /*minPort=*/0)) {
    throwInvalidArgument("metrics address '" + address + "': expected HOST:PORT, e.g. 0.0.0.0:9100");
  }
  try {
    // Two threads: Prometheus scrapes one at a time; a second keeps a curl from waiting behind it.
    exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, "cannot serve metrics on " + address + ": " + e.what());
  }
  auto ports = exposer_->GetListeningPorts();
  if (ports.empty()) throw Error(ErrorKind::kIo, "metrics server on " + address + " listens on no port");
  port_ = ports.front();
}

MetricsExposer::~MetricsExposer() = default;

void MetricsExposer::add(const std::weak_ptr<prometheus::Collectable>& collectable) {
  exposer_->RegisterCollectable(collectable);
}

}  // namespace phx
