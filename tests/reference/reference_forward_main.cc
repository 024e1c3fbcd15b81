// reference-forward: runs the fp32 reference forward pass on a prompt and prints what a person checking a
// checkpoint or the engine wants to see: the residual stream's RMS through the layers and the logits' statistics.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "cli/args.h"
#include "common/error.h"
#include "tests/reference/reference_model.h"

namespace phx::reference {
namespace {

void printNorms(const ActivationNorms& norms) {
  std::printf("\nactivation RMS at the last position\n");
  std::printf("%-12s %14s %14s %14s\n", "stage", "residual", "attn out", "mlp out");
  std::printf("%-12s %14.4f %14s %14s\n", "embedding", norms.embedding, "", "");
  for (size_t layer = 0; layer < norms.afterLayer.size(); ++layer) {
    std::printf("%-12s %14.4f %14.4f %14.4f\n", ("layer " + std::to_string(layer)).c_str(), norms.afterLayer[layer],
                norms.attentionOut[layer], norms.mlpOut[layer]);
  }
  std::printf("%-12s %14.4f %14s %14s\n", "final norm", norms.finalNorm, "", "");
}

struct RowStats {
  double mean = 0, std = 0;
  std::vector<int64_t> order;  // the top ids, best first
};

RowStats rowStats(const float* row, int64_t vocab, int64_t top) {
  RowStats s;
  double sum = 0, sumSquares = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += row[i];
  s.mean = sum / double(vocab);
  for (int64_t i = 0; i < vocab; ++i) sumSquares += (row[i] - s.mean) * (row[i] - s.mean);
  s.std = std::sqrt(sumSquares / double(vocab));
  s.order.resize(size_t(vocab));
  std::iota(s.order.begin(), s.order.end(), 0);
  const auto keep = std::min<int64_t>(std::max<int64_t>(top, 2), vocab);
  std::partial_sort(s.order.begin(), s.order.begin() + keep, s.order.end(),
                    [&](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
  s.order.resize(size_t(keep));
  return s;
}

void printLogits(const std::vector<float>& logits, const std::vector<int32_t>& tokens, int64_t vocab, int64_t top) {
  std::printf("\nlogits per position\n%-5s %8s %10s %10s %10s %10s %10s\n", "pos", "token", "mean", "std", "top1",
              "logit", "margin");
  RowStats last;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const float* row = logits.data() + t * size_t(vocab);
    last = rowStats(row, vocab, top);
    const double margin = last.order.size() > 1 ? row[last.order[0]] - row[last.order[1]] : 0.0;
    std::printf("%-5zu %8d %10.4f %10.4f %10lld %10.4f %10.4f\n", t, tokens[t], last.mean, last.std,
                static_cast<long long>(last.order[0]), row[last.order[0]], margin);
  }
  const float* row = logits.data() + (tokens.size() - 1) * size_t(vocab);
  std::printf("\ntop %lld at the last position\n", static_cast<long long>(top));
  for (int64_t i = 0; i < top && i < int64_t(last.order.size()); ++i) {
    std::printf("  %2lld  id %8lld  logit %10.4f\n", static_cast<long long>(i + 1),
                static_cast<long long>(last.order[i]), row[last.order[i]]);
  }
  std::printf("top1-top2 margin %.4f (logit std %.4f)\n", row[last.order[0]] - row[last.order[1]], last.std);
}

int run(int argc, char** argv) {
  cli::ArgParser parser("reference-forward --model DIR --prompt-tokens 1,2,3 [options]",
                        "Runs the independent fp32 reference forward pass (tests/reference) over the prompt and "
                        "prints logits statistics and, with --norms, the residual stream's RMS through the layers.");
  parser.option("model", "DIR", "checkpoint directory (Hugging Face layout)")
      .option("prompt-tokens", "IDS", "comma-separated token ids")
      .option("top", "K", "how many top tokens of the last position to print", "5")
      .option("threads", "N", "OpenMP threads (0: OpenMP's default)", "0")
      .flag("norms", "print the per-layer activation RMS");
  const auto args = parser.parse(argc, argv);
  if (!args) return 0;
  const int64_t top = args->integer("top"), threads = args->integer("threads");
  if (top < 1) throwInvalidArgument("--top must be at least 1, got " + std::to_string(top));
  if (threads < 0) throwInvalidArgument("--threads must be 0 or more, got " + std::to_string(threads));
  if (threads > 0) omp_set_num_threads(int(threads));
  std::vector<int32_t> tokens;
  for (int64_t id : args->integerList("prompt-tokens")) {
    if (id < 0 || id > INT32_MAX) throwInvalidArgument("--prompt-tokens: id " + std::to_string(id) + " is invalid");
    tokens.push_back(int32_t(id));
  }

  const ReferenceModel model(args->str("model"));
  const ModelConfig& c = model.config();
  std::printf("model %s: hidden %lld, layers %lld, heads %lld (%lld KV) x %lld, MLP %lld, vocab %lld\n",
              args->str("model").c_str(), (long long)c.hiddenSize, (long long)c.numLayers, (long long)c.numHeads,
              (long long)c.numKvHeads, (long long)c.headDim(), (long long)c.intermediateSize,
              (long long)c.vocabSize);
  const auto start = std::chrono::steady_clock::now();
  ActivationNorms norms;
  const std::vector<float> logits = model.forwardWithNorms(tokens, false, &norms);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%zu tokens, forward %.2f s on %d threads\n", tokens.size(), seconds, omp_get_max_threads());
  if (args->has("norms")) printNorms(norms);
  printLogits(logits, tokens, c.vocabSize, top);
  return 0;
}

}  // namespace
}  // namespace phx::reference

int main(int argc, char** argv) {
  try {
    return phx::reference::run(argc - 1, argv + 1);
  } catch (const phx::Error& error) {
    std::fprintf(stderr, "reference-forward: %s: %s\n", std::string(phx::errorKindName(error.kind())).c_str(),
                 error.what());
    return error.kind() == phx::ErrorKind::kInvalidArgument ? 2 : 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "reference-forward: error: %s\n", error.what());
    return 1;
  }
}
