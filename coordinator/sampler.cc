#include "coordinator/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

#include "common/error.h"

namespace phx {
namespace {

struct Candidate {
  int32_t id;
  float logit;
};

// Descending by logit; ties broken by the lower id so every path is deterministic.
bool moreLikely(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

double logSumExp(std::span<const float> logits) {
  const float maxLogit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(double(l) - maxLogit);
  return maxLogit + std::log(sum);
}

// The `count` most likely candidates, sorted most likely first.
std::vector<Candidate> topCandidates(std::span<const float> logits, size_t count) {
  std::vector<Candidate> all(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) all[i] = {int32_t(i), logits[i]};
  count = std::min(count, all.size());
  std::partial_sort(all.begin(), all.begin() + count, all.end(), moreLikely);
  all.resize(count);
  return all;
}

std::vector<float> penalised(std::span<const float> logits, std::span<const int32_t> history,
                             const SamplingParams& p) {
  std::vector<float> adjusted(logits.begin(), logits.end());
  if (p.presencePenalty == 0.0f && p.frequencyPenalty == 0.0f) return adjusted;
  std::unordered_map<int32_t, int> counts;
  for (int32_t id : history) ++counts[id];
  for (auto [id, count] : counts) {
    if (id >= 0 && size_t(id) < adjusted.size()) adjusted[id] -= p.presencePenalty + p.frequencyPenalty * count;
  }
  return adjusted;
}

// Keeps the most likely candidates whose mass first reaches topP of `total` (a log-sum-exp); false when the
// candidates given do not reach it.
bool cutToMass(std::vector<Candidate>& sorted, double total, float topP) {
  double mass = 0.0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    mass += std::exp(sorted[i].logit - total);
    if (mass >= topP) {
      sorted.resize(i + 1);
      return true;
    }
  }
  return false;
}

// The candidates top-k, then top-p, then min-p keep (vLLM's order; top-p renormalises over what top-k kept),
// logits already divided by the temperature. Top-p needs the distribution sorted only until the kept mass is
// reached: a partial sort widens until it covers topP, so the common case never sorts the whole vocabulary.
std::vector<Candidate> keptCandidates(std::span<const float> scaled, const SamplingParams& p) {
  std::vector<Candidate> kept;
  if (p.topK > 0) {
    kept = topCandidates(scaled, size_t(p.topK));
    std::vector<float> keptLogits;
    for (const Candidate& c : kept) keptLogits.push_back(c.logit);
    if (p.topP < 1.0f) cutToMass(kept, logSumExp(keptLogits), p.topP);
  } else if (p.topP < 1.0f) {
    const double total = logSumExp(scaled);
    for (size_t width = 256;; width *= 4) {
      kept = topCandidates(scaled, width);
      if (cutToMass(kept, total, p.topP) || kept.size() == scaled.size()) break;
    }
  } else {
    for (size_t i = 0; i < scaled.size(); ++i) kept.push_back({int32_t(i), scaled[i]});
  }
  if (p.minP > 0.0f) {
    const float best =
        std::max_element(kept.begin(), kept.end(), [](auto& a, auto& b) { return a.logit < b.logit; })->logit;
    const float floor = best + std::log(p.minP);
    std::erase_if(kept, [floor](const Candidate& c) { return c.logit < floor; });
  }
  return kept;
}

// Sampling over a row's candidates only (tokens outside them have probability 0): already few, so a full sort;
// top-k, then top-p renormalised over what is left, then min-p.
std::vector<Candidate> keptAmongCandidates(std::vector<Candidate> all, const SamplingParams& p) {
  std::sort(all.begin(), all.end(), moreLikely);
  if (p.topK > 0 && size_t(p.topK) < all.size()) all.resize(size_t(p.topK));
  if (p.topP < 1.0f) {
    std::vector<float> logits;
    for (const Candidate& c : all) logits.push_back(c.logit);
    cutToMass(all, logSumExp(logits), p.topP);
  }
  if (p.minP > 0.0f) {
    const float floor = all.front().logit + std::log(p.minP);
    std::erase_if(all, [floor](const Candidate& c) { return c.logit < floor; });
  }
  return all;
}

int32_t draw(std::span<const Candidate> kept, std::mt19937_64& rng) {
  float best = kept.front().logit;
  for (const Candidate& c : kept) best = std::max(best, c.logit);
  std::vector<double> weights(kept.size());
  for (size_t i = 0; i < kept.size(); ++i) weights[i] = std::exp(double(kept[i].logit) - best);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  return kept[pick(rng)].id;
}

// Sampling from the whole distribution needs no sort: one pass of the inverse CDF.
int32_t drawFromAll(std::span<const float> scaled, std::mt19937_64& rng) {
  const double total = logSumExp(scaled);
  double target = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  for (size_t i = 0; i < scaled.size(); ++i) {
    target -= std::exp(scaled[i] - total);
    if (target <= 0.0) return int32_t(i);
  }
  return int32_t(std::max_element(scaled.begin(), scaled.end()) - scaled.begin());  // rounding left a sliver
}

std::unordered_map<int32_t, int> tokenCounts(std::span<const int32_t> history) {
  std::unordered_map<int32_t, int> counts;
  for (int32_t id : history) ++counts[id];
  return counts;
}

}  // namespace

Sampler::Sampler(SamplingParams params, uint64_t fallbackSeed)
    : params_(std::move(params)), rng_(params_.seed.value_or(fallbackSeed)) {}

SampledToken Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  std::vector<float> adjusted = penalised(logits, history, params_);
  SampledToken result;
  if (params_.greedy()) {
    result.id = topCandidates(adjusted, 1).front().id;
  } else {
    for (float& l : adjusted) l /= params_.temperature;
    const bool filtered = params_.topK > 0 || params_.topP < 1.0f || params_.minP > 0.0f;
    result.id = filtered ? draw(keptCandidates(adjusted, params_), rng_) : drawFromAll(adjusted, rng_);
  }

  const double total = logSumExp(logits);
  result.logprob = float(logits[result.id] - total);
  if (params_.topLogprobs > 0) {
    for (const Candidate& c : topCandidates(logits, params_.topLogprobs)) {
      result.topLogprobs.emplace_back(c.id, float(c.logit - total));
    }
  }
  return result;
}

SampledToken Sampler::sample(const LogitCandidates& row, std::span<const int32_t> history) {
  if (row.ids.empty() || row.ids.size() != row.logits.size()) {
    throwInvalidArgument("sampler: a candidate row has " + std::to_string(row.ids.size()) + " ids and " +
                         std::to_string(row.logits.size()) + " logits; expected the same number, at least one");
  }
  std::vector<Candidate> adjusted(row.ids.size());
  for (size_t i = 0; i < row.ids.size(); ++i) adjusted[i] = {row.ids[i], row.logits[i]};
  if (params_.presencePenalty != 0.0f || params_.frequencyPenalty != 0.0f) {
    const auto counts = tokenCounts(history);
    for (Candidate& c : adjusted) {
      const auto it = counts.find(c.id);
      if (it != counts.end()) c.logit -= params_.presencePenalty + params_.frequencyPenalty * float(it->second);
    }
  }
  SampledToken result;
  if (params_.greedy()) {
    result.id = std::min_element(adjusted.begin(), adjusted.end(), moreLikely)->id;
  } else {
    for (Candidate& c : adjusted) c.logit /= params_.temperature;
    result.id = draw(keptAmongCandidates(std::move(adjusted), params_), rng_);
  }

  // Exact under the whole distribution: the row's log-sum-exp covers every token, not only the candidates.
  const size_t index = size_t(std::find(row.ids.begin(), row.ids.end(), result.id) - row.ids.begin());
  result.logprob = row.logits[index] - row.logSumExp;
  if (params_.topLogprobs > 0) {
    std::vector<Candidate> sorted(row.ids.size());
    for (size_t i = 0; i < row.ids.size(); ++i) sorted[i] = {row.ids[i], row.logits[i]};
    const size_t count = std::min(sorted.size(), size_t(params_.topLogprobs));
    std::partial_sort(sorted.begin(), sorted.begin() + ptrdiff_t(count), sorted.end(), moreLikely);
    for (size_t i = 0; i < count; ++i) result.topLogprobs.emplace_back(sorted[i].id, sorted[i].logit - row.logSumExp);
  }
  return result;
}

}  // namespace phx
