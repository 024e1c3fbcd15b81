// Which CPU this is (CPUID vendor, family, model) and the BF16 matmul compute it gets, from a table rather than a
// timing probe: a probe of a few milliseconds flips under load, and two ranks of one tensor-parallel group (or two
// runs of one seeded request) would then compute different logits. Issue 11 has the failure it caused.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace phx {

enum class MatmulCompute { kBf16Dot, kF32Fma };

const char* matmulComputeName(MatmulCompute compute);
// "bf16dot" or "f32fma"; nullopt for anything else.
std::optional<MatmulCompute> parseMatmulCompute(std::string_view name);

struct CpuIdentity {
  std::string vendor;  // CPUID leaf 0: "AuthenticAMD", "GenuineIntel", ...
  int family = 0;      // display family (base + extended)
  int model = 0;       // display model (extended << 4 | base, where the vendor's rule says so)
  bool avx512Bf16 = false;
  std::string describe() const;  // "AuthenticAMD family 0x19 model 0x11"
};

CpuIdentity cpuIdentity();

// The compute the table gives this CPU, and the row that decided it (for logs, health and bench):
//   no AVX512_BF16                          -> f32fma (vdpbf16ps does not exist)
//   AuthenticAMD family >= 0x19 (Zen 4, 5)  -> bf16dot (measured 2x the f32 FMA rate, docs/engine.md)
//   GenuineIntel                            -> f32fma (vdpbf16ps at a quarter of the FMA rate on Sapphire/Emerald
//                                              Rapids without AMX, PLATFORM.md)
//   anything else with AVX512_BF16          -> f32fma (unmeasured: the path that is never slow by much)
struct ComputeChoice {
  MatmulCompute compute = MatmulCompute::kF32Fma;
  std::string reason;
};
ComputeChoice computeForCpu(const CpuIdentity& cpu);

}  // namespace phx
