// planStep, the scheduler's batching policy, as a pure function (no engine): decode tokens first, then prompt
// chunks in admission order, under the token budget; only chunks that reach a sequence's last token are sampled.
#include "coordinator/step_plan.h"

#include <gtest/gtest.h>

namespace phx {
namespace {

struct Running {
  std::vector<int32_t> tokens;
  int64_t computed;
  BlockTable blocks;
  int32_t candidates = 0;
};

StepPlan plan(const std::vector<Running>& running, int64_t budget, int32_t candidates = 8, int64_t prefill = 0) {
  std::vector<PlannableSequence> sequences;
  for (const Running& r : running) sequences.push_back({r.tokens, r.computed, &r.blocks, r.candidates});
  return planStep(sequences, budget, candidates, 7, prefill);
}

std::vector<int32_t> count(int32_t n, int32_t first) {
  std::vector<int32_t> tokens;
  for (int32_t i = 0; i < n; ++i) tokens.push_back(first + i);
  return tokens;
}

TEST(StepPlanTest, DecodesFirstThenChunksPromptsUnderTheBudget) {
  const std::vector<Running> running = {
      {count(10, 100), 0, {1, 2}},     // a prompt of 10, nothing computed
      {count(6, 200), 5, {3, 4}},      // decoding: one pending token
      {count(20, 300), 4, {5, 6, 7}},  // a prompt part-way through
      {count(3, 400), 2, {8}, 50},     // decoding, with wider candidates of its own
  };
  const StepPlan p = plan(running, 12);
  // 12 tokens: 2 decode, then all 10 of the first prompt (sampled); none are left for the third sequence.
  ASSERT_EQ(p.chunks.size(), 3u) << "a prompt the budget cannot reach is not planned";
  // Batch order: the two decoding sequences, then the prompts in admission order.
  EXPECT_EQ(p.chunks[0].sequence, 1u);
  EXPECT_EQ(p.chunks[1].sequence, 3u);
  EXPECT_EQ(p.chunks[2].sequence, 0u);
  EXPECT_TRUE(p.chunks[0].decode && p.chunks[0].sampled);
  EXPECT_EQ(p.chunks[2].tokens, 10);
  EXPECT_TRUE(p.chunks[2].sampled);
  EXPECT_EQ(p.decodeTokens, 2);
  EXPECT_EQ(p.prefillTokens, 10);
}

TEST(StepPlanTest, APartialChunkIsNotSampledAndTheBatchCarriesEachSequencesBlocks) {
  const std::vector<Running> running = {{count(10, 100), 2, {4, 9}}, {count(6, 200), 5, {3}, 50}};
  const StepPlan p = plan(running, 4);
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks[1].tokens, 3);  // 4 - 1 decode token
  EXPECT_FALSE(p.chunks[1].sampled);
  const StepBatch& batch = p.batch;
  EXPECT_EQ(batch.candidates, 8);
  EXPECT_EQ(batch.kvEpoch, 7u);
  EXPECT_EQ(batch.tokens, (std::vector<int32_t>{205, 102, 103, 104}));
  ASSERT_EQ(batch.sequences.size(), 2u);
  EXPECT_EQ(batch.sequences[0].cachedTokens, 5);
  EXPECT_EQ(batch.sequences[0].blockTable, (BlockTable{3}));
  EXPECT_EQ(batch.sequences[0].candidates, 50);
  EXPECT_EQ(batch.sequences[0].logits, LogitsFor::kLast);
  EXPECT_EQ(batch.sequences[1].cachedTokens, 2);
  EXPECT_EQ(batch.sequences[1].newTokens, 3);
  EXPECT_EQ(batch.sequences[1].blockTable, (BlockTable{4, 9}));
  EXPECT_EQ(batch.sequences[1].logits, LogitsFor::kNone);
}

TEST(StepPlanTest, NothingRunningPlansAnEmptyStep) {
  EXPECT_TRUE(plan({}, 16).empty());
  EXPECT_TRUE(plan({{count(4, 1), 0, {1}}}, 0).empty());
}

// A prefill budget below the step's: every decode still runs, prompts share only the prefill budget, the first
// prompt in admission order first (whole, so sampled), the next one cut where the budget ends (not sampled).
TEST(StepPlanTest, PromptsTakeAtMostThePrefillBudgetAndDecodesAreNotCounted) {
  const std::vector<Running> running = {
      {count(6, 200), 5, {1}},       // decoding
      {count(8, 100), 0, {2}},       // a prompt of 8
      {count(8, 300), 0, {3}},       // another
      {count(3, 400), 2, {4}},       // decoding
  };
  const StepPlan p = plan(running, 64, 8, 12);
  ASSERT_EQ(p.chunks.size(), 4u);
  EXPECT_EQ(p.decodeTokens, 2);
  EXPECT_EQ(p.prefillTokens, 12) << "64 tokens were left, the prefill budget is 12";
  EXPECT_EQ(p.chunks[2].sequence, 1u);
  EXPECT_EQ(p.chunks[2].tokens, 8);
  EXPECT_TRUE(p.chunks[2].sampled);
  EXPECT_EQ(p.chunks[3].sequence, 2u);
  EXPECT_EQ(p.chunks[3].tokens, 4);
  EXPECT_FALSE(p.chunks[3].sampled);
  // 0: no prefill budget of its own, the old plan.
  EXPECT_EQ(plan(running, 64, 8, 0).prefillTokens, 16);
}

}  // namespace
}  // namespace phx
