#include "kernels/matmul_dnnl.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "kernels/kernel_check.h"
#include "kernels/matmul_paths.h"
#include "kernels/scratch.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx {

using dnnl::memory;
using Tag = memory::format_tag;
using Type = memory::data_type;

struct DnnlMatmul::State {
  const PackedWeight* w = nullptr;
  int64_t m = 0;
  Kind kind = Kind::kBf16;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::matmul::primitive_desc desc;  // kF32Panels: one full 64-row block
  dnnl::matmul::primitive_desc tailDesc;  // kF32Panels: the last block when rows % 64 != 0
  dnnl::matmul primitive;
  dnnl::matmul tailPrimitive;
};

namespace {

// Each thread runs its own primitive calls (oneDNN runs single-threaded inside an OpenMP region) on its own
// stream and scratchpad. The destination is contiguous: oneDNN 2.6's brgemm refuses a strided one (ref:any).
dnnl::matmul::primitive_desc makeDesc(const dnnl::engine& engine, int64_t m, int64_t k, int64_t n, Type type,
                                      Tag weightTag, int64_t ldx) {
  memory::desc src({m, k}, type, memory::dims{ldx, 1});
  memory::desc weights({k, n}, type, weightTag);
  memory::desc dst({m, n}, Type::f32, memory::dims{n, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, engine);
}

void execute(const dnnl::matmul& primitive, const dnnl::matmul::primitive_desc& desc, const dnnl::engine& engine,
             const void* x, const void* w, float* y) {
  dnnl::stream stream(engine);
  size_t scratchBytes = desc.scratchpad_desc().get_size();
  void* scratch = threadScratch(ScratchSlot::kLibrary, scratchBytes > 0 ? scratchBytes : 64);
  memory src(desc.src_desc(), engine, const_cast<void*>(x));
  memory weights(desc.weights_desc(), engine, const_cast<void*>(w));
  memory dst(desc.dst_desc(), engine, y);
  memory pad(desc.scratchpad_desc(), engine, scratch);
  primitive.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst},
                             {DNNL_ARG_SCRATCHPAD, pad}});
  stream.wait();
}

// One packed BF16 block -> [paddedCols][64] f32 (oneDNN's BA16a64b for a K x 64 weight).
void widenBlock(const uint16_t* block, int64_t pairs, float* out) {
  for (int64_t p = 0; p < pairs; ++p) {
    for (int j = 0; j < 4; ++j) {
      __m512i raw = _mm512_load_si512(block + p * 128 + 32 * j);
      _mm512_store_ps(out + (2 * p) * 64 + 16 * j, vec::widenLowBf16(raw));
      _mm512_store_ps(out + (2 * p + 1) * 64 + 16 * j, vec::widenHighBf16(raw));
    }
  }
}

}  // namespace

DnnlMatmul::DnnlMatmul(const PackedWeight& w, int64_t m, Kind kind) : state_(std::make_unique<State>()) {
  PHX_KERNEL_REQUIRE(w.type() == WeightType::kBf16 && m > 0, "DnnlMatmul: needs a BF16 weight and m > 0");
  State& s = *state_;
  s.w = &w;
  s.m = m;
  s.kind = kind;
  if (kind == Kind::kBf16) {
    s.desc = makeDesc(s.engine, m, w.cols(), w.rows(), Type::bf16, Tag::BA16a64b2a, w.paddedCols());
  } else {
    int64_t tail = w.rows() % kPackedRowBlock;
    s.desc = makeDesc(s.engine, m, w.cols(), kPackedRowBlock, Type::f32, Tag::BA16a64b, w.cols());
    if (tail != 0) {
      s.tailDesc = makeDesc(s.engine, m, w.cols(), tail, Type::f32, Tag::BA16a64b, w.cols());
      s.tailPrimitive = dnnl::matmul(s.tailDesc);
    }
  }
  s.primitive = dnnl::matmul(s.desc);
}

DnnlMatmul::~DnnlMatmul() = default;
DnnlMatmul::DnnlMatmul(DnnlMatmul&&) noexcept = default;
DnnlMatmul& DnnlMatmul::operator=(DnnlMatmul&&) noexcept = default;

std::string DnnlMatmul::implName() const { return state_->desc.impl_info_str(); }

void DnnlMatmul::run(const float* x, float* y) const {
  const State& s = *state_;
  const PackedWeight& w = *s.w;
  if (s.kind == Kind::kBf16) {
    auto* xBf16 = static_cast<uint16_t*>(threadScratch(ScratchSlot::kActivations, size_t(s.m * w.paddedCols()) * 2));
    matmul_detail::roundRowsToBf16(x, w.cols(), s.m, w.cols(), w.paddedCols(), xBf16);
    execute(s.primitive, s.desc, s.engine, xBf16, w.data(), y);
    return;
  }
  parallelFor(w.rowBlocks(), 1, [&](int64_t begin, int64_t end) {
    auto* panel = static_cast<float*>(threadScratch(ScratchSlot::kWeightPanel, size_t(w.paddedCols()) * 64 * 4));
    auto* panelOut = static_cast<float*>(threadScratch(ScratchSlot::kOutput, size_t(s.m) * 64 * 4));
    for (int64_t b = begin; b < end; ++b) {
      widenBlock(w.bf16Block(b), w.paddedCols() / 2, panel);
      int64_t cols = std::min(kPackedRowBlock, w.rows() - b * kPackedRowBlock);
      execute(cols < kPackedRowBlock ? s.tailPrimitive : s.primitive, cols < kPackedRowBlock ? s.tailDesc : s.desc,
              s.engine, x, panel, panelOut);
      for (int64_t i = 0; i < s.m; ++i) {
        std::memcpy(y + i * w.rows() + b * kPackedRowBlock, panelOut + i * cols, size_t(cols) * sizeof(float));
      }
    }
  });
}

}  // namespace phx
