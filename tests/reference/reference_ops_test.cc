// The reference's operations on values worked out by hand, and RoPE's defining property: the score between a
// rotated query and key depends only on their positions' difference.
#include "tests/reference/ops.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "model/bf16.h"

namespace phx::reference {
namespace {

TEST(ReferenceOps, RmsNormByHand) {
  // x = [3, 4]: mean(x^2) = 12.5, so y = x / sqrt(12.5 + eps) * w.
  const std::vector<float> x = {3, 4}, w = {1.0f, 0.5f};
  std::vector<float> y(2);
  rmsNorm(x, w, 0.0, y);
  EXPECT_NEAR(y[0], 3 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(y[1], 4 / std::sqrt(12.5) * 0.5, 1e-6);
  // eps enters under the root: x = [0, 0] stays 0; x = [1, 1] with eps 3 gives 1 / sqrt(4).
  const std::vector<float> ones = {1, 1}, unit = {1, 1};
  rmsNorm(ones, unit, 3.0, y);
  EXPECT_NEAR(y[0], 0.5, 1e-7);
  EXPECT_NEAR(y[1], 0.5, 1e-7);
}

TEST(ReferenceOps, SoftmaxByHand) {
  std::vector<float> v = {0.0f, float(std::log(2.0)), float(std::log(3.0))};
  softmaxInPlace(v);
  EXPECT_NEAR(v[0], 1.0 / 6, 1e-7);
  EXPECT_NEAR(v[1], 2.0 / 6, 1e-7);
  EXPECT_NEAR(v[2], 3.0 / 6, 1e-7);
  // Large inputs must not overflow: shifting by the maximum keeps exp in range.
  std::vector<float> big = {1000.0f, 1000.0f, -1000.0f};
  softmaxInPlace(big);
  EXPECT_NEAR(big[0], 0.5, 1e-7);
  EXPECT_NEAR(big[1], 0.5, 1e-7);
  EXPECT_NEAR(big[2], 0.0, 1e-30);
}

TEST(ReferenceOps, SiluByHand) {
  EXPECT_EQ(silu(0.0f), 0.0f);
  // sigmoid(ln 3) = 3/4
  EXPECT_NEAR(silu(float(std::log(3.0))), std::log(3.0) * 0.75, 1e-7);
  EXPECT_NEAR(silu(-float(std::log(3.0))), -std::log(3.0) * 0.25, 1e-7);
  EXPECT_NEAR(silu(50.0f), 50.0f, 1e-5);
  EXPECT_NEAR(silu(-50.0f), 0.0f, 1e-15);
}

TEST(ReferenceOps, RopePairsTheTwoHalves) {
  // head_dim 4, theta 100: inv_freq = [1, 100^-0.5 = 0.1]. Element 0 pairs with element 2 (rotate-half), not with
  // element 1 (the interleaved GPT-J convention), and the rotation is x1 cos - x2 sin, x2 cos + x1 sin.
  std::vector<float> head = {1, 0, 0, 0};
  applyRope(head, 1, 100.0);
  EXPECT_NEAR(head[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(head[1], 0.0, 1e-7);
  EXPECT_NEAR(head[2], std::sin(1.0), 1e-7);
  EXPECT_NEAR(head[3], 0.0, 1e-7);
  head = {0, 1, 0, 2};
  applyRope(head, 3, 100.0);  // angle 0.3 on the (1, 3) pair
  EXPECT_NEAR(head[1], std::cos(0.3) - 2 * std::sin(0.3), 1e-6);
  EXPECT_NEAR(head[3], 2 * std::cos(0.3) + std::sin(0.3), 1e-6);
  EXPECT_NEAR(head[0], 0.0, 1e-7);
  EXPECT_NEAR(head[2], 0.0, 1e-7);
  // Position 0 is the identity.
  head = {0.5f, -1.5f, 2.0f, 3.0f};
  applyRope(head, 0, 250000.0);
  EXPECT_EQ(head, (std::vector<float>{0.5f, -1.5f, 2.0f, 3.0f}));
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += double(a[i]) * b[i];
  return sum;
}

TEST(ReferenceOps, RopeScoreDependsOnlyOnRelativeOffset) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  const int64_t dim = 128;
  std::vector<float> q(dim), k(dim);
  for (auto& v : q) v = normal(rng);
  for (auto& v : k) v = normal(rng);
  auto score = [&](int64_t qPos, int64_t kPos) {
    std::vector<float> rq = q, rk = k;
    applyRope(rq, qPos, 250000.0);
    applyRope(rk, kPos, 250000.0);
    return dot(rq, rk);
  };
  // The score at offsets m - n = 5 and 0 from several absolute positions; fp32 rounding of the rotated vectors
  // (|q||k| ~ 128, eps 6e-8) bounds the differences far below 1e-3.
  for (int64_t offset : {0, 5, 37}) {
    const double base = score(offset, 0);
    for (int64_t shift : {1, 17, 1000, 12000}) EXPECT_NEAR(score(offset + shift, shift), base, 1e-3);
  }
  // And it does change with the offset (otherwise the check above would be empty).
  EXPECT_GT(std::abs(score(5, 0) - score(0, 0)), 0.1);
  // Rotation keeps the norm.
  std::vector<float> rq = q;
  applyRope(rq, 777, 250000.0);
  EXPECT_NEAR(dot(rq, rq), dot(q, q), 1e-3);
}

TEST(ReferenceOps, AttentionIsCausalAndGroupsQueryHeads) {
  // 4 query heads, 2 KV heads, head_dim 2, 2 positions. KV head 0 has values 1 and 3, KV head 1 values 10, 30.
  // All queries and keys are zero, so every score is equal: position 0 sees only itself, position 1 averages.
  const AttentionShape shape{2, 4, 2, 2};
  std::vector<float> q(2 * 8, 0.0f), k(2 * 4, 0.0f);
  const std::vector<float> v = {1, 1, 10, 10, 3, 3, 30, 30};  // [tokens, kvHeads * d]
  std::vector<float> out(2 * 8);
  causalAttention(shape, q.data(), k.data(), v.data(), out.data());
  // Query heads 0, 1 read KV head 0; heads 2, 3 read KV head 1 (h / 2, not h % 2).
  const std::vector<float> expected = {1, 1, 1, 1, 10, 10, 10, 10, 2, 2, 2, 2, 20, 20, 20, 20};
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], expected[i], 1e-6) << "element " << i;
}

TEST(ReferenceOps, AttentionScalesScoresByInverseSqrtHeadDim) {
  // One head, head_dim 4, 2 positions. q1 = [2,0,0,0], k0 = 0, k1 = [2,0,0,0]: scores at position 1 are
  // [0, 4 / sqrt(4) = 2], so out1 = (v0 + e^2 v1) / (1 + e^2).
  const AttentionShape shape{2, 1, 1, 4};
  const std::vector<float> q = {0, 0, 0, 0, 2, 0, 0, 0}, k = {0, 0, 0, 0, 2, 0, 0, 0};
  const std::vector<float> v = {1, 0, 0, 0, 0, 1, 0, 0};
  std::vector<float> out(8);
  causalAttention(shape, q.data(), k.data(), v.data(), out.data());
  const double e2 = std::exp(2.0);
  EXPECT_NEAR(out[4], 1 / (1 + e2), 1e-6);
  EXPECT_NEAR(out[5], e2 / (1 + e2), 1e-6);
}

TEST(ReferenceOps, LinearIsXTimesWTransposed) {
  // W: [3, 2] in F32 and in BF16 (all values exact in BF16); x: [2 tokens, 2].
  const std::vector<float> w = {1, 2, 3, 4, -5, 0.5f};
  std::vector<uint16_t> wBf16;
  for (float value : w) wBf16.push_back(floatToBf16(value));
  const std::vector<float> x = {1, 1, 2, -1};
  const std::vector<float> expected = {3, 7, -4.5f, 0, 2, -10.5f};
  for (const auto& tensor : {StoredTensor{"w", StoredType::kF32, {3, 2}, reinterpret_cast<const std::byte*>(w.data())},
                             StoredTensor{"w", StoredType::kBf16, {3, 2},
                                          reinterpret_cast<const std::byte*>(wBf16.data())}}) {
    std::vector<float> y(6);
    linear(x.data(), 2, tensor, y.data());
    EXPECT_EQ(y, expected);
  }
}

}  // namespace
}  // namespace phx::reference
