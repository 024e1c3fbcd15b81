// A streaming safetensors writer. The header is computed up front from the tensor list (names, dtypes, shapes give
// every offset), then tensor bytes are appended chunk by chunk in that order: a tensor is never held in memory whole.
// The bytes match what the safetensors library writes: compact JSON with "__metadata__" first, each tensor as
// {"dtype","shape","data_offsets"}, the JSON padded with spaces to a multiple of 8 bytes, data contiguous.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace phx {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  uint64_t byteSize() const;
};

// The file's first bytes: 8-byte little-endian header length, then the padded JSON. Tensors are laid out in the
// given order with no gaps, offsets relative to the end of the header.
std::string safetensorsHeader(const std::vector<SafetensorsEntry>& entries,
                              const std::map<std::string, std::string>& metadata);

class SafetensorsWriter {
 public:
  // Creates (truncates) `path` and writes the header. Throws phx::Error (I/O) naming the file.
  SafetensorsWriter(std::filesystem::path path, std::vector<SafetensorsEntry> entries,
                    const std::map<std::string, std::string>& metadata);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Appends the next `bytes` of tensor data (any chunking; tensors follow each other in entry order).
  void append(const void* data, size_t bytes);
  // Checks every tensor byte was written and closes the file. Throws phx::Error (I/O) on a short or failed write.
  void finish();

  uint64_t payloadBytes() const { return payloadBytes_; }
  uint64_t written() const { return written_; }

 private:
  std::filesystem::path path_;
  std::vector<SafetensorsEntry> entries_;
  uint64_t payloadBytes_ = 0;
  uint64_t written_ = 0;
  int fd_ = -1;
};

}  // namespace phx
