// What `phalanx generate` prints, shared by its local and --cluster paths (and the model defaults `serve` uses):
// the stop ids a checkpoint declares, the --json object and the summary on stderr.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "coordinator/generation.h"
#include "model/tokenizer.h"
#include "model/config.h"

namespace phx::cli {

// generation_config.json's eos_token_id (a number or a list), else config.json's.
std::vector<int32_t> modelStopTokenIds(const std::filesystem::path& modelDir, const ModelConfig& config);
nlohmann::json generationResultJson(const GenerationResult& result, int32_t topLogprobs);
void printGenerationSummary(const GenerationResult& result);

// The prompt and sampling options of `phalanx generate` (cli/generate_command.cc).
std::vector<int32_t> promptTokens(const ParsedArgs& args, const Tokenizer& tokenizer);
SamplingParams samplingParams(const ParsedArgs& args, std::vector<int32_t> stopIds);
// `phalanx generate --cluster HOST:PORT`: the same request through a server's /v1/completions, streamed, printed
// as the local path prints it (cli/generate_remote.cc).
int generateRemote(const ParsedArgs& args);

}  // namespace phx::cli
