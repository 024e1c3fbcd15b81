// phalanx quantize --model DIR --out DIR2 [--force]: writes an INT8 copy of a BF16 checkpoint (per-output-channel
// symmetric matrices with F32 row scales, model/quantized_checkpoint.h) that `generate`, `bench` and the workers
// load without quantizing again; the bytes equal what quantizing while loading produces.
#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "kernels/quantize.h"
#include "model/checkpoint.h"
#include "model/quantized_checkpoint.h"

namespace phx::cli {

int quantizeCommand(int argc, char** argv) {
  ArgParser parser("phalanx quantize --model DIR --out DIR2 [--force]",
                   "Quantizes a BF16 checkpoint's matrices (qkv_proj, o_proj, gate_up_proj, down_proj, lm_head) to "
                   "INT8 with one F32 scale per output row and writes the copy in the same Hugging Face layout: I8 "
                   "tensors beside F32 \"<name>_scale\" tensors, a quantization_config in config.json, the tokenizer "
                   "files. Loading it gives the same weights as `--dtype int8` on the original, without the work.");
  parser.option("model", "DIR", "the BF16 checkpoint")
      .option("out", "DIR", "where to write the quantized copy")
      .flag("force", "overwrite a non-empty output directory");
  const auto args = parser.parse(argc, argv);
  if (!args) return 0;
  const auto start = std::chrono::steady_clock::now();
  const auto source = Checkpoint::open(args->str("model"));
  int lastPercent = -1;
  const QuantizeSummary summary = writeQuantizedCheckpoint(
      *source, args->str("out"), quantizeBf16RowInt8, args->has("force"), [&](const QuantizeProgress& p) {
        const int percent = p.bytesTotal > 0 ? int(100 * p.bytesDone / p.bytesTotal) : 100;
        if (percent / 5 != lastPercent / 5) std::fprintf(stderr, "\r%3d%% %s", percent, p.tensor.c_str());
        lastPercent = percent;
      });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  std::printf("quantized %lld matrices: %.3f GB of BF16 -> %.3f GB in %s (%.1f s)\n",
              (long long)summary.quantizedTensors, double(summary.sourceBytes) / 1e9,
              double(summary.payloadBytes) / 1e9, args->str("out").c_str(), seconds);
  return 0;
}

}  // namespace phx::cli
