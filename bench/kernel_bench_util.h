// Shared pieces of the kernel benchmark: options, timing (median of repetitions), and the table + JSON lines
// every case prints (the hardware limit beside each figure).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace phx::bench {

struct Limits {
  int threads = 0;
  double readGBs = 0;          // memory read bandwidth
  double peakF32Gflops = 0;    // f32 FMA
  double peakBf16Gflops = 0;   // vdpbf16ps
};

struct Options {
  int threads = 2;
  int reps = 7;
  double rotateGiB = 1.2;  // weights rotated per case: more than the last-level cache can hide
  std::vector<std::string> shapes = {"qkv", "gate_up", "down"};
  std::vector<int64_t> ms = {1, 2, 4, 8, 16, 32, 64, 128, 512};
  std::vector<std::string> sections = {"matmul", "ops", "attention"};
  std::string jsonPath;
};

// Median seconds of `reps` calls of fn(rep) after one warm-up call.
double medianSeconds(int reps, const std::function<void(int)>& fn);

// One result: printed as a table row and appended as a JSON line.
struct Result {
  std::string bench;   // "matmul", "attention", ...
  std::string name;    // shape or case name
  std::string path;    // implementation
  int64_t m = 0;       // rows / tokens
  double seconds = 0;
  double rate = 0;     // in `unit`
  std::string unit;    // "GB/s" or "GFLOP/s"
  double limit = 0;    // the hardware limit in the same unit
  std::string limitName;
};

class Report {
 public:
  explicit Report(const std::string& jsonPath);
  ~Report();
  void header(const std::string& title);
  void add(const Result& result);
  void note(const std::string& json);  // a raw JSON line (limits)

 private:
  FILE* json_ = nullptr;
};

// The sections (each in its own file).
void benchMatmul(const Options& options, const Limits& limits, Report& report);
void benchOps(const Options& options, const Limits& limits, Report& report);
void benchAttention(const Options& options, const Limits& limits, Report& report);

}  // namespace phx::bench
