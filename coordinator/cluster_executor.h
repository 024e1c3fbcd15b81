// A StepExecutor that runs each step on a cluster of `phalanx worker` processes (docs/cluster.md): it connects to
// every worker over the control plane (Cap'n Proto, rpc/phalanx.capnp), has each load its shard of the plan,
// swaps their data-plane addresses, then sends every step to all workers at once and merges the last stage's vocab
// slices into one full-vocabulary output (dense logits concatenated, or candidates merged).
//
// Failure: a worker that disconnects, stops answering health pings or fails a step makes run() throw phx::Error
// (kDisconnected) naming it within a few seconds; the executor then reconnects in the background (hello, loadShard
// for restarted workers, connectPeers to every worker) and ready() turns true again once the whole cluster is up,
// without restarting the coordinator. The Cap'n Proto event loop runs on the executor's own I/O thread, so run()
// may be called from any one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu_identity.h"
#include "kernels/kv_cache.h"
#include "kernels/packed_weight.h"
#include "partition/shard_plan.h"
#include "rpc/communicator.h"
#include "rpc/control_tls.h"
#include "rpc/step.h"

namespace phx {

struct ClusterExecutorOptions {
  std::vector<std::string> endpoints;  // "host:port" of each worker, by global worker index (plan.ranks order)
  ShardPlan plan;
  std::filesystem::path checkpointDir;  // as the workers see it
  int64_t kvBlockSize = 16;
  int64_t kvBlocks = 256;
  int threadsPerWorker = 1;
  int64_t maxStepTokens = 512;
  std::optional<WeightType> weightType;  // matrices as bf16 or int8 (quantized while loading); unset: each worker's
                                         // own --dtype, by default the checkpoint's
  KvType kvType = KvType::kBf16;
  // How every worker multiplies BF16 weights; unset: the workers' own table choice when they all agree, else
  // f32fma (which every worker can run). One value for the whole cluster: a TP group must not mix them.
  std::optional<MatmulCompute> compute;
  // What the TP groups' all-reduces carry: f32, or BF16 (half the bytes, sums in f32; UCX workers only).
  AllReducePayload allReducePayload = AllReducePayload::kF32;
  std::optional<std::string> clusterSecret;  // set: authenticate to every worker (and have it prove the same)
  std::optional<ControlTlsFiles> tls;         // set: mutual TLS to every worker (its certificate names its host)
  uint64_t epoch = 0;  // this coordinator's fencing epoch; 0: its start time in nanoseconds since the Unix epoch
  std::chrono::milliseconds connectTimeout{10000};   // connect + hello, retried while refused
  std::chrono::milliseconds loadTimeout{900000};     // loadShard
  std::chrono::milliseconds stepTimeout{120000};     // the longest one step may take
  std::chrono::milliseconds heartbeatInterval{1000}; // health pings while a step runs...
  std::chrono::milliseconds heartbeatTimeout{3000};  // ...and how long one may go unanswered
  std::chrono::milliseconds dataPlaneTimeout{3000};  // workers' UCX waits: a dead peer fails a step this fast
  std::chrono::milliseconds reconnectInterval{500};
  std::function<void(const std::string&)> log;       // progress and failures; default: stderr
};

struct RankStepTimings {
  double computeSeconds = 0;
  double commSeconds = 0;  // inside allReduceSum / send / recv
  double waitSeconds = 0;  // queued on the worker before its compute thread took the step
};

struct ClusterStepTimings {
  double wallSeconds = 0;         // run(), call to return
  double coordinatorSeconds = 0;  // wall minus the slowest rank's compute + comm + wait: RPC, encoding, merging
  std::vector<RankStepTimings> ranks;  // by global worker index
};

struct WorkerLoadReport {
  std::string endpoint;
  std::string workerName;
  int64_t pid = 0;
  WeightType weightType = WeightType::kBf16;  // as the worker loaded its matrices
  int64_t weightBytes = 0;
  int64_t bytesRead = 0;  // checkpoint bytes the worker read: its shard's slices and nothing else
  double loadSeconds = 0;
  int64_t rssBytes = 0;      // after loading
  int64_t peakRssBytes = 0;  // the worker's high-water mark, loading included
  std::string cpu;           // the worker's CPU (kernels/cpu_identity.h)
  MatmulCompute compute = MatmulCompute::kF32Fma;  // as the worker set it for this load
  uint64_t fingerprint = 0;  // of the load (worker/worker_engine.h loadFingerprint)
  bool reused = false;       // the worker held this load already: re-attached without reading the checkpoint
};

class ClusterExecutor final : public StepExecutor {
 public:
  // Connects, loads and joins every worker (in parallel). Throws phx::Error naming the worker that failed.
  static std::unique_ptr<ClusterExecutor> start(ClusterExecutorOptions options);
  ~ClusterExecutor() override;

  int64_t kvBlockSize() const override;
  int64_t kvBlockCount() const override;
  // Throws phx::Error: kDisconnected naming the worker (it died, hung or the cluster is still reconnecting),
  // kInvalidArgument for a batch the workers refuse.
  const StepOutput& run(const StepBatch& batch) override;
  // One step per pipeline stage in flight: while stage s computes one step, stage s + 1 computes the one before.
  int maxStepsInFlight() const override;
  void launch(const StepBatch& batch) override;
  const StepOutput& collect() override;

  // Every worker connected, loaded and joined.
  bool ready() const override;
  // Moves on every time the cluster comes (back) up: a restarted worker holds no KV, and survivors' KV may hold a
  // half-finished step's writes.
  uint64_t kvEpoch() const override;
  // The compute every worker uses (the same for all).
  MatmulCompute compute() const;
  // Blocks until ready() or the timeout; returns ready().
  bool waitReady(std::chrono::milliseconds timeout) const;
  const ClusterStepTimings& lastStepTimings() const { return timings_; }
  std::vector<WorkerLoadReport> loadReports() const;
  const ShardPlan& plan() const;
  // Asks every connected worker to exit.
  void shutdownWorkers();

  struct Control;      // the I/O thread's side (coordinator/cluster_control.h)
  struct PendingStep;  // a launched step until collected

 private:
  ClusterExecutor();
  void merge(const StepBatch& batch, const std::vector<StepOutput>& rankOutputs);

  std::unique_ptr<Control> control_;
  std::deque<std::shared_ptr<PendingStep>> launched_;  // oldest first
  StepOutput output_;
  ClusterStepTimings timings_;
};

}  // namespace phx
