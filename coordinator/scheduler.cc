#include "coordinator/scheduler.h"

#include <algorithm>
#include <chrono>

#include "common/elapsed.h"
#include "common/error.h"
#include "coordinator/step_plan.h"
#include "coordinator/scheduler_sequence.h"

namespace phx {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

Scheduler::Scheduler(StepExecutor& executor, const Tokenizer& tokenizer, SchedulerOptions options,
                     SchedulerHooks hooks)
    : Scheduler(executor, std::make_unique<BlockAllocator>(executor.kvBlockCount(), executor.kvBlockSize()), nullptr,
                tokenizer, options, std::move(hooks)) {}

Scheduler::Scheduler(StepExecutor& executor, BlockAllocator& blocks, const Tokenizer& tokenizer,
                     SchedulerOptions options)
    : Scheduler(executor, nullptr, &blocks, tokenizer, options, {}) {}

Scheduler::Scheduler(StepExecutor& executor, std::unique_ptr<BlockAllocator> own, BlockAllocator* lent,
                     const Tokenizer& tokenizer, SchedulerOptions options, SchedulerHooks hooks)
    : executor_(executor),
      tokenizer_(tokenizer),
      options_(options),
      hooks_(std::move(hooks)),
      ownAllocator_(std::move(own)),
      allocator_(lent != nullptr ? *lent : *ownAllocator_),
      prefixCache_(allocator_),
      depth_(std::clamp(options.microBatches > 0 ? options.microBatches : executor.maxStepsInFlight(), 1,
                        std::max(1, executor.maxStepsInFlight()))) {
  if (options_.maxBatchTokens < 1 || options_.maxRunning < 1 || options_.maxWaiting < 1 || options_.maxContext < 2 ||
      options_.candidates < 0) {
    throwInvalidArgument("scheduler: max batch tokens, max running and max waiting must be positive, the context at "
                         "least 2 positions and candidates 0 or more");
  }
  kvEpoch_ = executor_.kvEpoch();
  counters_.microBatches = depth_;
  counters_.kvBlockSize = allocator_.blockSize();
  counters_.kvBlocksTotal = allocator_.numBlocks();
  stats_ = counters_;
}

Scheduler::~Scheduler() {
  for (auto& sequence : running_) allocator_.release(sequence->table);
  prefixCache_.clear();
}

std::vector<uint64_t> Scheduler::submit(std::vector<SequenceRequest> requests, std::vector<SequenceSink> sinks) {
  const int64_t capacity = allocator_.numBlocks() * allocator_.blockSize();
  for (const SequenceRequest& request : requests) {
    const int64_t prompt = int64_t(request.promptTokens.size());
    if (prompt == 0) throwInvalidArgument("the prompt has no tokens");
    for (int32_t id : request.promptTokens) {
      if (id < 0 || id >= tokenizer_.vocabSize()) {
        throwInvalidArgument("prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                             std::to_string(tokenizer_.vocabSize()) + ")");
      }
    }
    if (prompt >= options_.maxContext) {
      throwInvalidArgument("the prompt has " + std::to_string(prompt) + " tokens; this model's maximum context length "
                           "is " + std::to_string(options_.maxContext) + " tokens, including at least one generated");
    }
    if (prompt + 1 > capacity) {
      throwInvalidArgument("the prompt has " + std::to_string(prompt) + " tokens; the server's KV cache holds " +
                           std::to_string(capacity) + " tokens in all (--kv-tokens), including one generated");
    }
    validateSamplingParams(request.params);
  }
  std::vector<uint64_t> ids;
  std::lock_guard lock(mutex_);
  if (int64_t(submitted_.size()) + waitingSeen_ + int64_t(requests.size()) > options_.maxWaiting) {
    throw Error(ErrorKind::kOverloaded, "the server's queue is full (" + std::to_string(options_.maxWaiting) +
                                            " sequences waiting); retry later");
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    ids.push_back(nextId_++);
    submitted_.push_back(std::make_unique<Sequence>(ids.back(), std::move(requests[i]), std::move(sinks[i]),
                                                    tokenizer_));
  }
  wake_.notify_one();
  return ids;
}

void Scheduler::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  cancelled_.push_back(id);
  wake_.notify_one();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Scheduler::takeSubmissions() {
  std::vector<uint64_t> cancelled;
  {
    std::lock_guard lock(mutex_);
    for (auto& sequence : submitted_) waiting_.push_back(std::move(sequence));
    submitted_.clear();
    waitingSeen_ = int64_t(waiting_.size());
    cancelled.swap(cancelled_);
  }
  for (uint64_t id : cancelled) {
    auto matches = [id](const std::unique_ptr<Sequence>& s) { return s->id == id; };
    if (auto it = std::find_if(running_.begin(), running_.end(), matches); it != running_.end()) {
      if ((*it)->inFlight) {
        (*it)->cancelRequested = true;  // its step is writing its blocks: ended when the step is collected
      } else if (!(*it)->ended) {
        allocator_.release((*it)->table);  // freed at once: the blocks serve the next admission
        (*it)->ended = true;
        ++counters_.sequencesCancelled;
      }
    }
    if (auto it = std::find_if(waiting_.begin(), waiting_.end(), matches); it != waiting_.end()) {
      allocator_.release((*it)->table);
      waiting_.erase(it);
      ++counters_.sequencesCancelled;
    }
  }
}

// Every running sequence back to the head of the queue, in admission order, to be recomputed from its tokens.
void Scheduler::replayRunning() {
  int64_t replayed = 0;
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    Sequence& sequence = **it;
    if (sequence.ended) continue;
    allocator_.release(sequence.table);
    sequence.computed = 0;
    sequence.blockHashes.clear();
    waiting_.push_front(std::move(*it));
    ++replayed;
  }
  std::erase_if(running_, [](const std::unique_ptr<Sequence>& s) { return s == nullptr || s->ended; });
  counters_.replays += replayed;
  if (replayed > 0 && hooks_.onReplay) hooks_.onReplay(replayed);
}

void Scheduler::forgetKv() {
  replayRunning();
  prefixCache_.clear();
  ++counters_.kvInvalidations;
}

// A new KV epoch forgets everything cached; an executor that is not ready leaves the queue waiting, up to the
// recovery timeout after the first failed step (cleared by the next step that succeeds), after which every
// sequence fails.
bool Scheduler::executorUsable() {
  if (const uint64_t epoch = executor_.kvEpoch(); epoch != kvEpoch_) {
    forgetKv();
    kvEpoch_ = epoch;
  }
  if (executor_.ready()) return true;
  const auto now = Clock::now();
  if (!recoveringSince_) recoveringSince_ = now;
  if (now - *recoveringSince_ > options_.recoveryTimeout) {
    const std::string why = "the cluster did not recover within " +
                            std::to_string(options_.recoveryTimeout.count() / 1000.0).substr(0, 5) +
                            " s (--recovery-timeout): " + lastFault_;
    for (auto& sequence : waiting_) {
      sequence->report.failure = ErrorKind::kDisconnected;
      end(*sequence, {.kind = SequenceEvent::Kind::kFailed, .error = why, .errorKind = ErrorKind::kDisconnected});
    }
    failAll(why, ErrorKind::kDisconnected);
    recoveringSince_.reset();
  }
  return false;
}

void Scheduler::acceptToken(Sequence& sequence, SampledToken token) {
  const auto now = Clock::now();
  if (sequence.generated.empty()) {
    sequence.firstToken = now;
  } else if (hooks_.onInterToken) {
    hooks_.onInterToken(secondsBetween(sequence.lastToken, now));
  }
  sequence.lastToken = now;
  sequence.generated.push_back(token.id);
  sequence.tokens.push_back(token.id);
  ++counters_.generatedTokens;
  SequenceEvent event{.kind = SequenceEvent::Kind::kToken, .token = std::move(token)};
  event.text = sequence.stream.push(event.token.id);
  const bool stopped = sequence.stream.stopped();
  sequence.sink(std::move(event));
  const SamplingParams& params = sequence.sampler.params();
  // The next step would write this token at position tokens - 1: it must lie inside the context.
  if (stopped) {
    end(sequence, {.kind = SequenceEvent::Kind::kFinished, .finishReason = FinishReason::kStop});
  } else if (int64_t(sequence.generated.size()) >= params.maxTokens ||
             int64_t(sequence.tokens.size()) > options_.maxContext) {
    end(sequence, {.kind = SequenceEvent::Kind::kFinished, .finishReason = FinishReason::kLength});
  }
}

void Scheduler::end(Sequence& sequence, SequenceEvent event) {
  const auto now = Clock::now();
  if (event.kind == SequenceEvent::Kind::kFinished) {
    event.text = sequence.stream.finish();
    event.promptTokens = sequence.promptTokens;
    event.cachedPromptTokens = sequence.cachedPromptTokens;
    ++counters_.sequencesFinished;
  } else {
    ++counters_.sequencesFailed;
  }
  SequenceReport& report = sequence.report;
  report.finishReason = event.finishReason;
  report.failed = event.kind == SequenceEvent::Kind::kFailed;
  report.promptTokens = sequence.promptTokens;
  report.cachedPromptTokens = sequence.cachedPromptTokens;
  report.generatedTokens = int64_t(sequence.generated.size());
  if (sequence.admitted != Clock::time_point{})
    report.queueSeconds = secondsBetween(sequence.submitted, sequence.admitted);
  if (!sequence.generated.empty()) report.ttftSeconds = secondsBetween(sequence.submitted, sequence.firstToken);
  report.e2eSeconds = secondsBetween(sequence.submitted, now);
  sequence.sink(std::move(event));
  if (hooks_.onSequenceEnd) hooks_.onSequenceEnd(report);
  allocator_.release(sequence.table);
  sequence.ended = true;
}

void Scheduler::retireEnded() {
  std::erase_if(running_, [](const std::unique_ptr<Sequence>& s) { return s->ended && !s->inFlight; });
  std::erase_if(waiting_, [](const std::unique_ptr<Sequence>& s) { return s->ended; });
}

// Plan, run, update (vLLM's schedule() -> execute -> update_from_output()). Pipelined, a step is launched for
// each idle lane until as many are in flight as the executor takes, then the oldest is collected and applied.
bool Scheduler::step() {
  takeSubmissions();
  retireEnded();
  if (launched_.empty()) {
    if (!executorUsable()) return awaitRecovery();
    drainForBlocks_ = false;
  }
  if (int(launched_.size()) < depth_ && !drainForBlocks_ && launchNext() && int(launched_.size()) < depth_) {
    return true;
  }
  if (launched_.empty()) return !running_.empty() || !waiting_.empty();
  collectOldest();
  return true;
}

// Plans the first idle lane (round robin) that has something to run and launches its step.
bool Scheduler::launchNext() {
  for (int i = 0; i < depth_; ++i) {
    const int lane = (nextLane_ + i) % depth_;
    if (std::any_of(launched_.begin(), launched_.end(), [lane](auto& s) { return s.lane == lane; })) continue;
    LaunchedStep step = schedule(lane);
    if (drainForBlocks_) return false;
    if (step.plan.empty()) continue;
    nextLane_ = (lane + 1) % depth_;
    for (const PlannedChunk& chunk : step.plan.chunks) step.members[chunk.sequence]->inFlight = true;
    step.start = Clock::now();
    LaunchedStep& launched = launched_.emplace_back(std::move(step));
    if (depth_ > 1) {
      try {
        executor_.launch(launched.plan.batch);
      } catch (const std::exception&) {
        launched.launchError = std::current_exception();  // raised when the step is collected, as run()'s would be
      } catch (...) {
        launched.launchError = std::make_exception_ptr(Error(ErrorKind::kInternal, "the executor failed a launch"));
      }
    }
    return true;
  }
  return false;
}

void Scheduler::collectOldest() {
  LaunchedStep& step = launched_.front();
  const StepOutput* output = execute(step);  // null: failed, every step in flight abandoned and handled
  if (output == nullptr) return;
  for (const PlannedChunk& chunk : step.plan.chunks) landed(*step.members[chunk.sequence]);
  updateFromOutput(step, *output, secondsBetween(step.start, Clock::now()));
  launched_.pop_front();
}

// Its step is done: the sequence's blocks are its own again, and a cancel that waited for the step takes effect.
void Scheduler::landed(Sequence& sequence) {
  sequence.inFlight = false;
  if (!sequence.cancelRequested || sequence.ended) return;
  allocator_.release(sequence.table);
  sequence.ended = true;
  ++counters_.sequencesCancelled;
}

// After a failed step: the other steps in flight are waited for and dropped (they fail with it, or their outputs
// go unread: their sequences are replayed or failed with the rest).
void Scheduler::abandonLaunched() {
  for (size_t i = 1; i < launched_.size(); ++i) {
    if (launched_[i].launchError) continue;
    try {
      executor_.collect();
    } catch (const std::exception&) {
    }
  }
  for (LaunchedStep& step : launched_) {
    for (const PlannedChunk& chunk : step.plan.chunks) landed(*step.members[chunk.sequence]);
  }
  launched_.clear();
}

bool Scheduler::awaitRecovery() {
  retireEnded();
  publishStats();
  // Sequences still running (the fault was seen between steps, before any step failed) wait as well: returning
  // idle here would park the loop until the next submission and leave them hanging.
  if (waiting_.empty() && running_.empty()) return false;
  std::unique_lock lock(mutex_);  // recovering: look again shortly, or at once for a submission
  wake_.wait_for(lock, std::chrono::milliseconds(20));
  return true;
}

// Admits what fits into the lane, gives each of its sequences the blocks its next token needs (preempting when
// short) and plans the lane's step. Publishes the stats of the batch it plans.
Scheduler::LaunchedStep Scheduler::schedule(int lane) {
  admit(lane);
  retireEnded();
  const bool runnable = reserveDecodeBlocks(lane);
  retireEnded();
  LaunchedStep step{.lane = lane};
  if (runnable && !drainForBlocks_) {
    std::vector<PlannableSequence> sequences;
    for (const auto& sequence : running_) {
      if (sequence->ended || sequence->lane != lane) continue;
      const SamplingParams& p = sequence->sampler.params();
      // A request whose top_k or top_logprobs exceeds the batch's candidates widens its own rows only.
      const int32_t wanted = options_.candidates > 0 ? std::max(p.topK, p.topLogprobs) : 0;
      const int32_t own = wanted > options_.candidates ? int32_t(std::min<int64_t>(wanted, tokenizer_.vocabSize())) : 0;
      sequences.push_back({sequence->tokens, sequence->computed, &sequence->table, own});
      step.members.push_back(sequence.get());
    }
    step.plan = planStep(sequences, options_.maxBatchTokens, options_.candidates, kvEpoch_, options_.maxPrefillTokens);
  }
  publishStats();
  return step;
}

// An executor's output that does not hold one row per sampled chunk, over the whole vocabulary, would be sampled
// into wrong ids: it fails the step instead.
void Scheduler::checkOutput(const StepPlan& plan, const StepOutput& output) const {
  const auto rows = std::count_if(plan.chunks.begin(), plan.chunks.end(), [](auto& c) { return c.sampled; });
  const bool dense = plan.batch.candidates == 0;
  const bool shaped = dense ? output.rows == rows && output.vocabBegin == 0 &&
                                  output.vocabCount == tokenizer_.vocabSize() &&
                                  int64_t(output.logits.size()) == rows * output.vocabCount
                            : int64_t(output.candidates.size()) == rows;
  if (!shaped) {
    throw Error(ErrorKind::kInternal,
                "the executor returned " + std::to_string(dense ? output.rows : int64_t(output.candidates.size())) +
                    " logit rows over vocab [" + std::to_string(output.vocabBegin) + ", " +
                    std::to_string(output.vocabBegin + output.vocabCount) + "); the step asked for " +
                    std::to_string(rows) + " rows over the whole " + std::to_string(tokenizer_.vocabSize()) +
                    "-token vocabulary");
  }
}

// The step's logits, or null when it failed: a lost worker (kDisconnected) replays every sequence once the
// cluster is back; any other failure fails the running sequences. Either way the other steps in flight go with it.
const StepOutput* Scheduler::execute(LaunchedStep& step) {
  try {
    if (step.launchError) std::rethrow_exception(step.launchError);
    const StepOutput& output = depth_ > 1 ? executor_.collect() : executor_.run(step.plan.batch);
    checkOutput(step.plan, output);
    return &output;
  } catch (const std::exception& error) {
    abandonLaunched();
    const auto* known = dynamic_cast<const Error*>(&error);
    const ErrorKind kind = known ? known->kind() : ErrorKind::kInternal;
    if (kind == ErrorKind::kDisconnected) {
      // The KV this step and earlier ones wrote may be gone with the worker: replay once the cluster is back.
      lastFault_ = error.what();
      if (!recoveringSince_) recoveringSince_ = Clock::now();
      forgetKv();
    } else {
      failAll(std::string("the model step failed: ") + error.what(), kind);
    }
    publishStats();
    return nullptr;
  }
}

// Advances each planned sequence by its chunk, offers its full blocks to the prefix cache and samples the rows it
// asked for (logit rows come in batch order, one per sampled chunk).
void Scheduler::updateFromOutput(const LaunchedStep& step, const StepOutput& output, double seconds) {
  const StepPlan& plan = step.plan;
  recoveringSince_.reset();
  int64_t row = 0;
  for (const PlannedChunk& chunk : plan.chunks) {
    Sequence& sequence = *step.members[chunk.sequence];
    const int64_t r = chunk.sampled ? row++ : -1;
    if (sequence.ended) continue;  // cancelled while its step was in flight
    counters_.promptTokens += std::clamp<int64_t>(sequence.promptTokens - sequence.computed, 0, chunk.tokens);
    sequence.computed += chunk.tokens;
    if (options_.prefixCaching) registerFullBlocks(sequence);
    if (!chunk.sampled) continue;
    acceptToken(sequence, plan.batch.candidates > 0
                              ? sequence.sampler.sample(output.candidates.at(size_t(r)), sequence.generated)
                              : sequence.sampler.sample(output.row(r), sequence.generated));
  }
  retireEnded();
  const StepReport report{.sequences = int64_t(plan.chunks.size()), .decodeTokens = plan.decodeTokens,
                          .prefillTokens = plan.prefillTokens, .seconds = seconds};
  counters_.steps++;
  counters_.lastStepSequences = report.sequences;
  counters_.lastStepTokens = int64_t(plan.batch.tokens.size());
  if (hooks_.onStep) hooks_.onStep(report);
  publishStats();
}

void Scheduler::failAll(const std::string& why, ErrorKind kind) {
  for (auto& sequence : running_) {
    if (sequence->ended) continue;
    sequence->report.failure = kind;
    end(*sequence, {.kind = SequenceEvent::Kind::kFailed, .error = why, .errorKind = kind});
  }
  retireEnded();
}

void Scheduler::publishStats() {
  counters_.running = int64_t(running_.size());
  counters_.waiting = int64_t(waiting_.size());
  counters_.kvBlocksUsed = allocator_.usedBlocks();
  counters_.kvBlocksCached = prefixCache_.cachedBlocks();
  counters_.kvBlocksActive = allocator_.usedBlocks() - prefixCache_.evictableBlocks();
  std::lock_guard lock(mutex_);
  waitingSeen_ = int64_t(waiting_.size());
  counters_.waiting += int64_t(submitted_.size());
  stats_ = counters_;
}

void Scheduler::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    if (step()) continue;
    std::unique_lock lock(mutex_);
    wake_.wait(lock, stop, [this] { return !submitted_.empty() || !cancelled_.empty(); });
  }
  abandonLaunched();
  takeSubmissions();
  for (auto& sequence : waiting_) {
    if (!sequence->ended)
      end(*sequence, {.kind = SequenceEvent::Kind::kFailed, .error = "the server is shutting down",
                      .errorKind = ErrorKind::kOverloaded});
  }
  failAll("the server is shutting down", ErrorKind::kOverloaded);
  retireEnded();
  publishStats();
}

}  // namespace phx
