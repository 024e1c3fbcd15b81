#include "model/quantized_checkpoint.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "model/safetensors_writer.h"

namespace phx {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kIndexName = "model.safetensors.index.json";

bool endsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool quantizes(const TensorInfo& tensor) {
  return isQuantizedMatrixName(tensor.name) && tensor.dtype == DType::kBF16 && tensor.shape.size() == 2;
}

std::vector<SafetensorsEntry> outputEntries(const std::vector<const TensorInfo*>& tensors) {
  std::vector<SafetensorsEntry> entries;
  for (const TensorInfo* tensor : tensors) {
    if (quantizes(*tensor)) {
      entries.push_back({tensor->name, DType::kI8, tensor->shape});
      entries.push_back({scaleTensorName(tensor->name), DType::kF32, {tensor->shape[0]}});
    } else {
      entries.push_back({tensor->name, tensor->dtype, tensor->shape});
    }
  }
  return entries;
}

void writeJson(const fs::path& path, const json& value) {
  std::ofstream out(path);
  out << value.dump(2) << "\n";
  if (!out) throwIoError(path.string() + ": cannot write");
}

class ShardQuantizer {
 public:
  ShardQuantizer(const Checkpoint& source, const RowQuantizer& quantizeRow, uint64_t pieceBytes,
                 const std::function<void(const QuantizeProgress&)>& progress, uint64_t bytesTotal)
      : source_(source), quantizeRow_(quantizeRow), pieceBytes_(pieceBytes), progress_(progress),
        bytesTotal_(bytesTotal) {}

  // Streams one tensor into the writer: quantized (weight, then its scales) or copied, a piece of rows at a time.
  void write(const TensorInfo& tensor, SafetensorsWriter& writer, QuantizeSummary& summary) {
    const int64_t rows = tensor.shape.empty() ? 1 : tensor.shape[0];
    const int64_t rowElements = rows > 0 ? int64_t(tensor.elementCount() / uint64_t(rows)) : 0;
    const int64_t rowBytes = rowElements * dtypeBytes(tensor.dtype);
    if (tensor.shape.size() < 2 || rowBytes == 0) {
      std::vector<std::byte> raw(tensor.byteSize);
      source_.copyTensor(tensor.name, raw);
      writer.append(raw.data(), raw.size());
      advance(tensor.name, raw.size());
      return;
    }
    const int64_t pieceRows = std::max<int64_t>(1, int64_t(pieceBytes_) / rowBytes);
    std::vector<std::byte> raw(size_t(std::min(pieceRows, rows) * rowBytes));
    std::vector<int8_t> quantized;
    std::vector<float> scales;
    const bool quantize = quantizes(tensor);
    for (int64_t first = 0; first < rows; first += pieceRows) {
      const int64_t count = std::min(pieceRows, rows - first);
      const std::span<std::byte> piece(raw.data(), size_t(count * rowBytes));
      const IndexRange segment{first, count};
      source_.copyRows(tensor.name, std::span<const IndexRange>(&segment, 1), piece);
      if (quantize) {
        quantized.resize(size_t(count * rowElements));
        const auto* bf16 = reinterpret_cast<const uint16_t*>(raw.data());
        for (int64_t r = 0; r < count; ++r) {
          scales.push_back(quantizeRow_(bf16 + r * rowElements, rowElements, quantized.data() + r * rowElements));
        }
        writer.append(quantized.data(), quantized.size());
      } else {
        writer.append(piece.data(), piece.size());
      }
      advance(tensor.name, piece.size());
    }
    if (quantize) {
      writer.append(scales.data(), scales.size() * sizeof(float));
      ++summary.quantizedTensors;
    }
  }

 private:
  void advance(const std::string& name, uint64_t bytes) {
    done_ += bytes;
    if (progress_) progress_({name, done_, bytesTotal_});
  }

  const Checkpoint& source_;
  const RowQuantizer& quantizeRow_;
  uint64_t pieceBytes_;
  const std::function<void(const QuantizeProgress&)>& progress_;
  uint64_t bytesTotal_;
  uint64_t done_ = 0;
};

void prepareDirectory(const fs::path& outDir, const fs::path& sourceDir, bool force) {
  std::error_code ec;
  if (fs::exists(outDir, ec) && fs::equivalent(outDir, sourceDir, ec)) {
    throwInvalidArgument(outDir.string() + ": the output directory is the source checkpoint itself");
  }
  if (fs::exists(outDir, ec) && !fs::is_empty(outDir, ec) && !force) {
    throwInvalidArgument(outDir.string() + ": directory is not empty (pass --force to overwrite)");
  }
  fs::create_directories(outDir, ec);
  if (ec) throwIoError(outDir.string() + ": cannot create directory: " + ec.message());
}

}  // namespace

std::string scaleTensorName(const std::string& weightName) { return weightName + "_scale"; }

bool isQuantizedMatrixName(const std::string& name) {
  for (const char* suffix : {".self_attn.qkv_proj.weight", ".self_attn.o_proj.weight", ".mlp.gate_up_proj.weight",
                             ".mlp.down_proj.weight"}) {
    if (endsWith(name, suffix)) return true;
  }
  return name == "lm_head.weight";
}

bool isQuantizedCheckpoint(const Checkpoint& checkpoint) {
  return std::any_of(checkpoint.tensors().begin(), checkpoint.tensors().end(),
                     [](const TensorInfo& tensor) { return tensor.dtype == DType::kI8; });
}

QuantizeSummary writeQuantizedCheckpoint(const Checkpoint& source, const fs::path& outDir,
                                         const RowQuantizer& quantizeRow, bool force,
                                         const std::function<void(const QuantizeProgress&)>& progress,
                                         uint64_t pieceBytes) {
  if (isQuantizedCheckpoint(source)) {
    throwInvalidArgument(source.directory().string() + ": the checkpoint is already INT8-quantized");
  }
  for (const TensorInfo& tensor : source.tensors()) {
    if (isQuantizedMatrixName(tensor.name) && tensor.dtype != DType::kBF16) {
      throwInvalidArgument(tensor.file.string() + ": tensor '" + tensor.name + "' is " +
                           std::string(dtypeName(tensor.dtype)) + "; quantize reads BF16 checkpoints");
    }
  }
  prepareDirectory(outDir, source.directory(), force);

  QuantizeSummary summary;
  for (const TensorInfo& tensor : source.tensors()) summary.sourceBytes += tensor.byteSize;
  ShardQuantizer quantizer(source, quantizeRow, pieceBytes, progress, summary.sourceBytes);
  json weightMap = json::object();
  for (const ShardInfo& shard : source.shards()) {
    std::vector<const TensorInfo*> tensors;
    for (const TensorInfo& tensor : source.tensors()) {
      if (tensor.file == shard.file) tensors.push_back(&tensor);
    }
    const std::vector<SafetensorsEntry> entries = outputEntries(tensors);
    const std::string fileName = shard.file.filename().string();
    std::map<std::string, std::string> metadata = shard.metadata;
    metadata["quantization"] = kQuantMethod;
    SafetensorsWriter writer(outDir / fileName, entries, metadata);
    for (const TensorInfo* tensor : tensors) quantizer.write(*tensor, writer, summary);
    writer.finish();
    summary.payloadBytes += writer.payloadBytes();
    for (const SafetensorsEntry& entry : entries) weightMap[entry.name] = fileName;
  }
  const fs::path sourceDir = source.directory();
  if (fs::exists(sourceDir / kIndexName)) {
    writeJson(outDir / kIndexName,
              json{{"metadata", {{"total_size", summary.payloadBytes}}}, {"weight_map", weightMap}});
  }
  std::ifstream configFile(sourceDir / "config.json");
  json config = json::parse(configFile, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object())
    throwInvalidCheckpoint((sourceDir / "config.json").string() + ": not a JSON object");
  config["quantization_config"] = {
      {"quant_method", kQuantMethod},
      {"bits", 8},
      {"weights", "int8, symmetric, per output channel: w[r, k] = scale[r] * q[r, k], scale = max|w_r| / 127"},
      {"scale_suffix", "_scale"},
      {"modules", {"qkv_proj", "o_proj", "gate_up_proj", "down_proj", "lm_head"}},
      {"modules_not_quantized", {"embed_tokens", "norms"}},
  };
  writeJson(outDir / "config.json", config);
  // Tokenizer, generation config and anything else that is not weights travel unchanged.
  for (const auto& entry : fs::directory_iterator(sourceDir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || endsWith(name, ".safetensors") || name == kIndexName || name == "config.json") {
      continue;
    }
    std::error_code ec;
    fs::copy_file(entry.path(), outDir / name, fs::copy_options::overwrite_existing, ec);
    if (ec)
      throwIoError((outDir / name).string() + ": cannot copy from " + entry.path().string() + ": " + ec.message());
  }
  return summary;
}

}  // namespace phx
