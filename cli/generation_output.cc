#include "cli/generation_output.h"

#include <cstdio>
#include <fstream>
#include <string>

namespace phx::cli {

using nlohmann::json;

std::vector<int32_t> modelStopTokenIds(const std::filesystem::path& modelDir, const ModelConfig& config) {
  std::ifstream file(modelDir / "generation_config.json");
  if (file) {
    const json generation = json::parse(file, nullptr, /*allow_exceptions=*/false);
    if (generation.is_object() && generation.contains("eos_token_id")) {
      const json& eos = generation["eos_token_id"];
      if (eos.is_number_integer()) return {eos.get<int32_t>()};
      if (eos.is_array() && !eos.empty()) return eos.get<std::vector<int32_t>>();
    }
  }
  return {int32_t(config.eosTokenId)};
}

json generationResultJson(const GenerationResult& result, int32_t topLogprobs) {
  json tokens = json::array(), logprobs = json::array(), top = json::array();
  for (const SampledToken& token : result.tokens) {
    tokens.push_back(token.id);
    logprobs.push_back(token.logprob);
    json pairs = json::array();
    for (const auto& [id, logprob] : token.topLogprobs) pairs.push_back({id, logprob});
    top.push_back(std::move(pairs));
  }
  json out{{"tokens", tokens},
           {"text", result.text},
           {"finish_reason", finishReasonName(result.finishReason)},
           {"usage", {{"prompt_tokens", result.promptTokens},
                      {"completion_tokens", result.tokens.size()},
                      {"total_tokens", result.promptTokens + int64_t(result.tokens.size())}}},
           {"timings", {{"prefill_seconds", result.prefillSeconds},
                        {"decode_seconds", result.decodeSeconds},
                        {"prefill_tokens_per_s", result.prefillTokensPerSecond()},
                        {"decode_tokens_per_s", result.decodeTokensPerSecond()}}}};
  if (topLogprobs > 0) {
    out["logprobs"] = logprobs;
    out["top_logprobs"] = top;
  }
  return out;
}

void printGenerationSummary(const GenerationResult& result) {
  std::fprintf(stderr,
               "\n\nprompt tokens: %lld, generated tokens: %zu (%s)\n"
               "prefill: %.2f tok/s (%.3f s), decode: %.2f tok/s (%.3f s)\n",
               (long long)result.promptTokens, result.tokens.size(),
               std::string(finishReasonName(result.finishReason)).c_str(), result.prefillTokensPerSecond(),
               result.prefillSeconds, result.decodeTokensPerSecond(), result.decodeSeconds);
}

}  // namespace phx::cli
