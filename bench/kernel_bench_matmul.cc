// Matmul rates per path at Phi-4 shapes, for each m: M=1 in GB/s of weights against the read bandwidth, larger m
// in GFLOP/s against the peak rate of the path's arithmetic (vdpbf16ps for BF16 dot products, else f32 FMA). Weights
// rotate over more than a GiB of copies so that no case runs from the last-level cache.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "bench/kernel_bench_util.h"
#include "kernels/matmul.h"
#include "kernels/matmul_dnnl.h"
#include "kernels/threading.h"

namespace phx::bench {
namespace {

struct Shape {
  int64_t rows, cols;
};

const std::map<std::string, Shape> kShapes = {
    {"qkv", {7680, 5120}}, {"o_proj", {5120, 5120}}, {"gate_up", {35840, 5120}}, {"down", {5120, 17920}}};

std::vector<PackedWeight> packCopies(const Shape& shape, double rotateGiB) {
  std::vector<uint16_t> source(size_t(shape.rows * shape.cols));
  uint32_t state = 12345;
  for (uint16_t& v : source) {  // small random BF16 values: 0.5..1 times +-2^-7
    state = state * 1664525u + 1013904223u;
    v = uint16_t(0x3c00 | (state >> 25)) | uint16_t((state >> 8) & 0x8000);
  }
  double bytes = double(shape.rows * shape.cols) * 2;
  int copies = std::max(2, int(std::ceil(rotateGiB * double(1 << 30) / bytes)));
  std::vector<PackedWeight> weights;
  for (int c = 0; c < copies; ++c) weights.push_back(PackedWeight::packBf16(source.data(), shape.rows, shape.cols));
  return weights;
}

Result makeResult(const std::string& name, const std::string& path, int64_t m, const Shape& shape, double seconds,
                  const Limits& limits) {
  Result r{"matmul", name, path, m, seconds};
  if (m == 1) {
    r.rate = double(shape.rows * shape.cols) * 2 / seconds / 1e9;
    r.unit = "GB/s";
    r.limit = limits.readGBs;
    r.limitName = "read_bandwidth";
  } else {
    // Each path against the peak of the arithmetic it runs: vdpbf16ps for ours in bf16dot and oneDNN's BF16
    // brgemm, f32 FMA for the widening paths.
    bool dot = path.rfind("own:bf16dot", 0) == 0 || path == "onednn:bf16";
    r.rate = 2.0 * double(m * shape.rows * shape.cols) / seconds / 1e9;
    r.unit = "GFLOP/s";
    r.limit = dot ? limits.peakBf16Gflops : limits.peakF32Gflops;
    r.limitName = dot ? "peak_bf16_dot" : "peak_f32_fma";
  }
  return r;
}

void benchShape(const std::string& name, const Shape& shape, const Options& options, const Limits& limits,
                Report& report) {
  std::vector<PackedWeight> weights = packCopies(shape, options.rotateGiB);
  int64_t maxM = *std::max_element(options.ms.begin(), options.ms.end());
  std::vector<float> x(size_t(maxM * shape.cols), 0.01f), y(size_t(maxM * shape.rows));
  MatmulCompute chosen = matmulCompute();
  for (int64_t m : options.ms) {
    int copies = int(weights.size());
    for (MatmulCompute compute : {MatmulCompute::kBf16Dot, MatmulCompute::kF32Fma}) {
      setMatmulCompute(compute);
      double seconds = medianSeconds(options.reps, [&](int rep) {
        matmul(x.data(), m, weights[size_t(rep % copies)], y.data());
      });
      std::string path = std::string("own:") + matmulPathName(m, weights[0]);
      report.add(makeResult(name, path, m, shape, seconds, limits));
    }
    setMatmulCompute(chosen);
    for (DnnlMatmul::Kind kind : {DnnlMatmul::Kind::kBf16, DnnlMatmul::Kind::kF32Panels}) {
      if (kind == DnnlMatmul::Kind::kF32Panels && m < 16) continue;  // widens all weights per call: pointless
      std::vector<DnnlMatmul> primitives;
      for (const PackedWeight& w : weights) primitives.emplace_back(w, m, kind);
      double seconds = medianSeconds(options.reps, [&](int rep) {
        primitives[size_t(rep % copies)].run(x.data(), y.data());
      });
      std::string path = kind == DnnlMatmul::Kind::kBf16 ? "onednn:bf16" : "onednn:f32-panels";
      report.add(makeResult(name, path, m, shape, seconds, limits));
    }
  }
}

}  // namespace

void benchMatmul(const Options& options, const Limits& limits, Report& report) {
  report.header(
      "matmul (M=1: GB/s of BF16 weights vs read bandwidth; M>1: GFLOP/s vs the peak of the path's arithmetic)");
  for (const std::string& name : options.shapes) {
    auto shape = kShapes.find(name);
    if (shape == kShapes.end()) throw std::runtime_error("kernel_bench: unknown shape " + name);
    benchShape(name, shape->second, options, limits, report);
  }
}

}  // namespace phx::bench
