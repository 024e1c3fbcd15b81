// One .safetensors file: an 8-byte little-endian header length N, N bytes of JSON header
//   {"name": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
// and then the tensors' bytes, data_offsets counting from the end of the header. Parsing validates everything a
// later read relies on, so a TensorInfo that comes out of here can be read without further checks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/dtype.h"
#include "model/mapped_file.h"

namespace phx {

// Where one tensor's bytes are: `dataOffset` counts from the start of `file`.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  std::filesystem::path file;
  uint64_t dataOffset = 0;
  uint64_t byteSize = 0;

  int64_t elementCount() const;
};

struct SafetensorsHeader {
  uint64_t headerLength = 0;  // N: the JSON starts at byte 8, the data at byte 8 + N
  std::vector<TensorInfo> tensors;  // in data order (ascending dataOffset)
  std::map<std::string, std::string> metadata;  // "__metadata__", e.g. {"format": "pt"}
};

// Headers longer than this are refused before any is read: Phi-4's largest is about 9 KB, and a corrupt length
// field must not make the loader allocate gigabytes.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

// Parses the header JSON of a file of `fileSize` bytes whose header is `headerLength` bytes long. `file` names the
// file in errors and in the TensorInfos. Throws phx::Error kInvalidCheckpoint naming the file (and the tensor) for
// malformed JSON, a missing or mistyped field, an unknown dtype, a shape entry that is not a non-negative integer,
// a byte size that is not elements * dtype size, data out of the file's bounds or overlapping another tensor's.
SafetensorsHeader parseSafetensorsHeader(std::string_view headerJson, uint64_t headerLength, uint64_t fileSize,
                                         const std::filesystem::path& file);

// Reads and parses the header of an open file; adds the checks on the length field (file shorter than 8 bytes,
// header length beyond the file or above kMaxSafetensorsHeaderBytes).
SafetensorsHeader readSafetensorsHeader(const MappedFile& file);

}  // namespace phx
