#include "kernels/threading.h"

#include <omp.h>

#include <algorithm>
#include <atomic>

#include "kernels/kernel_check.h"

namespace phx {
namespace {

std::atomic<int> gThreads{0};  // 0: not set yet, use OpenMP's default

}  // namespace

void setKernelThreads(int threads) {
  PHX_KERNEL_REQUIRE(threads >= 1, "setKernelThreads: thread count must be >= 1, got ", threads);
  gThreads.store(threads);
  omp_set_num_threads(threads);
}

int kernelThreads() {
  int threads = gThreads.load();
  return threads > 0 ? threads : omp_get_max_threads();
}

IndexRange splitRange(int64_t count, int parts, int part) {
  int64_t base = count / parts;
  int64_t extra = count % parts;
  int64_t begin = part * base + std::min<int64_t>(part, extra);
  return {begin, base + (part < extra ? 1 : 0)};
}

namespace kernel_detail {

void runParallel(int64_t count, int64_t grain, RangeBody body, void* context) {
  if (count <= 0) return;
  int64_t pieces = std::max<int64_t>(1, count / std::max<int64_t>(grain, 1));
  int threads = int(std::min<int64_t>(kernelThreads(), pieces));
  if (threads <= 1 || omp_in_parallel()) {
    body(context, 0, count);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    IndexRange range = splitRange(count, omp_get_num_threads(), omp_get_thread_num());
    if (range.count > 0) body(context, range.begin, range.end());
  }
}

void runParallelDynamic(int64_t count, RangeBody body, void* context) {
  if (count <= 0) return;
  int threads = int(std::min<int64_t>(kernelThreads(), count));
  if (threads <= 1 || omp_in_parallel()) {
    body(context, 0, count);
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < count; ++i) body(context, i, i + 1);
}

}  // namespace kernel_detail
}  // namespace phx
