// The engine against the independent fp32 reference (tests/reference) on the generated tiny and small models.
// Both read the same BF16 weights exactly; they differ in fp32 summation order and in how the kernels compute
// (packed layouts, f32 panels or BF16 streaming, vectorised exp), so logits agree to within a stated NMSE, and
// greedy choices agree wherever the reference's top-1/top-2 margin is wider than the logits' error bound. Both of
// the matmul's compute modes (f32 FMA on widened weights; vdpbf16ps, which rounds activations to BF16 at each
// matmul) and both KV cache types (F32; BF16, which rounds keys and values) are checked.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <tuple>

#include <gtest/gtest.h>

#include "kernels/matmul.h"
#include "kernels/roofline.h"
#include "tests/engine/engine_harness.h"
#include "tests/reference/reference_model.h"

namespace phx::testing {
namespace {

// Normalised mean squared error of the engine's logits against the reference's: 1e-4, loose enough for BF16
// activations in the matmuls and any summation order, tight enough to catch a wrong position, head mapping or norm
// (those give NMSE of 1e-2..1).
constexpr double kLogitsNmseBound = 1e-4;

// In logit units: with NMSE <= 1e-4 the RMS error of a row is at most 1e-2 of the row's RMS; the largest single
// error is allowed 4 times that. Greedy tokens must agree where the reference's margin exceeds twice this.
double errorBound(std::span<const float> referenceRow) {
  double power = 0;
  for (float v : referenceRow) power += double(v) * v;
  return 4.0 * std::sqrt(kLogitsNmseBound * power / double(referenceRow.size()));
}

struct TopTwo {
  int32_t best = -1;
  float margin = 0;
};

TopTwo topTwo(std::span<const float> row) {
  std::vector<int32_t> ids(row.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + 2, ids.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  return {ids[0], row[ids[0]] - row[ids[1]]};
}

using Param = std::tuple<std::string, MatmulCompute, KvType>;

class EngineReferenceTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (std::get<1>(GetParam()) == MatmulCompute::kBf16Dot && !cpuFeatures().avx512Bf16) {
      GTEST_SKIP() << "this CPU has no AVX512_BF16";
    }
    setMatmulCompute(std::get<1>(GetParam()));
  }
  const std::string& preset() const { return std::get<0>(GetParam()); }
  KvType kvType() const { return std::get<2>(GetParam()); }
  std::string label() const {
    return preset() + ", " + matmulComputeName(std::get<1>(GetParam())) + ", KV " + kvTypeName(kvType());
  }
};

TEST_P(EngineReferenceTest, PrefillLogitsMatchTheReference) {
  const ShardWeights& weights = loadedWeights(preset());
  const reference::ReferenceModel reference(modelDir(preset()));
  const std::vector<int32_t> tokens = sampleTokens(37, 1);
  EngineUnderTest engine(weights, 64, 2, 16, kvType());
  const int64_t chunk[] = {37};
  const std::vector<float> logits = runSequence(engine.runner, tokens, chunk, scatteredBlocks(4, 3, 7));
  const std::vector<float> expected = reference.forward(tokens);
  const double error = nmse(logits, expected);
  std::printf("[%s] prefill of %zu tokens: logits NMSE %.3g (bound %.0g), max |diff| %.3g\n", label().c_str(),
              tokens.size(), error, kLogitsNmseBound, maxAbsDiff(logits, expected));
  EXPECT_LT(error, kLogitsNmseBound);
}

// The engine generates greedily with its KV cache, one token a step; the reference recomputes the whole sequence
// once, and row i of its logits is its prediction after the first i + 1 tokens (it is causal).
TEST_P(EngineReferenceTest, GreedyTokensMatchWhereTheMarginIsClear) {
  const ShardWeights& weights = loadedWeights(preset());
  const reference::ReferenceModel reference(modelDir(preset()));
  const int64_t vocab = weights.config.vocabSize;
  const int64_t promptLength = 12, generated = 24;
  std::vector<int32_t> tokens = sampleTokens(promptLength, 2);
  EngineUnderTest engine(weights, 64, 2, 16, kvType());
  const std::vector<int32_t> blocks = scatteredBlocks(4, 3, 11);
  std::vector<std::vector<float>> engineRows;
  int64_t cached = 0;
  for (int64_t i = 0; i < generated; ++i) {
    StepBatch batch;
    batch.tokens.assign(tokens.begin() + cached, tokens.end());
    batch.sequences.push_back({cached, int64_t(batch.tokens.size()), blocks, LogitsFor::kLast});
    const StepOutput& out = engine.runner.run(batch);
    engineRows.emplace_back(out.logits.begin(), out.logits.end());
    cached = int64_t(tokens.size());
    tokens.push_back(topTwo(out.row(0)).best);
  }
  const std::vector<float> expected = reference.forward(tokens);
  int64_t clear = 0, agreed = 0;
  double worstNmse = 0, smallestClearMargin = INFINITY;
  for (int64_t i = 0; i < generated; ++i) {
    const std::span<const float> row(expected.data() + (promptLength - 1 + i) * vocab, size_t(vocab));
    const TopTwo ref = topTwo(row);
    const int32_t chosen = tokens[size_t(promptLength + i)];
    worstNmse = std::max(worstNmse, nmse(engineRows[size_t(i)], row));
    if (ref.margin > 2 * errorBound(row)) {
      ++clear;
      smallestClearMargin = std::min(smallestClearMargin, double(ref.margin));
      EXPECT_EQ(chosen, ref.best) << "step " << i << ": reference margin " << ref.margin;
    }
    agreed += chosen == ref.best;
  }
  std::printf("[%s] greedy: %lld/%lld steps agree with the reference, %lld with a clear margin (smallest %.3g), "
              "worst step NMSE %.3g\n",
              label().c_str(), (long long)agreed, (long long)generated, (long long)clear, smallestClearMargin,
              worstNmse);
  EXPECT_LT(worstNmse, kLogitsNmseBound);
  EXPECT_GE(clear, generated / 2) << "too few steps with a clear margin: the comparison says little";
}

INSTANTIATE_TEST_SUITE_P(Models, EngineReferenceTest,
                         ::testing::Combine(::testing::Values("tiny", "small"),
                                            ::testing::Values(MatmulCompute::kF32Fma, MatmulCompute::kBf16Dot),
                                            ::testing::Values(KvType::kF32, KvType::kBf16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + matmulComputeName(std::get<1>(info.param)) +
                                  "_kv_" + kvTypeName(std::get<2>(info.param));
                         });

}  // namespace
}  // namespace phx::testing
