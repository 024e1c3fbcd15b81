#include "model/checkpoint.h"

#include <optional>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/json_preview.h"
#include "partition/tensor_table.h"

namespace phx {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigName = "config.json";
constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleFileName = "model.safetensors";
// An index is a few tens of KB; this bounds what a corrupt one can make the loader allocate.
constexpr uint64_t kMaxIndexBytes = 100ull << 20;

std::string quoted(const std::string& name) { return "'" + name + "'"; }

std::string shapeText(const std::vector<int64_t>& shape) { return json(shape).dump(); }

// Which shard holds each tensor, as the index says (or, without an index, the one file).
struct Layout {
  fs::path source;  // the file that decided the layout, for messages
  std::map<std::string, std::string> weightMap;  // tensor -> shard file name; empty for a single file
  std::set<std::string> shardNames;
  std::optional<double> totalSize;
};

std::string shardName(const json& value, const std::string& tensor, const fs::path& index) {
  const std::string name = value.is_string() ? value.get<std::string>() : std::string();
  // A shard must be a plain file name inside the directory: an index must not reach files elsewhere.
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throwInvalidCheckpoint(index.string() + ": weight_map entry for " + quoted(tensor) + " must name a file in " +
                           "the directory, got " + jsonPreview(value));
  }
  return name;
}

Layout readIndex(const fs::path& indexPath) {
  const MappedFile file = MappedFile::open(indexPath);
  if (file.size() > kMaxIndexBytes) {
    throwInvalidCheckpoint(indexPath.string() + ": " + std::to_string(file.size()) +
                           " bytes is too large for an index");
  }
  std::string text(file.size(), '\0');
  file.read(0, std::as_writable_bytes(std::span(text)));
  const json index = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded()) throwInvalidCheckpoint(indexPath.string() + ": not valid JSON");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throwInvalidCheckpoint(indexPath.string() + ": expected an object with a \"weight_map\" object");
  }
  Layout layout;
  layout.source = indexPath;
  for (const auto& [tensor, value] : index["weight_map"].items()) {
    layout.weightMap[tensor] = shardName(value, tensor, indexPath);
    layout.shardNames.insert(layout.weightMap[tensor]);
  }
  if (index.contains("metadata") && index["metadata"].is_object() && index["metadata"].contains("total_size") &&
      index["metadata"]["total_size"].is_number()) {
    layout.totalSize = index["metadata"]["total_size"].get<double>();
  }
  return layout;
}

Layout readLayout(const fs::path& dir) {
  // Like transformers' from_pretrained: a single model.safetensors wins over an index.
  std::error_code ec;
  if (fs::exists(dir / kSingleFileName, ec)) {
    Layout layout;
    layout.source = dir / kSingleFileName;
    layout.shardNames.insert(kSingleFileName);
    return layout;
  }
  if (fs::exists(dir / kIndexName, ec)) return readIndex(dir / kIndexName);
  throwInvalidCheckpoint(dir.string() + ": neither " + kIndexName + " nor " + kSingleFileName +
                         " is present: not a safetensors checkpoint");
}

// Every tensor of every shard, keyed by name, after checking that the shards and the index agree.
std::map<std::string, TensorInfo> collectTensors(const Layout& layout,
                                                 const std::map<std::string, SafetensorsHeader>& headers) {
  std::map<std::string, TensorInfo> found;
  for (const auto& [shard, header] : headers) {
    for (const TensorInfo& tensor : header.tensors) {
      const bool listed = layout.weightMap.empty() ||
                          (layout.weightMap.count(tensor.name) && layout.weightMap.at(tensor.name) == shard);
      if (!listed) {
        throwInvalidCheckpoint(tensor.file.string() + ": holds tensor " + quoted(tensor.name) + ", which " +
                               layout.source.string() + " does not map to this shard (stale index or shard?)");
      }
      found.emplace(tensor.name, tensor);
    }
  }
  for (const auto& [tensor, shard] : layout.weightMap) {
    if (!found.count(tensor)) {
      throwInvalidCheckpoint(layout.source.string() + ": maps tensor " + quoted(tensor) + " to " + shard +
                             ", but that shard's header does not hold it");
    }
  }
  return found;
}

bool isComputableDType(DType dtype) { return dtype == DType::kBF16 || dtype == DType::kF16 || dtype == DType::kF32; }

// Orders the tensors as the model uses them and checks them against what config.json describes.
std::vector<TensorInfo> matchConfig(std::map<std::string, TensorInfo> found, const ModelConfig& config,
                                    const Layout& layout, const fs::path& configPath,
                                    std::vector<std::string>& warnings) {
  std::vector<TensorInfo> ordered;
  for (const TensorSpec& spec : expectedTensors(config)) {
    auto it = found.find(spec.name);
    if (it == found.end()) {
      throwInvalidCheckpoint(layout.source.string() + ": tensor " + quoted(spec.name) + " is missing (" +
                             configPath.string() + " describes a model that needs it, shape " +
                             shapeText(spec.shape) + ")");
    }
    const TensorInfo& tensor = it->second;
    if (tensor.shape != spec.shape) {
      throwInvalidCheckpoint(tensor.file.string() + ": tensor " + quoted(spec.name) + " has shape " +
                             shapeText(tensor.shape) + " but " + configPath.string() + " implies " +
                             shapeText(spec.shape));
    }
    // An INT8 matrix (`phalanx quantize`, docs/int8.md) brings its per-row F32 scales as "<name>_scale" [rows].
    const bool quantized = tensor.dtype == DType::kI8 && spec.shape.size() == 2;
    if (!quantized && !isComputableDType(tensor.dtype)) {
      throwInvalidCheckpoint(tensor.file.string() + ": tensor " + quoted(spec.name) + " has dtype " +
                             std::string(dtypeName(tensor.dtype)) + "; weights must be BF16, F16 or F32 (or I8 " +
                             "matrices with F32 \"_scale\" rows)");
    }
    ordered.push_back(tensor);
    found.erase(it);  // `tensor` dangles from here
    if (quantized) {
      const auto scale = found.find(spec.name + "_scale");
      if (scale == found.end() || scale->second.dtype != DType::kF32 ||
          scale->second.shape != std::vector<int64_t>{spec.shape[0]}) {
        throwInvalidCheckpoint(ordered.back().file.string() + ": INT8 tensor " + quoted(spec.name) +
                               " needs an F32 tensor " + quoted(spec.name + "_scale") + " of shape [" +
                               std::to_string(spec.shape[0]) + "]");
      }
      ordered.push_back(scale->second);
      found.erase(scale);
    }
  }
  // What is left is not part of the model config.json describes. A stray tensor usually means the two disagree
  // (more layers, a bias, a tied head): computing without it would be silently wrong, so it is an error. The one
  // exception is the rotary inv_freq buffer older transformers versions saved: it is recomputed from rope_theta.
  for (const auto& [name, tensor] : found) {
    const std::string buffer = ".rotary_emb.inv_freq";
    if (name.size() > buffer.size() && name.compare(name.size() - buffer.size(), buffer.size(), buffer) == 0) {
      warnings.push_back(tensor.file.string() + ": ignoring buffer " + quoted(name) + " (recomputed from rope_theta)");
      continue;
    }
    throwInvalidCheckpoint(tensor.file.string() + ": unexpected tensor " + quoted(name) + ", which the model " +
                           configPath.string() + " describes does not have (config and weights disagree?)");
  }
  return ordered;
}

void checkSegment(const IndexRange& segment, int64_t extent, const char* axis, const std::string& tensor,
                  const std::vector<int64_t>& shape) {
  if (segment.begin < 0 || segment.count < 0 || segment.begin > extent || segment.count > extent - segment.begin) {
    throwInvalidArgument("tensor " + quoted(tensor) + " of shape " + shapeText(shape) + ": " + axis + " segment [" +
                         std::to_string(segment.begin) + ", +" + std::to_string(segment.count) +
                         ") is out of range [0, " + std::to_string(extent) + ")");
  }
}

void checkOutSize(size_t have, uint64_t need, const std::string& tensor) {
  if (have != need) {
    throwInvalidArgument("tensor " + quoted(tensor) + ": output buffer holds " + std::to_string(have) +
                         " bytes but the selection is " + std::to_string(need) + " bytes");
  }
}

}  // namespace

std::unique_ptr<Checkpoint> Checkpoint::open(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throwInvalidCheckpoint(dir.string() + ": not a directory (missing?)");
  std::unique_ptr<Checkpoint> checkpoint(new Checkpoint());
  checkpoint->directory_ = dir;
  const fs::path configPath = dir / kConfigName;
  MappedFile::open(configPath);  // missing or not a regular file: the message names it
  checkpoint->config_ = loadModelConfig(configPath);

  const Layout layout = readLayout(dir);
  std::map<std::string, SafetensorsHeader> headers;
  for (const std::string& name : layout.shardNames) {
    std::error_code missing;
    if (!fs::exists(dir / name, missing)) {
      throwInvalidCheckpoint((dir / name).string() + ": shard is missing (" + layout.source.filename().string() +
                             " names it)");
    }
    MappedFile file = MappedFile::open(dir / name);
    SafetensorsHeader header = readSafetensorsHeader(file);
    checkpoint->shards_.push_back({file.path(), file.size(), header.headerLength,
                                   int64_t(header.tensors.size()), header.metadata});
    checkpoint->files_.emplace(file.path(), std::move(file));
    headers.emplace(name, std::move(header));
  }
  checkpoint->tensors_ = matchConfig(collectTensors(layout, headers), checkpoint->config_, layout, configPath,
                                     checkpoint->warnings_);
  uint64_t payload = 0;
  for (size_t i = 0; i < checkpoint->tensors_.size(); ++i) {
    checkpoint->byName_[checkpoint->tensors_[i].name] = i;
    payload += checkpoint->tensors_[i].byteSize;
  }
  if (layout.totalSize && *layout.totalSize != double(payload)) {
    // Informational only (every tensor's bytes were checked above), so a mismatch is said, not refused.
    checkpoint->warnings_.push_back(layout.source.string() + ": metadata.total_size " +
                                    json(*layout.totalSize).dump() + " differs from the tensors' " +
                                    std::to_string(payload) + " bytes");
  }
  return checkpoint;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = byName_.find(name);
  if (it == byName_.end()) {
    throwInvalidArgument(directory_.string() + ": the checkpoint has no tensor " + quoted(name));
  }
  return tensors_[it->second];
}

const MappedFile& Checkpoint::fileOf(const TensorInfo& tensor) const { return files_.at(tensor.file); }

void Checkpoint::copyRows(const std::string& name, std::span<const IndexRange> rows, std::span<std::byte> out) const {
  const TensorInfo& tensor = info(name);
  if (tensor.shape.empty()) throwInvalidArgument("tensor " + quoted(name) + " is a scalar: it has no rows");
  uint64_t rowBytes = uint64_t(dtypeBytes(tensor.dtype));
  for (size_t d = 1; d < tensor.shape.size(); ++d) rowBytes *= uint64_t(tensor.shape[d]);
  uint64_t total = 0;
  for (const IndexRange& segment : rows) {
    checkSegment(segment, tensor.shape[0], "row", name, tensor.shape);
    total += uint64_t(segment.count) * rowBytes;
  }
  checkOutSize(out.size(), total, name);
  const MappedFile& file = fileOf(tensor);
  size_t cursor = 0;
  for (const IndexRange& segment : rows) {
    const size_t bytes = size_t(segment.count) * rowBytes;
    file.read(tensor.dataOffset + uint64_t(segment.begin) * rowBytes, out.subspan(cursor, bytes));
    cursor += bytes;
  }
  bytesRead_.fetch_add(total, std::memory_order_relaxed);
}

void Checkpoint::copyColumns(const std::string& name, std::span<const IndexRange> columns,
                             std::span<std::byte> out) const {
  const TensorInfo& tensor = info(name);
  if (tensor.shape.size() != 2) {
    throwInvalidArgument("tensor " + quoted(name) + " of shape " + shapeText(tensor.shape) +
                         " is not 2-D: it has no columns to slice");
  }
  const int64_t rowCount = tensor.shape[0];
  const int64_t columnCount = tensor.shape[1];
  const uint64_t elementBytes = uint64_t(dtypeBytes(tensor.dtype));
  // Adjacent segments merge into one run, so each row costs one read per run.
  std::vector<IndexRange> runs;
  int64_t selected = 0;
  for (const IndexRange& segment : columns) {
    checkSegment(segment, columnCount, "column", name, tensor.shape);
    selected += segment.count;
    if (segment.count == 0) continue;
    if (!runs.empty() && runs.back().begin + runs.back().count == segment.begin) {
      runs.back().count += segment.count;
    } else {
      runs.push_back(segment);
    }
  }
  const uint64_t total = uint64_t(rowCount) * uint64_t(selected) * elementBytes;
  checkOutSize(out.size(), total, name);
  const MappedFile& file = fileOf(tensor);
  if (runs.size() == 1 && runs[0].count == columnCount) {
    file.read(tensor.dataOffset, out);  // every column: the whole tensor in one read
  } else {
    size_t cursor = 0;
    for (int64_t row = 0; row < rowCount; ++row) {
      for (const IndexRange& run : runs) {
        const size_t bytes = size_t(run.count) * elementBytes;
        file.read(tensor.dataOffset + (uint64_t(row) * uint64_t(columnCount) + uint64_t(run.begin)) * elementBytes,
                  out.subspan(cursor, bytes));
        cursor += bytes;
      }
    }
  }
  bytesRead_.fetch_add(total, std::memory_order_relaxed);
}

void Checkpoint::copyTensor(const std::string& name, std::span<std::byte> out) const {
  const TensorInfo& tensor = info(name);
  checkOutSize(out.size(), tensor.byteSize, name);
  fileOf(tensor).read(tensor.dataOffset, out);
  bytesRead_.fetch_add(tensor.byteSize, std::memory_order_relaxed);
}

}  // namespace phx
