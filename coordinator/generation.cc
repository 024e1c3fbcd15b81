#include "coordinator/generation.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "common/elapsed.h"
#include "common/error.h"
#include "coordinator/scheduler.h"

namespace phx {
namespace {

using Clock = std::chrono::steady_clock;

bool isCancelled(const std::atomic<bool>* cancel) { return cancel != nullptr && cancel->load(); }

void validateRequest(const GenerationRequest& request, const StepExecutor& executor, const BlockAllocator& blocks) {
  if (request.promptTokens.empty()) throwInvalidArgument("generate: the prompt has no tokens");
  if (int64_t(request.promptTokens.size()) >= request.maxContext) {
    throwInvalidArgument("generate: the prompt has " + std::to_string(request.promptTokens.size()) +
                         " tokens; the model's context holds " + std::to_string(request.maxContext) +
                         " including at least one generated token");
  }
  if (request.prefillChunk < 1) throwInvalidArgument("generate: the prefill chunk must be at least 1 token");
  if (request.candidates < 0) throwInvalidArgument("generate: candidates must be 0 (dense logits) or more");
  if (blocks.blockSize() != executor.kvBlockSize() || blocks.numBlocks() > executor.kvBlockCount()) {
    throwInvalidArgument("generate: the block allocator (" + std::to_string(blocks.numBlocks()) + " blocks of " +
                         std::to_string(blocks.blockSize()) + ") does not match the engine's KV pool (" +
                         std::to_string(executor.kvBlockCount()) + " blocks of " +
                         std::to_string(executor.kvBlockSize()) + ")");
  }
  validateSamplingParams(request.params);
}

// The one sequence's events as a GenerationResult, its text streamed to `onText` as it comes.
struct ResultCollector {
  GenerationResult& result;
  const TextSink& onText;
  Clock::time_point start = Clock::now();
  Clock::time_point firstToken{};
  bool done = false;
  std::optional<Error> failure;

  void operator()(SequenceEvent&& event) {
    if (event.kind == SequenceEvent::Kind::kToken) {
      if (result.tokens.empty()) {
        result.prefillSeconds = secondsSince(start);
        firstToken = Clock::now();
      }
      result.tokens.push_back(std::move(event.token));
    }
    result.text += event.text;
    if (!event.text.empty()) onText(event.text);
    if (event.kind == SequenceEvent::Kind::kFinished) result.finishReason = event.finishReason;
    if (event.kind == SequenceEvent::Kind::kFailed) failure = Error(event.errorKind, "generate: " + event.error);
    done = event.kind != SequenceEvent::Kind::kToken;
  }

  void finishTimings() {
    if (result.tokens.empty()) {
      result.prefillSeconds = secondsSince(start);
    } else {
      result.decodeSeconds = secondsSince(firstToken);
    }
  }
};

}  // namespace

std::string_view finishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

GenerationResult generate(StepExecutor& executor, BlockAllocator& blocks, const Tokenizer& tokenizer,
                          const GenerationRequest& request, const TextSink& onText, const std::atomic<bool>* cancel) {
  validateRequest(request, executor, blocks);
  GenerationResult result;
  result.promptTokens = int64_t(request.promptTokens.size());
  if (blocks.blocksFor(result.promptTokens) > blocks.freeBlocks()) {
    throw Error(ErrorKind::kOverloaded, "generate: the KV cache (" + std::to_string(blocks.freeBlocks()) +
                                            " free blocks of " + std::to_string(blocks.blockSize()) +
                                            " tokens) cannot hold the " + std::to_string(result.promptTokens) +
                                            "-token prompt");
  }
  // A batch of one: the prompt in chunks of prefillChunk, then a token a step, under the scheduler's own rules.
  Scheduler scheduler(executor, blocks, tokenizer,
                      {.maxBatchTokens = request.prefillChunk,
                       .maxRunning = 1,
                       .maxWaiting = 1,
                       .maxContext = request.maxContext,
                       .prefixCaching = false,
                       .candidates = request.candidates});
  ResultCollector collector{result, onText};
  const uint64_t id = scheduler.submit({{request.promptTokens, request.params, request.fallbackSeed}},
                                       {[&collector](SequenceEvent&& event) { collector(std::move(event)); }})[0];
  while (!collector.done) {
    if (isCancelled(cancel)) {
      scheduler.cancel(id);
      scheduler.step();  // frees its blocks
      result.finishReason = FinishReason::kCancelled;
      break;
    }
    if (!scheduler.step() && !collector.done) throw Error(ErrorKind::kInternal, "generate: the scheduler went idle");
  }
  collector.finishTimings();
  if (collector.failure) throw *collector.failure;
  return result;
}

}  // namespace phx
