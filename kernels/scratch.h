// Per-thread scratch memory that grows and is kept between calls, so hot kernels never allocate. Each slot is an
// independent buffer; a kernel uses distinct slots for buffers that are live at the same time.
#pragma once

#include <cstddef>

namespace phx {

enum class ScratchSlot : int {
  kActivations = 0,  // matmul: activations converted or padded for the kernels
  kWeightPanel = 1,  // matmul: a weight chunk widened to f32
  kOutput = 2,       // matmul: a panel's output before it is copied to a strided destination
  kAttention = 3,    // attention: per-thread partial outputs
  kLibrary = 4,      // oneDNN's scratchpad
  kCount = 5,
};

// At least `bytes` of 64-byte aligned memory owned by the calling thread; contents undefined.
void* threadScratch(ScratchSlot slot, size_t bytes);

}  // namespace phx
