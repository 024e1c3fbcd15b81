// INT8 accuracy on the generated `small` model (and `tiny`), on a fixed prompt set (4 sequences of 40 tokens,
// logits at every position): INT8 weights (W8A8) and the INT8 KV cache against the independent fp32 reference
// (tests/reference) and against the BF16 engine; on `phi4-L4` (Phi-4's width, 4 layers: too large for the scalar
// reference) against the BF16 engine, with the same bounds. Per comparison: logits NMSE, top-1 agreement (the share of
// positions whose arg-max is the same) and the mean KL divergence KL(reference || candidate) in nats.
//
// Bounds (measured on small: weights NMSE 1.9e-4, top-1 96.9%, KL 5.9e-4; KV 1.5e-5, 99.4%, 4.5e-5; docs/int8.md;
// NMSE and KL bounds leave 5-7x room, top-1 about 4 positions of 160 beyond the 96.9% measured):
//   INT8 weights:  NMSE < 1e-3, top-1 >= 85%, KL < 3e-3
//   INT8 KV:       NMSE < 1e-4, top-1 >= 90%, KL < 3e-4
//   BF16 engine (the yardstick, same metrics): NMSE < 1e-4 as engine_reference_test states.
// A random-weight model's logits are nearly flat (top-1/top-2 margins of a few hundredths), so top-1 agreement is a
// harsher test here than on a trained model; NMSE and KL are the primary bounds.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <gtest/gtest.h>

#include "kernels/matmul.h"
#include "kernels/matmul_int8.h"
#include "kernels/roofline.h"
#include "tests/engine/engine_harness.h"
#include "tests/reference/reference_model.h"

namespace phx::testing {
namespace {

constexpr int64_t kPrompts = 4;
constexpr int64_t kPromptTokens = 40;

struct Bounds {
  double nmse;
  double top1;
  double kl;
};
constexpr Bounds kInt8WeightBounds{1e-3, 0.85, 3e-3};
constexpr Bounds kInt8KvBounds{1e-4, 0.90, 3e-4};

struct Agreement {
  double nmse = 0;
  double top1 = 0;  // share of positions with the same arg-max
  double kl = 0;    // mean KL(reference || candidate), nats
};

// log-softmax of one row, in double.
std::vector<double> logSoftmax(std::span<const float> row) {
  const double top = *std::max_element(row.begin(), row.end());
  double sum = 0;
  for (float v : row) sum += std::exp(double(v) - top);
  const double logSum = top + std::log(sum);
  std::vector<double> out(row.size());
  for (size_t i = 0; i < row.size(); ++i) out[i] = double(row[i]) - logSum;
  return out;
}

Agreement compare(const std::vector<float>& candidate, const std::vector<float>& reference, int64_t vocab) {
  Agreement a;
  a.nmse = nmse(candidate, reference);
  const int64_t rows = int64_t(reference.size()) / vocab;
  for (int64_t r = 0; r < rows; ++r) {
    const std::span<const float> c(candidate.data() + r * vocab, size_t(vocab));
    const std::span<const float> ref(reference.data() + r * vocab, size_t(vocab));
    a.top1 +=
        (std::max_element(c.begin(), c.end()) - c.begin()) == (std::max_element(ref.begin(), ref.end()) - ref.begin());
    const std::vector<double> lc = logSoftmax(c), lr = logSoftmax(ref);
    double kl = 0;
    for (int64_t i = 0; i < vocab; ++i) kl += std::exp(lr[size_t(i)]) * (lr[size_t(i)] - lc[size_t(i)]);
    a.kl += kl;
  }
  a.top1 /= double(rows);
  a.kl /= double(rows);
  return a;
}

// Logits [prompts * tokens, vocab] of the fixed prompt set: each prompt prefilled in chunks of 16, 16, 8 (so the
// later chunks attend over the cache).
std::vector<float> promptSetLogits(const ShardWeights& weights, KvType kvType) {
  std::vector<float> all;
  for (int64_t p = 0; p < kPrompts; ++p) {
    EngineUnderTest engine(weights, 64, 2, 16, kvType);
    const std::vector<int32_t> tokens = sampleTokens(kPromptTokens, uint32_t(100 + p));
    const int64_t chunks[] = {16, 16, 8};
    const std::vector<float> logits = runSequence(engine.runner, tokens, chunks, scatteredBlocks(4, 3, uint32_t(p)));
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

std::vector<float> referenceLogits(const std::string& preset) {
  const reference::ReferenceModel reference(modelDir(preset));
  std::vector<float> all;
  for (int64_t p = 0; p < kPrompts; ++p) {
    const std::vector<float> logits = reference.forward(sampleTokens(kPromptTokens, uint32_t(100 + p)));
    all.insert(all.end(), logits.begin(), logits.end());
  }
  return all;
}

void report(const char* what, const std::string& preset, const Agreement& a) {
  std::printf("[%s] %-34s NMSE %.3g, top-1 %.1f%%, KL %.3g nats\n", preset.c_str(), what, a.nmse, 100 * a.top1, a.kl);
}

void expectWithin(const Agreement& a, const Bounds& b) {
  EXPECT_LT(a.nmse, b.nmse);
  EXPECT_GE(a.top1, b.top1);
  EXPECT_LT(a.kl, b.kl);
}

// Compares `candidate` with `yardstick`, prints the figures under `what` and checks them against `bounds`.
void expectAgreement(const char* what, const std::string& preset, const std::vector<float>& candidate,
                     const std::vector<float>& yardstick, const Bounds& bounds) {
  const Agreement a = compare(candidate, yardstick, loadedWeights(preset).config.vocabSize);
  report(what, preset, a);
  expectWithin(a, bounds);
}

// The prompt set's logits four ways: BF16 or INT8 weights, each with a BF16 or an INT8 KV cache.
struct FourWays {
  std::vector<float> bf16, int8, int8Kv, both;
};

FourWays fourWays(const std::string& preset) {
  return {
      promptSetLogits(loadedWeights(preset), KvType::kBf16), promptSetLogits(loadedInt8Weights(preset), KvType::kBf16),
      promptSetLogits(loadedWeights(preset), KvType::kInt8), promptSetLogits(loadedInt8Weights(preset), KvType::kInt8)};
}

// Weights and KV together: the errors add (roughly), so the weights' bounds with the KV's NMSE and KL on top.
constexpr Bounds kInt8BothBounds{kInt8WeightBounds.nmse + kInt8KvBounds.nmse, kInt8WeightBounds.top1,
                                 kInt8WeightBounds.kl + kInt8KvBounds.kl};

class Int8AccuracyTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!cpuFeatures().avx512Vnni) GTEST_SKIP() << "this CPU has no AVX512_VNNI (the W8A8 path)";
    setInt8Path(Int8Path::kVnni);
  }
};

TEST_P(Int8AccuracyTest, Int8WeightsAndKvAgreeWithReferenceAndBf16) {
  const std::string& preset = GetParam();
  const int64_t vocab = loadedWeights(preset).config.vocabSize;
  const std::vector<float> reference = referenceLogits(preset);
  const auto [bf16, int8, int8Kv, both] = fourWays(preset);

  const Agreement bf16VsRef = compare(bf16, reference, vocab);
  report("BF16 engine vs fp32 reference", preset, bf16VsRef);
  EXPECT_LT(bf16VsRef.nmse, 1e-4);

  expectAgreement("INT8 weights vs fp32 reference", preset, int8, reference, kInt8WeightBounds);
  expectAgreement("INT8 weights vs BF16 engine", preset, int8, bf16, kInt8WeightBounds);
  expectAgreement("INT8 KV vs fp32 reference", preset, int8Kv, reference, kInt8KvBounds);
  expectAgreement("INT8 KV vs BF16 engine", preset, int8Kv, bf16, kInt8KvBounds);
  expectAgreement("INT8 weights + KV vs fp32 reference", preset, both, reference, kInt8BothBounds);
}

INSTANTIATE_TEST_SUITE_P(Presets, Int8AccuracyTest, ::testing::Values("tiny", "small"));

class Int8AccuracyPhi4L4Test : public Int8AccuracyTest {};

TEST_F(Int8AccuracyPhi4L4Test, Int8WeightsAndKvAgreeWithBf16) {
  const std::string preset = "phi4-L4";
  const auto [bf16, int8, int8Kv, both] = fourWays(preset);
  expectAgreement("INT8 weights vs BF16 engine", preset, int8, bf16, kInt8WeightBounds);
  expectAgreement("INT8 KV vs BF16 engine", preset, int8Kv, bf16, kInt8KvBounds);
  expectAgreement("INT8 weights + KV vs BF16 engine", preset, both, bf16, kInt8BothBounds);
}

}  // namespace
}  // namespace phx::testing
