#include "monitoring/worker_metrics.h"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>

#include <prometheus/text_serializer.h>

#include "monitoring/buckets.h"
#include "monitoring/metrics_exposer.h"
#include "monitoring/worker_health.h"

namespace phx {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Counter& counter(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Gauge& gauge(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

// The registry's families with the worker's identity labels appended to every series, and RSS read just before.
class WorkerMetrics::LabelledCollectable final : public prometheus::Collectable {
 public:
  LabelledCollectable(std::shared_ptr<prometheus::Registry> registry, const WorkerMetrics& owner)
      : registry_(std::move(registry)), owner_(owner) {}

  void setLabels(std::vector<prometheus::ClientMetric::Label> labels) {
    std::lock_guard lock(mutex_);
    labels_ = std::move(labels);
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    owner_.refreshRss();
    auto families = registry_->Collect();
    std::vector<prometheus::ClientMetric::Label> labels;
    {
      std::lock_guard lock(mutex_);
      labels = labels_;
    }
    for (auto& family : families) {
      for (auto& metric : family.metric) {
        metric.label.insert(metric.label.end(), labels.begin(), labels.end());
      }
    }
    return families;
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  const WorkerMetrics& owner_;
  mutable std::mutex mutex_;
  std::vector<prometheus::ClientMetric::Label> labels_;
};

WorkerMetrics::WorkerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  stepSeconds_ = &BuildHistogram()
                      .Name("phalanx_worker_step_seconds")
                      .Help("Wall time of one model step on this worker.")
                      .Register(r)
                      .Add({}, latencyBuckets());
  computeSeconds_ = &counter(r, "phalanx_worker_compute_seconds_total", "Seconds spent computing model steps.");
  communicationSeconds_ = &counter(r, "phalanx_worker_communication_seconds_total",
                                   "Seconds spent inside all-reduce, send and recv during model steps.");
  waitSeconds_ = &counter(r, "phalanx_worker_wait_seconds_total",
                          "Seconds steps were queued before the compute thread took them.");
  allReduceSeconds_ = &BuildHistogram()
                           .Name("phalanx_allreduce_seconds")
                           .Help("Wall time of one all-reduce over the tensor-parallel group.")
                           .Register(r)
                           .Add({}, allReduceBuckets());
  allReduceBytes_ = &counter(r, "phalanx_allreduce_bytes_total", "Payload bytes all-reduced (not wire bytes).");
  kvCacheBytes_ = &gauge(r, "phalanx_worker_kv_cache_bytes", "Bytes of this worker's KV cache slice.");
  weightBytes_ = &gauge(r, "phalanx_worker_weight_bytes", "Bytes of this worker's packed weight shard.");
  loadSeconds_ = &gauge(r, "phalanx_worker_load_seconds", "Seconds the last shard load took.");
  rssBytes_ = &gauge(r, "phalanx_worker_rss_bytes", "Resident memory of the worker process (VmRSS).");
  loaded_ = &gauge(r, "phalanx_worker_loaded", "1 when a shard is loaded and the worker can run steps, else 0.");
  computeInfo_ = &prometheus::BuildGauge()
                      .Name("phalanx_worker_matmul_compute_info")
                      .Help("1 for the compute this worker multiplies BF16 weights with (set by the coordinator).")
                      .Register(r);
  collectable_ = std::make_shared<LabelledCollectable>(registry_, *this);
  refreshRss();
}

WorkerMetrics::~WorkerMetrics() = default;

void WorkerMetrics::setIdentity(int worker, int stage, int tpRank) {
  collectable_->setLabels({{"worker", std::to_string(worker)},
                           {"stage", std::to_string(stage)},
                           {"tp_rank", std::to_string(tpRank)}});
}

void WorkerMetrics::onLoaded(double loadSeconds, int64_t weightBytes, int64_t kvCacheBytes) {
  loadSeconds_->Set(loadSeconds);
  weightBytes_->Set(static_cast<double>(weightBytes));
  kvCacheBytes_->Set(static_cast<double>(kvCacheBytes));
  loaded_->Set(1);
}

void WorkerMetrics::setMatmulCompute(const std::string& compute) {
  for (const char* name : {"bf16dot", "f32fma"}) computeInfo_->Add({{"compute", name}}).Set(compute == name ? 1 : 0);
}

void WorkerMetrics::onUnloaded() {
  weightBytes_->Set(0);
  kvCacheBytes_->Set(0);
  loaded_->Set(0);
}

void WorkerMetrics::onStep(const WorkerStepSeconds& seconds) {
  stepSeconds_->Observe(seconds.total);
  computeSeconds_->Increment(std::max(0.0, seconds.compute));
  communicationSeconds_->Increment(std::max(0.0, seconds.communication));
  waitSeconds_->Increment(std::max(0.0, seconds.wait));
}

void WorkerMetrics::onAllReduce(double seconds, uint64_t bytes) {
  allReduceSeconds_->Observe(seconds);
  allReduceBytes_->Increment(static_cast<double>(bytes));
}

void WorkerMetrics::refreshRss() const { rssBytes_->Set(static_cast<double>(residentSetBytes())); }

std::string WorkerMetrics::serialize() const {
  return prometheus::TextSerializer().Serialize(collectable_->Collect());
}

std::shared_ptr<prometheus::Collectable> WorkerMetrics::collectable() const { return collectable_; }

int WorkerMetrics::startExposer(const std::string& address, const WorkerHealth* health) {
  auto exposer = std::make_unique<MetricsExposer>(address);
  exposer->add(collectable());
  if (health) exposer->serve("/health", [health] { return health->report(); });
  exposer_ = std::move(exposer);
  return exposer_->port();
}

int64_t residentSetBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    int64_t kib = 0;
    fields >> kib;  // "VmRSS:    123456 kB"
    return kib * 1024;
  }
  return 0;
}

}  // namespace phx
