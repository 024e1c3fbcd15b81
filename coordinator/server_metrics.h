// Connects the HTTP server and its scheduler to the coordinator's Prometheus metrics: request latencies and
// outcomes from the scheduler's hooks, errors from the responses, queue and KV gauges read at scrape time.
#pragma once

#include <functional>

#include "coordinator/server.h"
#include "monitoring/coordinator_metrics.h"

namespace phx {

// Sets options.hooks, options.onError and options.metrics to feed `metrics` (which must outlive the server).
// afterStep, if given, runs after each step's hook (e.g. to record the cluster's per-rank timings).
void attachMetrics(ServerOptions& options, CoordinatorMetrics& metrics, std::function<void()> afterStep = {});

}  // namespace phx
