#include "partition/range_split.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace phx {
namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

void requireSplittable(int64_t total, int64_t parts, const std::string& what) {
  if (parts < 1) throwInvalidArgument(what + ": cannot split into " + std::to_string(parts) + " parts");
  if (total < parts) {
    throwInvalidArgument(what + ": " + std::to_string(total) + " cannot be split into " + std::to_string(parts) +
                         " non-empty parts");
  }
}

}  // namespace

std::vector<IndexRange> splitEvenly(int64_t total, int parts, const std::string& what) {
  requireSplittable(total, parts, what);
  std::vector<IndexRange> ranges;
  const int64_t base = total / parts, longer = total % parts;
  int64_t begin = 0;
  for (int i = 0; i < parts; ++i) {
    const int64_t count = base + (i < longer ? 1 : 0);
    ranges.push_back({begin, count});
    begin += count;
  }
  return ranges;
}

int64_t splitBlock(int64_t total, int parts, int64_t preferred) {
  int64_t block = std::max<int64_t>(preferred, 1);
  while (block > 1 && ceilDiv(total, block) < parts) block /= 2;
  return block;
}

std::vector<IndexRange> splitInBlocks(int64_t total, int parts, int64_t preferred, const std::string& what) {
  requireSplittable(total, parts, what);
  const int64_t block = splitBlock(total, parts, preferred), blocks = ceilDiv(total, block);
  // Each boundary at the block nearest the even split point, so the ranges differ by at most one block (a short
  // last block counted as what it holds), and each keeps at least one block.
  std::vector<IndexRange> ranges;
  int64_t begin = 0, previous = 0;
  for (int i = 1; i <= parts; ++i) {
    int64_t end = total;
    if (i < parts) {
      const int64_t nearest = std::llround(double(total) * i / (double(parts) * double(block)));
      const int64_t boundary = std::clamp<int64_t>(nearest, previous + 1, blocks - (parts - i));
      previous = boundary;
      end = boundary * block;
    }
    ranges.push_back({begin, end - begin});
    begin = end;
  }
  return ranges;
}

std::vector<IndexRange> splitByWeights(int64_t total, const std::vector<double>& weights, const std::string& what) {
  const int parts = int(weights.size());
  requireSplittable(total, parts, what);
  double sum = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!std::isfinite(weights[i]) || weights[i] <= 0) {
      throwInvalidArgument(what + ": weight " + std::to_string(i) + " is " + std::to_string(weights[i]) +
                           ", expected a positive number");
    }
    sum += weights[i];
  }
  std::vector<IndexRange> ranges;
  double cumulative = 0;
  int64_t begin = 0;
  for (int i = 0; i < parts; ++i) {
    cumulative += weights[size_t(i)];
    int64_t end = i == parts - 1 ? total : std::llround(double(total) * cumulative / sum);
    // Every part keeps at least one item, and leaves one for each part after it.
    end = std::clamp<int64_t>(end, begin + 1, total - (parts - 1 - i));
    ranges.push_back({begin, end - begin});
    begin = end;
  }
  return ranges;
}

}  // namespace phx
