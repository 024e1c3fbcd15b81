#include "tests/reference/safetensors_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/bf16.h"

namespace phx::reference {
namespace {

using nlohmann::json;

json readJsonFile(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throwInvalidCheckpoint(file.string() + ": cannot open (missing or unreadable)");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throwInvalidCheckpoint(file.string() + ": not valid JSON");
  return j;
}

int64_t bytesPerElement(StoredType type) { return type == StoredType::kBf16 ? 2 : 4; }

StoredType parseDtype(const json& dtype, const std::string& where) {
  if (dtype == "BF16") return StoredType::kBf16;
  if (dtype == "F32") return StoredType::kF32;
  throwInvalidCheckpoint(where + ": dtype " + dtype.dump() + " is not supported by the reference (BF16 or F32)");
}

std::vector<int64_t> parseShape(const json& shape, const std::string& where) {
  if (!shape.is_array()) throwInvalidCheckpoint(where + ": 'shape' must be an array, got " + shape.dump());
  std::vector<int64_t> dims;
  for (const json& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t(1) << 40)) {
      throwInvalidCheckpoint(where + ": shape entries must be non-negative integers, got " + shape.dump());
    }
    dims.push_back(d.get<int64_t>());
  }
  return dims;
}

}  // namespace

struct SafetensorsReader::MappedFile {
  std::filesystem::path path;
  void* base = nullptr;
  size_t size = 0;
  ~MappedFile() {
    if (base != nullptr) munmap(base, size);
  }
};

int64_t StoredTensor::elementCount() const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

void StoredTensor::rowToFloat(int64_t row, float* out) const {
  const int64_t n = cols();
  if (type == StoredType::kF32) {
    std::memcpy(out, data + row * n * 4, size_t(n) * 4);
    return;
  }
  uint16_t bits[256];  // bf16 values are copied out first: the mapped bytes need not be 2-byte aligned
  for (int64_t begin = 0; begin < n; begin += 256) {
    const int64_t count = std::min<int64_t>(256, n - begin);
    std::memcpy(bits, data + (row * n + begin) * 2, size_t(count) * 2);
    for (int64_t i = 0; i < count; ++i) out[begin + i] = bf16ToFloat(bits[i]);
  }
}

std::vector<float> StoredTensor::toFloat() const {
  std::vector<float> values(static_cast<size_t>(elementCount()));
  for (int64_t r = 0; r < rows() && !values.empty(); ++r) rowToFloat(r, values.data() + r * cols());
  return values;
}

namespace {

// madvise over the whole pages of a tensor's bytes, which may share its first and last page with neighbours:
// both advices only affect performance, never the values read.
void adviseTensor(const StoredTensor& tensor, int advice) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(tensor.data) & ~(page - 1);
  const uintptr_t end =
      reinterpret_cast<uintptr_t>(tensor.data) + uintptr_t(tensor.elementCount() * bytesPerElement(tensor.type));
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, advice);
}

}  // namespace

void StoredTensor::prefetch() const { adviseTensor(*this, MADV_WILLNEED); }

void StoredTensor::release() const {
  if (fileBacked) adviseTensor(*this, MADV_DONTNEED);  // on anonymous memory DONTNEED would zero the values
}

std::string shapeToString(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

SafetensorsReader::SafetensorsReader(const std::filesystem::path& modelDir) {
  const std::filesystem::path index = modelDir / "model.safetensors.index.json";
  if (!std::filesystem::exists(index)) {
    mapShard(modelDir / "model.safetensors");
    return;
  }
  const json j = readJsonFile(index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    throwInvalidCheckpoint(index.string() + ": expected an object with a 'weight_map' object");
  }
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) throwInvalidCheckpoint(index.string() + ": shard of '" + tensor + "' is not a string");
    shards.insert(shard.get<std::string>());
  }
  for (const std::string& shard : shards) mapShard(modelDir / shard);
  for (const auto& [tensor, shard] : j["weight_map"].items()) {
    if (!tensors_.count(tensor)) {
      throwInvalidCheckpoint(index.string() + ": tensor '" + tensor + "' is not in its shard " + shard.dump());
    }
  }
}

SafetensorsReader::~SafetensorsReader() = default;

// Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]}}, then
// the data; offsets are relative to the data's start.
void SafetensorsReader::mapShard(const std::filesystem::path& file) {
  const std::string where = file.string();
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throwInvalidCheckpoint(where + ": cannot open (missing or unreadable)");
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throwInvalidCheckpoint(where + ": not a regular file");
  }
  auto mapped = std::make_unique<MappedFile>();
  mapped->path = file;
  mapped->size = size_t(st.st_size);
  if (mapped->size < 8) {
    close(fd);
    throwInvalidCheckpoint(where + ": " + std::to_string(mapped->size) + " bytes, too short for a header length");
  }
  void* base = mmap(nullptr, mapped->size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (base == MAP_FAILED) throwIoError(where + ": mmap failed");
  mapped->base = base;
  const auto* bytes = static_cast<const std::byte*>(base);

  uint64_t headerSize = 0;
  std::memcpy(&headerSize, bytes, 8);  // little-endian, as on every machine we run on
  if (headerSize > mapped->size - 8) {
    throwInvalidCheckpoint(where + ": header length " + std::to_string(headerSize) + " runs past the file's " +
                           std::to_string(mapped->size) + " bytes");
  }
  const char* headerText = reinterpret_cast<const char*>(bytes + 8);
  const json header = json::parse(headerText, headerText + headerSize, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) throwInvalidCheckpoint(where + ": header is not a JSON object");

  const uint64_t dataStart = 8 + headerSize;
  const uint64_t dataSize = mapped->size - dataStart;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string tensorWhere = where + ": tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
        !entry.contains("data_offsets")) {
      throwInvalidCheckpoint(tensorWhere + ": expected {dtype, shape, data_offsets}");
    }
    StoredTensor tensor{name, parseDtype(entry["dtype"], tensorWhere), parseShape(entry["shape"], tensorWhere)};
    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned() || offsets[0].get<uint64_t>() > offsets[1].get<uint64_t>()) {
      throwInvalidCheckpoint(tensorWhere + ": data_offsets must be [begin, end] with begin <= end, got " +
                             offsets.dump());
    }
    const uint64_t begin = offsets[0], end = offsets[1];
    if (end > dataSize) {
      throwInvalidCheckpoint(tensorWhere + ": data_offsets end " + std::to_string(end) + " is past the " +
                             std::to_string(dataSize) + " data bytes (truncated shard?)");
    }
    const uint64_t expected = uint64_t(tensor.elementCount() * bytesPerElement(tensor.type));
    if (end - begin != expected) {
      throwInvalidCheckpoint(tensorWhere + ": " + std::to_string(end - begin) + " data bytes, shape " +
                             shapeToString(tensor.shape) + " needs " + std::to_string(expected));
    }
    tensor.data = bytes + dataStart + begin;
    tensor.fileBacked = true;
    if (!tensors_.emplace(name, std::move(tensor)).second) {
      throwInvalidCheckpoint(tensorWhere + ": appears in more than one shard");
    }
  }
  files_.push_back(std::move(mapped));
}

uint64_t SafetensorsReader::totalBytes() const {
  uint64_t total = 0;
  for (const auto& [name, tensor] : tensors_) total += uint64_t(tensor.elementCount() * bytesPerElement(tensor.type));
  return total;
}

const StoredTensor& SafetensorsReader::tensor(const std::string& name, const std::vector<int64_t>& shape) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) throwInvalidCheckpoint("tensor '" + name + "' is missing from the checkpoint");
  if (it->second.shape != shape) {
    throwInvalidCheckpoint("tensor '" + name + "' has shape " + shapeToString(it->second.shape) + ", expected " +
                           shapeToString(shape));
  }
  return it->second;
}

}  // namespace phx::reference
