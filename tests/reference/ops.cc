#include "tests/reference/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/check.h"

namespace phx::reference {

void rmsNorm(std::span<const float> x, std::span<const float> weight, double eps, std::span<float> y) {
  PHX_CHECK_EQ(x.size(), weight.size());
  PHX_CHECK_EQ(x.size(), y.size());
  double sumSquares = 0;
  for (float value : x) sumSquares += double(value) * value;
  const double inverse = 1.0 / std::sqrt(sumSquares / double(x.size()) + eps);
  for (size_t i = 0; i < x.size(); ++i) y[i] = float(x[i] * inverse * weight[i]);
}

double rms(std::span<const float> x) {
  double sumSquares = 0;
  for (float value : x) sumSquares += double(value) * value;
  return x.empty() ? 0.0 : std::sqrt(sumSquares / double(x.size()));
}

void softmaxInPlace(std::span<float> values) {
  if (values.empty()) return;
  const float maximum = *std::max_element(values.begin(), values.end());
  double sum = 0;
  for (float value : values) sum += std::exp(double(value) - maximum);
  for (float& value : values) value = float(std::exp(double(value) - maximum) / sum);
}

float silu(float x) { return float(double(x) / (1.0 + std::exp(-double(x)))); }

void applyRope(std::span<float> head, int64_t position, double theta) {
  const int64_t dim = int64_t(head.size());
  const int64_t half = dim / 2;
  PHX_CHECK_EQ(half * 2, dim);
  for (int64_t i = 0; i < half; ++i) {
    const double invFreq = std::pow(theta, -2.0 * double(i) / double(dim));
    const double angle = double(position) * invFreq;
    const double c = std::cos(angle), s = std::sin(angle);
    // Element i pairs with element i + half: out1 = x1 cos - x2 sin, out2 = x2 cos + x1 sin.
    const double x1 = head[i], x2 = head[i + half];
    head[i] = float(x1 * c - x2 * s);
    head[i + half] = float(x2 * c + x1 * s);
  }
}

void causalAttention(const AttentionShape& shape, const float* q, const float* k, const float* v, float* out) {
  const int64_t d = shape.headDim;
  const int64_t group = shape.numHeads / shape.numKvHeads;
  PHX_CHECK_EQ(group * shape.numKvHeads, shape.numHeads);
  const int64_t qStride = shape.numHeads * d, kvStride = shape.numKvHeads * d;
  const double scale = 1.0 / std::sqrt(double(d));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t h = 0; h < shape.numHeads; ++h) {
    for (int64_t i = 0; i < shape.tokens; ++i) {
      const int64_t kvHead = h / group;
      const float* query = q + i * qStride + h * d;
      std::vector<float> probs(static_cast<size_t>(i + 1));  // position i attends to positions 0..i
      for (int64_t j = 0; j <= i; ++j) {
        const float* key = k + j * kvStride + kvHead * d;
        double dot = 0;
        for (int64_t e = 0; e < d; ++e) dot += double(query[e]) * key[e];
        probs[size_t(j)] = float(dot * scale);
      }
      softmaxInPlace(probs);
      float* result = out + i * qStride + h * d;
      for (int64_t e = 0; e < d; ++e) {
        double sum = 0;
        for (int64_t j = 0; j <= i; ++j) sum += double(probs[size_t(j)]) * v[j * kvStride + kvHead * d + e];
        result[e] = float(sum);
      }
    }
  }
}

void linear(const float* x, int64_t tokens, const StoredTensor& w, float* y) {
  const int64_t outDim = w.rows(), inDim = w.cols();
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(inDim));  // one weight row as float, reused for every token
#pragma omp for schedule(static)
    for (int64_t o = 0; o < outDim; ++o) {
      w.rowToFloat(o, row.data());
      const float* weights = row.data();
      for (int64_t t = 0; t < tokens; ++t) {
        const float* input = x + t * inDim;
        float acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < inDim; ++i) acc += input[i] * weights[i];
        y[t * outDim + o] = acc;
      }
    }
  }
}

}  // namespace phx::reference
