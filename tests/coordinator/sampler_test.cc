// The sampler against distributions computed here in double precision: empirical frequencies over many seeded
// draws must match the expected probabilities (a chi-square bound), and filtered tokens must never appear.
#include "coordinator/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/error.h"

namespace phx {
namespace {

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  double maxLogit = -1e300;
  for (float l : logits) maxLogit = std::max(maxLogit, double(l) / temperature);
  std::vector<double> p;
  double sum = 0;
  for (float l : logits) sum += std::exp(l / temperature - maxLogit);
  for (float l : logits) p.push_back(std::exp(l / temperature - maxLogit) / sum);
  return p;
}

std::vector<float> logitsFor(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(float(std::log(p)));
  return logits;
}

std::map<int32_t, int> drawMany(const SamplingParams& params, const std::vector<float>& logits, int draws) {
  Sampler sampler(params, 42);
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits, {}).id];
  return counts;
}

// Pearson chi-square of the counts against `expected` (only tokens with expected > 0 may appear). With 4-6
// categories the 99.9% quantile is below 25; a sampler off by a few percent on any token exceeds it at 40k draws.
void expectMatches(const std::map<int32_t, int>& counts, const std::vector<double>& expected, int draws) {
  double chi2 = 0;
  for (size_t id = 0; id < expected.size(); ++id) {
    const int seen = counts.count(int32_t(id)) ? counts.at(int32_t(id)) : 0;
    if (expected[id] == 0) {
      EXPECT_EQ(seen, 0) << "token " << id << " should have been filtered";
      continue;
    }
    const double e = expected[id] * draws;
    chi2 += (seen - e) * (seen - e) / e;
  }
  EXPECT_LT(chi2, 25.0);
}

const std::vector<double> kProbs = {0.5, 0.3, 0.15, 0.05};
constexpr int kDraws = 40000;

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  SamplingParams params;
  params.temperature = 0;
  Sampler sampler(params, 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 2.9f}, {}).id, 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 5.0f, 5.0f}, {}).id, 1);
}

TEST(Sampler, TemperatureOneFollowsSoftmax) {
  SamplingParams params;
  expectMatches(drawMany(params, logitsFor(kProbs), kDraws), kProbs, kDraws);
}

TEST(Sampler, TemperatureSharpens) {
  SamplingParams params;
  params.temperature = 0.5f;
  const auto logits = logitsFor(kProbs);
  expectMatches(drawMany(params, logits, kDraws), softmax(logits, 0.5), kDraws);
}

TEST(Sampler, TopKKeepsKAndRenormalises) {
  SamplingParams params;
  params.topK = 2;
  expectMatches(drawMany(params, logitsFor(kProbs), kDraws), {0.625, 0.375, 0, 0}, kDraws);
}

TEST(Sampler, TopPKeepsSmallestSetReachingMass) {
  SamplingParams params;
  params.topP = 0.7f;  // 0.5 < 0.7 <= 0.8: keeps tokens 0 and 1
  expectMatches(drawMany(params, logitsFor(kProbs), kDraws), {0.625, 0.375, 0, 0}, kDraws);
  params.topP = 0.9f;  // 0.8 < 0.9 <= 0.95: keeps 0, 1, 2
  expectMatches(drawMany(params, logitsFor(kProbs), kDraws), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0}, kDraws);
}

TEST(Sampler, TopPOverLargeVocabularyWidensItsSort) {
  // 5000 equally likely tokens: top-p 0.49 must keep the 2450 lowest ids (ties broken by id), more than the
  // first partial sort holds.
  SamplingParams params;
  params.topP = 0.49f;
  Sampler sampler(params, 7);
  std::vector<float> logits(5000, 0.0f);
  int32_t maxSeen = 0;
  for (int i = 0; i < 3000; ++i) maxSeen = std::max(maxSeen, sampler.sample(logits, {}).id);
  EXPECT_LE(maxSeen, 2450);  // 0.49f is a hair above 0.49: the 2451st token completes the mass
  EXPECT_GT(maxSeen, 2400);
}

TEST(Sampler, MinPDropsTokensBelowFractionOfTop) {
  SamplingParams params;
  params.minP = 0.5f;  // keeps p >= 0.25: tokens 0 and 1
  expectMatches(drawMany(params, logitsFor(kProbs), kDraws), {0.625, 0.375, 0, 0}, kDraws);
}

TEST(Sampler, PenaltiesLowerRepeatedTokens) {
  SamplingParams params;
  params.temperature = 0;
  params.frequencyPenalty = 0.6f;
  Sampler sampler(params, 1);
  const std::vector<float> logits = {2.0f, 1.0f, 0.0f};
  EXPECT_EQ(sampler.sample(logits, std::vector<int32_t>{0}).id, 0);     // 2.0 - 0.6 > 1.0
  EXPECT_EQ(sampler.sample(logits, std::vector<int32_t>{0, 0}).id, 1);  // 2.0 - 1.2 < 1.0
  SamplingParams presence = params;
  presence.frequencyPenalty = 0;
  presence.presencePenalty = 1.5f;
  Sampler once(presence, 1);
  EXPECT_EQ(once.sample(logits, std::vector<int32_t>{0}).id, 1);  // 2.0 - 1.5 < 1.0, counted once
}

TEST(Sampler, SeedMakesDrawsReproducible) {
  SamplingParams params;
  params.seed = 1234;
  std::vector<float> logits(1000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)));
  Sampler a(params, 1), b(params, 999);
  std::vector<int32_t> drawsA, drawsB;
  for (int i = 0; i < 50; ++i) {
    drawsA.push_back(a.sample(logits, {}).id);
    drawsB.push_back(b.sample(logits, {}).id);
  }
  EXPECT_EQ(drawsA, drawsB);
  params.seed = 1235;
  Sampler c(params, 1);
  std::vector<int32_t> drawsC;
  for (int i = 0; i < 50; ++i) drawsC.push_back(c.sample(logits, {}).id);
  EXPECT_NE(drawsA, drawsC);
}

TEST(Sampler, LogprobsAreTheModelsLogSoftmax) {
  SamplingParams params;
  params.temperature = 0.3f;  // logprobs report the model's distribution, not the tempered one
  params.topLogprobs = 3;
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.5f, 0.0f};
  const auto p = softmax(logits, 1.0);
  Sampler sampler(params, 3);
  SampledToken token = sampler.sample(logits, {});
  EXPECT_NEAR(token.logprob, std::log(p[token.id]), 1e-5);
  ASSERT_EQ(token.topLogprobs.size(), 3u);
  EXPECT_EQ(token.topLogprobs[0].first, 1);
  EXPECT_EQ(token.topLogprobs[1].first, 3);
  EXPECT_EQ(token.topLogprobs[2].first, 0);
  for (auto [id, logprob] : token.topLogprobs) EXPECT_NEAR(logprob, std::log(p[id]), 1e-5);
}

TEST(SamplingParams, RejectsOutOfRangeNamingTheField) {
  SamplingParams params;
  params.topP = 1.5f;
  try {
    validateSamplingParams(params);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("top_p"), std::string::npos);
  }
  params = {};
  params.temperature = -1;
  EXPECT_THROW(validateSamplingParams(params), Error);
  params = {};
  params.maxTokens = 0;
  EXPECT_THROW(validateSamplingParams(params), Error);
}

}  // namespace
}  // namespace phx
