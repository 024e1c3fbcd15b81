// The INT8 checkpoint `phalanx quantize` writes, in the Hugging Face layout so the same loader, validator and
// `inspect` read it (docs/int8.md):
//   - every decoder matrix (qkv_proj, o_proj, gate_up_proj, down_proj) and lm_head as I8 [rows, cols], beside an
//     F32 "<name>_scale" [rows]: w[r, k] ~ scale[r] * q[r, k] (per-output-channel symmetric, scale = max|w_r|/127);
//   - the embedding table and the norms unchanged (BF16): a lookup reads one row, a norm is tiny;
//   - config.json with a "quantization_config" object; the same shard file names, index and tokenizer files.
// The row quantizer is passed in (the kernels' quantizeBf16RowInt8), so a saved checkpoint holds exactly the bytes
// the loader would have produced by quantizing at load.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "model/checkpoint.h"

namespace phx {

inline constexpr const char* kQuantMethod = "phalanx-int8";

// "<weight>_scale".
std::string scaleTensorName(const std::string& weightName);
// Whether `phalanx quantize` stores this tensor as INT8 (a decoder matrix or lm_head).
bool isQuantizedMatrixName(const std::string& name);
// Whether the checkpoint holds INT8 matrices (then it loads as INT8 without quantizing).
bool isQuantizedCheckpoint(const Checkpoint& checkpoint);

// One BF16 row -> int8 values; returns its scale.
using RowQuantizer = std::function<float(const uint16_t* row, int64_t cols, int8_t* out)>;

struct QuantizeProgress {
  std::string tensor;
  uint64_t bytesDone = 0;  // of the source checkpoint's payload
  uint64_t bytesTotal = 0;
};

struct QuantizeSummary {
  uint64_t sourceBytes = 0;
  uint64_t payloadBytes = 0;  // written tensor bytes
  int64_t quantizedTensors = 0;
};

// Writes the quantized copy of `source` (a BF16 checkpoint) into `outDir`: created if missing; refused when not
// empty unless `force`. Reads and writes row pieces of at most `pieceBytes`, so memory stays a few pieces.
// Throws phx::Error naming the file or tensor (an already-quantized or non-BF16 source: invalid argument).
QuantizeSummary writeQuantizedCheckpoint(const Checkpoint& source, const std::filesystem::path& outDir,
                                         const RowQuantizer& quantizeRow, bool force,
                                         const std::function<void(const QuantizeProgress&)>& progress = {},
                                         uint64_t pieceBytes = uint64_t(64) << 20);

}  // namespace phx
