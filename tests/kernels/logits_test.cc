// log-sum-exp, log-softmax and top-k against double-precision / sort-based references, and the vocabulary-slice
// merge against the unsliced row. Bounds: log-sum-exp within 1e-5 absolute (fp32 sums of up to 100k terms),
// log-softmax NMSE < 1e-10; top-k ids exact (ties to the lower id).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/logits.h"
#include "tests/kernels/reference_ops.h"
#include "tests/kernels/test_util.h"

namespace phx {
namespace {

std::vector<int32_t> referenceTopIds(const std::vector<float>& logits, int64_t k) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  ids.resize(size_t(std::min<int64_t>(k, int64_t(ids.size()))));
  return ids;
}

class LogitsTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(LogitsTest, LogSoftmaxAndTopKMatchReferences) {
  int64_t n = GetParam();
  std::vector<float> logits = testing::randomFloats(size_t(n), 7, 4.0f);
  for (int64_t i = 0; i < n; i += 7) logits[size_t(i)] = logits[0];  // ties
  std::vector<double> want = testing::referenceLogSoftmax(logits);
  std::vector<float> got(static_cast<size_t>(n));
  logSoftmax(logits.data(), n, got.data());
  EXPECT_LT(testing::nmse(got, want), 1e-10);
  EXPECT_NEAR(logSumExp(logits.data(), n), double(logits[0]) - want[0], 1e-5);
  for (int64_t k : {int64_t(1), int64_t(5), int64_t(40), n + 3}) {
    std::vector<TokenScore> top = topK(logits.data(), n, k);
    std::vector<int32_t> ids = referenceTopIds(logits, k);
    ASSERT_EQ(top.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(top[i].id, ids[i]) << "rank " << i;
      EXPECT_EQ(top[i].value, logits[size_t(ids[i])]);
    }
  }
}

TEST_P(LogitsTest, MergedSlicesEqualTheWholeRow) {
  int64_t n = GetParam();
  std::vector<float> logits = testing::randomFloats(size_t(n), 8, 3.0f);
  int64_t k = 20;
  SliceTopK whole = sliceTopK(logits.data(), n, k, 0);
  for (int parts : {1, 2, 3, 5}) {
    std::vector<SliceTopK> slices;
    for (int p = 0; p < parts; ++p) {
      int64_t begin = n * p / parts, end = n * (p + 1) / parts;
      if (end > begin) slices.push_back(sliceTopK(logits.data() + begin, end - begin, k, begin));
    }
    SliceTopK merged = mergeSliceTopK(slices, k);
    ASSERT_EQ(merged.top.size(), whole.top.size());
    for (size_t i = 0; i < whole.top.size(); ++i) EXPECT_EQ(merged.top[i].id, whole.top[i].id) << parts << " " << i;
    EXPECT_NEAR(merged.logSumExp, whole.logSumExp, 1e-5) << parts;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, LogitsTest, ::testing::Values(1, 2, 17, 1000, 100352));

TEST(LogitsEdgeCases, NanRanksLastAndInfinitiesSurvive) {
  std::vector<float> logits = {1.0f, NAN, 3.0f, -INFINITY};
  std::vector<TokenScore> top = topK(logits.data(), 4, 4);
  EXPECT_EQ(top[0].id, 2);
  EXPECT_EQ(top[1].id, 0);
  EXPECT_EQ(top[2].id, 3);
  EXPECT_EQ(top[3].id, 1);
  std::vector<float> masked = {-INFINITY, -INFINITY};
  EXPECT_EQ(logSumExp(masked.data(), 2), -INFINITY);
  std::vector<float> oneHot = {-INFINITY, 2.0f};
  EXPECT_FLOAT_EQ(logSumExp(oneHot.data(), 2), 2.0f);
}

}  // namespace
}  // namespace phx
