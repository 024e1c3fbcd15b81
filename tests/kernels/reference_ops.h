// Plain scalar references for the kernel tests: straight loops in double precision from the definitions
// (HF Phi3 modules for RMSNorm, RoPE, the MLP and attention), sharing no code with kernels/.
#pragma once

#include <cstdint>
#include <vector>

namespace phx::testing {

// y[m, n] = x[m, k] · w[n, k]ᵀ, all dense row-major.
std::vector<float> referenceMatmul(const std::vector<float>& x, const std::vector<float>& w, int64_t m, int64_t n,
                                   int64_t k);

// y = x / sqrt(mean(x^2) + eps) * weight, per row of n.
std::vector<float> referenceRmsNorm(const std::vector<float>& x, const std::vector<float>& weight, int64_t rows,
                                    int64_t n, double eps);

// HF rotate-half RoPE on `heads` heads of headDim in each row of `stride` floats, positions per row.
void referenceRope(std::vector<float>& x, int64_t rows, int64_t stride, int64_t heads, int64_t headDim,
                   const std::vector<int64_t>& positions, double theta);

// out[m, inter] = silu(gate) * up, gateUp rows = [gate | up].
std::vector<float> referenceSwiglu(const std::vector<float>& gateUp, int64_t rows, int64_t inter);

// log-softmax of one row.
std::vector<double> referenceLogSoftmax(const std::vector<float>& logits);

// Dense causal GQA for one sequence: q [tokens, qHeads * d], k/v [context, kvHeads * d] for positions
// 0..context-1; the new tokens are the last `tokens` positions. Query head h reads KV head kvHeadOf[h].
std::vector<float> referenceAttention(const std::vector<float>& q, const std::vector<float>& k,
                                      const std::vector<float>& v, int64_t tokens, int64_t context, int64_t qHeads,
                                      int64_t kvHeads, int64_t headDim, const std::vector<int32_t>& kvHeadOf,
                                      double scale);

}  // namespace phx::testing
