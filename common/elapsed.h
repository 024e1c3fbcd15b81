// Elapsed wall time in seconds on the steady clock: what every timing, timeout and metric in Phalanx measures.
#pragma once

#include <chrono>

namespace phx {

inline double secondsBetween(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

inline double secondsSince(std::chrono::steady_clock::time_point start) {
  return secondsBetween(start, std::chrono::steady_clock::now());
}

}  // namespace phx
