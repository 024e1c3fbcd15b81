#include "monitoring/coordinator_metrics.h"

#include <algorithm>

#include <prometheus/text_serializer.h>

#include "monitoring/buckets.h"

namespace phx {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

constexpr RequestErrorType kAllErrorTypes[] = {RequestErrorType::kInvalidRequest, RequestErrorType::kContextTooLong,
                                               RequestErrorType::kOverloaded, RequestErrorType::kWorkerDisconnected,
                                               RequestErrorType::kInternal};
// Created up front so that rate() sees them from zero rather than from their first occurrence.
constexpr std::string_view kKnownFinishReasons[] = {"stop", "length", "cancelled", "error"};

prometheus::Histogram& histogram(prometheus::Registry& registry, const std::string& name, const std::string& help,
                                 const prometheus::Histogram::BucketBoundaries& buckets) {
  return BuildHistogram().Name(name).Help(help).Register(registry).Add({}, buckets);
}

prometheus::Counter& counter(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Gauge& gauge(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

std::string_view requestErrorTypeName(RequestErrorType type) {
  switch (type) {
    case RequestErrorType::kInvalidRequest: return "invalid_request";
    case RequestErrorType::kContextTooLong: return "context_too_long";
    case RequestErrorType::kOverloaded: return "overloaded";
    case RequestErrorType::kWorkerDisconnected: return "worker_disconnected";
    case RequestErrorType::kInternal: return "internal";
  }
  return "internal";
}

CoordinatorMetrics::CoordinatorMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  timeToFirstToken_ = &histogram(r, "phalanx_time_to_first_token_seconds",
                                 "Time from a request's arrival to its first generated token.", latencyBuckets());
  interTokenLatency_ = &histogram(r, "phalanx_inter_token_latency_seconds",
                                  "Time between two consecutive generated tokens of one request.", latencyBuckets());
  requestE2e_ = &histogram(r, "phalanx_request_e2e_seconds",
                           "Time from a request's arrival to its last token (finished, failed or cancelled).",
                           latencyBuckets());
  requestQueue_ = &histogram(r, "phalanx_request_queue_seconds",
                             "Time a request waited before it first joined the running batch.", latencyBuckets());
  promptTokens_ = &counter(r, "phalanx_prompt_tokens_total", "Prompt tokens of ended requests (cached or not).");
  generationTokens_ = &counter(r, "phalanx_generation_tokens_total", "Tokens generated for ended requests.");
  requestsFamily_ = &BuildCounter()
                         .Name("phalanx_requests_total")
                         .Help("Requests that ended, by finish reason (stop, length, cancelled, error).")
                         .Register(r);
  for (std::string_view reason : kKnownFinishReasons) requestsFinished(reason);
  requestsRunning_ = &gauge(r, "phalanx_requests_running", "Sequences in the running batch.");
  requestsWaiting_ = &gauge(r, "phalanx_requests_waiting", "Sequences queued for admission.");
  kvBlocksUsed_ = &gauge(r, "phalanx_kv_cache_blocks_used",
                         "KV cache blocks held by sequences or kept by the prefix cache.");
  kvBlocksCapacity_ = &gauge(r, "phalanx_kv_cache_blocks_capacity", "KV cache blocks in the pool.");
  kvUsageRatio_ = &gauge(r, "phalanx_kv_cache_usage_ratio", "Used over capacity KV cache blocks (0..1).");
  batchSize_ = &histogram(r, "phalanx_batch_size", "Sequences per model step.", batchSizeBuckets());
  stepTokens_ = &histogram(r, "phalanx_step_tokens", "Tokens per model step (decode plus prefill chunks).",
                           stepTokenBuckets());
  stepSeconds_ = &histogram(r, "phalanx_step_seconds", "Wall time of one model step as the coordinator ran it.",
                            latencyBuckets());
  prefixHits_ = &counter(r, "phalanx_prefix_cache_hits_total",
                         "Prompt tokens found in the prefix cache (their prefill was skipped).");
  prefixQueries_ = &counter(r, "phalanx_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.");
  replays_ = &counter(r, "phalanx_request_replays_total",
                      "Sequences re-queued and recomputed from their tokens after a worker fault.");
  auto& errors = BuildCounter()
                     .Name("phalanx_errors_total")
                     .Help("Failed or refused requests by type (invalid_request, context_too_long, overloaded, "
                           "worker_disconnected, internal).")
                     .Register(r);
  for (RequestErrorType type : kAllErrorTypes) {
    errors_.push_back(&errors.Add({{"type", std::string(requestErrorTypeName(type))}}));
  }
  rankCompute_ = &BuildCounter()
                      .Name("phalanx_rank_compute_seconds_total")
                      .Help("Seconds each worker spent computing model steps, as reported to the coordinator.")
                      .Register(r);
  rankCommunication_ = &BuildCounter()
                            .Name("phalanx_rank_communication_seconds_total")
                            .Help("Seconds each worker spent inside all-reduce, send and recv during steps.")
                            .Register(r);
  rankWait_ = &BuildCounter()
                   .Name("phalanx_rank_wait_seconds_total")
                   .Help("Seconds steps waited on each worker before its compute thread took them.")
                   .Register(r);
}

void CoordinatorMetrics::onAdmitted(double queueSeconds) { requestQueue_->Observe(queueSeconds); }

void CoordinatorMetrics::onFirstToken(double secondsSinceSubmit) { timeToFirstToken_->Observe(secondsSinceSubmit); }

void CoordinatorMetrics::onInterToken(double secondsSincePreviousToken) {
  interTokenLatency_->Observe(secondsSincePreviousToken);
}

void CoordinatorMetrics::onRequestEnd(const RequestOutcome& outcome) {
  requestsFinished(outcome.finishReason).Increment();
  promptTokens_->Increment(static_cast<double>(outcome.promptTokens));
  generationTokens_->Increment(static_cast<double>(outcome.generationTokens));
  requestE2e_->Observe(outcome.e2eSeconds);
}

void CoordinatorMetrics::onError(RequestErrorType type) { errors_.at(static_cast<size_t>(type))->Increment(); }

void CoordinatorMetrics::onReplay(int64_t sequences) { replays_->Increment(double(sequences)); }

void CoordinatorMetrics::setQueue(int64_t running, int64_t waiting) {
  requestsRunning_->Set(static_cast<double>(running));
  requestsWaiting_->Set(static_cast<double>(waiting));
}

void CoordinatorMetrics::setKvCache(int64_t usedBlocks, int64_t capacityBlocks) {
  kvBlocksUsed_->Set(static_cast<double>(usedBlocks));
  kvBlocksCapacity_->Set(static_cast<double>(capacityBlocks));
  kvUsageRatio_->Set(capacityBlocks > 0 ? static_cast<double>(usedBlocks) / static_cast<double>(capacityBlocks) : 0);
}

void CoordinatorMetrics::onPrefixLookup(int64_t queriedTokens, int64_t hitTokens) {
  prefixQueries_->Increment(static_cast<double>(queriedTokens));
  prefixHits_->Increment(static_cast<double>(hitTokens));
}

void CoordinatorMetrics::onStep(const StepOutcome& step) {
  batchSize_->Observe(static_cast<double>(step.sequences));
  stepTokens_->Observe(static_cast<double>(step.tokens));
  stepSeconds_->Observe(step.seconds);
}

void CoordinatorMetrics::onRankStep(int worker, const RankStepSeconds& seconds) {
  RankCounters& counters = rank(worker);
  // Counter::Increment ignores negative values; clamp anyway so clock skew cannot hide a step.
  counters.compute->Increment(std::max(0.0, seconds.compute));
  counters.communication->Increment(std::max(0.0, seconds.communication));
  counters.wait->Increment(std::max(0.0, seconds.wait));
}

std::string CoordinatorMetrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

prometheus::Counter& CoordinatorMetrics::requestsFinished(std::string_view finishReason) {
  std::lock_guard lock(mutex_);
  auto found = requestsByReason_.find(finishReason);
  if (found != requestsByReason_.end()) return *found->second;
  auto& added = requestsFamily_->Add({{"finish_reason", std::string(finishReason)}});
  requestsByReason_.emplace(std::string(finishReason), &added);
  return added;
}

CoordinatorMetrics::RankCounters& CoordinatorMetrics::rank(int worker) {
  std::lock_guard lock(mutex_);
  auto found = ranks_.find(worker);
  if (found != ranks_.end()) return found->second;
  prometheus::Labels labels{{"worker", std::to_string(worker)}};
  RankCounters counters{&rankCompute_->Add(labels), &rankCommunication_->Add(labels), &rankWait_->Add(labels)};
  return ranks_.emplace(worker, counters).first->second;
}

}  // namespace phx
