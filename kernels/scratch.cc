#include "kernels/scratch.h"

#include <array>

#include "kernels/aligned_buffer.h"

namespace phx {

void* threadScratch(ScratchSlot slot, size_t bytes) {
  thread_local std::array<AlignedBuffer, size_t(ScratchSlot::kCount)> buffers;
  AlignedBuffer& buffer = buffers[size_t(slot)];
  if (buffer.bytes() < bytes) buffer = AlignedBuffer(bytes + bytes / 4);  // grow with headroom
  return buffer.data();
}

}  // namespace phx
