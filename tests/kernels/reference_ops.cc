#include "tests/kernels/reference_ops.h"

#include <algorithm>
#include <cmath>

namespace phx::testing {

std::vector<float> referenceMatmul(const std::vector<float>& x, const std::vector<float>& w, int64_t m, int64_t n,
                                   int64_t k) {
  std::vector<float> y(size_t(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t c = 0; c < k; ++c) sum += double(x[size_t(i * k + c)]) * double(w[size_t(j * k + c)]);
      y[size_t(i * n + j)] = float(sum);
    }
  }
  return y;
}

std::vector<float> referenceRmsNorm(const std::vector<float>& x, const std::vector<float>& weight, int64_t rows,
                                    int64_t n, double eps) {
  std::vector<float> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double sumSquares = 0;
    for (int64_t c = 0; c < n; ++c) sumSquares += double(x[size_t(r * n + c)]) * x[size_t(r * n + c)];
    double inverse = 1.0 / std::sqrt(sumSquares / double(n) + eps);
    for (int64_t c = 0; c < n; ++c)
      y[size_t(r * n + c)] = float(double(x[size_t(r * n + c)]) * inverse * weight[size_t(c)]);
  }
  return y;
}

void referenceRope(std::vector<float>& x, int64_t rows, int64_t stride, int64_t heads, int64_t headDim,
                   const std::vector<int64_t>& positions, double theta) {
  int64_t half = headDim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < heads; ++h) {
      float* head = x.data() + r * stride + h * headDim;
      for (int64_t i = 0; i < half; ++i) {
        double inverseFrequency = 1.0 / std::pow(theta, double(2 * i) / double(headDim));
        double angle = double(positions[size_t(r)]) * inverseFrequency;
        double a = head[i], b = head[i + half];
        head[i] = float(a * std::cos(angle) - b * std::sin(angle));
        head[i + half] = float(b * std::cos(angle) + a * std::sin(angle));
      }
    }
  }
}

std::vector<float> referenceSwiglu(const std::vector<float>& gateUp, int64_t rows, int64_t inter) {
  std::vector<float> out(size_t(rows * inter));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < inter; ++i) {
      double gate = gateUp[size_t(r * 2 * inter + i)];
      double up = gateUp[size_t(r * 2 * inter + inter + i)];
      out[size_t(r * inter + i)] = float(gate / (1.0 + std::exp(-gate)) * up);
    }
  }
  return out;
}

std::vector<double> referenceLogSoftmax(const std::vector<float>& logits) {
  double peak = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += std::exp(double(v) - peak);
  double logSum = peak + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = double(logits[i]) - logSum;
  return out;
}

std::vector<float> referenceAttention(const std::vector<float>& q, const std::vector<float>& k,
                                      const std::vector<float>& v, int64_t tokens, int64_t context, int64_t qHeads,
                                      int64_t kvHeads, int64_t headDim, const std::vector<int32_t>& kvHeadOf,
                                      double scale) {
  std::vector<float> out(size_t(tokens * qHeads * headDim));
  std::vector<double> scores(static_cast<size_t>(context));
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t position = context - tokens + t;  // causal: sees keys 0..position
    for (int64_t h = 0; h < qHeads; ++h) {
      int64_t g = kvHeadOf[size_t(h)];
      const float* query = q.data() + (t * qHeads + h) * headDim;
      double peak = -1e300;
      for (int64_t j = 0; j <= position; ++j) {
        const float* key = k.data() + (j * kvHeads + g) * headDim;
        double dot = 0;
        for (int64_t d = 0; d < headDim; ++d) dot += double(query[d]) * key[d];
        scores[size_t(j)] = dot * scale;
        peak = std::max(peak, scores[size_t(j)]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= position; ++j) sum += std::exp(scores[size_t(j)] - peak);
      for (int64_t d = 0; d < headDim; ++d) {
        double acc = 0;
        for (int64_t j = 0; j <= position; ++j) {
          acc += std::exp(scores[size_t(j)] - peak) / sum * v[size_t((j * kvHeads + g) * headDim + d)];
        }
        out[size_t((t * qHeads + h) * headDim + d)] = float(acc);
      }
    }
  }
  return out;
}

}  // namespace phx::testing
