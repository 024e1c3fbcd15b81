#include "kernels/cpu_identity.h"

#include <cpuid.h>

#include <cstdio>
#include <cstring>

#include "kernels/roofline.h"

namespace phx {

const char* matmulComputeName(MatmulCompute compute) {
  return compute == MatmulCompute::kBf16Dot ? "bf16dot" : "f32fma";
}

std::optional<MatmulCompute> parseMatmulCompute(std::string_view name) {
  if (name == "bf16dot") return MatmulCompute::kBf16Dot;
  if (name == "f32fma") return MatmulCompute::kF32Fma;
  return std::nullopt;
}

std::string CpuIdentity::describe() const {
  char text[96];
  std::snprintf(text, sizeof(text), "%s family 0x%x model 0x%x", vendor.c_str(), unsigned(family), unsigned(model));
  return text;
}

CpuIdentity cpuIdentity() {
  CpuIdentity cpu;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return cpu;
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);  // the vendor string is EBX, EDX, ECX in that order
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  cpu.vendor = vendor;
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const int baseFamily = int((eax >> 8) & 0xf);
  const int baseModel = int((eax >> 4) & 0xf);
  cpu.family = baseFamily == 0xf ? baseFamily + int((eax >> 20) & 0xff) : baseFamily;
  cpu.model = (baseFamily == 0xf || baseFamily == 0x6) ? (int((eax >> 16) & 0xf) << 4) | baseModel : baseModel;
  cpu.avx512Bf16 = cpuFeatures().avx512Bf16;
  return cpu;
}

ComputeChoice computeForCpu(const CpuIdentity& cpu) {
  if (!cpu.avx512Bf16) return {MatmulCompute::kF32Fma, "no AVX512_BF16"};
  if (cpu.vendor == "AuthenticAMD" && cpu.family >= 0x19) {
    return {MatmulCompute::kBf16Dot, "AMD family >= 0x19 (Zen 4 and later): vdpbf16ps at twice the f32 FMA rate"};
  }
  if (cpu.vendor == "GenuineIntel") {
    return {MatmulCompute::kF32Fma, "Intel: vdpbf16ps at a quarter of the f32 FMA rate without AMX"};
  }
  return {MatmulCompute::kF32Fma, "an unlisted CPU with AVX512_BF16: the f32 FMA path"};
}

}  // namespace phx
