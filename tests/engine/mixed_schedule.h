// A scripted schedule that mixes prefill chunks and decode tokens of three sequences at different positions in
// one step (decode rows in steps with m = 3 .. 22), for the consistency tests: its logits, run batched, must equal
// each sequence's run alone, whatever the matmul path, the weights' dtype or the thread count.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "tests/engine/engine_harness.h"

namespace phx::testing {

// The schedule's three token sequences (lengths 23, 12 and 12).
std::vector<std::vector<int32_t>> scheduleSequences();

// Disjoint block tables scattered over a pool of 16 blocks of 4 tokens (small blocks: many block boundaries).
std::vector<std::vector<int32_t>> scatteredTables(const std::vector<std::vector<int32_t>>& seqs);

// Runs the schedule as batched steps on `engine`; returns each sequence's logits for all its tokens.
std::map<int, std::vector<float>> runSchedule(EngineUnderTest& engine, const std::vector<std::vector<int32_t>>& seqs,
                                              const std::vector<std::vector<int32_t>>& tables);

}  // namespace phx::testing
