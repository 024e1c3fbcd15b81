// The reference's own minimal safetensors reader. It shares nothing with model/safetensors.* on purpose: a bug in
// the production loader must not be able to hide by being shared with the implementation that checks it. Shards are
// mapped read-only and tensors are converted to float on access, so a 29 GB checkpoint is never held as fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace phx::reference {

enum class StoredType { kBf16, kF32 };

// A row-major tensor inside a mapped shard (or any caller-owned buffer, for tests).
struct StoredTensor {
  std::string name;
  StoredType type = StoredType::kBf16;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  bool fileBacked = false;  // data lies in a read-only file mapping (only then may release() drop its pages)

  int64_t elementCount() const;
  int64_t rows() const { return shape.size() < 2 ? 1 : shape.front(); }  // a vector is one row
  int64_t cols() const { return shape.size() < 2 ? elementCount() : elementCount() / rows(); }
  // out: [cols()], row `row` as float.
  void rowToFloat(int64_t row, float* out) const;
  std::vector<float> toFloat() const;
  // Asks the kernel to read the bytes ahead (they are about to be used once, in order).
  void prefetch() const;
  // Drops the pages from this process's mapping once used (they stay in the page cache), so streaming a model
  // bigger than memory keeps the RSS at about one layer rather than the whole checkpoint. No-op unless fileBacked.
  void release() const;
};

std::string shapeToString(const std::vector<int64_t>& shape);

class SafetensorsReader {
 public:
  // Reads model.safetensors.index.json when present (sharded, as Hugging Face writes big models), otherwise
  // model.safetensors. Throws phx::Error (invalid checkpoint) naming the file and what is wrong.
  explicit SafetensorsReader(const std::filesystem::path& modelDir);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  // The tensor, checked to have exactly `shape`; throws naming the tensor and both shapes otherwise.
  const StoredTensor& tensor(const std::string& name, const std::vector<int64_t>& shape) const;
  size_t tensorCount() const { return tensors_.size(); }
  uint64_t totalBytes() const;  // of all tensor data

 private:
  struct MappedFile;
  void mapShard(const std::filesystem::path& file);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, StoredTensor> tensors_;
};

}  // namespace phx::reference
