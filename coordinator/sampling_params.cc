#include "coordinator/sampling_params.h"

#include <cmath>

#include "common/error.h"

namespace phx {
namespace {

void require(bool ok, const std::string& field, const std::string& expected, double got) {
  if (!ok) throwInvalidArgument(field + " must be " + expected + ", got " + std::to_string(got));
}

}  // namespace

void validateSamplingParams(const SamplingParams& p) {
  require(std::isfinite(p.temperature) && p.temperature >= 0.0f, "temperature", "a number >= 0", p.temperature);
  require(std::isfinite(p.topP) && p.topP > 0.0f && p.topP <= 1.0f, "top_p", "in (0, 1]", p.topP);
  require(std::isfinite(p.minP) && p.minP >= 0.0f && p.minP <= 1.0f, "min_p", "in [0, 1]", p.minP);
  require(p.topK >= -1, "top_k", "-1, 0 (off) or a positive integer", p.topK);
  require(std::isfinite(p.presencePenalty) && std::fabs(p.presencePenalty) <= 2.0f, "presence_penalty",
          "in [-2, 2]", p.presencePenalty);
  require(std::isfinite(p.frequencyPenalty) && std::fabs(p.frequencyPenalty) <= 2.0f, "frequency_penalty",
          "in [-2, 2]", p.frequencyPenalty);
  require(p.topLogprobs >= 0 && p.topLogprobs <= 20, "top_logprobs", "in [0, 20]", p.topLogprobs);
  require(p.maxTokens >= 1, "max_tokens", "a positive integer", p.maxTokens);
}

}  // namespace phx
