#include "coordinator/cluster_executor.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "common/error.h"
#include "coordinator/cluster_candidates.h"
#include "coordinator/cluster_control.h"

namespace phx {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::unique_ptr<ClusterExecutor> ClusterExecutor::start(ClusterExecutorOptions options) {
  if (options.epoch == 0) {
    // A restarted coordinator starts later than the one it replaces: its epoch is larger and fences the old one.
    options.epoch = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
  }
  std::unique_ptr<ClusterExecutor> executor(new ClusterExecutor());
  executor->control_ = std::make_unique<Control>(std::move(options));
  executor->control_->startUp();
  return executor;
}

ClusterExecutor::ClusterExecutor() = default;
ClusterExecutor::~ClusterExecutor() = default;

int64_t ClusterExecutor::kvBlockSize() const { return control_->options.kvBlockSize; }
int64_t ClusterExecutor::kvBlockCount() const { return control_->options.kvBlocks; }
bool ClusterExecutor::ready() const { return control_->ready; }
uint64_t ClusterExecutor::kvEpoch() const { return control_->kvEpoch; }
MatmulCompute ClusterExecutor::compute() const { return control_->compute(); }
const ShardPlan& ClusterExecutor::plan() const { return control_->options.plan; }
std::vector<WorkerLoadReport> ClusterExecutor::loadReports() const { return control_->loadReports(); }
void ClusterExecutor::shutdownWorkers() { control_->shutdownWorkers(); }

bool ClusterExecutor::waitReady(std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  while (!ready() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return ready();
}

const StepOutput& ClusterExecutor::run(const StepBatch& batch) {
  launch(batch);
  return collect();
}

int ClusterExecutor::maxStepsInFlight() const { return control_->options.plan.pp; }

void ClusterExecutor::launch(const StepBatch& batch) {
  if (int(launched_.size()) >= maxStepsInFlight()) {
    throw std::logic_error("cluster: " + std::to_string(launched_.size()) + " steps in flight already (one per stage)");
  }
  auto step = std::make_shared<PendingStep>();
  step->launchedAt = Clock::now();
  launched_.push_back(step);
  try {
    control_->launch(batch, step);
  } catch (...) {
    launched_.pop_back();
    throw;
  }
}

const StepOutput& ClusterExecutor::collect() {
  if (launched_.empty()) throw std::logic_error("cluster: collect() without a launched step");
  const std::shared_ptr<PendingStep> step = launched_.front();
  launched_.pop_front();
  control_->await(*step);
  merge(*step->batch, step->outputs);
  timings_.ranks = std::move(step->timings);
  timings_.wallSeconds = std::chrono::duration<double>(Clock::now() - step->launchedAt).count();
  double slowest = 0;
  for (const RankStepTimings& t : timings_.ranks) {
    slowest = std::max(slowest, t.computeSeconds + t.commSeconds + t.waitSeconds);
  }
  timings_.coordinatorSeconds = std::max(0.0, timings_.wallSeconds - slowest);
  return output_;
}

// The last stage's tensor ranks hold consecutive vocab slices: concatenate their rows, or merge their candidates.
void ClusterExecutor::merge(const StepBatch& batch, const std::vector<StepOutput>& rankOutputs) {
  const ShardPlan& plan = control_->options.plan;
  std::vector<const StepOutput*> slices;
  for (int t = 0; t < plan.tp; ++t) slices.push_back(&rankOutputs[size_t(plan.rank(plan.pp - 1, t).worker)]);
  std::sort(slices.begin(), slices.end(), [](auto* a, auto* b) { return a->vocabBegin < b->vocabBegin; });
  const int64_t rows = slices.front()->rows;
  int64_t expectedRows = 0;
  for (const SequenceStep& sequence : batch.sequences) expectedRows += sequence.logitRows();
  if (rows != expectedRows) {
    throw Error(ErrorKind::kInternal, "cluster: the last stage answered " + std::to_string(rows) +
                                          " logit rows for a batch that asked for " + std::to_string(expectedRows));
  }
  int64_t vocab = 0;
  for (const StepOutput* slice : slices) {
    if (slice->rows != rows || slice->vocabBegin != vocab) {
      throw Error(ErrorKind::kInternal, "cluster: the last stage's vocab slices do not tile the vocabulary (slice [" +
                                            std::to_string(slice->vocabBegin) + ", +" +
                                            std::to_string(slice->vocabCount) + ") with " +
                                            std::to_string(slice->rows) + " rows after " + std::to_string(vocab) +
                                            " ids and " + std::to_string(rows) + " rows)");
    }
    vocab += slice->vocabCount;
  }
  int64_t planned = 0;
  for (int t = 0; t < plan.tp; ++t) planned += plan.rank(plan.pp - 1, t).shard.vocabRows.count;
  if (vocab != planned) {
    throw Error(ErrorKind::kInternal, "cluster: the last stage's vocab slices cover " + std::to_string(vocab) +
                                          " ids, the plan gives them " + std::to_string(planned));
  }
  output_.vocabBegin = 0;
  output_.vocabCount = vocab;
  output_.rows = rows;
  output_.logits.clear();
  output_.candidates.clear();
  if (batch.candidates > 0) {
    std::vector<const LogitCandidates*> parts(slices.size());
    int64_t r = 0;
    for (const SequenceStep& sequence : batch.sequences) {
      const int32_t count = std::max(batch.candidates, sequence.candidates);
      for (int64_t i = 0; i < sequence.logitRows(); ++i, ++r) {
        for (size_t s = 0; s < slices.size(); ++s) parts[s] = &slices[s]->candidates.at(size_t(r));
        output_.candidates.push_back(mergeLogitCandidates(parts, count));
      }
    }
    return;
  }
  output_.logits.resize(size_t(rows * vocab));
  for (int64_t r = 0; r < rows; ++r) {
    float* row = output_.logits.data() + r * vocab;
    for (const StepOutput* slice : slices) {
      std::memcpy(row + slice->vocabBegin, slice->logits.data() + r * slice->vocabCount,
                  size_t(slice->vocabCount) * sizeof(float));
    }
  }
}

}  // namespace phx
