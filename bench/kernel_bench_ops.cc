// The kernels around the matmuls at Phi-4 shapes (one full-width rank: 40 query heads, 10 KV heads of 128):
// element-wise ops in GB/s of memory touched against the read bandwidth, and paged attention: decode in GB/s of
// K/V read against the bandwidth, prefill in GFLOP/s (4 * headDim per query-key pair) against peak f32 FMA.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "bench/kernel_bench_util.h"
#include "kernels/embedding.h"
#include "kernels/logits.h"
#include "kernels/paged_attention.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace phx::bench {
namespace {

constexpr int64_t kHidden = 5120, kInter = 17920, kVocab = 100352, kQHeads = 40, kKvHeads = 10, kHeadDim = 128;

Result bandwidthResult(const std::string& bench, const std::string& name, const std::string& path, int64_t m,
                       double bytes, double seconds, const Limits& limits) {
  return {bench, name, path, m, seconds, bytes / seconds / 1e9, "GB/s", limits.readGBs, "read_bandwidth"};
}

void benchElementwise(const Options& options, const Limits& limits, Report& report) {
  for (int64_t rows : {int64_t(1), int64_t(512)}) {
    std::vector<float> x(size_t(rows * 2 * kInter), 0.5f), y(x.size());
    std::vector<uint16_t> weight(size_t(kHidden), 0x3f80);
    double s = medianSeconds(options.reps,
                             [&](int) { rmsNorm(x.data(), rows, kHidden, kHidden, weight.data(), 1e-5f, y.data()); });
    report.add(bandwidthResult("ops", "rms_norm", "avx512", rows, 8.0 * double(rows * kHidden), s, limits));
    s = medianSeconds(options.reps, [&](int) { swiglu(x.data(), rows, kInter, y.data()); });
    report.add(bandwidthResult("ops", "swiglu", "avx512", rows, 12.0 * double(rows * kInter), s, limits));
    RopeTable table(kHeadDim, 250000.0, 16384);
    std::vector<int64_t> positions(static_cast<size_t>(rows));
    std::iota(positions.begin(), positions.end(), int64_t(100));
    s = medianSeconds(options.reps, [&](int) {
      applyRope(x.data(), rows, (kQHeads + 2 * kKvHeads) * kHeadDim, kQHeads + kKvHeads, kHeadDim, positions.data(),
                table);
    });
    report.add(bandwidthResult("ops", "rope", "avx512", rows, 8.0 * double(rows * (kQHeads + kKvHeads) * kHeadDim), s,
                               limits));
    std::vector<uint16_t> embedding(size_t(4096 * kHidden), 0x3f80);
    std::vector<int32_t> ids(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) ids[size_t(i)] = int32_t((i * 977) % 4096);
    s = medianSeconds(options.reps,
                      [&](int) { embeddingLookup(embedding.data(), 0, 4096, kHidden, ids.data(), rows, y.data()); });
    report.add(bandwidthResult("ops", "embedding", "avx512", rows, 6.0 * double(rows * kHidden), s, limits));
  }
  std::vector<float> logits(static_cast<size_t>(kVocab));
  for (int64_t i = 0; i < kVocab; ++i) logits[size_t(i)] = std::sin(float(i) * 0.37f) * 8.0f;
  std::vector<float> out(logits.size());
  double s = medianSeconds(options.reps, [&](int) { logSoftmax(logits.data(), kVocab, out.data()); });
  report.add(bandwidthResult("ops", "log_softmax", "avx512", 1, 8.0 * kVocab, s, limits));
  s = medianSeconds(options.reps, [&](int) { (void)sliceTopK(logits.data(), kVocab, 20, 0); });
  report.add(bandwidthResult("ops", "top20+lse", "heap", 1, 4.0 * kVocab, s, limits));
}

struct AttentionCase {
  std::string name;
  int64_t sequences, cached, fresh;
};

void benchAttentionCase(const AttentionCase& c, KvType type, const Options& options, const Limits& limits,
                        Report& report) {
  const int64_t blockSize = 16, qWidth = kQHeads * kHeadDim, kvWidth = kKvHeads * kHeadDim;
  int64_t context = c.cached + c.fresh, blocksPer = (context + blockSize - 1) / blockSize;
  PagedKvCache cache(KvBlockShape{kKvHeads, kHeadDim, blockSize, type}, 1, c.sequences * blocksPer);
  PagedKv layer = cache.layer(0);
  std::vector<int32_t> tables(size_t(c.sequences * blocksPer));
  std::iota(tables.begin(), tables.end(), 0);
  std::vector<AttentionSequence> seqs;
  for (int64_t i = 0; i < c.sequences; ++i)
    seqs.push_back({i * c.fresh, c.fresh, c.cached, &tables[size_t(i * blocksPer)], blocksPer});
  std::vector<float> kv(size_t(c.sequences * context * kvWidth), 0.01f);
  std::vector<AttentionSequence> fill = seqs;  // write every position once
  for (int64_t i = 0; i < c.sequences; ++i)
    fill[size_t(i)] = {i * context, context, 0, seqs[size_t(i)].blockTable, blocksPer};
  writeKv(kv.data(), kv.data(), kvWidth, fill.data(), c.sequences, layer);
  std::vector<float> q(size_t(c.sequences * c.fresh * qWidth), 0.02f), out(q.size());
  std::vector<int32_t> kvHeadOf(static_cast<size_t>(kQHeads));
  for (int64_t h = 0; h < kQHeads; ++h) kvHeadOf[size_t(h)] = int32_t(h / (kQHeads / kKvHeads));
  AttentionHeads heads{kQHeads, kHeadDim, kvHeadOf.data(), float(1.0 / std::sqrt(double(kHeadDim)))};
  double s = medianSeconds(options.reps, [&](int) {
    attendPaged(q.data(), qWidth, seqs.data(), c.sequences, heads, layer, out.data(), qWidth);
  });
  std::string path = std::string("paged-") + kvTypeName(type);
  if (c.fresh == 1) {
    double bytes = double(c.sequences * context * 2 * kvWidth * (type == KvType::kBf16 ? 2 : 4));
    report.add(bandwidthResult("attention", c.name, path, c.sequences, bytes, s, limits));
  } else {
    double pairs = double(c.sequences) * double(c.fresh) * double(c.cached + (c.fresh + 1) / 2.0);
    double gflops = 4.0 * kHeadDim * kQHeads * pairs / s / 1e9;
    report.add(
        {"attention", c.name, path, c.sequences * c.fresh, s, gflops, "GFLOP/s", limits.peakF32Gflops, "peak_f32_fma"});
  }
}

}  // namespace

void benchOps(const Options& options, const Limits& limits, Report& report) {
  report.header("element-wise ops (GB/s of memory touched vs read bandwidth; cache-resident, so above 100% is fine)");
  benchElementwise(options, limits, report);
}

void benchAttention(const Options& options, const Limits& limits, Report& report) {
  report.header("paged attention, 40 q / 10 kv heads of 128 (decode: GB/s of K/V vs bandwidth; prefill: GFLOP/s)");
  std::vector<AttentionCase> cases = {{"decode@512", 1, 511, 1},   {"decode@4k", 1, 4095, 1},
                                      {"b16@512", 16, 511, 1},     {"b16@2k", 16, 2047, 1},
                                      {"prefill512", 1, 0, 512},   {"chunk512@2k", 1, 1536, 512}};
  for (const AttentionCase& c : cases) {
    for (KvType type : {KvType::kBf16, KvType::kF32}) benchAttentionCase(c, type, options, limits, report);
  }
}

}  // namespace phx::bench
