// Paged attention over an INT8 KV cache (per token, per head symmetric scales) against the dense scalar reference:
// with K and V quantized and dequantized by the test's own quantizer the kernel must agree to fp32 rounding
// (NMSE < 1e-10); against the unquantized K and V the 8-bit error shows (NMSE < 1e-3; measured ~1e-4 on Gaussian
// data). Prefill chunks over a cached prefix and decode tokens mix in one call; block sizes 16 (one key vector a
// block row) and 5 (groups cut by block ends).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kernels/kv_cache.h"
#include "kernels/paged_attention.h"
#include "kernels/threading.h"
#include "tests/kernels/reference_ops.h"
#include "tests/kernels/test_util.h"

namespace phx {
namespace {

constexpr int64_t kKvHeads = 2, kHeadDim = 64;
const std::vector<int32_t> kKvHeadOf = {0, 0, 0, 1, 1, 1};  // 6 query heads, groups of 3
constexpr int64_t kQWidth = 6 * kHeadDim, kKvWidth = kKvHeads * kHeadDim;

// Each token's vector of each head -> scale * round(v / scale), scale = max|v| / 127 (independent of kernels/).
std::vector<float> quantizeDequantize(const std::vector<float>& rows) {
  std::vector<float> out(rows.size());
  for (size_t h = 0; h < rows.size(); h += kHeadDim) {
    float amax = 0;
    for (int64_t d = 0; d < kHeadDim; ++d) amax = std::max(amax, std::fabs(rows[h + size_t(d)]));
    const float inverse = amax > 0 ? 127.0f / amax : 0.0f;
    for (int64_t d = 0; d < kHeadDim; ++d) {
      out[h + size_t(d)] = (amax / 127.0f) * std::nearbyint(rows[h + size_t(d)] * inverse);
    }
  }
  return out;
}

struct Sequence {
  int64_t cached, fresh;
  std::vector<float> q, k, v;
  std::vector<int32_t> blocks;
};

class Int8KvAttentionTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(Int8KvAttentionTest, MatchesReferenceOnDequantizedKv) {
  setKernelThreads(2);
  const int64_t blockSize = GetParam(), pool = 128;
  PagedKvCache cache(KvBlockShape{kKvHeads, kHeadDim, blockSize, KvType::kInt8}, 1, pool);
  PagedKv layer = cache.layer(0);
  std::vector<int32_t> free(pool);
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), std::mt19937(3));
  std::vector<Sequence> seqs;
  uint64_t seed = 7;
  size_t next = 0;
  for (auto [cached, fresh] : std::vector<std::pair<int64_t, int64_t>>{{0, 21}, {40, 1}, {17, 9}, {3, 1}}) {
    Sequence s{cached, fresh, testing::randomFloats(size_t(fresh * kQWidth), seed++),
               testing::randomFloats(size_t((cached + fresh) * kKvWidth), seed++),
               testing::randomFloats(size_t((cached + fresh) * kKvWidth), seed++), {}};
    for (int64_t b = 0; b < (cached + fresh + blockSize - 1) / blockSize; ++b) s.blocks.push_back(free[next++]);
    if (cached > 0) {
      AttentionSequence prefix{0, cached, 0, s.blocks.data(), int64_t(s.blocks.size())};
      writeKv(s.k.data(), s.v.data(), kKvWidth, &prefix, 1, layer);
    }
    seqs.push_back(std::move(s));
  }
  std::vector<AttentionSequence> step;
  std::vector<float> q, k, v;
  for (const Sequence& s : seqs) {
    step.push_back({int64_t(q.size()) / kQWidth, s.fresh, s.cached, s.blocks.data(), int64_t(s.blocks.size())});
    q.insert(q.end(), s.q.begin(), s.q.end());
    k.insert(k.end(), s.k.begin() + s.cached * kKvWidth, s.k.end());
    v.insert(v.end(), s.v.begin() + s.cached * kKvWidth, s.v.end());
  }
  std::vector<float> out(q.size(), -7.0f);
  const AttentionHeads heads{6, kHeadDim, kKvHeadOf.data(), float(1.0 / std::sqrt(double(kHeadDim)))};
  pagedAttention(q.data(), kQWidth, k.data(), v.data(), kKvWidth, step.data(), int64_t(step.size()), heads, layer,
                 out.data(), kQWidth);
  int64_t row = 0;
  for (const Sequence& s : seqs) {
    const std::vector<float> got(out.begin() + row * kQWidth, out.begin() + (row + s.fresh) * kQWidth);
    row += s.fresh;
    const auto reference = [&](const std::vector<float>& keys, const std::vector<float>& values) {
      return testing::referenceAttention(s.q, keys, values, s.fresh, s.cached + s.fresh, 6, kKvHeads, kHeadDim,
                                      kKvHeadOf, 1.0 / std::sqrt(double(kHeadDim)));
    };
    const double exact = testing::nmse(got, reference(quantizeDequantize(s.k), quantizeDequantize(s.v)));
    const double vsFloat = testing::nmse(got, reference(s.k, s.v));
    EXPECT_LT(exact, 1e-10) << "cached " << s.cached << " new " << s.fresh;
    EXPECT_LT(vsFloat, 1e-3) << "cached " << s.cached << " new " << s.fresh;
    std::printf("block %lld, cached %lld new %lld: NMSE %.3g vs dequantized KV, %.3g vs f32 KV\n",
                (long long)blockSize, (long long)s.cached, (long long)s.fresh, exact, vsFloat);
  }
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, Int8KvAttentionTest, ::testing::Values(16, 5));

TEST(Int8KvCache, TakesAQuarterOfF32PlusTheScales) {
  const KvBlockShape shape{kKvHeads, kHeadDim, 16, KvType::kInt8};
  EXPECT_EQ(shape.elementBytes(), 1);
  EXPECT_EQ(shape.scaleBytesPerBlock(), kKvHeads * 16 * 4);
  PagedKvCache cache(shape, 3, 10);
  EXPECT_EQ(cache.bytes(), size_t(3 * 2 * 10 * (kKvHeads * kHeadDim * 16 + kKvHeads * 16 * 4)));
}

}  // namespace
}  // namespace phx
