// The coordinator's Prometheus metrics (docs/metrics.md lists them all): request latency histograms, token and
// request counters, queue depth, KV cache use, batch shape, prefix-cache hits, errors by type, and each worker's
// compute, communication and wait time as the coordinator sees it. Every method is thread-safe (prometheus-cpp's
// metrics are atomic or locked; the lazily labelled ones are created under a mutex), so the scheduler thread and
// the HTTP thread may both record. serialize() renders the text format for the HTTP server's GET /metrics.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace phx {

// The `type` label of phalanx_errors_total: what went wrong, so each kind's reaction can be watched.
enum class RequestErrorType {
  kInvalidRequest,      // 400/401: malformed JSON, wrong types, bad parameters, missing API key
  kContextTooLong,      // 400: the prompt does not fit below the context
  kOverloaded,          // 429/503: the queue is full
  kWorkerDisconnected,  // a worker went away mid-step; its requests failed
  kInternal,            // a bug or an engine failure
};
std::string_view requestErrorTypeName(RequestErrorType type);

// One finished (or failed, or cancelled) request, as the scheduler reports it.
struct RequestOutcome {
  std::string_view finishReason;  // "stop", "length", "cancelled", "error" (the phalanx_requests_total label)
  int64_t promptTokens = 0;       // all of the prompt, prefix-cached or not
  int64_t generationTokens = 0;
  double e2eSeconds = 0;          // submitted until the last event
};

// One model step as the scheduler ran it.
struct StepOutcome {
  int64_t sequences = 0;  // sequences in the batch
  int64_t tokens = 0;     // decode tokens plus prefill chunk tokens
  double seconds = 0;     // the executor's run() wall time
};

// One worker's share of the last step (coordinator/cluster_executor.h's RankStepTimings).
struct RankStepSeconds {
  double compute = 0;
  double communication = 0;  // inside all-reduce, send and recv
  double wait = 0;           // queued on the worker before its compute thread took the step
};

class CoordinatorMetrics {
 public:
  CoordinatorMetrics();
  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  // Request latencies, each when it happens.
  void onAdmitted(double queueSeconds);       // submitted until first admitted to the running batch
  void onFirstToken(double secondsSinceSubmit);
  void onInterToken(double secondsSincePreviousToken);
  // Counts the request by finish reason, its prompt and generated tokens, and observes its end-to-end latency.
  void onRequestEnd(const RequestOutcome& outcome);
  void onError(RequestErrorType type);
  // Sequences re-queued and recomputed after a cluster fault (phalanx_request_replays_total).
  void onReplay(int64_t sequences);

  // Scheduler state, set after every step (gauges).
  void setQueue(int64_t running, int64_t waiting);
  void setKvCache(int64_t usedBlocks, int64_t capacityBlocks);
  // Prefix-cache lookups in tokens: of `queriedTokens` prompt tokens looked up, `hitTokens` were cached.
  void onPrefixLookup(int64_t queriedTokens, int64_t hitTokens);

  void onStep(const StepOutcome& step);
  // `worker` is the global worker index (the `worker` label).
  void onRankStep(int worker, const RankStepSeconds& seconds);

  // The Prometheus text exposition format of every family, for GET /metrics.
  std::string serialize() const;
  // For an Exposer, or a test that lists the families.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  struct RankCounters {
    prometheus::Counter* compute;
    prometheus::Counter* communication;
    prometheus::Counter* wait;
  };
  prometheus::Counter& requestsFinished(std::string_view finishReason);
  RankCounters& rank(int worker);

  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Histogram* timeToFirstToken_;
  prometheus::Histogram* interTokenLatency_;
  prometheus::Histogram* requestE2e_;
  prometheus::Histogram* requestQueue_;
  prometheus::Counter* promptTokens_;
  prometheus::Counter* generationTokens_;
  prometheus::Family<prometheus::Counter>* requestsFamily_;
  prometheus::Gauge* requestsRunning_;
  prometheus::Gauge* requestsWaiting_;
  prometheus::Gauge* kvBlocksUsed_;
  prometheus::Gauge* kvBlocksCapacity_;
  prometheus::Gauge* kvUsageRatio_;
  prometheus::Histogram* batchSize_;
  prometheus::Histogram* stepTokens_;
  prometheus::Histogram* stepSeconds_;
  prometheus::Counter* prefixHits_;
  prometheus::Counter* prefixQueries_;
  std::vector<prometheus::Counter*> errors_;  // by RequestErrorType
  prometheus::Counter* replays_;
  prometheus::Family<prometheus::Counter>* rankCompute_;
  prometheus::Family<prometheus::Counter>* rankCommunication_;
  prometheus::Family<prometheus::Counter>* rankWait_;

  // Guards the lazily created label values below (prometheus-cpp's Family::Add is itself thread-safe; the maps are
  // not).
  std::mutex mutex_;
  std::map<std::string, prometheus::Counter*, std::less<>> requestsByReason_;
  std::map<int, RankCounters> ranks_;
};

}  // namespace phx
