// The layer's tensor-parallel design checked in one process: ranks on threads, each with its own shard of the
// weights (query heads, KV heads, MLP columns, vocab rows), its own KV cache and a communicator whose all-reduce
// sums across the threads. Their vocab slices side by side must equal the single-rank logits, for an even split
// (TP 2) and an uneven one that replicates a KV head on two ranks (TP 3). The real communicators and shard plans
// are the cluster issue's; this shows the engine needs nothing else from them.
#include <barrier>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"
#include "kernels/matmul.h"
#include "partition/shard_plan.h"
#include "tests/engine/engine_harness.h"

namespace phx::testing {
namespace {

// Sums across the threads of a group, in rank order on every rank, so all ranks get identical sums.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : barrier_(size), slots_(size_t(size)) {}
  int size() const { return int(slots_.size()); }

  void allReduceSum(int rank, std::span<float> data) {
    slots_[size_t(rank)] = data;
    barrier_.arrive_and_wait();
    std::vector<float> sum(data.size(), 0.0f);
    for (const auto& slot : slots_) {
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += slot[i];
    }
    barrier_.arrive_and_wait();  // every rank has read every slot before any overwrites its own
    std::copy(sum.begin(), sum.end(), data.begin());
  }

 private:
  std::barrier<> barrier_;
  std::vector<std::span<float>> slots_;
};

class ThreadRankCommunicator final : public Communicator {
 public:
  ThreadRankCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }
  void allReduceSum(std::span<float> data) override { group_.allReduceSum(rank_, data); }
  void send(int, std::span<const std::byte>) override { throwUnsupported("no pipeline stages in this test"); }
  void recv(int, std::span<std::byte>) override { throwUnsupported("no pipeline stages in this test"); }

 private:
  ThreadGroup& group_;
  int rank_;
};

// Two steps: a prefill of 9 tokens beside a prefill of 5, then both decode one token.
std::vector<StepBatch> schedule() {
  const std::vector<int32_t> a = sampleTokens(10, 21), b = sampleTokens(6, 22);
  StepBatch first, second;
  first.tokens.assign(a.begin(), a.begin() + 9);
  first.tokens.insert(first.tokens.end(), b.begin(), b.begin() + 5);
  first.sequences = {{0, 9, {0, 1, 2}, LogitsFor::kAll}, {0, 5, {5, 4}, LogitsFor::kAll}};
  second.tokens = {a[9], b[5]};
  second.sequences = {{9, 1, {0, 1, 2}, LogitsFor::kLast}, {5, 1, {5, 4}, LogitsFor::kLast}};
  return {first, second};
}

// Each step's logits [rows, vocab] from one rank holding the whole model.
std::vector<std::vector<float>> runWhole(const ShardWeights& weights) {
  EngineUnderTest engine(weights, 32, 1, 4, KvType::kF32);
  std::vector<std::vector<float>> logits;
  for (const StepBatch& step : schedule()) logits.push_back(engine.runner.run(step).logits);
  return logits;
}

// Each step's logits assembled from the ranks' vocab slices.
std::vector<std::vector<float>> runSharded(const std::string& preset, const std::vector<RankShard>& shards) {
  const auto checkpoint = Checkpoint::open(modelDir(preset));
  const int64_t vocab = checkpoint->config().vocabSize;
  std::vector<ShardWeights> weights;
  for (const RankShard& shard : shards) weights.push_back(loadShardWeights(*checkpoint, shard));
  const std::vector<StepBatch> steps = schedule();
  std::vector<std::vector<float>> logits(steps.size());
  ThreadGroup group(int(shards.size()));
  std::vector<std::thread> ranks;
  for (size_t r = 0; r < shards.size(); ++r) {
    ranks.emplace_back([&, r] {
      ThreadRankCommunicator comm(group, int(r));
      KvCache cache(kvCacheShapeFor(weights[r].config, shards[r], 4, 32, KvType::kF32));
      ModelRunner runner(weights[r], cache, comm, {.maxStepTokens = 64, .threads = 1});
      for (size_t s = 0; s < steps.size(); ++s) {
        const StepOutput& out = runner.run(steps[s]);
        if (r == 0) logits[s].assign(size_t(out.rows * vocab), 0.0f);
        group.allReduceSum(int(r), {});  // rank 0 has sized the result before anyone writes into it
        for (int64_t row = 0; row < out.rows; ++row) {
          std::copy(out.logits.begin() + row * out.vocabCount, out.logits.begin() + (row + 1) * out.vocabCount,
                    logits[s].begin() + row * vocab + out.vocabBegin);
        }
      }
    });
  }
  for (std::thread& rank : ranks) rank.join();
  return logits;
}

RankShard shardOf(const ModelConfig& c, IndexRange q, IndexRange kv, IndexRange mlp, IndexRange vocab) {
  RankShard shard = wholeModelShard(c);
  shard.queryHeads = q;
  shard.kvHeads = kv;
  shard.mlpColumns = mlp;
  shard.vocabRows = vocab;
  return shard;
}

void expectShardedEqualsWhole(const std::vector<RankShard>& shards, const std::string& label,
                              const std::string& preset = "tiny") {
  setMatmulCompute(MatmulCompute::kF32Fma);  // fp32 throughout: only the order of the partial sums differs
  const auto whole = runWhole(loadedWeights(preset));
  const auto sharded = runSharded(preset, shards);
  for (size_t s = 0; s < whole.size(); ++s) {
    const double error = nmse(sharded[s], whole[s]);
    std::printf("[%s, %s] step %zu: NMSE %.3g vs one rank\n", preset.c_str(), label.c_str(), s, error);
    EXPECT_LT(error, 1e-9) << label << " step " << s;
  }
}

// tiny: 8 query heads in 2 KV groups of 4, MLP 192, vocab 100352.
TEST(TensorParallelTest, TwoRanksEqualOne) {
  const ModelConfig& c = loadedWeights("tiny").config;
  expectShardedEqualsWhole({shardOf(c, {0, 4}, {0, 1}, {0, 96}, {0, 50176}),
                            shardOf(c, {4, 4}, {1, 1}, {96, 96}, {50176, 50176})},
                           "TP 2");
}

// Query heads 3 | 3 | 2: rank 1's heads 3..5 span both KV groups, so KV head 0 lives on ranks 0 and 1 and KV head
// 1 on ranks 1 and 2; columns and vocab rows split unevenly too.
TEST(TensorParallelTest, ThreeUnevenRanksWithReplicatedKvHeadsEqualOne) {
  const ModelConfig& c = loadedWeights("tiny").config;
  expectShardedEqualsWhole({shardOf(c, {0, 3}, {0, 1}, {0, 64}, {0, 33408}),
                            shardOf(c, {3, 3}, {0, 2}, {64, 64}, {33408, 33472}),
                            shardOf(c, {6, 2}, {1, 1}, {128, 64}, {66880, 33472})},
                           "TP 3");
}

// The shards a cluster really runs: makeShardPlan's, for even and uneven degrees (TP 3 and 5 split heads
// unevenly and replicate KV heads; TP 8 gives tiny's MLP 16-column blocks).
class PlannedTensorParallelTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(PlannedTensorParallelTest, PlannedRanksEqualOne) {
  const auto& [preset, tp] = GetParam();
  ClusterSpec spec;
  spec.tp = tp;
  const ShardPlan plan = makeShardPlan(loadedWeights(preset).config, spec);
  std::vector<RankShard> shards;
  for (const RankPlan& rank : plan.ranks) shards.push_back(rank.shard);
  expectShardedEqualsWhole(shards, "planned TP " + std::to_string(tp), preset);
}

INSTANTIATE_TEST_SUITE_P(Presets, PlannedTensorParallelTest,
                         ::testing::Combine(::testing::Values("tiny", "small"), ::testing::Values(2, 3, 4, 5, 8)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_tp" + std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace phx::testing
