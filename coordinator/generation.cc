#include "coordinator/generation.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "common/elapsed.h"
#include "common/error.h"
#include "coordinator/token_stream.h"

namespace phx {
namespace {

using Clock = std::chrono::steady_clock;


// Holds a sequence's KV blocks and gives them back however the generation ends.
class SequenceBlocks {
 public:
  explicit SequenceBlocks(BlockAllocator& allocator) : allocator_(allocator) {}
  ~SequenceBlocks() { allocator_.release(table_); }
  bool grow(int64_t contextTokens) { return allocator_.grow(table_, contextTokens); }
  const BlockTable& table() const { return table_; }

 private:
  BlockAllocator& allocator_;
  BlockTable table_;
};

bool isCancelled(const std::atomic<bool>* cancel) { return cancel != nullptr && cancel->load(); }

// One step appending `tokens` to a sequence that has `cached` tokens in the cache.
const StepOutput& runChunk(StepExecutor& executor, std::span<const int32_t> tokens, int64_t cached,
                           const BlockTable& table, LogitsFor logits, int32_t candidates) {
  StepBatch batch;
  batch.candidates = candidates;
  batch.tokens.assign(tokens.begin(), tokens.end());
  batch.sequences.push_back({cached, int64_t(tokens.size()), table, logits});
  return executor.run(batch);
}

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

// Runs the prompt in chunks of request.prefillChunk tokens; the output of the last (its logits), or nullptr when
// cancelled between chunks.
const StepOutput* prefill(StepExecutor& executor, const GenerationRequest& request, const BlockTable& table,
                          const std::atomic<bool>* cancel) {
  const std::span<const int32_t> prompt(request.promptTokens);
  const StepOutput* output = nullptr;
  for (int64_t cached = 0; cached < int64_t(prompt.size());) {
    const int64_t chunk = std::min(request.prefillChunk, int64_t(prompt.size()) - cached);
    const bool last = cached + chunk == int64_t(prompt.size());
    output = &runChunk(executor, prompt.subspan(size_t(cached), size_t(chunk)), cached, table,
                       last ? LogitsFor::kLast : LogitsFor::kNone, request.candidates);
    cached += chunk;
    if (isCancelled(cancel)) return nullptr;
  }
  return output;
}

// The decode loop: sample, stream the text, stop or run the next token.
struct Decoding {
  StepExecutor& executor;
  const GenerationRequest& request;
  SequenceBlocks& sequence;
  const Tokenizer& tokenizer;
  const TextSink& onText;
  const std::atomic<bool>* cancel;
  GenerationResult& result;

  void run(const StepOutput& prefillOutput, Clock::time_point start) {
    const SamplingParams& params = request.params;
    Sampler sampler(params, request.fallbackSeed);
    TokenStream stream(tokenizer, params.stopTokenIds, params.stopStrings);  // the scheduler's stop rules
    std::vector<int32_t> history;
    const StepOutput* output = &prefillOutput;
    Clock::time_point decodeStart;
    for (int64_t cached = result.promptTokens;; ++cached) {
      result.tokens.push_back(request.candidates > 0 ? sampler.sample(output->candidates.at(0), history)
                                                     : sampler.sample(output->row(0), history));
      const int32_t id = result.tokens.back().id;
      history.push_back(id);
      if (result.tokens.size() == 1) {
        result.prefillSeconds = secondsSince(start);
        decodeStart = Clock::now();
      }
      show(stream.push(id));
      if (stream.stopped()) {
        result.finishReason = FinishReason::kStop;
        break;
      }
      // The next step writes position `cached`: it needs a place in the context and in the KV pool.
      if (int64_t(result.tokens.size()) >= params.maxTokens || cached + 1 > request.maxContext ||
          !sequence.grow(cached + 1)) {
        result.finishReason = FinishReason::kLength;
        break;
      }
      if (isCancelled(cancel)) {
        result.finishReason = FinishReason::kCancelled;
        break;
      }
      output = &runChunk(executor, std::span(&history.back(), 1), cached, sequence.table(), LogitsFor::kLast,
                         request.candidates);
    }
    show(stream.finish());
    result.decodeSeconds = secondsSince(decodeStart);
  }

  void show(const std::string& text) {
    result.text += text;
    if (!text.empty()) onText(text);
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
  SequenceBlocks sequence(blocks);
  if (!sequence.grow(result.promptTokens)) {
    throw Error(ErrorKind::kOverloaded, "generate: the KV cache (" + std::to_string(blocks.freeBlocks()) +
                                            " free blocks of " + std::to_string(blocks.blockSize()) +
                                            " tokens) cannot hold the " + std::to_string(result.promptTokens) +
                                            "-token prompt");
  }
  const auto start = Clock::now();
  const StepOutput* output = prefill(executor, request, sequence.table(), cancel);
  if (output == nullptr) {
    result.finishReason = FinishReason::kCancelled;
    result.prefillSeconds = secondsSince(start);
    return result;
  }
  if (output->vocabBegin != 0 || output->vocabCount != tokenizer.vocabSize()) {
    throwInvalidArgument("generate: the engine returned vocab rows [" + std::to_string(output->vocabBegin) + ", " +
                         std::to_string(output->vocabBegin + output->vocabCount) + "), expected the whole " +
                         std::to_string(tokenizer.vocabSize()) + "-token vocabulary");
  }
  Decoding decoding{executor, request, sequence, tokenizer, onText, cancel, result};
  decoding.run(*output, start);
  return result;
}

}  // namespace phx
