#include "bench/kernel_bench_util.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace phx::bench {

double medianSeconds(int reps, const std::function<void(int)>& fn) {
  fn(0);
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    auto start = std::chrono::steady_clock::now();
    fn(r + 1);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

Report::Report(const std::string& jsonPath) {
  if (jsonPath.empty()) return;
  json_ = std::fopen(jsonPath.c_str(), "w");
  if (json_ == nullptr) throw std::runtime_error("kernel_bench: cannot write " + jsonPath);
}

Report::~Report() {
  if (json_ != nullptr) std::fclose(json_);
}

void Report::header(const std::string& title) {
  std::printf("\n== %s\n%-10s %-22s %6s %12s %10s %12s %8s\n", title.c_str(), "case", "path", "m", "ms", "rate",
              "limit", "of limit");
}

void Report::add(const Result& r) {
  double fraction = r.limit > 0 ? r.rate / r.limit : 0;
  std::printf("%-10s %-22s %6lld %12.3f %7.1f %-3s %8.1f %-3s %7.1f%%\n", r.name.c_str(), r.path.c_str(),
              (long long)r.m, r.seconds * 1e3, r.rate, r.unit == "GB/s" ? "GB" : "GF", r.limit,
              r.unit == "GB/s" ? "GB" : "GF", 100 * fraction);
  std::fflush(stdout);
  if (json_ == nullptr) return;
  std::fprintf(json_,
               "{\"bench\":\"%s\",\"case\":\"%s\",\"path\":\"%s\",\"m\":%lld,\"seconds\":%.6g,\"rate\":%.6g,"
               "\"unit\":\"%s\",\"limit\":%.6g,\"limit_name\":\"%s\",\"limit_fraction\":%.4f}\n",
               r.bench.c_str(), r.name.c_str(), r.path.c_str(), (long long)r.m, r.seconds, r.rate, r.unit.c_str(),
               r.limit, r.limitName.c_str(), fraction);
  std::fflush(json_);
}

void Report::note(const std::string& json) {
  if (json_ != nullptr) std::fprintf(json_, "%s\n", json.c_str());
}

}  // namespace phx::bench
