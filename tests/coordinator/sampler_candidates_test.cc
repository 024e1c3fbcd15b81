// The sampler over a row's candidates (what a cluster returns) against the dense path over the same row: the same
// greedy token and the same logprobs; seeded draws stay inside the candidates; merged vocab slices give the
// candidates of the whole row.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "common/error.h"
#include "coordinator/cluster_candidates.h"
#include "coordinator/sampler.h"
#include "worker/logit_candidates.h"

namespace phx {
namespace {

std::vector<float> randomRow(size_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> row(vocab);
  for (float& l : row) l = normal(rng);
  return row;
}

TEST(SamplerCandidates, GreedyTokenAndLogprobsMatchTheDensePath) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<float> row = randomRow(5000, seed);
    const LogitCandidates candidates = topLogitCandidates(row, 0, kDefaultCandidates);
    SamplingParams params;
    params.temperature = 0;
    params.topLogprobs = 20;
    Sampler dense(params, 1), sparse(params, 1);
    const SampledToken a = dense.sample(row, {});
    const SampledToken b = sparse.sample(candidates, {});
    EXPECT_EQ(a.id, b.id);
    EXPECT_NEAR(a.logprob, b.logprob, 1e-4);
    ASSERT_EQ(a.topLogprobs.size(), b.topLogprobs.size());
    for (size_t i = 0; i < a.topLogprobs.size(); ++i) {
      EXPECT_EQ(a.topLogprobs[i].first, b.topLogprobs[i].first);
      EXPECT_NEAR(a.topLogprobs[i].second, b.topLogprobs[i].second, 1e-4);
    }
  }
}

TEST(SamplerCandidates, PenaltiesApplyToCandidatesInTheHistory) {
  const std::vector<float> row = randomRow(1000, 7);
  const LogitCandidates candidates = topLogitCandidates(row, 0, 64);
  SamplingParams params;
  params.temperature = 0;
  params.presencePenalty = 100.0f;  // the history's tokens can never win
  const std::vector<int32_t> history = {candidates.ids[0], candidates.ids[1]};
  Sampler dense(params, 1), sparse(params, 1);
  const SampledToken a = dense.sample(row, history);
  EXPECT_EQ(a.id, candidates.ids[2]);
  EXPECT_EQ(sparse.sample(candidates, history).id, a.id);
}

TEST(SamplerCandidates, SeededDrawsStayInsideTheCandidatesAndRepeat) {
  const std::vector<float> row = randomRow(4000, 3);
  const LogitCandidates candidates = topLogitCandidates(row, 0, 16);
  const std::set<int32_t> allowed(candidates.ids.begin(), candidates.ids.end());
  for (const auto& [topK, topP, minP] : {std::tuple{0, 1.0f, 0.0f}, {8, 1.0f, 0.0f}, {0, 0.9f, 0.0f},
                                         {0, 1.0f, 0.05f}}) {
    SamplingParams params;
    params.temperature = 2.0f;  // flat enough that a dense draw would leave the top 16 often
    params.topK = topK;
    params.topP = topP;
    params.minP = minP;
    params.seed = 5;
    Sampler first(params, 0), second(params, 0);
    std::set<int32_t> seen;
    for (int i = 0; i < 2000; ++i) {
      const SampledToken token = first.sample(candidates, {});
      ASSERT_TRUE(allowed.count(token.id)) << token.id;
      EXPECT_EQ(second.sample(candidates, {}).id, token.id);
      EXPECT_NEAR(token.logprob, row[size_t(token.id)] - candidates.logSumExp, 1e-5);
      seen.insert(token.id);
    }
    EXPECT_GT(seen.size(), 1u);
    if (topK > 0) EXPECT_LE(seen.size(), size_t(topK));
  }
}

TEST(SamplerCandidates, MergedSlicesEqualTheWholeRow) {
  const std::vector<float> row = randomRow(1003, 11);
  const LogitCandidates whole = topLogitCandidates(row, 0, 50);
  // Three uneven slices, as three last-stage ranks would hold them.
  const std::vector<std::pair<size_t, size_t>> slices = {{0, 300}, {300, 512}, {812, 191}};
  std::vector<LogitCandidates> parts;
  for (auto [begin, count] : slices) {
    parts.push_back(topLogitCandidates(std::span(row).subspan(begin, count), int64_t(begin), 50));
  }
  std::vector<const LogitCandidates*> pointers;
  for (const LogitCandidates& p : parts) pointers.push_back(&p);
  const LogitCandidates merged = mergeLogitCandidates(pointers, 50);
  EXPECT_EQ(merged.ids, whole.ids);
  EXPECT_EQ(merged.logits, whole.logits);
  EXPECT_NEAR(merged.logSumExp, whole.logSumExp, 1e-4);
}

TEST(SamplerCandidates, EmptyOrRaggedRowIsRefused) {
  Sampler sampler(SamplingParams{}, 1);
  EXPECT_THROW(sampler.sample(LogitCandidates{}, {}), Error);
  LogitCandidates ragged{{1, 2}, {0.5f}, 0.0f};
  EXPECT_THROW(sampler.sample(ragged, {}), Error);
}

}  // namespace
}  // namespace phx
