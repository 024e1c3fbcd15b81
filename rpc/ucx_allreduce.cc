// The UCX all-reduce algorithms. Both leave bitwise identical floats on every rank: the direct one sums the ranks'
// vectors in rank order on every rank (IEEE addition is commutative, so x0 + x1 is the same on both of 2 ranks);
// the ring reduces each chunk once, on one rank, and then copies it to the others.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "rpc/ucx_impl.h"
#include "rpc/ucx_wait.h"

namespace phx {

void UcxCommunicator::Impl::allReduceDirect(std::span<float> data, std::uint64_t seq) {
  const int n = static_cast<int>(group.size());
  const std::size_t count = data.size();
  scratch.resize(count * (n - 1));
  // slots[r]: rank r's vector; ours is `data`, the others land in scratch.
  // Member vectors, reused: no allocation on the 80-calls-a-token path.
  std::vector<const float*>& slots = slotBuffer;
  std::vector<UcxOp>& ops = opBuffer;
  slots.resize(n);
  ops.clear();
  for (int r = 0, slot = 0; r < n; ++r) {
    if (r == rank) {
      slots[r] = data.data();
      continue;
    }
    float* into = scratch.data() + count * slot++;
    slots[r] = into;
    ops.push_back(postRecv(*this, group[r], into, data.size_bytes(),
                           makeTag(TagKind::kAllReduce, group[r], generation, 0, seq)));
  }
  for (int r = 0; r < n; ++r) {
    if (r == rank) continue;
    ops.push_back(postSend(*this, group[r], data.data(), data.size_bytes(),
                           makeTag(TagKind::kAllReduce, self, generation, 0, seq)));
  }
  waitAll(*this, ops, "UCX all-reduce", seq);

  float* out = data.data();
  const float* a = slots[0];
  const float* b = slots[1];
  if (n == 2) {
    for (std::size_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
    return;
  }
  // ((x0 + x1) + x2) + ...: accumulate in scratch slot 0's place only after every read of it is done, so build the
  // running sum in a separate buffer and write `data` last (it is also rank `rank`'s input).
  std::vector<float>& sum = sumBuffer;
  sum.resize(count);
  for (std::size_t i = 0; i < count; ++i) sum[i] = a[i] + b[i];
  for (int r = 2; r < n - 1; ++r) {
    const float* x = slots[r];
    for (std::size_t i = 0; i < count; ++i) sum[i] += x[i];
  }
  const float* last = slots[n - 1];
  for (std::size_t i = 0; i < count; ++i) out[i] = sum[i] + last[i];
}

void UcxCommunicator::Impl::allReduceRing(std::span<float> data, std::uint64_t seq) {
  const int n = static_cast<int>(group.size());
  const std::size_t count = data.size();
  const int next = group[(rank + 1) % n];
  const int prev = group[(rank + n - 1) % n];
  scratch.resize(count / n + 1);
  auto chunk = [&](int c) {
    c = ((c % n) + n) % n;
    const std::size_t begin = ringChunkBegin(count, n, c);
    return std::span<float>(data.data() + begin, ringChunkBegin(count, n, c + 1) - begin);
  };
  // Reduce-scatter: at step s rank r passes chunk r - s on and adds chunk r - s - 1 from its predecessor; after
  // n - 1 steps it holds chunk r + 1 summed over every rank (each chunk summed exactly once, on one rank).
  for (int s = 0; s < n - 1; ++s) {
    std::span<float> out = chunk(rank - s);
    std::span<float> in = chunk(rank - s - 1);
    UcxOp ops[2] = {
        postRecv(*this, prev, scratch.data(), in.size_bytes(), makeTag(TagKind::kAllReduce, prev, generation, s, seq)),
        postSend(*this, next, out.data(), out.size_bytes(), makeTag(TagKind::kAllReduce, self, generation, s, seq))};
    waitAll(*this, ops, "UCX all-reduce", seq);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] += scratch[i];
  }
  // All-gather: pass the finished chunks around the ring, straight into place.
  for (int s = 0; s < n - 1; ++s) {
    std::span<float> out = chunk(rank + 1 - s);
    std::span<float> in = chunk(rank - s);
    const int step = n - 1 + s;
    UcxOp ops[2] = {
        postRecv(*this, prev, in.data(), in.size_bytes(), makeTag(TagKind::kAllReduce, prev, generation, step, seq)),
        postSend(*this, next, out.data(), out.size_bytes(), makeTag(TagKind::kAllReduce, self, generation, step, seq))};
    waitAll(*this, ops, "UCX all-reduce", seq);
  }
}

}  // namespace phx
