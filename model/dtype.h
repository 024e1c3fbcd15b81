// Element types as safetensors names them ("BF16", "F32", ...). Phalanx computes on BF16, F32 and I8 weights;
// the others are recognised so a checkpoint holding them is described, not misread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace phx {

enum class DType { kBool, kU8, kI8, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64 };

struct DTypeInfo {
  DType dtype;
  std::string_view name;  // safetensors spelling
  int64_t bytes;          // per element
};

inline constexpr DTypeInfo kDTypes[] = {
    {DType::kBool, "BOOL", 1}, {DType::kU8, "U8", 1},    {DType::kI8, "I8", 1},   {DType::kI16, "I16", 2},
    {DType::kU16, "U16", 2},   {DType::kF16, "F16", 2},  {DType::kBF16, "BF16", 2}, {DType::kI32, "I32", 4},
    {DType::kU32, "U32", 4},   {DType::kF32, "F32", 4},  {DType::kF64, "F64", 8}, {DType::kI64, "I64", 8},
    {DType::kU64, "U64", 8},
};

constexpr const DTypeInfo& dtypeInfo(DType dtype) {
  for (const auto& info : kDTypes) {
    if (info.dtype == dtype) return info;
  }
  return kDTypes[0];  // unreachable: every enumerator is in the table
}

constexpr std::string_view dtypeName(DType dtype) { return dtypeInfo(dtype).name; }
constexpr int64_t dtypeBytes(DType dtype) { return dtypeInfo(dtype).bytes; }

constexpr std::optional<DType> parseDType(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

}  // namespace phx
