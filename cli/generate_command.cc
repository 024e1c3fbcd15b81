// phalanx generate --model DIR (--prompt TEXT | --chat TEXT | --prompt-tokens 1,2,3) [sampling options] [--json]:
// the whole model in this process; text is streamed to stdout as it is generated and a summary ends on stderr.
// With --cluster HOST:PORT the same request goes to a running server instead (cli/generate_remote.cc).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/generation_output.h"
#include "common/error.h"
#include "coordinator/generation.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "worker/local_engine.h"

namespace phx::cli {
namespace {

using nlohmann::json;

std::atomic<bool> interrupted{false};

void onInterrupt(int) { interrupted.store(true); }

// The first Ctrl-C asks the loop to stop after the current step; SA_RESETHAND lets a second one end the process.
void catchInterrupt() {
  struct sigaction action = {};
  action.sa_handler = onInterrupt;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

ArgParser parser() {
  ArgParser p("phalanx generate --model DIR (--prompt TEXT | --chat TEXT | --prompt-tokens IDS) [options]",
              "Generates text with the whole model in this process, streaming it to stdout; a summary (prompt and "
              "generated tokens, prefill and decode tokens/s) ends on stderr. Ctrl-C stops after the current step.");
  p.option("model", "DIR", "checkpoint directory (Hugging Face layout)")
      .option("prompt", "TEXT", "plain text prompt (special tokens are not recognised)")
      .option("chat", "TEXT", "a user message, wrapped in Phi-4's chat template with the generation prompt")
      .option("prompt-tokens", "IDS", "comma-separated token ids")
      .option("max-tokens", "N", "most tokens to generate", "256")
      .option("temperature", "T", "0 is greedy", "1.0")
      .option("top-p", "P", "nucleus mass", "1.0")
      .option("top-k", "K", "keep the K most likely tokens (0: off)", "0")
      .option("min-p", "P", "keep tokens with p >= P * p(top-1)", "0")
      .option("presence-penalty", "X", "subtracted once from each generated token's logit", "0")
      .option("frequency-penalty", "X", "subtracted per occurrence", "0")
      .option("seed", "S", "seed for reproducible sampling")
      .option("top-logprobs", "K", "report the K most likely tokens at each position (with --json)", "0")
      .option("stop", "STR", "stop before this string")
      .option("threads", "N", "compute threads", std::to_string(std::thread::hardware_concurrency()))
      .option("prefill-chunk", "N", "prompt tokens per step", "512")
      .option("dtype", "T", "matrix weights: bf16, int8 (quantized while loading) or auto (the checkpoint's own)",
              "auto")
      .option("kv-dtype", "T", "KV cache: bf16, int8 (per token and head scales) or f32", "bf16")
      .option("cluster", "HOST:PORT", "generate on a running server (phalanx serve, phalanx up) instead of here")
      .option("api-key-file", "F", "with --cluster: the server's API key")
      .flag("json", "print one JSON object at the end instead of streaming text");
  return p;
}

}  // namespace

std::vector<int32_t> promptTokens(const ParsedArgs& args, const Tokenizer& tokenizer) {
  const int sources = int(args.has("prompt")) + int(args.has("chat")) + int(args.has("prompt-tokens"));
  if (sources != 1) throwInvalidArgument("give exactly one of --prompt, --chat and --prompt-tokens");
  if (args.has("prompt")) return tokenizer.encode(args.str("prompt"), /*allowSpecial=*/false);
  if (args.has("chat")) {
    const ChatMessage message{"user", args.str("chat")};
    return chatTemplateIds({&message, 1}, /*addGenerationPrompt=*/true, tokenizer);
  }
  std::vector<int32_t> ids;
  for (int64_t id : args.integerList("prompt-tokens")) {
    if (id < 0 || id >= tokenizer.vocabSize()) {
      throwInvalidArgument("--prompt-tokens: id " + std::to_string(id) + " is outside the vocabulary [0, " +
                           std::to_string(tokenizer.vocabSize()) + ")");
    }
    ids.push_back(int32_t(id));
  }
  return ids;
}

SamplingParams samplingParams(const ParsedArgs& args, std::vector<int32_t> stopIds) {
  SamplingParams p;
  p.temperature = float(args.number("temperature"));
  p.topP = float(args.number("top-p"));
  p.topK = int32_t(args.integer("top-k"));
  p.minP = float(args.number("min-p"));
  p.presencePenalty = float(args.number("presence-penalty"));
  p.frequencyPenalty = float(args.number("frequency-penalty"));
  if (args.has("seed")) p.seed = uint64_t(args.integer("seed"));
  p.topLogprobs = int32_t(args.integer("top-logprobs"));
  p.maxTokens = int32_t(args.integer("max-tokens"));
  p.stopTokenIds = std::move(stopIds);
  if (auto stop = args.optionalStr("stop")) p.stopStrings.push_back(*stop);
  validateSamplingParams(p);
  return p;
}


int generateCommand(int argc, char** argv) {
  const auto parsed = parser().parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  if (args.has("cluster")) return generateRemote(args);
  const std::filesystem::path modelDir = args.str("model");
  const Tokenizer tokenizer = Tokenizer::load(modelDir);
  const ModelConfig config = loadModelConfig(modelDir / "config.json");

  GenerationRequest request;
  request.promptTokens = promptTokens(args, tokenizer);
  request.params = samplingParams(args, modelStopTokenIds(modelDir, config));
  request.prefillChunk = args.integer("prefill-chunk");
  request.maxContext = config.maxPositionEmbeddings;
  request.fallbackSeed = uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  if (request.prefillChunk < 1) throwInvalidArgument("--prefill-chunk must be at least 1");
  const int64_t threads = args.integer("threads");
  if (threads < 1) throwInvalidArgument("--threads must be at least 1");

  // The cache holds the prompt and every token asked for; no step carries more than one prefill chunk.
  LocalEngineOptions options;
  options.kvTokens = std::min<int64_t>(int64_t(request.promptTokens.size()) + request.params.maxTokens,
                                       config.maxPositionEmbeddings);
  options.maxStepTokens = std::min<int64_t>(request.prefillChunk, int64_t(request.promptTokens.size()));
  options.threads = int(threads);
  options.weightType = parseWeightDtype(args.str("dtype"));
  options.kvType = parseKvDtype(args.str("kv-dtype"));
  const auto engine = LocalEngine::open(modelDir, options);
  BlockAllocator blocks(engine->cache().shape().numBlocks, engine->cache().shape().blockSize);

  catchInterrupt();
  const bool asJson = args.has("json");
  const GenerationResult result = generate(
      engine->runner(), blocks, tokenizer, request,
      [asJson](std::string_view text) {
        if (asJson) return;
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      },
      &interrupted);
  if (asJson) std::printf("%s\n", generationResultJson(result, request.params.topLogprobs).dump().c_str());
  printGenerationSummary(result);
  return 0;
}

}  // namespace phx::cli
