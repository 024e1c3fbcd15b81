#include "worker/worker_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <string>

#include "common/elapsed.h"
#include "common/error.h"
#include "kernels/matmul.h"
#include "model/checkpoint.h"
#include "monitoring/worker_metrics.h"
#include "rpc/mpi_communicator.h"
#include "rpc/ucx_communicator.h"
#include "worker/process_memory.h"

namespace phx {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

const char* dataTransportName(DataTransport transport) {
  return transport == DataTransport::kUcx ? "ucx" : "mpi";
}

DataTransport parseDataTransport(const std::string& name) {
  if (name == "ucx") return DataTransport::kUcx;
  if (name == "mpi") return DataTransport::kMpi;
  throwInvalidArgument("--transport must be ucx or mpi, got '" + name + "'");
}

WorkerEngine::~WorkerEngine() {
  // The runner refers to the communicator, the cache and the weights: it goes first.
  runner_.reset();
}

uint64_t loadFingerprint(const ShardLoadRequest& request, MatmulCompute compute) {
  // FNV-1a over a text description: stable across processes and builds, which std::hash is not.
  std::string text = std::filesystem::weakly_canonical(request.checkpointDir).string();
  std::error_code error;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(request.checkpointDir, error)) {
    if (!entry.is_regular_file()) continue;
    const auto modified = entry.last_write_time().time_since_epoch().count();
    files.push_back(entry.path().filename().string() + ":" + std::to_string(entry.file_size()) + ":" +
                    std::to_string(modified));
  }
  if (error) throwIoError("load shard: cannot list " + request.checkpointDir.string());
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) text += "|" + file;
  const RankShard& s = request.shard;
  for (const IndexRange& range : {s.layers, s.queryHeads, s.kvHeads, s.mlpColumns, s.vocabRows}) {
    text += "|" + std::to_string(range.begin) + "+" + std::to_string(range.count);
  }
  text += "|" + std::to_string(s.firstStage) + std::to_string(s.lastStage) + "|kv " +
          std::to_string(request.kvBlockSize) + "x" + std::to_string(request.kvBlocks) + " " +
          kvTypeName(request.kvType) + "|" + (request.weightType ? weightTypeName(*request.weightType) : "default") +
          "|" + matmulComputeName(compute) + "|" + std::to_string(request.threads) + "|" +
          std::to_string(request.maxStepTokens);
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

ShardLoadReport WorkerEngine::load(const ShardLoadRequest& request) {
  const auto start = Clock::now();
  if (request.compute) setMatmulCompute(*request.compute);
  const MatmulCompute compute = matmulCompute();
  const uint64_t fingerprint = loadFingerprint(request, compute);
  if (loaded() && fingerprint == fingerprint_) {
    ShardLoadReport report = loadReport_;
    report.bytesRead = 0;
    report.loadSeconds = secondsSince(start);
    report.reused = true;
    return report;
  }
  runner_.reset();
  cache_.reset();
  weights_.reset();
  ShardLoadReport report;
  {
    const auto checkpoint = Checkpoint::open(request.checkpointDir);
    const uint64_t before = checkpoint->bytesRead();
    report.weightType = resolveWeightType(*checkpoint, request.weightType);
    weights_ = std::make_unique<ShardWeights>(
        loadShardWeights(*checkpoint, request.shard, request.progress, report.weightType));
    report.bytesRead = int64_t(checkpoint->bytesRead() - before);
  }
  if (request.kvBlocks < 1 || request.kvBlockSize < 1) {
    throwInvalidArgument("load shard: the KV cache needs at least one block of at least one token, got " +
                         std::to_string(request.kvBlocks) + " blocks of " + std::to_string(request.kvBlockSize));
  }
  cache_ = std::make_unique<KvCache>(kvCacheShapeFor(weights_->config, weights_->shard, request.kvBlockSize,
                                                     request.kvBlockSize * request.kvBlocks, request.kvType));
  loadRequest_ = request;
  loadRequest_.progress = nullptr;
  report.weightBytes = weights_->bytes;
  report.loadSeconds = secondsSince(start);
  const ProcessMemory memory = readProcessMemory();
  report.rssBytes = memory.rssBytes;
  report.peakRssBytes = memory.peakRssBytes;
  report.compute = compute;
  report.fingerprint = fingerprint;
  fingerprint_ = fingerprint;
  loadReport_ = report;
  if (metrics_) {
    metrics_->onLoaded(report.loadSeconds, report.weightBytes, cache_->shape().bytes());
    metrics_->setMatmulCompute(matmulComputeName(compute));
  }
  return report;
}

namespace {

// One line in the worker's log: what the group's all-reduce will run at which size, and what decided it.
void logTuning(int self, const AllReduceTuning& tuning) {
  std::string line;
  for (const auto& size : tuning.sizes) {
    char item[96];
    std::snprintf(item, sizeof item, "%s%zu KiB %.0f/%.0f us", line.empty() ? "" : ", ", size.bytes / 1024,
                  size.directUs, size.ringUs);
    line += item;
  }
  if (line.empty()) line = "none: the crossover is fixed for groups of more than two";
  if (tuning.directMaxBytesSent == std::numeric_limits<std::size_t>::max()) {
    std::fprintf(stderr, "phalanx worker %d: all-reduce direct at every size (measured direct/ring: %s)\n", self,
                 line.c_str());
  } else {
    std::fprintf(stderr, "phalanx worker %d: all-reduce direct up to %zu KiB sent a rank, ring above (measured "
                 "direct/ring: %s)\n", self, tuning.directMaxBytesSent / 1024, line.c_str());
  }
}

}  // namespace

std::vector<std::byte> WorkerEngine::dataPlaneAddress() {
  if (transport_ == DataTransport::kMpi) return {};
  if (!ucx_) ucx_ = UcxCommunicator::create();
  return static_cast<UcxCommunicator&>(*ucx_).address();
}

void WorkerEngine::connect(const PeerConnection& peers) {
  if (!loaded()) throwInvalidArgument("connect peers: no shard is loaded yet (call loadShard first)");
  runner_.reset();
  timed_.reset();
  interrupted_ = false;
  Communicator* comm = nullptr;
  if (transport_ == DataTransport::kUcx) {
    if (!ucx_) ucx_ = UcxCommunicator::create();
    auto& ucx = static_cast<UcxCommunicator&>(*ucx_);
    ucx.setTimeout(peers.timeout);
    ucx.setStageTimeout(std::max(peers.timeout, peers.stageTimeout));
    ucx.setInterrupt(&interrupted_);
    ucx.setPayload(peers.payload);
    ucx.connect(peers.addresses, peers.self, peers.group);
    if (peers.group.size() > 1) logTuning(peers.self, ucx.tuneAllReduce());
    comm = &ucx;
  } else {
    if (peers.payload != AllReducePayload::kF32) {
      throwInvalidArgument(std::string("connect peers: an MPI data plane carries f32 all-reduces only, not ") +
                           allReducePayloadName(peers.payload));
    }
    // Collective over the MPI world: every worker receives connectPeers at the same time from the coordinator.
    mpi_.reset();
    mpi_ = MpiCommunicator::create(peers.group);
    comm = mpi_.get();
  }
  TimedCommunicator::AllReduceObserver observer;
  if (metrics_) {
    // The plan numbers workers stage by stage, tp rank by tp rank: the group is this worker's stage.
    const auto self = std::find(peers.group.begin(), peers.group.end(), peers.self);
    const int tpRank = int(self - peers.group.begin());
    metrics_->setIdentity(peers.self, peers.self / int(std::max<size_t>(1, peers.group.size())), tpRank);
    observer = [metrics = metrics_](double seconds, uint64_t bytes) { metrics->onAllReduce(seconds, bytes); };
  }
  timed_ = std::make_unique<TimedCommunicator>(*comm, std::move(observer));
  runner_ = std::make_unique<ModelRunner>(*weights_, *cache_, *timed_,
                                          RunnerOptions{.maxStepTokens = loadRequest_.maxStepTokens,
                                                        .threads = loadRequest_.threads,
                                                        .previousStagePeer = peers.previousStagePeer,
                                                        .nextStagePeer = peers.nextStagePeer});
}

const StepOutput& WorkerEngine::step(const StepBatch& batch, WorkerStepTimings& timings) {
  if (!ready()) throwInvalidArgument("step: the worker is not connected to its peers yet (call connectPeers)");
  const auto start = Clock::now();
  timed_->reset();
  const StepOutput& output = runner_->run(batch);
  const double total = secondsSince(start);
  timings.commSeconds = timed_->seconds();
  timings.computeSeconds = total - timings.commSeconds;
  if (metrics_) {
    metrics_->onStep({.total = total + timings.waitSeconds, .compute = timings.computeSeconds,
                      .communication = timings.commSeconds, .wait = timings.waitSeconds});
  }
  return output;
}

}  // namespace phx
