// matmul on packed weights against a double-precision scalar reference, for every path (both compute modes for
// BF16 weights, F32 weights), odd shapes, strides, and the bit-identity promises (batch vs row alone, 1 vs 2
// threads). Tolerances (NMSE, sum of squared errors over sum of squares):
//   exact-input paths (F32 weights, BF16 weights in f32fma, bf16dot against BF16-rounded x): 1e-10, fp32
//   accumulation over K <= 3000 gives about 1e-13;
//   bf16dot against the unrounded x: 2e-5, rounding x to BF16 (relative error <= 2^-9) gives about 1e-6.
#include <gtest/gtest.h>

#include <stdexcept>
#include <tuple>

#include "kernels/matmul.h"
#include "kernels/roofline.h"
#include "kernels/threading.h"
#include "tests/kernels/reference_ops.h"
#include "tests/kernels/test_util.h"

namespace phx {
namespace {

using testing::nmse;

struct Shape {
  int64_t m, n, k;
};

enum class Variant { kBf16Dot, kBf16F32Fma, kF32 };

const char* variantName(Variant v) {
  return v == Variant::kBf16Dot ? "Bf16Dot" : (v == Variant::kBf16F32Fma ? "Bf16F32Fma" : "F32");
}

struct Problem {
  std::vector<float> x;        // [m, k]
  std::vector<float> wValues;  // [n, k], the exact values the kernel sees
  PackedWeight w;
};

Problem makeProblem(const Shape& s, Variant variant, uint64_t seed) {
  Problem p;
  p.x = testing::randomFloats(size_t(s.m * s.k), seed);
  if (variant == Variant::kF32) {
    p.wValues = testing::randomFloats(size_t(s.n * s.k), seed + 1, 0.05f);
    p.w = PackedWeight::packF32(p.wValues.data(), s.n, s.k);
  } else {
    std::vector<uint16_t> bits = testing::randomBf16(size_t(s.n * s.k), seed + 1, 0.05f);
    for (uint16_t b : bits) p.wValues.push_back(testing::bf16BitsToFloat(b));
    p.w = PackedWeight::packBf16(bits.data(), s.n, s.k);
  }
  return p;
}

void selectCompute(Variant variant) {
  setMatmulCompute(variant == Variant::kBf16Dot ? MatmulCompute::kBf16Dot : MatmulCompute::kF32Fma);
}

std::vector<float> run(const Problem& p, const Shape& s) {
  std::vector<float> y(size_t(s.m * s.n), -1.0f);
  matmul(p.x.data(), s.m, p.w, y.data());
  return y;
}

class MatmulTest : public ::testing::TestWithParam<std::tuple<Shape, Variant>> {
 protected:
  void SetUp() override {
    setKernelThreads(2);
    if (std::get<1>(GetParam()) == Variant::kBf16Dot && !cpuFeatures().avx512Bf16) {
      GTEST_SKIP() << "this CPU has no AVX512_BF16 (the bf16dot path)";
    }
    selectCompute(std::get<1>(GetParam()));
  }
};

TEST_P(MatmulTest, PackingKeepsEveryValue) {
  auto [s, variant] = GetParam();
  Problem p = makeProblem(s, variant, 11);
  EXPECT_EQ(p.w.rows(), s.n);
  EXPECT_EQ(p.w.cols(), s.k);
  for (int64_t r = 0; r < s.n; ++r) {
    for (int64_t c = 0; c < s.k; ++c) ASSERT_EQ(p.w.at(r, c), p.wValues[size_t(r * s.k + c)]) << r << "," << c;
  }
}

TEST_P(MatmulTest, MatchesScalarReference) {
  auto [s, variant] = GetParam();
  Problem p = makeProblem(s, variant, 21);
  std::vector<float> got = run(p, s);
  std::vector<float> want = testing::referenceMatmul(p.x, p.wValues, s.m, s.n, s.k);
  if (variant == Variant::kBf16Dot) {
    EXPECT_LT(nmse(got, want), 2e-5);
    std::vector<float> xRounded = p.x;
    for (float& v : xRounded) v = testing::roundToBf16(v);
    EXPECT_LT(nmse(got, testing::referenceMatmul(xRounded, p.wValues, s.m, s.n, s.k)), 1e-10);
  } else {
    EXPECT_LT(nmse(got, want), 1e-10);
  }
}

TEST_P(MatmulTest, StridedRowsMatchContiguous) {
  auto [s, variant] = GetParam();
  Problem p = makeProblem(s, variant, 31);
  std::vector<float> contiguous = run(p, s);
  int64_t ldx = s.k + 5, ldy = s.n + 3;
  std::vector<float> x(size_t(s.m * ldx), 7.0f), y(size_t(s.m * ldy), 9.0f);
  for (int64_t i = 0; i < s.m; ++i) std::copy_n(&p.x[size_t(i * s.k)], s.k, &x[size_t(i * ldx)]);
  matmul(x.data(), ldx, s.m, p.w, y.data(), ldy);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < ldy; ++j) {
      float expected = j < s.n ? contiguous[size_t(i * s.n + j)] : 9.0f;  // padding columns untouched
      ASSERT_EQ(y[size_t(i * ldy + j)], expected) << i << "," << j;
    }
  }
}

TEST_P(MatmulTest, RowAloneEqualsRowInBatchBitForBit) {
  auto [s, variant] = GetParam();
  Problem p = makeProblem(s, variant, 41);
  std::vector<float> batch = run(p, s);
  for (int64_t i = 0; i < s.m; ++i) {
    std::vector<float> row(size_t(s.n));
    matmul(p.x.data() + i * s.k, 1, p.w, row.data());
    ASSERT_TRUE(std::equal(row.begin(), row.end(), batch.begin() + i * s.n)) << "row " << i;
  }
}

TEST_P(MatmulTest, OneAndTwoThreadsAgreeBitForBit) {
  auto [s, variant] = GetParam();
  Problem p = makeProblem(s, variant, 51);
  setKernelThreads(1);
  std::vector<float> one = run(p, s);
  setKernelThreads(2);
  std::vector<float> two = run(p, s);
  EXPECT_TRUE(testing::bitIdentical(one, two));
}

const Shape kShapes[] = {{1, 1, 1},     {1, 64, 16},   {1, 200, 130}, {2, 130, 64},  {3, 67, 37},
                         {5, 64, 1000}, {7, 129, 300}, {13, 96, 513}, {33, 70, 95}, {130, 200, 260},
                         {4, 1000, 3000},
                         // Batches above one tile walk K in chunks of kDotChunkPairs (512 pairs, k 1024), each tile
                         // prefetching its share of the next chunk or block: several chunks, a short last one.
                         {16, 200, 2600}, {9, 130, 1100}};

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTest,
                         ::testing::Combine(::testing::ValuesIn(kShapes),
                                            ::testing::Values(Variant::kBf16Dot, Variant::kBf16F32Fma,
                                                              Variant::kF32)),
                         [](const auto& info) {
                           const Shape& s = std::get<0>(info.param);
                           return std::string(variantName(std::get<1>(info.param))) + "_m" + std::to_string(s.m) +
                                  "_n" + std::to_string(s.n) + "_k" + std::to_string(s.k);
                         });

}  // namespace
}  // namespace phx
