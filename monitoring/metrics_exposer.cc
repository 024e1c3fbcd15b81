#include "monitoring/metrics_exposer.h"

#include <exception>
#include <mutex>

#include <CivetServer.h>
#include <prometheus/text_serializer.h>

#include "common/error.h"
#include "common/host_port.h"

namespace phx {
namespace {

bool sendReply(mg_connection* connection, const HttpReply& reply) {
  mg_response_header_start(connection, reply.status);
  mg_response_header_add(connection, "Content-Type", reply.contentType.c_str(), -1);
  mg_response_header_add(connection, "Content-Length", std::to_string(reply.body.size()).c_str(), -1);
  mg_response_header_send(connection);
  mg_write(connection, reply.body.data(), reply.body.size());
  return true;
}

}  // namespace

class MetricsExposer::Handler : public CivetHandler {
 public:
  explicit Handler(std::function<HttpReply()> reply) : reply_(std::move(reply)) {}
  bool handleGet(CivetServer*, mg_connection* connection) override { return sendReply(connection, reply_()); }

 private:
  std::function<HttpReply()> reply_;
};

// The text exposition format of every collectable still alive, in the order they were added.
class MetricsExposer::MetricsHandler : public CivetHandler {
 public:
  void add(const std::weak_ptr<prometheus::Collectable>& collectable) {
    std::lock_guard lock(mutex_);
    collectables_.push_back(collectable);
  }
  bool handleGet(CivetServer*, mg_connection* connection) override {
    std::vector<prometheus::MetricFamily> families;
    {
      std::lock_guard lock(mutex_);
      for (const auto& weak : collectables_) {
        if (auto collectable = weak.lock()) {
          auto collected = collectable->Collect();
          families.insert(families.end(), collected.begin(), collected.end());
        }
      }
    }
    return sendReply(connection,
                     HttpReply{200, "text/plain; version=0.0.4", prometheus::TextSerializer().Serialize(families)});
  }

 private:
  std::mutex mutex_;
  std::vector<std::weak_ptr<prometheus::Collectable>> collectables_;
};

MetricsExposer::MetricsExposer(const std::string& address) : metrics_(std::make_unique<MetricsHandler>()) {
  if (!parseHostPort(address, /*minPort=*/0)) {
    throwInvalidArgument("metrics address '" + address + "': expected HOST:PORT, e.g. 0.0.0.0:9100");
  }
  // Two threads: Prometheus scrapes one at a time; a second keeps a probe or a curl from waiting behind it.
  const std::vector<std::string> options = {"listening_ports", address, "num_threads", "2"};
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo, "cannot serve metrics on " + address + ": " + e.what());
  }
  server_->addHandler("/metrics", metrics_.get());
  auto ports = server_->getListeningPorts();
  if (ports.empty()) throw Error(ErrorKind::kIo, "metrics server on " + address + " listens on no port");
  port_ = ports.front();
}

MetricsExposer::~MetricsExposer() { server_.reset(); }

void MetricsExposer::add(const std::weak_ptr<prometheus::Collectable>& collectable) { metrics_->add(collectable); }

void MetricsExposer::serve(const std::string& path, std::function<HttpReply()> reply) {
  handlers_.push_back(std::make_unique<Handler>(std::move(reply)));
  server_->addHandler(path, handlers_.back().get());
}

}  // namespace phx
