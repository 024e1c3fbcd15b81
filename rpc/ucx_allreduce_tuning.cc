// UcxCommunicator::tuneAllReduce: the direct all-reduce against the ring for large vectors, measured on this
// group's own links at connect time. Which wins depends on the group and the links: with two ranks, direct sends
// the same bytes as the ring in one round instead of two, but the ring's halves pipeline (over shared memory it won
// at 1-16 MiB here); over a slow link with many ranks, the ring sends 2 (n-1)/n of a vector instead of n-1 vectors. Every rank decides from the same (all-reduced) timings, so
// they all keep the same crossover and run the same algorithm at every size afterwards.
//
// Only two-rank groups with an f32 payload are tuned: there both algorithms compute x0 + x1, the same floats. With
// three or more ranks they add in different orders, and a choice made from timings could differ after a reconnect,
// so a request replayed after a fault would meet other floats than its first run: those keep the fixed crossover,
// as does the BF16 payload (its ring rounds the partial sums).
#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "rpc/ucx_impl.h"
#include "rpc/ucx_wait.h"

namespace phx {
namespace {

// Below the fixed crossover direct always wins (one round against two: latency); the question is the large vectors
// (a 512-token prefill's 10 MiB).
constexpr std::size_t kSmallestTunedBytes = 1024 * 1024;
constexpr std::size_t kLargestTunedBytes = 16 * 1024 * 1024;
constexpr int kTimedCalls = 5;
// Past this a call is bound by the link's bandwidth, where larger sizes only repeat the verdict: stop measuring.
constexpr double kSlowCallUs = 20000;

}  // namespace

AllReduceTuning UcxCommunicator::tuneAllReduce() {
  Impl& impl = *impl_;
  AllReduceTuning tuning;
  const int n = size();
  tuning.directMaxBytesSent = impl.directMaxBytesSent;
  if (n != 2) return tuning;
  using Algorithm = void (Impl::*)(std::span<float>, std::uint64_t);
  std::vector<float> data;
  // The median of a few calls after a warm-up (which pays for the buffers' first touch), against a noisy host.
  auto median = [&](Algorithm algorithm) {
    std::vector<double> us;
    for (int call = 0; call <= kTimedCalls; ++call) {
      std::fill(data.begin(), data.end(), 1.0f);
      const auto start = std::chrono::steady_clock::now();
      (impl.*algorithm)(data, impl.allReduceSeq++);
      if (call > 0) {
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      }
    }
    std::nth_element(us.begin(), us.begin() + us.size() / 2, us.end());
    return us[us.size() / 2];
  };
  std::size_t directMax = kDirectAllReduceMaxBytes;
  bool directUnbeaten = true;
  for (std::size_t bytes = kSmallestTunedBytes; bytes <= kLargestTunedBytes; bytes *= 4) {
    data.assign(bytes / sizeof(float), 1.0f);
    std::vector<float> agreed = {float(median(&Impl::allReduceDirect)), float(median(&Impl::allReduceRing))};
    impl.allReduceDirect(agreed, impl.allReduceSeq++);  // the same sums, bit for bit, on every rank
    tuning.sizes.push_back({bytes, agreed[0] / n, agreed[1] / n});
    directUnbeaten = directUnbeaten && agreed[0] <= agreed[1];
    if (directUnbeaten) directMax = bytes * std::size_t(n - 1);
    if (std::max(agreed[0], agreed[1]) / n > kSlowCallUs) break;
  }
  // Never beaten up to the largest size measured: that size was bandwidth-bound already, so direct stays ahead.
  if (directUnbeaten) directMax = std::numeric_limits<std::size_t>::max();
  impl.directMaxBytesSent = directMax;
  tuning.directMaxBytesSent = directMax;
  return tuning;
}

}  // namespace phx
