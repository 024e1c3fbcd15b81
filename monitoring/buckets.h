// Histogram bucket boundaries shared by the coordinator's and the workers' metrics, chosen for LLM serving on CPUs:
// a decode step takes milliseconds to a second, a long prefill or a queued request tens of seconds.
#pragma once

#include <prometheus/histogram.h>

namespace phx {

// 1 ms .. 60 s: TTFT, inter-token, end-to-end and queue latency, model step time.
inline prometheus::Histogram::BucketBoundaries latencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5,
          0.75,  1.0,    2.5,   5.0,  10.0,  20.0, 30.0,  60.0};
}

// 10 us .. 1 s: one all-reduce (a 5120-float hidden state over loopback UCX takes tens of microseconds).
inline prometheus::Histogram::BucketBoundaries allReduceBuckets() {
  return {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};
}

// Sequences per step: powers of two up to 512 (the scheduler's running batch is at most a few hundred).
inline prometheus::Histogram::BucketBoundaries batchSizeBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
}

// Tokens per step (decode tokens plus prefill chunks): powers of two up to 16384.
inline prometheus::Histogram::BucketBoundaries stepTokenBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
}

}  // namespace phx
