// Rotary position embedding, rotate-half form (HF Phi3): for i < d/2 with d the rotary dimension,
//   x'[i] = x[i] cos(p f_i) - x[i + d/2] sin(p f_i),  x'[i + d/2] = x[i + d/2] cos(p f_i) + x[i] sin(p f_i),
// f_i = theta^(-2i/d). cos/sin are computed once in double and stored as fp32 tables (a position's row of d/2).
#pragma once

#include <cstdint>
#include <vector>

namespace phx {

class RopeTable {
 public:
  // rotaryDim: even, the leading dimensions of each head that rotate (Phi-4: the whole head).
  RopeTable(int64_t rotaryDim, double theta, int64_t maxPositions);

  int64_t rotaryDim() const { return rotaryDim_; }
  int64_t maxPositions() const { return maxPositions_; }
  double theta() const { return theta_; }
  const float* cos(int64_t position) const { return cos_.data() + position * (rotaryDim_ / 2); }
  const float* sin(int64_t position) const { return sin_.data() + position * (rotaryDim_ / 2); }

 private:
  int64_t rotaryDim_;
  int64_t maxPositions_;
  double theta_;
  std::vector<float> cos_;  // [maxPositions, rotaryDim / 2]
  std::vector<float> sin_;
};

// In place on `heads` consecutive heads of headDim at the start of each of `rows` rows (`stride` floats apart):
// e.g. the Q and K heads at the front of a fused QKV row. positions[r] in [0, table.maxPositions()).
void applyRope(float* x, int64_t rows, int64_t stride, int64_t heads, int64_t headDim, const int64_t* positions,
               const RopeTable& table);

}  // namespace phx
