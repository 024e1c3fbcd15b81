// What the cluster serving tests read from a streamed completion, and the requests and polls they share.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/serving/cluster_process.h"

namespace phx::testing {

// The `data:` payloads of an SSE body, [DONE] included.
std::vector<std::string> events(const std::string& body);

// What one streamed completion delivered: its generated ids, the usage's count, and why it is not well formed.
struct StreamOutcome {
  std::vector<int> tokenIds;
  int usageTokens = -1;
  std::string finishReason;
  std::string problem;  // empty when the stream ended with [DONE] and carried no error
};
StreamOutcome readStream(const HttpResult& reply);

// A greedy streamed completion of `maxTokens` tokens (ignore_eos), with token ids and usage.
std::string streamRequest(const std::string& prompt, int maxTokens);

nlohmann::json stats(const ClusterProcess& cluster);  // GET /v1/phalanx/stats
// Polls GET /health until it answers 200; false when `timeout` passes first.
bool waitHealthy(const ClusterProcess& cluster, std::chrono::seconds timeout);
// The value of an unlabelled sample in GET /metrics (-1 when absent).
double metricValue(const ClusterProcess& cluster, const std::string& name);

}  // namespace phx::testing
