// Threads for the kernels. Debian's oneDNN runs on OpenMP (libgomp), so the kernels use OpenMP too: one runtime,
// one pool of threads that spin briefly between regions (PLATFORM.md: OMP_WAIT_POLICY). The caller sets
// the count once; every kernel splits its work into contiguous, thread-independent pieces, so results are
// bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <utility>

#include "common/index_range.h"

namespace phx {

// Sets the threads every later kernel call uses (>= 1; also oneDNN's, through omp_set_num_threads).
void setKernelThreads(int threads);
int kernelThreads();

// The part-th of `parts` contiguous, nearly equal pieces of [0, count).
IndexRange splitRange(int64_t count, int parts, int part);

namespace kernel_detail {
using RangeBody = void (*)(void* context, int64_t begin, int64_t end);
void runParallel(int64_t count, int64_t grain, RangeBody body, void* context);
void runParallelDynamic(int64_t count, RangeBody body, void* context);
}  // namespace kernel_detail

// Calls body(begin, end) on contiguous pieces of [0, count), one piece per thread (fewer threads when count is
// small: at least `grain` items a piece). Each index is visited exactly once; the split depends only on count,
// grain and the thread count.
template <typename Body>
void parallelFor(int64_t count, int64_t grain, Body&& body) {
  auto trampoline = [](void* context, int64_t begin, int64_t end) { (*static_cast<Body*>(context))(begin, end); };
  kernel_detail::runParallel(count, grain, trampoline, &body);
}

// Calls body(i) for every i in [0, count), items handed out one at a time to whichever thread is free: for items
// of uneven cost. body must not depend on which thread runs it.
template <typename Body>
void parallelForEach(int64_t count, Body&& body) {
  auto trampoline = [](void* context, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) (*static_cast<Body*>(context))(i);
  };
  kernel_detail::runParallelDynamic(count, trampoline, &body);
}

}  // namespace phx
