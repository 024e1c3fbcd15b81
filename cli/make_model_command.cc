// phalanx make-model --preset NAME --out DIR [--seed N] [--shard-size BYTES|5GB] [--force]: a Phi-4-architecture
// checkpoint with random weights, in the Hugging Face layout of microsoft/phi-4.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "model/checkpoint_writer.h"
#include "model/presets.h"
#include "partition/tensor_table.h"

namespace phx::cli {
namespace {

using Clock = std::chrono::steady_clock;

// 14659507200 -> "14,659,507,200"
std::string grouped(uint64_t value) {
  const std::string digits = std::to_string(value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string humanBytes(double bytes) {
  char text[32];
  if (bytes >= 1e9) std::snprintf(text, sizeof(text), "%.2f GB", bytes / 1e9);
  else std::snprintf(text, sizeof(text), "%.1f MB", bytes / 1e6);
  return text;
}

std::string presetTable() {
  std::string table = "presets:\n";
  for (const ModelPreset& preset : modelPresets()) {
    const int64_t parameters = parameterCount(preset.config);
    char line[256];
    std::snprintf(line, sizeof(line), "  %-9s%16s parameters %10s BF16  %s\n", preset.name.c_str(),
                  grouped(uint64_t(parameters)).c_str(), humanBytes(2.0 * double(parameters)).c_str(),
                  preset.summary.c_str());
    table += line;
  }
  return table;
}

// Progress on stderr: a redrawn bar on a terminal, otherwise one line per shard (logs stay readable).
class ProgressReporter {
 public:
  ProgressReporter() : tty_(::isatty(2) == 1), start_(Clock::now()) {}

  void operator()(const WriteProgress& p) {
    const auto now = Clock::now();
    if (tty_ && !p.shardDone && now - lastDraw_ < std::chrono::milliseconds(100)) return;
    lastDraw_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? double(p.bytesWritten) / seconds : 0.0;
    const double eta = rate > 0 ? double(p.totalBytes - p.bytesWritten) / rate : 0.0;
    const double fraction = p.totalBytes ? double(p.bytesWritten) / double(p.totalBytes) : 1.0;
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled = int(fraction * kWidth);
      std::fprintf(stderr, "\r[%s%s] %3.0f%% shard %d/%d %-44.44s %s / %s  %6.0f MB/s  ETA %3.0f s\033[K",
                   std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), 100 * fraction,
                   p.shardIndex, p.shardCount, std::string(p.tensorName).c_str(),
                   humanBytes(double(p.bytesWritten)).c_str(), humanBytes(double(p.totalBytes)).c_str(), rate / 1e6,
                   eta);
      if (p.shardDone && p.shardIndex == p.shardCount) std::fputc('\n', stderr);
    } else if (p.shardDone) {
      std::fprintf(stderr, "shard %d/%d written: %s / %s, %.0f MB/s, ETA %.0f s\n", p.shardIndex, p.shardCount,
                   humanBytes(double(p.bytesWritten)).c_str(), humanBytes(double(p.totalBytes)).c_str(), rate / 1e6,
                   eta);
    }
    std::fflush(stderr);
  }

 private:
  bool tty_;
  Clock::time_point start_;
  Clock::time_point lastDraw_{};
};

}  // namespace

int makeModelCommand(int argc, char** argv) {
  ArgParser parser("phalanx make-model --preset NAME --out DIR [options]",
                   "Writes a Phi-4-architecture checkpoint with deterministic random weights, in the layout of the "
                   "Hugging Face repo microsoft/phi-4: config.json, generation_config.json, sharded BF16 safetensors "
                   "with model.safetensors.index.json, and the tokenizer files.\n\n" +
                       presetTable().substr(0, presetTable().size() - 1));
  parser.option("preset", "NAME", "model shape (see presets above)")
      .option("out", "DIR", "output directory (created if missing)")
      .option("seed", "N", "random seed: the same seed gives byte-identical files", "0")
      .option("shard-size", "BYTES", "most tensor bytes per shard, e.g. 5GB, 512MiB or 4000000", "5GB")
      .option("threads", "N", "random generation threads", "2")
      .flag("force", "overwrite a non-empty output directory");
  const auto args = parser.parse(argc, argv);
  if (!args) return 0;

  CheckpointOptions options;
  const ModelPreset& preset = findModelPreset(args->str("preset"));
  options.config = preset.config;
  const std::string out = args->str("out");
  const int64_t seed = args->integer("seed");
  if (seed < 0) throwInvalidArgument("--seed expects a non-negative integer, got " + std::to_string(seed));
  options.seed = uint64_t(seed);
  const int64_t shardBytes = args->bytes("shard-size");
  if (shardBytes < 1) {
    throwInvalidArgument("--shard-size expects a positive byte count such as 5GB or 512MiB, got '" +
                         args->str("shard-size") + "'");
  }
  options.maxShardBytes = uint64_t(shardBytes);
  const int64_t threads = args->integer("threads");
  if (threads < 1 || threads > 256) throwInvalidArgument("--threads expects 1..256, got " + std::to_string(threads));
  options.threads = int(threads);
  options.force = args->has("force");

  ProgressReporter reporter;
  const auto start = Clock::now();
  const CheckpointSummary summary =
      writeCheckpoint(out, options, [&reporter](const WriteProgress& p) { reporter(p); });
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("wrote %s: preset %s, seed %llu, %s parameters, %s bytes of BF16 in %d shard%s, %.1f s (%.0f MB/s)\n",
              out.c_str(), preset.name.c_str(), (unsigned long long)options.seed,
              grouped(uint64_t(summary.parameters)).c_str(), grouped(summary.payloadBytes).c_str(), summary.shards,
              summary.shards == 1 ? "" : "s", seconds, double(summary.payloadBytes) / seconds / 1e6);
  return 0;
}

}  // namespace phx::cli
