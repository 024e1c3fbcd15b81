#include "model/safetensors.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/json_preview.h"

namespace phx {
namespace {

using nlohmann::json;

constexpr uint64_t kLengthFieldBytes = 8;

std::string quoted(const std::string& name) { return "'" + name + "'"; }

// A JSON value that must be an integer in [0, INT64_MAX]: nlohmann parses non-negative integer literals as unsigned,
// negative ones as signed, and anything with a fraction or exponent as a float.
bool isNonNegativeInt64(const json& value) {
  return value.is_number_unsigned() && value.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max());
}

std::vector<int64_t> parseShape(const json& entry, const std::string& where) {
  if (!entry.contains("shape") || !entry["shape"].is_array()) {
    throwInvalidCheckpoint(where + ": 'shape' must be an array of non-negative integers, got " +
                           (entry.contains("shape") ? jsonPreview(entry["shape"]) : std::string("nothing")));
  }
  std::vector<int64_t> shape;
  for (const json& dim : entry["shape"]) {
    if (!isNonNegativeInt64(dim)) {
      throwInvalidCheckpoint(where + ": shape entries must be non-negative integers, got " + jsonPreview(entry["shape"]));
    }
    shape.push_back(dim.get<int64_t>());
  }
  return shape;
}

// elements * dtype size, or an error when the product does not fit in 64 bits.
uint64_t expectedByteSize(const std::vector<int64_t>& shape, DType dtype, const std::string& where) {
  uint64_t bytes = uint64_t(dtypeBytes(dtype));
  for (int64_t dim : shape) {
    if (__builtin_mul_overflow(bytes, uint64_t(dim), &bytes)) {
      throwInvalidCheckpoint(where + ": shape overflows 64-bit byte counts");
    }
  }
  return bytes;
}

TensorInfo parseEntry(const std::string& name, const json& entry, uint64_t dataStart, uint64_t dataSize,
                      const std::filesystem::path& file) {
  const std::string where = file.string() + ": tensor " + quoted(name);
  if (!entry.is_object()) throwInvalidCheckpoint(where + ": expected an object, got " + jsonPreview(entry));
  if (!entry.contains("dtype") || !entry["dtype"].is_string()) {
    throwInvalidCheckpoint(where + ": 'dtype' must be a string such as \"BF16\"");
  }
  const std::string dtypeText = entry["dtype"].get<std::string>();
  const auto dtype = parseDType(dtypeText);
  if (!dtype) throwInvalidCheckpoint(where + ": unknown dtype \"" + dtypeText + "\"");

  TensorInfo info;
  info.name = name;
  info.dtype = *dtype;
  info.shape = parseShape(entry, where);
  info.file = file;

  const json* offsets = entry.contains("data_offsets") ? &entry["data_offsets"] : nullptr;
  if (!offsets || !offsets->is_array() || offsets->size() != 2 || !isNonNegativeInt64((*offsets)[0]) ||
      !isNonNegativeInt64((*offsets)[1])) {
    throwInvalidCheckpoint(where + ": 'data_offsets' must be [begin, end] of non-negative integers, got " +
                           (offsets ? jsonPreview(*offsets) : std::string("nothing")));
  }
  const uint64_t begin = (*offsets)[0].get<uint64_t>();
  const uint64_t end = (*offsets)[1].get<uint64_t>();
  if (begin > end) throwInvalidCheckpoint(where + ": data_offsets " + offsets->dump() + " end before they begin");
  const uint64_t expected = expectedByteSize(info.shape, info.dtype, where);
  if (end - begin != expected) {
    throwInvalidCheckpoint(where + ": data_offsets " + offsets->dump() + " span " + std::to_string(end - begin) +
                           " bytes but shape " + json(info.shape).dump() + " of " + dtypeText + " needs " +
                           std::to_string(expected));
  }
  if (end > dataSize) {
    throwInvalidCheckpoint(where + ": data_offsets " + offsets->dump() + " lie outside the file's " +
                           std::to_string(dataSize) + " data bytes (truncated file or corrupt offsets)");
  }
  info.dataOffset = dataStart + begin;
  info.byteSize = expected;
  return info;
}

std::map<std::string, std::string> parseMetadata(const json& value, const std::filesystem::path& file) {
  if (!value.is_object()) {
    throwInvalidCheckpoint(file.string() + ": '__metadata__' must be an object of strings, got " + jsonPreview(value));
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      throwInvalidCheckpoint(file.string() + ": '__metadata__' value of " + quoted(key) + " must be a string, got " +
                             jsonPreview(item));
    }
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

// Tensors sorted by offset must not share a byte. Empty tensors occupy nothing and cannot overlap.
void checkNoOverlap(std::vector<TensorInfo>& tensors, const std::filesystem::path& file) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.dataOffset != b.dataOffset ? a.dataOffset < b.dataOffset : a.byteSize < b.byteSize;
  });
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& tensor : tensors) {
    if (tensor.byteSize == 0) continue;
    if (previous && tensor.dataOffset < previous->dataOffset + previous->byteSize) {
      throwInvalidCheckpoint(file.string() + ": data of tensor " + quoted(tensor.name) + " overlaps tensor " +
                             quoted(previous->name));
    }
    previous = &tensor;
  }
}

}  // namespace

int64_t TensorInfo::elementCount() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

SafetensorsHeader parseSafetensorsHeader(std::string_view headerJson, uint64_t headerLength, uint64_t fileSize,
                                         const std::filesystem::path& file) {
  const json header = json::parse(headerJson.begin(), headerJson.end(), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) throwInvalidCheckpoint(file.string() + ": header is not valid JSON");
  if (!header.is_object()) throwInvalidCheckpoint(file.string() + ": header must be a JSON object");

  SafetensorsHeader result;
  result.headerLength = headerLength;
  const uint64_t dataStart = kLengthFieldBytes + headerLength;
  const uint64_t dataSize = fileSize - dataStart;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      result.metadata = parseMetadata(entry, file);
    } else {
      result.tensors.push_back(parseEntry(name, entry, dataStart, dataSize, file));
    }
  }
  checkNoOverlap(result.tensors, file);
  return result;
}

SafetensorsHeader readSafetensorsHeader(const MappedFile& file) {
  const std::string name = file.path().string();
  if (file.size() < kLengthFieldBytes) {
    throwInvalidCheckpoint(name + ": truncated: " + std::to_string(file.size()) +
                           " bytes, shorter than the 8-byte header length field");
  }
  unsigned char field[kLengthFieldBytes];
  file.read(0, std::as_writable_bytes(std::span(field)));
  uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i) headerLength = (headerLength << 8) | field[i];  // little-endian
  if (headerLength > kMaxSafetensorsHeaderBytes) {
    throwInvalidCheckpoint(name + ": header length " + std::to_string(headerLength) + " exceeds the " +
                           std::to_string(kMaxSafetensorsHeaderBytes) + "-byte limit (corrupt length field)");
  }
  if (headerLength > file.size() - kLengthFieldBytes) {
    throwInvalidCheckpoint(name + ": header length " + std::to_string(headerLength) + " runs beyond the file (" +
                           std::to_string(file.size()) + " bytes): truncated or corrupt");
  }
  std::string text(headerLength, '\0');
  file.read(kLengthFieldBytes, std::as_writable_bytes(std::span(text)));
  return parseSafetensorsHeader(text, headerLength, file.size(), file.path());
}

}  // namespace phx
