// One sequence generated to completion: a thin client of the batching scheduler (coordinator/scheduler.h) with a
// batch of one, so the prompt is prefilled in chunks, then one token a step, sampled, stopped (a stop token id, a
// stop string, max tokens, a full context or cancellation) and streamed by exactly the code that serves every
// request: whole UTF-8 characters, never part of a stop string (TokenStream).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/block_allocator.h"
#include "coordinator/sampler.h"
#include "model/tokenizer.h"
#include "rpc/step.h"

namespace phx {

enum class FinishReason { kStop, kLength, kCancelled };
// "stop", "length", "cancelled" (OpenAI's names for the first two)
std::string_view finishReasonName(FinishReason reason);

struct GenerationRequest {
  std::vector<int32_t> promptTokens;
  SamplingParams params;
  int64_t prefillChunk = 512;    // prompt tokens per step
  int64_t maxContext = 0;        // positions the model takes; generation ends ("length") when reached
  uint64_t fallbackSeed = 0;     // for the sampler when params.seed is unset
  // 0: sample from dense logits. K > 0: steps ask for each row's K most likely tokens (rpc/step.h), what a
  // cluster sends back instead of the whole vocabulary; logprobs stay exact, the draw keeps to the candidates.
  int32_t candidates = 0;
};

struct GenerationResult {
  std::vector<SampledToken> tokens;  // generated, stop token included
  std::string text;                  // what was streamed: stop tokens and stop strings are not in it
  FinishReason finishReason = FinishReason::kLength;
  int64_t promptTokens = 0;
  double prefillSeconds = 0;  // until the first generated token was sampled
  double decodeSeconds = 0;   // the remaining tokens

  double prefillTokensPerSecond() const { return prefillSeconds > 0 ? promptTokens / prefillSeconds : 0; }
  double decodeTokensPerSecond() const {
    return decodeSeconds > 0 && tokens.size() > 1 ? double(tokens.size() - 1) / decodeSeconds : 0;
  }
};

// Receives each piece of text as soon as it is safe to show.
using TextSink = std::function<void(std::string_view text)>;

// Runs one sequence to completion on `executor`, holding its KV blocks from `blocks` for the duration. `cancel`
// (optional) is polled between steps, e.g. set by a SIGINT handler; the tokens so far are returned. Throws
// phx::Error (invalid argument) for an empty prompt or a prompt longer than the context, kOverloaded when the KV
// pool cannot hold the prompt.
GenerationResult generate(StepExecutor& executor, BlockAllocator& blocks, const Tokenizer& tokenizer,
                          const GenerationRequest& request, const TextSink& onText,
                          const std::atomic<bool>* cancel = nullptr);

}  // namespace phx
