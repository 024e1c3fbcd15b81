// The engine against itself: decoding with the KV cache equals recomputing the whole sequence, a batch mixing
// prefill chunks and decode tokens of sequences at different positions (block tables scattered over the pool)
// equals each sequence run alone, and 1 and 2 threads give identical results.
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include <gtest/gtest.h>

#include "kernels/matmul.h"
#include "kernels/roofline.h"
#include "tests/engine/engine_harness.h"
#include "tests/engine/mixed_schedule.h"

namespace phx::testing {
namespace {

// The same maths on the same inputs, only a different number of rows per matmul (a kernel may take another path
// for M = 1 than for M = 30) or another batch: only fp32 summation order may differ. Measured: 0 to 1e-12.
constexpr double kSamePathNmseBound = 1e-9;

using Param = std::tuple<std::string, MatmulCompute>;

// Each matmul compute mode promises bit-identical rows whatever m and the thread count: both are checked.
class EngineConsistencyTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (std::get<1>(GetParam()) == MatmulCompute::kBf16Dot && !cpuFeatures().avx512Bf16) {
      GTEST_SKIP() << "this CPU has no AVX512_BF16";
    }
    setMatmulCompute(std::get<1>(GetParam()));
  }
  const std::string& preset() const { return std::get<0>(GetParam()); }
  std::string label() const { return preset() + ", " + matmulComputeName(std::get<1>(GetParam())); }
};

TEST_P(EngineConsistencyTest, DecodeWithCacheEqualsFullRecompute) {
  const ShardWeights& weights = loadedWeights(preset());
  const int64_t vocab = weights.config.vocabSize;
  const std::vector<int32_t> tokens = sampleTokens(30, 3);
  const std::vector<int64_t> decode = {20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};  // prefill 20, then 10 decode steps
  const std::vector<int64_t> recompute = {30};
  EngineUnderTest cached(weights, 64, 2), fresh(weights, 64, 2);
  const std::vector<float> stepwise = runSequence(cached.runner, tokens, decode, scatteredBlocks(4, 2, 5));
  const std::vector<float> whole = runSequence(fresh.runner, tokens, recompute, scatteredBlocks(4, 2, 6));
  const std::span<const float> decoded(stepwise.data() + 20 * vocab, size_t(10 * vocab));
  const std::span<const float> expected(whole.data() + 20 * vocab, size_t(10 * vocab));
  const double error = nmse(decoded, expected);
  std::printf("[%s] 10 cached decode steps vs recompute: NMSE %.3g, max |diff| %.3g\n", label().c_str(), error,
              maxAbsDiff(decoded, expected));
  EXPECT_LT(error, kSamePathNmseBound);
  EXPECT_LT(nmse(std::span(stepwise).first(size_t(20 * vocab)), std::span(whole).first(size_t(20 * vocab))),
            kSamePathNmseBound);
}

TEST_P(EngineConsistencyTest, MixedBatchEqualsEachSequenceAlone) {
  const ShardWeights& weights = loadedWeights(preset());
  const auto seqs = scheduleSequences();
  const auto tables = scatteredTables(seqs);
  EngineUnderTest batched(weights, 64, 2, 4);
  const auto together = runSchedule(batched, seqs, tables);
  for (size_t s = 0; s < seqs.size(); ++s) {
    EngineUnderTest alone(weights, 64, 2, 4);
    const std::vector<int64_t> oneChunk = {int64_t(seqs[s].size())};
    const std::vector<float> expected = runSequence(alone.runner, seqs[s], oneChunk, scatteredBlocks(16, 8, 1));
    const double error = nmse(together.at(int(s)), expected);
    std::printf("[%s] sequence %zu (%zu tokens) in mixed batches vs alone: NMSE %.3g\n", label().c_str(), s,
                seqs[s].size(), error);
    EXPECT_LT(error, kSamePathNmseBound) << "sequence " << s;
  }
}

TEST_P(EngineConsistencyTest, OneAndTwoThreadsGiveIdenticalResults) {
  const ShardWeights& weights = loadedWeights(preset());
  const auto seqs = scheduleSequences();
  const auto tables = scatteredTables(seqs);
  EngineUnderTest one(weights, 64, 1, 4);
  const auto single = runSchedule(one, seqs, tables);
  EngineUnderTest two(weights, 64, 2, 4);
  const auto dual = runSchedule(two, seqs, tables);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto& a = single.at(int(s));
    const auto& b = dual.at(int(s));
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0)
        << "sequence " << s << ": max |diff| " << maxAbsDiff(a, b);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, EngineConsistencyTest,
                         ::testing::Combine(::testing::Values("tiny", "small"),
                                            ::testing::Values(MatmulCompute::kF32Fma, MatmulCompute::kBf16Dot)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + matmulComputeName(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace phx::testing
