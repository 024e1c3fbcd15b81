// Splitting a count into contiguous ranges, the three ways a shard plan needs: evenly (query heads), evenly in
// whole blocks (MLP columns and vocab rows, so each rank's matrices pack without padding) and in proportion to
// weights (layers over pipeline stages of unequal memory). Pure functions; errors name `what` is being split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "partition/rank_shard.h"

namespace phx {

// `parts` contiguous ranges covering [0, total); the first total % parts are one longer. Requires total >= parts.
std::vector<IndexRange> splitEvenly(int64_t total, int parts, const std::string& what);

// The block a blocked split of `total` over `parts` uses: `preferred`, halved while there are fewer blocks than
// parts, so a small model still gives every rank at least one block.
int64_t splitBlock(int64_t total, int parts, int64_t preferred);

// `parts` contiguous ranges covering [0, total) in whole blocks of splitBlock(total, parts, preferred), as evenly
// as the blocks allow: every boundary is the block boundary nearest total * i / parts, so sizes differ by at most
// one block; only the last range can end in a partial block.
std::vector<IndexRange> splitInBlocks(int64_t total, int parts, int64_t preferred, const std::string& what);

// weights.size() non-empty contiguous ranges covering [0, total), sized in proportion to the weights (each
// boundary rounded to the nearest whole item). Requires total >= weights.size() and positive finite weights.
std::vector<IndexRange> splitByWeights(int64_t total, const std::vector<double>& weights, const std::string& what);

}  // namespace phx
