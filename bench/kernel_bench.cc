// kernel_bench: this machine's limits (read bandwidth over 4 GiB, peak f32 FMA and vdpbf16ps rates) measured in
// the same run as the kernels they bound, then each kernel's rate beside its limit: matmul per path at Phi-4
// shapes for m in {1, ..., 512}, the element-wise ops, and paged attention. Prints a table; --json FILE writes
// one JSON object per line. Measure on an idle machine (`uptime`); figures are medians of --reps runs.
//
// kernel_bench [--threads N] [--reps R] [--shapes qkv,gate_up,down] [--m 1,16,512] [--rotate-gib G]
//              [--sections matmul,ops,attention] [--json FILE]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "bench/kernel_bench_util.h"
#include "kernels/matmul.h"
#include "kernels/roofline.h"
#include "kernels/threading.h"

namespace phx::bench {
namespace {

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

Options parseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("usage: kernel_bench [--threads N] [--reps R] [--shapes qkv,o_proj,gate_up,down] [--m 1,16,512]\n"
                  "                    [--rotate-gib G] [--sections matmul,ops,attention] [--json FILE]\n");
      std::exit(0);
    }
    if (i + 1 >= argc) throw std::invalid_argument("kernel_bench: " + flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--threads") {
      options.threads = std::stoi(value);
    } else if (flag == "--reps") {
      options.reps = std::stoi(value);
    } else if (flag == "--shapes") {
      options.shapes = splitList(value);
    } else if (flag == "--m") {
      options.ms.clear();
      for (const std::string& m : splitList(value)) options.ms.push_back(std::stoll(m));
    } else if (flag == "--rotate-gib") {
      options.rotateGiB = std::stod(value);
    } else if (flag == "--sections") {
      options.sections = splitList(value);
    } else if (flag == "--json") {
      options.jsonPath = value;
    } else {
      throw std::invalid_argument("kernel_bench: unknown flag " + flag);
    }
  }
  if (options.threads < 1 || options.reps < 1) throw std::invalid_argument("kernel_bench: threads and reps >= 1");
  return options;
}

Limits measureLimits(int threads) {
  Limits limits;
  limits.threads = threads;
  limits.readGBs = measureReadBandwidthGBs(threads);
  limits.peakF32Gflops = measurePeakF32Gflops(threads);
  limits.peakBf16Gflops = measurePeakBf16DotGflops(threads);
  return limits;
}

bool wants(const Options& options, const std::string& section) {
  for (const std::string& s : options.sections) {
    if (s == section) return true;
  }
  return false;
}

int run(int argc, char** argv) {
  Options options = parseOptions(argc, argv);
  setKernelThreads(options.threads);
  Report report(options.jsonPath);
  Limits limits = measureLimits(options.threads);
  std::printf("threads %d: read bandwidth %.1f GB/s, peak f32 FMA %.1f GFLOP/s, peak vdpbf16ps %.1f GFLOP/s; "
              "matmul compute for BF16 weights: %s\n",
              limits.threads, limits.readGBs, limits.peakF32Gflops, limits.peakBf16Gflops,
              matmulComputeName(matmulCompute()));
  char line[512];
  std::snprintf(line, sizeof line,
                "{\"bench\":\"limits\",\"threads\":%d,\"read_gbps\":%.4g,\"peak_f32_gflops\":%.4g,"
                "\"peak_bf16_dot_gflops\":%.4g,\"matmul_compute\":\"%s\"}",
                limits.threads, limits.readGBs, limits.peakF32Gflops, limits.peakBf16Gflops,
                matmulComputeName(matmulCompute()));
  report.note(line);
  if (wants(options, "matmul")) benchMatmul(options, limits, report);
  if (wants(options, "ops")) benchOps(options, limits, report);
  if (wants(options, "attention")) benchAttention(options, limits, report);
  return 0;
}

}  // namespace
}  // namespace phx::bench

int main(int argc, char** argv) {
  try {
    return phx::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_bench: %s\n", e.what());
    return 1;
  }
}
