// This process's resident memory as the kernel counts it (/proc/self/status): what a worker reports beside its
// shard's planned size, so a plan's memory estimate is checked against the real thing.
#pragma once

#include <cstdint>

namespace phx {

struct ProcessMemory {
  int64_t rssBytes = 0;      // VmRSS
  int64_t peakRssBytes = 0;  // VmHWM
};

// Zeros where /proc is unavailable.
ProcessMemory readProcessMemory();

}  // namespace phx
