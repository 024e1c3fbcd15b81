// What a request asks of the sampler: the knobs of OpenAI's and vLLM's sampling parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace phx {

struct SamplingParams {
  float temperature = 1.0f;  // 0 means greedy
  int32_t topK = 0;          // 0 or less: off
  float topP = 1.0f;         // nucleus mass, (0, 1]
  float minP = 0.0f;         // keep tokens with p >= minP * p(top-1)
  float presencePenalty = 0.0f;   // subtracted once from the logit of every token already generated
  float frequencyPenalty = 0.0f;  // subtracted per occurrence of a token already generated
  std::optional<uint64_t> seed;   // reproducible sampling when set
  int32_t topLogprobs = 0;        // report the N most likely tokens at each position
  int32_t maxTokens = 256;
  std::vector<int32_t> stopTokenIds;   // generation ends after emitting one of these (it is not shown as text)
  std::vector<std::string> stopStrings;  // generation ends before the first occurrence (the string is not shown)

  bool greedy() const { return temperature <= 0.0f; }
};

// Throws phx::Error (invalid argument) naming the first field out of range.
void validateSamplingParams(const SamplingParams& params);

}  // namespace phx
