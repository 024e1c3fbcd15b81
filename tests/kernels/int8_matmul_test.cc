// INT8 weights: quantization, packing, and both matmul paths against scalar references written here.
//   W8A8 (vpdpbusd): against a scalar model of the same integer arithmetic (per-token u8 activations, int32 sums,
//     the same float dequantization): bit-identical, since integer sums are exact in any order.
//   weight-only: against a double-precision product with the dequantized weights: NMSE < 1e-10 (f32 sums).
//   Both against the unquantized weights and activations: NMSE < 2e-4 (per-row 8-bit weights on Gaussian data give
//   about 4e-5; W8A8 adds per-token 8-bit activations, about 8e-5 more).
// And the bit-identity promises: a row alone equals the row in a batch, 1 thread equals 2, for both paths.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "kernels/matmul.h"
#include "kernels/matmul_int8.h"
#include "kernels/quantize.h"
#include "kernels/roofline.h"
#include "kernels/threading.h"
#include "tests/kernels/test_util.h"

namespace phx {
namespace {

using testing::nmse;

constexpr double kDequantizedNmse = 1e-10;
constexpr double kVsUnquantizedNmse = 2e-4;

struct Shape {
  int64_t m, n, k;
};

struct Problem {
  Shape s;
  std::vector<float> x;          // [m, k]
  std::vector<float> wOriginal;  // [n, k], BF16 values before quantization
  std::vector<int8_t> q;         // [n, k], as the test quantizes them
  std::vector<float> scales;     // [n]
  PackedWeight w;
};

// The test's own symmetric quantizer (independent of kernels/quantize.cc, same definition).
float quantizeRow(const float* row, int64_t k, int8_t* out) {
  float amax = 0;
  for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(row[i]));
  if (amax == 0) {
    for (int64_t i = 0; i < k; ++i) out[i] = 0;
    return 0;
  }
  for (int64_t i = 0; i < k; ++i)
    out[i] = int8_t(std::clamp(std::nearbyint(row[i] * (127.0f / amax)), -127.0f, 127.0f));
  return amax / 127.0f;
}

Problem makeProblem(const Shape& s, uint64_t seed) {
  Problem p{s, testing::randomFloats(size_t(s.m * s.k), seed), {}, std::vector<int8_t>(size_t(s.n * s.k)),
            std::vector<float>(size_t(s.n)), {}};
  std::vector<uint16_t> bits = testing::randomBf16(size_t(s.n * s.k), seed + 1, 0.05f);
  for (int64_t c = 0; c < s.k; ++c) bits[size_t(3 * s.k + c)] = 0;  // an all-zero row (scale 0), when n > 3
  for (uint16_t b : bits) p.wOriginal.push_back(testing::bf16BitsToFloat(b));
  for (int64_t r = 0; r < s.n; ++r) {
    p.scales[size_t(r)] = quantizeRow(p.wOriginal.data() + r * s.k, s.k, p.q.data() + r * s.k);
  }
  p.w = PackedWeight::quantizeBf16(bits.data(), s.n, s.k);
  return p;
}

// The W8A8 arithmetic, scalar: per-token u8 with zero point 128, exact int32 sums, then the kernel's float steps.
std::vector<float> referenceW8A8(const Problem& p) {
  const Shape& s = p.s;
  std::vector<float> y(size_t(s.m * s.n));
  for (int64_t i = 0; i < s.m; ++i) {
    const float* x = p.x.data() + i * s.k;
    float amax = 0;
    for (int64_t c = 0; c < s.k; ++c) amax = std::max(amax, std::fabs(x[c]));
    const float inverse = amax > 0 ? 127.0f / amax : 0.0f;
    std::vector<int32_t> xq(size_t(s.k));
    for (int64_t c = 0; c < s.k; ++c) xq[size_t(c)] = int32_t(std::nearbyint(x[c] * inverse));  // zero point cancels
    for (int64_t n = 0; n < s.n; ++n) {
      int32_t acc = 0;
      for (int64_t c = 0; c < s.k; ++c) acc += xq[size_t(c)] * p.q[size_t(n * s.k + c)];
      y[size_t(i * s.n + n)] = (float(acc) * p.scales[size_t(n)]) * (amax / 127.0f);
    }
  }
  return y;
}

std::vector<double> referenceProduct(const Problem& p, bool dequantized) {
  const Shape& s = p.s;
  std::vector<double> y(size_t(s.m * s.n));
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t n = 0; n < s.n; ++n) {
      double acc = 0;
      for (int64_t c = 0; c < s.k; ++c) {
        const size_t at = size_t(n * s.k + c);
        const double w = dequantized ? double(p.scales[size_t(n)]) * p.q[at] : double(p.wOriginal[at]);
        acc += double(p.x[size_t(i * s.k + c)]) * w;
      }
      y[size_t(i * s.n + n)] = acc;
    }
  }
  return y;
}

std::vector<float> run(const Problem& p) {
  std::vector<float> y(size_t(p.s.m * p.s.n), -1.0f);
  matmul(p.x.data(), p.s.m, p.w, y.data());
  return y;
}

using Param = std::tuple<Shape, Int8Path>;

class Int8MatmulTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (path() == Int8Path::kVnni && !cpuFeatures().avx512Vnni) GTEST_SKIP() << "this CPU has no AVX512_VNNI";
    setInt8Path(path());
    setKernelThreads(2);
  }
  Shape shape() const { return std::get<0>(GetParam()); }
  Int8Path path() const { return std::get<1>(GetParam()); }
};

TEST_P(Int8MatmulTest, PackingKeepsEveryQuantizedValueAndScale) {
  const Problem p = makeProblem(shape(), 11);
  ASSERT_EQ(p.w.type(), WeightType::kInt8);
  for (int64_t n = 0; n < p.s.n; ++n) {
    ASSERT_EQ(p.w.rowScales()[n], p.scales[size_t(n)]) << "row " << n;
    int32_t sum = 0;
    for (int64_t c = 0; c < p.s.k; ++c) {
      ASSERT_EQ(p.w.at(n, c), p.scales[size_t(n)] * float(p.q[size_t(n * p.s.k + c)])) << n << ", " << c;
      sum += p.q[size_t(n * p.s.k + c)];
    }
    ASSERT_EQ(p.w.rowSums()[n], sum) << "row " << n;
  }
}

TEST_P(Int8MatmulTest, MatchesScalarReference) {
  const Problem p = makeProblem(shape(), 21);
  const std::vector<float> y = run(p);
  if (path() == Int8Path::kVnni) {
    EXPECT_TRUE(testing::bitIdentical(y, referenceW8A8(p))) << "W8A8 must equal the scalar integer model exactly";
  } else {
    EXPECT_LT(nmse(y, referenceProduct(p, true)), kDequantizedNmse);
  }
  const double error = nmse(y, referenceProduct(p, false));
  EXPECT_LT(error, kVsUnquantizedNmse) << "against the unquantized weights and activations";
}

TEST_P(Int8MatmulTest, StridedRowsMatchContiguous) {
  const Problem p = makeProblem(shape(), 31);
  const Shape s = p.s;
  const int64_t ldx = s.k + 5, ldy = s.n + 3;
  std::vector<float> xs(size_t(s.m * ldx), 1e30f), ys(size_t(s.m * ldy), -7.0f);
  for (int64_t i = 0; i < s.m; ++i) std::copy_n(p.x.data() + i * s.k, s.k, xs.data() + i * ldx);
  matmul(xs.data(), ldx, s.m, p.w, ys.data(), ldy);
  const std::vector<float> y = run(p);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t n = 0; n < s.n; ++n) ASSERT_EQ(ys[size_t(i * ldy + n)], y[size_t(i * s.n + n)]) << i << ", " << n;
    for (int64_t n = s.n; n < ldy; ++n) ASSERT_EQ(ys[size_t(i * ldy + n)], -7.0f) << "wrote past the row";
  }
}

TEST_P(Int8MatmulTest, RowAloneEqualsRowInBatchBitForBit) {
  const Problem p = makeProblem(shape(), 41);
  const std::vector<float> batch = run(p);
  for (int64_t i : {int64_t(0), p.s.m / 2, p.s.m - 1}) {
    std::vector<float> alone(size_t(p.s.n));
    matmul(p.x.data() + i * p.s.k, 1, p.w, alone.data());
    const std::vector<float> row(batch.begin() + i * p.s.n, batch.begin() + (i + 1) * p.s.n);
    EXPECT_TRUE(testing::bitIdentical(alone, row)) << "row " << i;
  }
}

TEST_P(Int8MatmulTest, OneAndTwoThreadsAgreeBitForBit) {
  const Problem p = makeProblem(shape(), 51);
  setKernelThreads(1);
  const std::vector<float> one = run(p);
  setKernelThreads(2);
  EXPECT_TRUE(testing::bitIdentical(one, run(p)));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Int8MatmulTest,
    ::testing::Combine(::testing::Values(Shape{1, 64, 64}, Shape{1, 130, 100}, Shape{3, 200, 2100},
                                         Shape{7, 64, 2064}, Shape{13, 70, 36}, Shape{40, 256, 4100}),
                       ::testing::Values(Int8Path::kVnni, Int8Path::kWeightOnly)),
    [](const auto& info) {
      const Shape s = std::get<0>(info.param);
      return std::string(std::get<1>(info.param) == Int8Path::kVnni ? "W8A8" : "WeightOnly") + "_m" +
             std::to_string(s.m) + "_n" + std::to_string(s.n) + "_k" + std::to_string(s.k);
    });

TEST(Int8Quantize, RoundTripErrorIsAtMostHalfAStep) {
  const std::vector<float> values = testing::randomFloats(1000, 5, 3.0f);
  std::vector<int8_t> q(values.size());
  const float scale = quantizeF32RowInt8(values.data(), int64_t(values.size()), q.data());
  float amax = 0;
  for (float v : values) amax = std::max(amax, std::fabs(v));
  EXPECT_EQ(scale, amax / 127.0f);
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_LE(std::fabs(values[i] - scale * q[i]), 0.5f * scale * 1.0001f) << i;
    ASSERT_GE(q[i], -127);
  }
}

TEST(Int8Quantize, BadScalesAreRefused) {
  const std::vector<int8_t> row(16, 1);
  const float scale = -1.0f;
  EXPECT_THROW(PackedWeight::packInt8Rows(1, 16, [&](int64_t) { return row.data(); }, &scale), std::invalid_argument);
}

}  // namespace
}  // namespace phx
