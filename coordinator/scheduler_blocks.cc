// The scheduler's KV blocks (coordinator/scheduler.h): admission against the pool and the prefix cache, the block
// each decoding sequence's next token needs (preempting when short) and full blocks offered to the prefix cache.
#include <algorithm>

#include "coordinator/scheduler.h"
#include "coordinator/scheduler_sequence.h"

namespace phx {

using Clock = std::chrono::steady_clock;

int64_t Scheduler::laneSize(int lane) const {
  return std::count_if(running_.begin(), running_.end(), [lane](auto& s) { return !s->ended && s->lane == lane; });
}

// Pipelined, each lane takes its share of the sequences, so that the micro-batches stay about the same size.
void Scheduler::admit(int lane) {
  const int64_t blockSize = allocator_.blockSize();
  const int64_t share = (int64_t(running_.size() + waiting_.size()) + depth_ - 1) / depth_;
  int64_t inLane = laneSize(lane);  // counted as sequences join, rather than recounted for each
  while (!waiting_.empty() && int64_t(running_.size()) < options_.maxRunning && inLane < share) {
    Sequence& sequence = *waiting_.front();
    const int64_t length = int64_t(sequence.tokens.size());
    if (allocator_.blocksFor(length + 1) > allocator_.numBlocks()) {
      // Only a preempted sequence grows past the pool: it has generated all the pool can hold.
      end(sequence, {.kind = SequenceEvent::Kind::kFinished, .finishReason = FinishReason::kLength});
    } else {
      // At least one token is computed even when the whole prompt is cached: its logits give the next token.
      BlockTable matched;
      if (options_.prefixCaching) matched = prefixCache_.acquire(sequence.tokens, (length - 1) / blockSize);
      const int64_t needed = allocator_.blocksFor(length) - int64_t(matched.size());
      if (allocator_.freeBlocks() < needed) prefixCache_.evictUntilFree(needed);
      if (allocator_.freeBlocks() < needed) {
        allocator_.release(matched);
        break;  // first come, first served: the head of the queue waits for blocks
      }
      const int64_t reused = int64_t(matched.size());
      sequence.table = std::move(matched);
      allocator_.grow(sequence.table, length);
      sequence.computed = reused * blockSize;
      uint64_t previous = 0;
      for (int64_t i = 0; i < reused; ++i) {
        previous = PrefixCache::chainHash(previous, std::span(sequence.tokens).subspan(size_t(i * blockSize),
                                                                                        size_t(blockSize)));
        sequence.blockHashes.push_back(previous);
      }
      if (sequence.admitted == Clock::time_point{}) {
        sequence.admitted = Clock::now();
        sequence.cachedPromptTokens = sequence.computed;
        counters_.prefixQueryTokens += sequence.promptTokens;
        counters_.prefixHitTokens += sequence.computed;
      }
    }
    sequence.lane = lane;
    if (!sequence.ended) ++inLane;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Scheduler::preempt(Sequence& sequence) {
  allocator_.release(sequence.table);
  sequence.computed = 0;
  sequence.blockHashes.clear();
  ++counters_.preemptions;
}

// Each sequence whose next step computes its last token needs the block that token lands in. When the pool is
// short: evict cached prefixes, then preempt the newest sequence (possibly this one); a sequence alone in the
// batch that still cannot grow ends with "length". Only the lane's sequences grow; preempting waits until no step is
// in flight (drainForBlocks_), since an in-flight step writes its sequences' blocks. Returns false when the lane has
// nothing left to run.
bool Scheduler::reserveDecodeBlocks(int lane) {
  for (size_t i = 0; i < running_.size(); ++i) {
    Sequence& sequence = *running_[i];
    if (sequence.ended || sequence.lane != lane) continue;
    const int64_t length = int64_t(sequence.tokens.size());
    while (!allocator_.grow(sequence.table, length)) {
      const int64_t short_ = allocator_.blocksFor(length) - int64_t(sequence.table.size());
      if (prefixCache_.evictUntilFree(short_)) continue;
      if (!launched_.empty()) {
        drainForBlocks_ = true;
        return false;
      }
      auto victim = std::find_if(running_.rbegin(), running_.rend(), [](auto& s) { return !s->ended; });
      if (victim->get() == &sequence && std::count_if(running_.begin(), running_.end(),
                                                      [](auto& s) { return !s->ended; }) == 1) {
        end(sequence, {.kind = SequenceEvent::Kind::kFinished, .finishReason = FinishReason::kLength});
        break;
      }
      const bool self = victim->get() == &sequence;
      preempt(**victim);
      waiting_.push_front(std::move(*victim));
      running_.erase(std::next(victim).base());
      if (self) break;
    }
  }
  return std::any_of(running_.begin(), running_.end(), [lane](auto& s) { return !s->ended && s->lane == lane; });
}

void Scheduler::registerFullBlocks(Sequence& sequence) {
  const int64_t blockSize = allocator_.blockSize();
  while (int64_t(sequence.blockHashes.size() + 1) * blockSize <= sequence.computed) {
    const int64_t block = int64_t(sequence.blockHashes.size());
    const uint64_t previous = sequence.blockHashes.empty() ? 0 : sequence.blockHashes.back();
    sequence.blockHashes.push_back(prefixCache_.insert(
        previous, std::span(sequence.tokens).subspan(size_t(block * blockSize), size_t(blockSize)),
        sequence.table[size_t(block)]));
  }
}

}  // namespace phx
