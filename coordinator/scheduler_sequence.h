// A sequence as the scheduler keeps it (coordinator/scheduler.h): its tokens, its KV blocks, its sampler and text
// stream, and where it stands in the pipeline. Shared by the scheduler's files, not part of its interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "coordinator/scheduler.h"
#include "coordinator/token_stream.h"

namespace phx {

struct Scheduler::Sequence {
  using Clock = std::chrono::steady_clock;

  Sequence(uint64_t id, SequenceRequest request, SequenceSink sink, const Tokenizer& tokenizer)
      : id(id),
        sink(std::move(sink)),
        tokens(std::move(request.promptTokens)),
        promptTokens(int64_t(tokens.size())),
        sampler(request.params, request.fallbackSeed),
        stream(tokenizer, request.params.stopTokenIds, request.params.stopStrings) {}

  uint64_t id;
  SequenceSink sink;
  std::vector<int32_t> tokens;  // prompt, then generated: a preempted sequence recomputes all of them
  int64_t promptTokens;
  std::vector<int32_t> generated;
  int64_t computed = 0;  // tokens whose keys and values are in the cache
  BlockTable table;
  std::vector<uint64_t> blockHashes;  // chain hashes of the full blocks offered to the prefix cache
  Sampler sampler;
  TokenStream stream;
  int64_t cachedPromptTokens = 0;
  bool ended = false;
  // Pipelining: the lane (micro-batch) whose steps carry this sequence, and whether one of them is in flight now.
  // An in-flight sequence's blocks are being written: nothing frees or moves them until its step is collected.
  int lane = 0;
  bool inFlight = false;
  bool cancelRequested = false;  // cancelled while in flight: ended when its step is collected
  Clock::time_point submitted = Clock::now();
  Clock::time_point admitted{};
  Clock::time_point firstToken{};
  Clock::time_point lastToken{};
  SequenceReport report;
};

}  // namespace phx
