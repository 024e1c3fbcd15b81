// One worker process's Prometheus metrics (docs/metrics.md): step time split into compute, communication and wait,
// all-reduce latency and bytes, shard sizes, load time, resident memory and whether a shard is loaded. A worker
// learns which rank it is only when the coordinator loads a shard, so the identity labels (worker, stage, tp_rank)
// are added to every series at scrape time once setIdentity() is called, not fixed when the metrics are made.
// Thread-safe; served on the worker's own port, with its /health, by startExposer().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace phx {

class MetricsExposer;
class WorkerHealth;

// Where one step's time went on this worker (the same split the control plane reports to the coordinator).
struct WorkerStepSeconds {
  double total = 0;          // the step from the compute thread taking it to its result
  double compute = 0;
  double communication = 0;  // inside all-reduce, send and recv
  double wait = 0;           // queued before the compute thread took it
};

class WorkerMetrics {
 public:
  WorkerMetrics();
  ~WorkerMetrics();
  WorkerMetrics(const WorkerMetrics&) = delete;
  WorkerMetrics& operator=(const WorkerMetrics&) = delete;

  // Labels every series worker="N", stage="S", tp_rank="R" from now on.
  void setIdentity(int worker, int stage, int tpRank);

  void onLoaded(double loadSeconds, int64_t weightBytes, int64_t kvCacheBytes);
  // phalanx_worker_matmul_compute_info{compute="bf16dot"|"f32fma"} = 1 for the compute in use, 0 for the other.
  void setMatmulCompute(const std::string& compute);
  void onUnloaded();
  void onStep(const WorkerStepSeconds& seconds);
  // One allReduceSum call: its wall time and payload bytes.
  void onAllReduce(double seconds, uint64_t bytes);
  // Re-reads VmRSS from /proc/self/status (also done on every scrape and serialize()).
  void refreshRss() const;

  // The text exposition format, identity labels included.
  std::string serialize() const;
  // Serves /metrics, and /health from `health` when given (it must outlive this object), on `address`
  // ("HOST:PORT", port 0: any free one) until this object is destroyed; returns the port. Throws phx::Error (kIo)
  // when the address cannot be bound.
  int startExposer(const std::string& address, const WorkerHealth* health = nullptr);
  // What an Exposer serves: the registry plus identity labels and a fresh RSS reading.
  std::shared_ptr<prometheus::Collectable> collectable() const;

 private:
  class LabelledCollectable;

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* stepSeconds_;
  prometheus::Counter* computeSeconds_;
  prometheus::Counter* communicationSeconds_;
  prometheus::Counter* waitSeconds_;
  prometheus::Histogram* allReduceSeconds_;
  prometheus::Counter* allReduceBytes_;
  prometheus::Gauge* kvCacheBytes_;
  prometheus::Gauge* weightBytes_;
  prometheus::Gauge* loadSeconds_;
  prometheus::Gauge* rssBytes_;
  prometheus::Gauge* loaded_;
  prometheus::Family<prometheus::Gauge>* computeInfo_;
  std::shared_ptr<LabelledCollectable> collectable_;
  std::unique_ptr<MetricsExposer> exposer_;  // last: stops serving before the metrics go
};

// This process's resident set size in bytes (VmRSS in /proc/self/status); 0 where /proc is unavailable.
int64_t residentSetBytes();

}  // namespace phx
