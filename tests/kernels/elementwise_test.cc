// RMSNorm, RoPE, SwiGLU and the embedding lookup against the scalar references. All compute in fp32 from exact
// inputs, so the bound is NMSE < 1e-10 for both weight dtypes (observed ~1e-14; a wrong index gives ~1).
#include <gtest/gtest.h>

#include "kernels/embedding.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "kernels/threading.h"
#include "tests/kernels/reference_ops.h"
#include "tests/kernels/test_util.h"

namespace phx {
namespace {

using testing::nmse;

class ElementwiseTest : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {  // rows, width
 protected:
  void SetUp() override { setKernelThreads(2); }
};

TEST_P(ElementwiseTest, RmsNormMatchesReferenceForBothWeightTypes) {
  auto [rows, n] = GetParam();
  std::vector<float> x = testing::randomFloats(size_t(rows * n), 1, 3.0f);
  std::vector<uint16_t> weightBits = testing::randomBf16(size_t(n), 2);
  std::vector<float> weight(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) weight[size_t(i)] = testing::bf16BitsToFloat(weightBits[size_t(i)]);
  std::vector<float> want = testing::referenceRmsNorm(x, weight, rows, n, 1e-5);
  std::vector<float> fromBf16(x.size()), fromF32(x.size());
  rmsNorm(x.data(), rows, n, n, weightBits.data(), 1e-5f, fromBf16.data());
  rmsNorm(x.data(), rows, n, n, weight.data(), 1e-5f, fromF32.data());
  EXPECT_LT(nmse(fromBf16, want), 1e-10);
  EXPECT_TRUE(testing::bitIdentical(fromBf16, fromF32));
  std::vector<float> inPlace = x;  // y may alias x
  rmsNorm(inPlace.data(), rows, n, n, weight.data(), 1e-5f, inPlace.data());
  EXPECT_TRUE(testing::bitIdentical(inPlace, fromF32));
  setKernelThreads(1);
  std::vector<float> oneThread(x.size());
  rmsNorm(x.data(), rows, n, n, weight.data(), 1e-5f, oneThread.data());
  EXPECT_TRUE(testing::bitIdentical(oneThread, fromF32));
}

TEST_P(ElementwiseTest, RopeMatchesReference) {
  auto [rows, headDim] = GetParam();
  if (headDim % 2 != 0) headDim += 1;  // RoPE needs an even head dimension
  int64_t heads = 3, stride = heads * headDim + 5;
  std::vector<float> x = testing::randomFloats(size_t(rows * stride), 3);
  std::vector<int64_t> positions(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) positions[size_t(r)] = (r * 7919) % 16384;
  std::vector<float> want = x;
  testing::referenceRope(want, rows, stride, heads, headDim, positions, 250000.0);
  RopeTable table(headDim, 250000.0, 16384);
  std::vector<float> got = x;
  applyRope(got.data(), rows, stride, heads, headDim, positions.data(), table);
  EXPECT_LT(nmse(got, want), 1e-10);
  for (int64_t r = 0; r < rows; ++r) {  // the 5 floats past the heads are untouched
    for (int64_t c = heads * headDim; c < stride; ++c)
      ASSERT_EQ(got[size_t(r * stride + c)], x[size_t(r * stride + c)]);
  }
}

TEST_P(ElementwiseTest, SwigluMatchesReference) {
  auto [rows, inter] = GetParam();
  std::vector<float> gateUp = testing::randomFloats(size_t(rows * 2 * inter), 4, 4.0f);
  std::vector<float> got(size_t(rows * inter));
  swiglu(gateUp.data(), rows, inter, got.data());
  EXPECT_LT(nmse(got, testing::referenceSwiglu(gateUp, rows, inter)), 1e-10);
}

TEST_P(ElementwiseTest, EmbeddingSlicesSumToTheFullLookup) {
  auto [count, hidden] = GetParam();
  int64_t vocab = 50;
  std::vector<uint16_t> table = testing::randomBf16(size_t(vocab * hidden), 5);
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int64_t t = 0; t < count; ++t) ids[size_t(t)] = int32_t((t * 37 + 3) % (vocab + 10)) - 5;  // some outside
  std::vector<float> full(size_t(count * hidden)), sum(size_t(count * hidden), 0.0f);
  embeddingLookup(table.data(), 0, vocab, hidden, ids.data(), count, full.data());
  for (int64_t t = 0; t < count; ++t) {
    int32_t id = ids[size_t(t)];
    for (int64_t c = 0; c < hidden; ++c) {
      float want = (id >= 0 && id < vocab) ? testing::bf16BitsToFloat(table[size_t(id * hidden + c)]) : 0.0f;
      ASSERT_EQ(full[size_t(t * hidden + c)], want) << t << "," << c;
    }
  }
  for (auto [begin, end] : {std::pair<int64_t, int64_t>{0, 17}, {17, 33}, {33, vocab}}) {
    std::vector<float> part(size_t(count * hidden), -1.0f);
    embeddingLookup(table.data() + begin * hidden, begin, end, hidden, ids.data(), count, part.data());
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += part[i];
  }
  EXPECT_TRUE(testing::bitIdentical(sum, full));
}

INSTANTIATE_TEST_SUITE_P(Shapes, ElementwiseTest,
                         ::testing::Values(std::tuple<int64_t, int64_t>{1, 1}, std::tuple<int64_t, int64_t>{1, 8},
                                           std::tuple<int64_t, int64_t>{3, 17}, std::tuple<int64_t, int64_t>{7, 128},
                                           std::tuple<int64_t, int64_t>{33, 130},
                                           std::tuple<int64_t, int64_t>{5, 5120}));

TEST(RopeTest, PartialRotaryLeavesTheRestAlone) {
  int64_t headDim = 32, rotary = 16;
  std::vector<float> x = testing::randomFloats(size_t(2 * headDim), 6);
  std::vector<int64_t> positions = {3, 900};
  RopeTable table(rotary, 10000.0, 1024);
  std::vector<float> got = x;
  applyRope(got.data(), 2, headDim, 1, headDim, positions.data(), table);
  for (int64_t r = 0; r < 2; ++r) {
    std::vector<float> head(x.begin() + r * headDim, x.begin() + r * headDim + rotary);
    testing::referenceRope(head, 1, rotary, 1, rotary, {positions[size_t(r)]}, 10000.0);
    for (int64_t c = 0; c < rotary; ++c) EXPECT_NEAR(got[size_t(r * headDim + c)], head[size_t(c)], 1e-5);
    for (int64_t c = rotary; c < headDim; ++c) EXPECT_EQ(got[size_t(r * headDim + c)], x[size_t(r * headDim + c)]);
  }
}

}  // namespace
}  // namespace phx
