// The serving scheduler: continuous batching over one StepExecutor (the local engine or a cluster).
//
// Every step it (1) drops cancelled sequences and frees their KV blocks, (2) admits waiting sequences, first come
// first served, while the KV pool can hold their prompts (reusing cached prefix blocks, coordinator/prefix_cache.h),
// (3) gives each decoding sequence the block its next token needs, preempting the newest sequence when the pool is
// short (its blocks are freed and it is recomputed later from its tokens), (4) fills the step under a token
// budget: one token per decoding sequence first, then prompt chunks, and (5) samples each sequence's next token
// from the step's logit candidates, streaming text through TokenStream. Sequences join and leave the batch at every
// step. As vLLM's schedule() -> execute -> update_from_output(), a step is planned first (1-4: schedule(), whose
// batch is the pure planStep of coordinator/step_plan.h), then run, then applied (5: updateFromOutput). submit()
// and cancel() may be called from any thread; steps run on the one thread that calls run().
//
// Pipelining (an executor with maxStepsInFlight() > 1: a cluster of PP stages): the running sequences are split
// into as many lanes as steps may be in flight, each admitted sequence joining the lane being planned up to an
// even share; each lane's step is launched while the others' are still running, and the oldest is collected and
// applied before its lane plans again. Every stage then works at once on a different lane's step instead of one
// batch walking the stages, and each sequence still gets the tokens it would alone. Nothing frees or moves the
// blocks of a sequence whose step is in flight: a cancel waits for the step, and preempting waits for every step.
//
// Faults (a cluster worker died or hung): the KV of every sequence may be gone, so a step that fails with
// kDisconnected, or any change of the executor's kvEpoch(), forgets the prefix cache and replays every running
// sequence: it goes back to the head of the queue with its prompt and the tokens already sent, and is recomputed
// once the executor is ready again. Its sampler and stop-string state are kept, so a client sees a pause and then
// the tokens it would have had without the fault. Past recoveryTimeout without a working step, every sequence
// fails with kDisconnected.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/error.h"
#include "coordinator/block_allocator.h"
#include "coordinator/generation.h"
#include "coordinator/prefix_cache.h"
#include "coordinator/sampler.h"
#include "coordinator/step_plan.h"
#include "model/tokenizer.h"
#include "rpc/step.h"

namespace phx {

struct SchedulerOptions {
  int64_t maxBatchTokens = 512;   // tokens per step (decode tokens plus prefill chunks); at most the executor's
  int64_t maxPrefillTokens = 0;   // of those, prompt tokens at most (0: all of them)
  int64_t maxRunning = 64;        // sequences in the running batch
  int64_t maxWaiting = 256;       // sequences queued; more are refused (kOverloaded)
  int64_t maxContext = 0;         // the model's positions: prompt plus generated tokens stay below it
  bool prefixCaching = true;
  int32_t candidates = kDefaultCandidates;  // logit candidates per row (raised to a request's top_k/top_logprobs)
  std::chrono::milliseconds recoveryTimeout{60000};  // a fault's requests wait this long for the executor
  // Pipeline micro-batches: lanes of sequences whose steps are in flight at once. 0: one per step the executor
  // holds in flight (a cluster: its pipeline stages); 1: one batch at a time.
  int microBatches = 0;
};

struct SequenceRequest {
  std::vector<int32_t> promptTokens;
  SamplingParams params;
  uint64_t fallbackSeed = 0;  // the sampler's seed when params.seed is unset
};

// What a sequence reports, in order: kToken per generated token, then one kFinished or kFailed.
struct SequenceEvent {
  enum class Kind { kToken, kFinished, kFailed };
  Kind kind = Kind::kToken;
  SampledToken token;          // kToken
  std::string text;            // text now safe to show (kToken; kFinished: whatever was held back)
  FinishReason finishReason = FinishReason::kLength;  // kFinished
  std::string error;           // kFailed: why (the engine or a worker failed)
  ErrorKind errorKind = ErrorKind::kInternal;  // kFailed: what kind of failure (decides the HTTP status)
  int64_t promptTokens = 0;        // kFinished
  int64_t cachedPromptTokens = 0;  // kFinished: prompt tokens whose prefill the prefix cache saved
};
// Called on the scheduler thread; must not block for long (hand the event to the client's thread).
using SequenceSink = std::function<void(SequenceEvent&& event)>;

// A snapshot for /v1/phalanx/stats and the metrics exporter.
struct SchedulerStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t kvBlockSize = 0;
  int64_t kvBlocksTotal = 0;
  int64_t kvBlocksUsed = 0;        // held by sequences or by the prefix cache
  int64_t kvBlocksActive = 0;      // held by at least one sequence
  int64_t kvBlocksCached = 0;      // kept by the prefix cache (some may also be active)
  int64_t prefixQueryTokens = 0;   // prompt tokens looked up in the prefix cache
  int64_t prefixHitTokens = 0;     // of which found (their prefill skipped)
  int64_t steps = 0;
  int64_t microBatches = 1;  // lanes whose steps are in flight at once (pipeline micro-batching)
  int64_t lastStepSequences = 0;
  int64_t lastStepTokens = 0;
  int64_t preemptions = 0;
  int64_t replays = 0;          // sequences re-queued and recomputed after a fault
  int64_t kvInvalidations = 0;  // times the whole KV pool (prefix cache included) was forgotten
  int64_t sequencesFinished = 0;
  int64_t sequencesCancelled = 0;
  int64_t sequencesFailed = 0;
  int64_t promptTokens = 0;     // computed (prefilled) prompt tokens
  int64_t generatedTokens = 0;
};

struct StepReport {
  int64_t sequences = 0;
  int64_t decodeTokens = 0;
  int64_t prefillTokens = 0;
  double seconds = 0;
};

struct SequenceReport {
  FinishReason finishReason = FinishReason::kLength;
  bool failed = false;
  ErrorKind failure = ErrorKind::kInternal;  // why, when failed (kDisconnected: a worker went away)
  int64_t promptTokens = 0;
  int64_t cachedPromptTokens = 0;
  int64_t generatedTokens = 0;
  double queueSeconds = 0;  // submitted until first admitted
  double ttftSeconds = 0;   // submitted until the first token was sampled (0 if none)
  double e2eSeconds = 0;
};

// Hooks for the metrics exporter; called on the scheduler thread.
struct SchedulerHooks {
  std::function<void(const StepReport&)> onStep;
  std::function<void(const SequenceReport&)> onSequenceEnd;
  std::function<void(double secondsSincePreviousToken)> onInterToken;  // every token after a sequence's first
  std::function<void(int64_t sequences)> onReplay;  // sequences replayed after a fault
};

class Scheduler {
 public:
  // Keeps references to the executor and tokenizer. Throws phx::Error (invalid argument) for options that do not
  // fit the executor.
  Scheduler(StepExecutor& executor, const Tokenizer& tokenizer, SchedulerOptions options, SchedulerHooks hooks = {});
  // Takes its blocks from `blocks` (the executor's pool, shared with other holders: generate()) rather than owning
  // the whole pool.
  Scheduler(StepExecutor& executor, BlockAllocator& blocks, const Tokenizer& tokenizer, SchedulerOptions options);
  ~Scheduler();

  // Queues sequences (all or none); returns their ids for cancel(). Throws phx::Error: kInvalidArgument naming the
  // limit for a prompt that can never run (empty, ids outside the vocabulary, not below the context, more than the
  // whole KV pool), kOverloaded when the queue is full.
  std::vector<uint64_t> submit(std::vector<SequenceRequest> requests, std::vector<SequenceSink> sinks);
  // Ends a sequence at the next step and frees its KV blocks (no further events). Unknown ids are ignored.
  void cancel(uint64_t id);
  SchedulerStats stats() const;

  // The scheduler thread: runs steps until `stop` is requested, sleeping while there is nothing to do; sequences
  // still queued or running then fail with "shutting down".
  void run(std::stop_token stop);
  // One step of the loop above (for tests that drive the scheduler without a thread); false when idle.
  bool step();

 private:
  struct Sequence;
  // A planned step, launched and not yet applied: its lane's sequences (the planner's input, by chunk.sequence).
  struct LaunchedStep {
    StepPlan plan;
    std::vector<Sequence*> members;
    int lane = 0;
    std::chrono::steady_clock::time_point start;
    std::exception_ptr launchError;  // the executor refused it at launch: raised when collected
  };
  Scheduler(StepExecutor& executor, std::unique_ptr<BlockAllocator> own, BlockAllocator* lent,
            const Tokenizer& tokenizer, SchedulerOptions options, SchedulerHooks hooks);
  // step(), in its phases: plan (admission, blocks, the batch), run, update (sample, advance, stats).
  LaunchedStep schedule(int lane);
  bool launchNext();
  void collectOldest();
  const StepOutput* execute(LaunchedStep& step);
  void abandonLaunched();
  void landed(Sequence& sequence);
  void checkOutput(const StepPlan& plan, const StepOutput& output) const;
  void updateFromOutput(const LaunchedStep& step, const StepOutput& output, double seconds);
  bool awaitRecovery();
  void takeSubmissions();
  // KV blocks (scheduler_blocks.cc).
  int64_t laneSize(int lane) const;
  void admit(int lane);
  bool reserveDecodeBlocks(int lane);
  void preempt(Sequence& sequence);
  // Faults: see the header comment. executorUsable() is false while the executor recovers.
  bool executorUsable();
  void forgetKv();
  void replayRunning();
  void acceptToken(Sequence& sequence, SampledToken token);
  void registerFullBlocks(Sequence& sequence);
  void end(Sequence& sequence, SequenceEvent event);
  void retireEnded();
  void failAll(const std::string& why, ErrorKind kind = ErrorKind::kInternal);
  void publishStats();

  StepExecutor& executor_;
  const Tokenizer& tokenizer_;
  SchedulerOptions options_;
  SchedulerHooks hooks_;
  std::unique_ptr<BlockAllocator> ownAllocator_;  // the whole pool, unless the caller lends one
  BlockAllocator& allocator_;
  PrefixCache prefixCache_;

  // Shared with submitting threads.
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  std::vector<std::unique_ptr<Sequence>> submitted_;
  std::vector<uint64_t> cancelled_;
  int64_t waitingSeen_ = 0;  // waiting_.size() as the scheduler thread last published it, for the queue limit
  uint64_t nextId_ = 1;
  SchedulerStats stats_;
  uint64_t kvEpoch_ = 0;  // the executor's kvEpoch() the cached KV belongs to
  std::optional<std::chrono::steady_clock::time_point> recoveringSince_;  // the first failed step of a fault
  std::string lastFault_;

  // The scheduler thread's own.
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order: the newest last (preempted first)
  SchedulerStats counters_;
  const int depth_;  // lanes: the executor's maxStepsInFlight()
  int nextLane_ = 0;
  std::deque<LaunchedStep> launched_;  // oldest first; a deque keeps each batch in place while it is in flight
  bool drainForBlocks_ = false;        // a lane must preempt: launch nothing until every step is collected
};

}  // namespace phx
