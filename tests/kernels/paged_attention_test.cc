// Paged GQA attention against a dense causal reference, with random block tables over a pool whose unused slots
// hold NaN (so any read outside a sequence's context shows), mixed prefill / chunk / decode sequences, arbitrary
// query-head -> KV-head maps, both cache dtypes. Bounds (NMSE): F32 cache 1e-10 against the reference; BF16 cache
// 1e-10 against the reference fed BF16-rounded K and V (what the cache holds) and 1e-4 against the unrounded ones
// (rounding K and V to BF16 alone gives ~1e-6).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "kernels/paged_attention.h"
#include "kernels/threading.h"
#include "tests/kernels/reference_ops.h"
#include "tests/kernels/test_util.h"

namespace phx {
namespace {

struct Case {
  int64_t headDim;
  int64_t blockSize;
  KvType type;
  std::vector<int32_t> kvHeadOf;  // local query head -> local KV head
  int64_t kvHeads;
};

struct SequenceData {
  int64_t cached, fresh;
  std::vector<float> k, v;  // [context, kvHeads * headDim]
  std::vector<float> q;     // [fresh, qHeads * headDim]
  std::vector<int32_t> blocks;
};

class PagedAttentionTest : public ::testing::TestWithParam<std::tuple<int64_t, int64_t, KvType, int>> {
 protected:
  void SetUp() override {
    auto [headDim, blockSize, type, map] = GetParam();
    c_.headDim = headDim;
    c_.blockSize = blockSize;
    c_.type = type;
    if (map == 0) {  // Phi-4's grouping on one rank: 8 query heads, 2 KV heads, h / 4
      c_.kvHeads = 2;
      c_.kvHeadOf = {0, 0, 0, 0, 1, 1, 1, 1};
    } else {  // a rank holding query heads 3..7 of 8 with KV heads 0..1 of its own: uneven groups
      c_.kvHeads = 2;
      c_.kvHeadOf = {0, 1, 1, 1, 1};
    }
    setKernelThreads(2);
  }

  int64_t qWidth() const { return int64_t(c_.kvHeadOf.size()) * c_.headDim; }
  int64_t kvWidth() const { return c_.kvHeads * c_.headDim; }

  // Sequences (cached, new): a prefill, a chunk after a prefix, decodes at several depths (one past 600).
  std::vector<SequenceData> makeSequences(uint64_t seed) {
    std::vector<std::pair<int64_t, int64_t>> shapes = {{0, 37}, {20, 13}, {50, 1}, {0, 1}, {611, 1}, {15, 2}};
    std::vector<SequenceData> seqs;
    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<int32_t> freeBlocks(static_cast<size_t>(pool_));
    std::iota(freeBlocks.begin(), freeBlocks.end(), 0);
    std::shuffle(freeBlocks.begin(), freeBlocks.end(), rng);
    size_t nextBlock = 0;
    for (auto [cached, fresh] : shapes) {
      SequenceData s{cached, fresh};
      int64_t context = cached + fresh;
      s.k = testing::randomFloats(size_t(context * kvWidth()), seed++);
      s.v = testing::randomFloats(size_t(context * kvWidth()), seed++);
      s.q = testing::randomFloats(size_t(fresh * qWidth()), seed++);
      for (int64_t b = 0; b < (context + c_.blockSize - 1) / c_.blockSize; ++b)
        s.blocks.push_back(freeBlocks[nextBlock++]);
      seqs.push_back(std::move(s));
    }
    return seqs;
  }

  PagedKvCache makeCache() {
    PagedKvCache cache(KvBlockShape{c_.kvHeads, c_.headDim, c_.blockSize, c_.type}, 1, pool_);
    PagedKv layer = cache.layer(0);
    size_t bytes = size_t(pool_ * layer.blockStride * layer.shape.elementBytes());
    std::memset(layer.keys, 0xff, bytes);  // NaN everywhere until written
    std::memset(layer.values, 0xff, bytes);
    return cache;
  }

  // Writes each sequence's cached prefix (as an earlier step would have), then runs this step's batch.
  std::vector<float> runBatch(const std::vector<SequenceData>& seqs, const std::vector<size_t>& which,
                              PagedKvCache& cache) {
    PagedKv layer = cache.layer(0);
    for (size_t i : which) {
      const SequenceData& s = seqs[i];
      if (s.cached == 0) continue;
      AttentionSequence prefix{0, s.cached, 0, s.blocks.data(), int64_t(s.blocks.size())};
      writeKv(s.k.data(), s.v.data(), kvWidth(), &prefix, 1, layer);
    }
    std::vector<AttentionSequence> step;
    std::vector<float> q, k, v;
    for (size_t i : which) {
      const SequenceData& s = seqs[i];
      step.push_back({int64_t(q.size()) / qWidth(), s.fresh, s.cached, s.blocks.data(), int64_t(s.blocks.size())});
      q.insert(q.end(), s.q.begin(), s.q.end());
      k.insert(k.end(), s.k.begin() + s.cached * kvWidth(), s.k.end());
      v.insert(v.end(), s.v.begin() + s.cached * kvWidth(), s.v.end());
    }
    std::vector<float> out(q.size(), -7.0f);
    AttentionHeads heads{int64_t(c_.kvHeadOf.size()), c_.headDim, c_.kvHeadOf.data(),
                         float(1.0 / std::sqrt(double(c_.headDim)))};
    pagedAttention(q.data(), qWidth(), k.data(), v.data(), kvWidth(), step.data(), int64_t(step.size()), heads, layer,
                   out.data(), qWidth());
    return out;
  }

  std::vector<float> reference(const SequenceData& s, bool roundKv) {
    std::vector<float> k = s.k, v = s.v;
    if (roundKv) {
      for (float& x : k) x = testing::roundToBf16(x);
      for (float& x : v) x = testing::roundToBf16(x);
    }
    return testing::referenceAttention(s.q, k, v, s.fresh, s.cached + s.fresh, int64_t(c_.kvHeadOf.size()), c_.kvHeads,
                                    c_.headDim, c_.kvHeadOf, 1.0 / std::sqrt(double(c_.headDim)));
  }

  Case c_;
  int64_t pool_ = 512;  // blocks: enough for all sequences at block size 5, most left unused (NaN)
};

TEST_P(PagedAttentionTest, MixedBatchMatchesDenseReference) {
  std::vector<SequenceData> seqs = makeSequences(100);
  std::vector<size_t> all(seqs.size());
  std::iota(all.begin(), all.end(), 0);
  PagedKvCache cache = makeCache();
  std::vector<float> out = runBatch(seqs, all, cache);
  int64_t row = 0;
  for (const SequenceData& s : seqs) {
    std::vector<float> got(out.begin() + row * qWidth(), out.begin() + (row + s.fresh) * qWidth());
    row += s.fresh;
    bool bf16 = c_.type == KvType::kBf16;
    EXPECT_LT(testing::nmse(got, reference(s, bf16)), 1e-10) << "cached " << s.cached << " new " << s.fresh;
    if (bf16) EXPECT_LT(testing::nmse(got, reference(s, false)), 1e-4);
  }
}

TEST_P(PagedAttentionTest, SequenceAloneEqualsSequenceInBatchAndThreadsAgree) {
  std::vector<SequenceData> seqs = makeSequences(200);
  std::vector<size_t> all(seqs.size());
  std::iota(all.begin(), all.end(), 0);
  PagedKvCache batchCache = makeCache();
  std::vector<float> batch = runBatch(seqs, all, batchCache);
  int64_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    PagedKvCache aloneCache = makeCache();
    std::vector<float> alone = runBatch(seqs, {i}, aloneCache);
    std::vector<float> inBatch(batch.begin() + row * qWidth(), batch.begin() + (row + seqs[i].fresh) * qWidth());
    EXPECT_TRUE(testing::bitIdentical(alone, inBatch)) << "sequence " << i;
    row += seqs[i].fresh;
  }
  setKernelThreads(1);
  PagedKvCache oneThreadCache = makeCache();
  EXPECT_TRUE(testing::bitIdentical(runBatch(seqs, all, oneThreadCache), batch));
}

INSTANTIATE_TEST_SUITE_P(Shapes, PagedAttentionTest,
                         ::testing::Combine(::testing::Values(8, 80, 128), ::testing::Values(16, 5, 32),
                                            ::testing::Values(KvType::kF32, KvType::kBf16), ::testing::Values(0, 1)),
                         [](const auto& info) {
                           return "d" + std::to_string(std::get<0>(info.param)) + "_b" +
                                  std::to_string(std::get<1>(info.param)) + "_" + kvTypeName(std::get<2>(info.param)) +
                                  "_map" + std::to_string(std::get<3>(info.param));
                         });

}  // namespace
}  // namespace phx
