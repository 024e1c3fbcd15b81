// The picture bench-serve draws: output token throughput and median latencies against concurrency, as a
// hand-written SVG (two panels, log2 concurrency axis), so no plotting library is needed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace phx::cli {

struct BenchServePoint {
  int64_t concurrency = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
  double requestThroughput = 0;
  double outputThroughput = 0;  // tokens/s
  double ttftMedianMs = 0;
  double tpotMedianMs = 0;
  double e2eMedianMs = 0;
};

// Throws phx::Error (io) when the file cannot be written.
void writeBenchServePlot(const std::string& path, const std::vector<BenchServePoint>& points, const std::string& title);

}  // namespace phx::cli
