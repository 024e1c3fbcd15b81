// The UCX all-reduce algorithms with a BF16 payload: half the bytes on the wire, every sum taken in f32. Each rank
// still ends with bitwise identical floats: the direct exchange sums every rank's rounded vector (its own rounded
// too) in rank order; the ring's owner of a finished chunk rounds it before passing it on, so what the others
// receive is exactly what it keeps.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/bf16.h"
#include "rpc/ucx_impl.h"
#include "rpc/ucx_wait.h"

namespace phx {
namespace {

void toBf16(std::span<const float> from, std::uint16_t* to) {
  for (std::size_t i = 0; i < from.size(); ++i) to[i] = floatToBf16(from[i]);
}

}  // namespace

void UcxCommunicator::Impl::allReduceDirectBf16(std::span<float> data, std::uint64_t seq) {
  const int n = static_cast<int>(group.size());
  const std::size_t count = data.size(), bytes = count * sizeof(std::uint16_t);
  wireBuffer.resize(count * n);  // slot r: rank r's rounded vector, ours included
  std::uint16_t* own = wireBuffer.data() + count * rank;
  toBf16(data, own);
  std::vector<UcxOp>& ops = opBuffer;
  ops.clear();
  for (int r = 0; r < n; ++r) {
    if (r == rank) continue;
    ops.push_back(postRecv(*this, group[r], wireBuffer.data() + count * r, bytes,
                           makeTag(TagKind::kAllReduce, group[r], generation, 0, seq)));
  }
  for (int r = 0; r < n; ++r) {
    if (r == rank) continue;
    ops.push_back(postSend(*this, group[r], own, bytes, makeTag(TagKind::kAllReduce, self, generation, 0, seq)));
  }
  waitAll(*this, ops, "UCX all-reduce", seq);
  for (std::size_t i = 0; i < count; ++i) {
    float sum = bf16ToFloat(wireBuffer[i]);
    for (int r = 1; r < n; ++r) sum += bf16ToFloat(wireBuffer[count * r + i]);
    data[i] = sum;
  }
}

void UcxCommunicator::Impl::allReduceRingBf16(std::span<float> data, std::uint64_t seq) {
  const int n = static_cast<int>(group.size());
  const std::size_t count = data.size();
  const int next = group[(rank + 1) % n];
  const int prev = group[(rank + n - 1) % n];
  wireBuffer.resize(2 * (count / n + 1));
  std::uint16_t* out = wireBuffer.data();
  std::uint16_t* in = wireBuffer.data() + count / n + 1;
  auto chunk = [&](int c) {
    c = ((c % n) + n) % n;
    const std::size_t begin = ringChunkBegin(count, n, c);
    return std::span<float>(data.data() + begin, ringChunkBegin(count, n, c + 1) - begin);
  };
  // One step of the ring: `sent` goes to the next rank as BF16 while `received` arrives from the previous one.
  auto exchange = [&](std::span<const float> sent, std::size_t received, int step) {
    toBf16(sent, out);
    UcxOp ops[2] = {postRecv(*this, prev, in, received * sizeof(std::uint16_t),
                             makeTag(TagKind::kAllReduce, prev, generation, step, seq)),
                    postSend(*this, next, out, sent.size() * sizeof(std::uint16_t),
                             makeTag(TagKind::kAllReduce, self, generation, step, seq))};
    waitAll(*this, ops, "UCX all-reduce", seq);
  };
  // Reduce-scatter, summing in f32 what arrives; then the finished chunk is rounded where it is owned.
  for (int s = 0; s < n - 1; ++s) {
    std::span<float> into = chunk(rank - s - 1);
    exchange(chunk(rank - s), into.size(), s);
    for (std::size_t i = 0; i < into.size(); ++i) into[i] += bf16ToFloat(in[i]);
  }
  for (float& x : chunk(rank + 1)) x = bf16ToFloat(floatToBf16(x));
  // All-gather: the rounded chunks around the ring, exact in BF16.
  for (int s = 0; s < n - 1; ++s) {
    std::span<float> into = chunk(rank - s);
    exchange(chunk(rank + 1 - s), into.size(), n - 1 + s);
    for (std::size_t i = 0; i < into.size(); ++i) into[i] = bf16ToFloat(in[i]);
  }
}

}  // namespace phx
