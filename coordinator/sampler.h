// Turns one row of logits into the next token: penalties, temperature, top-k, top-p and min-p as vLLM applies
// them, then a seeded draw. Reported logprobs are those of the model's own distribution (log-softmax of the raw
// logits), as OpenAI's API reports them.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "coordinator/sampling_params.h"
#include "rpc/step.h"

namespace phx {

struct SampledToken {
  int32_t id = -1;
  float logprob = 0.0f;                           // of `id` under the model's distribution
  std::vector<std::pair<int32_t, float>> topLogprobs;  // most likely first, params.topLogprobs of them
};

class Sampler {
 public:
  // `fallbackSeed` seeds the draw when params.seed is unset (the caller picks it, e.g. from a request counter).
  Sampler(SamplingParams params, uint64_t fallbackSeed);

  // logits: [vocab] for the next position; history: the tokens generated so far (for the penalties).
  SampledToken sample(std::span<const float> logits, std::span<const int32_t> history);
  // The same over a row's candidates only (rpc/step.h): penalties, temperature, top-k/p and min-p apply to the
  // candidates, tokens outside them have probability 0 for the draw; logprobs stay exact (logit - logSumExp), and
  // topLogprobs holds at most as many entries as there are candidates. Throws phx::Error (invalid argument) for an
  // empty or ragged row.
  SampledToken sample(const LogitCandidates& row, std::span<const int32_t> history);

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace phx
