// oneDNN matmuls on a PackedWeight, kept beside the kernels' own paths so that benchmarks measure both (the
// faster is what matmul() uses; docs/engine.md has the figures) and as the route INT8 (u8 x s8 brgemm) will take.
// The BF16 packed layout is oneDNN's BA16a64b2a, so oneDNN reads a PackedWeight in place, with no copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/packed_weight.h"

namespace phx {

class DnnlMatmul {
 public:
  enum class Kind {
    kBf16,       // activations rounded to BF16, brg:avx512_core_bf16 on the packed weight in place
    kF32Panels,  // weights widened to f32 a panel of 64-row blocks at a time (per thread), brg:avx512_core on it
  };

  // A primitive for exactly m rows (oneDNN's runtime-m matmul falls back to its reference code).
  DnnlMatmul(const PackedWeight& w, int64_t m, Kind kind);
  ~DnnlMatmul();
  DnnlMatmul(DnnlMatmul&&) noexcept;
  DnnlMatmul& operator=(DnnlMatmul&&) noexcept;

  // x: [m, w.cols()], y: [m, w.rows()], contiguous.
  void run(const float* x, float* y) const;
  // oneDNN's implementation name, e.g. "brg:avx512_core_bf16".
  std::string implName() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace phx
