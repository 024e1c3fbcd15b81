// INT8 weights and the INT8 KV cache against themselves, as engine_consistency_test checks BF16: a batch mixing
// prefill chunks and decode tokens equals each sequence alone, decoding with the cache equals recomputing, and 1
// and 2 threads agree, all bit for bit. The W8A8 path quantizes each token's activations on its own and sums in
// exact int32, so a row does not depend on its batch-mates; the INT8 path is one per process (never chosen by m),
// so the bound is the same as BF16's: NMSE < 1e-9 (measured 0).
#include <cstdio>
#include <cstring>
#include <map>
#include <tuple>

#include <gtest/gtest.h>

#include "kernels/matmul_int8.h"
#include "kernels/roofline.h"
#include "tests/engine/engine_harness.h"
#include "tests/engine/mixed_schedule.h"

namespace phx::testing {
namespace {

constexpr double kSamePathNmseBound = 1e-9;

using Param = std::tuple<std::string, Int8Path, KvType>;

class Int8ConsistencyTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (path() == Int8Path::kVnni && !cpuFeatures().avx512Vnni) GTEST_SKIP() << "this CPU has no AVX512_VNNI";
    setInt8Path(path());
  }
  const std::string& preset() const { return std::get<0>(GetParam()); }
  Int8Path path() const { return std::get<1>(GetParam()); }
  KvType kv() const { return std::get<2>(GetParam()); }
  std::string label() const { return preset() + ", " + int8PathName(path()) + ", KV " + kvTypeName(kv()); }
};

TEST_P(Int8ConsistencyTest, MixedBatchEqualsEachSequenceAlone) {
  const ShardWeights& weights = loadedInt8Weights(preset());
  const auto seqs = scheduleSequences();
  const auto tables = scatteredTables(seqs);
  EngineUnderTest batched(weights, 64, 2, 4, kv());
  const auto together = runSchedule(batched, seqs, tables);
  for (size_t s = 0; s < seqs.size(); ++s) {
    EngineUnderTest alone(weights, 64, 2, 4, kv());
    const std::vector<int64_t> oneChunk = {int64_t(seqs[s].size())};
    const std::vector<float> expected = runSequence(alone.runner, seqs[s], oneChunk, scatteredBlocks(16, 8, 1));
    const double error = nmse(together.at(int(s)), expected);
    std::printf("[%s] sequence %zu in mixed batches vs alone: NMSE %.3g\n", label().c_str(), s, error);
    EXPECT_LT(error, kSamePathNmseBound) << "sequence " << s;
  }
}

TEST_P(Int8ConsistencyTest, DecodeWithCacheEqualsFullRecompute) {
  const ShardWeights& weights = loadedInt8Weights(preset());
  const int64_t vocab = weights.config.vocabSize;
  const std::vector<int32_t> tokens = sampleTokens(30, 3);
  const std::vector<int64_t> decode = {20, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const std::vector<int64_t> recompute = {30};
  EngineUnderTest cached(weights, 64, 2, 16, kv()), fresh(weights, 64, 2, 16, kv());
  const std::vector<float> stepwise = runSequence(cached.runner, tokens, decode, scatteredBlocks(4, 2, 5));
  const std::vector<float> whole = runSequence(fresh.runner, tokens, recompute, scatteredBlocks(4, 2, 6));
  const double error =
      nmse(std::span(stepwise).subspan(size_t(20 * vocab)), std::span(whole).subspan(size_t(20 * vocab)));
  std::printf("[%s] 10 cached decode steps vs recompute: NMSE %.3g\n", label().c_str(), error);
  EXPECT_LT(error, kSamePathNmseBound);
}

TEST_P(Int8ConsistencyTest, OneAndTwoThreadsGiveIdenticalResults) {
  const ShardWeights& weights = loadedInt8Weights(preset());
  const auto seqs = scheduleSequences();
  const auto tables = scatteredTables(seqs);
  EngineUnderTest one(weights, 64, 1, 4, kv());
  const auto single = runSchedule(one, seqs, tables);
  EngineUnderTest two(weights, 64, 2, 4, kv());
  const auto dual = runSchedule(two, seqs, tables);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto& a = single.at(int(s));
    const auto& b = dual.at(int(s));
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "sequence " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Int8ConsistencyTest,
                         ::testing::Combine(::testing::Values("tiny", "small"),
                                            ::testing::Values(Int8Path::kVnni, Int8Path::kWeightOnly),
                                            ::testing::Values(KvType::kBf16, KvType::kInt8)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  (std::get<1>(info.param) == Int8Path::kVnni ? "W8A8" : "WeightOnly") + "_KV" +
                                  kvTypeName(std::get<2>(info.param));
                         });

}  // namespace
}  // namespace phx::testing
