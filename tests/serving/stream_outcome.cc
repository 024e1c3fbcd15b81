#include "tests/serving/stream_outcome.h"

#include <sstream>
#include <thread>

namespace phx::testing {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::vector<std::string> events(const std::string& body) {
  std::vector<std::string> out;
  for (size_t at = 0; (at = body.find("data: ", at)) != std::string::npos;) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) end = body.size();
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

StreamOutcome readStream(const HttpResult& reply) {
  StreamOutcome outcome;
  if (reply.status != 200) outcome.problem = "HTTP " + std::to_string(reply.status) + ": " + reply.body;
  const auto payloads = events(reply.body);
  if (payloads.empty() || payloads.back() != "[DONE]") outcome.problem += " no [DONE] at the end";
  for (const std::string& payload : payloads) {
    if (payload == "[DONE]") continue;
    const json chunk = json::parse(payload, nullptr, /*allow_exceptions=*/false);
    if (chunk.is_discarded() || chunk.contains("error")) {
      outcome.problem += " bad or error event: " + payload;
      continue;
    }
    for (const json& choice : chunk["choices"]) {
      for (const json& id : choice["token_ids"]) outcome.tokenIds.push_back(id.get<int>());
      if (choice["finish_reason"].is_string()) outcome.finishReason = choice["finish_reason"];
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      outcome.usageTokens = chunk["usage"]["completion_tokens"].get<int>();
    }
  }
  return outcome;
}

std::string streamRequest(const std::string& prompt, int maxTokens) {
  return json{{"prompt", prompt},
              {"max_tokens", maxTokens},
              {"ignore_eos", true},
              {"temperature", 0},
              {"stream", true},
              {"return_token_ids", true},
              {"stream_options", {{"include_usage", true}}}}
      .dump();
}

json stats(const ClusterProcess& cluster) {
  return json::parse(cluster.http("GET", "/v1/phalanx/stats").body, nullptr, /*allow_exceptions=*/false);
}

bool waitHealthy(const ClusterProcess& cluster, std::chrono::seconds timeout) {
  for (const auto deadline = Clock::now() + timeout; Clock::now() < deadline;) {
    if (cluster.http("GET", "/health").status == 200) return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

double metricValue(const ClusterProcess& cluster, const std::string& name) {
  std::istringstream lines(cluster.http("GET", "/metrics").body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

}  // namespace phx::testing
