#include "kernels/embedding.h"

#include <cstring>

#include "kernels/kernel_check.h"
#include "kernels/simd.h"
#include "kernels/threading.h"
#include "kernels/vec_math.h"

namespace phx {

void embeddingLookup(const uint16_t* table, int64_t tableStride, int64_t rowBegin, int64_t rowEnd, int64_t hidden,
                     const int32_t* ids, int64_t count, float* out) {
  PHX_KERNEL_REQUIRE(hidden > 0 && count >= 0 && rowBegin >= 0 && rowEnd >= rowBegin, "embeddingLookup: bad shape: ",
                     "hidden ", hidden, ", count ", count, ", rows [", rowBegin, ", ", rowEnd, ")");
  PHX_KERNEL_REQUIRE(tableStride >= hidden, "embeddingLookup: table stride ", tableStride, " is below hidden ", hidden);
  PHX_KERNEL_REQUIRE(count == 0 || (ids != nullptr && out != nullptr && (table != nullptr || rowEnd == rowBegin)),
                     "embeddingLookup: null buffer");
  parallelFor(count, 4, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      float* dst = out + t * hidden;
      int64_t id = ids[t];
      if (id < rowBegin || id >= rowEnd) {
        std::memset(dst, 0, size_t(hidden) * sizeof(float));
        continue;
      }
      const uint16_t* row = table + (id - rowBegin) * tableStride;
      for (int64_t c = 0; c < hidden; c += 16) {
        __mmask16 mask = vec::firstLanes(hidden - c);
        _mm512_mask_storeu_ps(dst + c, mask, vec::maskLoadBf16(mask, row + c));
      }
    }
  });
}

}  // namespace phx
