#include "tests/engine/mixed_schedule.h"

namespace phx::testing {
namespace {

// One step's share for one sequence in a scripted schedule.
struct Share {
  int sequence;
  int64_t newTokens;
};

// Three sequences of different lengths: prefill chunks and decode tokens side by side in one step.
const std::vector<std::vector<Share>> kSchedule = {
    {{0, 13}, {1, 5}},
    {{0, 8}, {1, 1}, {2, 9}},
    {{2, 1}, {0, 1}, {1, 1}},
    {{1, 4}, {2, 1}},
    {{0, 1}, {1, 1}, {2, 1}},
};

}  // namespace

std::map<int, std::vector<float>> runSchedule(EngineUnderTest& engine, const std::vector<std::vector<int32_t>>& seqs,
                                              const std::vector<std::vector<int32_t>>& tables) {
  std::map<int, std::vector<float>> logits;
  std::map<int, int64_t> cached;
  for (const auto& step : kSchedule) {
    StepBatch batch;
    for (const Share& share : step) {
      const auto& tokens = seqs[size_t(share.sequence)];
      const int64_t at = cached[share.sequence];
      batch.tokens.insert(batch.tokens.end(), tokens.begin() + at, tokens.begin() + at + share.newTokens);
      batch.sequences.push_back({at, share.newTokens, tables[size_t(share.sequence)], LogitsFor::kAll});
    }
    const StepOutput& out = engine.runner.run(batch);
    int64_t row = 0;
    for (const Share& share : step) {
      auto& mine = logits[share.sequence];
      const float* first = out.logits.data() + row * out.vocabCount;
      mine.insert(mine.end(), first, first + share.newTokens * out.vocabCount);
      row += share.newTokens;
      cached[share.sequence] += share.newTokens;
    }
  }
  return logits;
}

std::vector<std::vector<int32_t>> scheduleSequences() {
  std::map<int, int64_t> lengths;
  for (const auto& step : kSchedule) {
    for (const Share& share : step) lengths[share.sequence] += share.newTokens;
  }
  std::vector<std::vector<int32_t>> seqs;
  for (auto [sequence, length] : lengths) seqs.push_back(sampleTokens(length, 100 + uint32_t(sequence)));
  return seqs;
}

std::vector<std::vector<int32_t>> scatteredTables(const std::vector<std::vector<int32_t>>& seqs) {
  const std::vector<int32_t> pool = scatteredBlocks(16, 16, 9);
  std::vector<std::vector<int32_t>> tables;
  size_t next = 0;
  for (const auto& tokens : seqs) {
    const size_t blocks = (tokens.size() + 3) / 4;
    tables.emplace_back(pool.begin() + next, pool.begin() + next + blocks);
    next += blocks;
  }
  return tables;
}

}  // namespace phx::testing
