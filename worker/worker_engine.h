// Everything one worker process holds between control-plane calls: its shard's weights, its KV cache, its
// data-plane communicator and the model runner over them. No Cap'n Proto here (worker/worker_server.h speaks the
// protocol); every method runs on the worker's one compute thread, in the order the coordinator calls them:
// load -> dataPlaneAddress -> connect -> step, step, ... (connect again whenever a peer restarts).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernels/cpu_identity.h"
#include "partition/rank_shard.h"
#include "rpc/communicator.h"
#include "rpc/step.h"
#include "worker/kv_cache.h"
#include "worker/model_runner.h"
#include "worker/shard_weights.h"
#include "worker/timed_communicator.h"

namespace phx {

class WorkerMetrics;

enum class DataTransport { kUcx, kMpi };
// "ucx" / "mpi"; parseDataTransport throws phx::Error (invalid argument) for anything else.
const char* dataTransportName(DataTransport transport);
DataTransport parseDataTransport(const std::string& name);

struct ShardLoadRequest {
  std::filesystem::path checkpointDir;
  RankShard shard;
  int64_t kvBlockSize = 16;
  int64_t kvBlocks = 0;
  int threads = 1;
  int64_t maxStepTokens = 512;
  LoadProgress progress;  // optional
  std::optional<WeightType> weightType;  // unset: the checkpoint's own (resolveWeightType)
  KvType kvType = KvType::kBf16;
  std::optional<MatmulCompute> compute;  // unset: this CPU's table choice (matmulCompute())
};

struct ShardLoadReport {
  WeightType weightType = WeightType::kBf16;  // as loaded
  int64_t weightBytes = 0;  // resident packed weights
  int64_t bytesRead = 0;    // checkpoint bytes read (Checkpoint::bytesRead): exactly the shard's slices
  double loadSeconds = 0;
  int64_t rssBytes = 0;     // after loading, KV cache reserved
  int64_t peakRssBytes = 0; // the process's high-water mark, loading included
  MatmulCompute compute = MatmulCompute::kF32Fma;  // as set for this process's BF16 matmuls
  uint64_t fingerprint = 0;  // of the request and the checkpoint's files (loadFingerprint)
  bool reused = false;       // the same request was loaded already: nothing was read
};

// A hash of everything that decides what a load holds: the checkpoint directory and its files' names, sizes and
// modification times, the shard, the KV pool, the dtypes and the compute. Equal fingerprints: the same load.
// Throws phx::Error (kIo) when the directory cannot be listed.
uint64_t loadFingerprint(const ShardLoadRequest& request, MatmulCompute compute);

struct PeerConnection {
  std::vector<std::vector<std::byte>> addresses;  // every worker's data-plane address, by global index
  int self = 0;
  std::vector<int> group;  // global indices of this worker's tensor-parallel group, in rank order
  int previousStagePeer = -1;
  int nextStagePeer = -1;
  std::chrono::milliseconds timeout{5000};  // data-plane waits give up after this (a dead peer never hangs a step)
  // A pipeline hand-off's wait: a neighbouring stage may compute a whole step (or two, pipelined) first.
  std::chrono::milliseconds stageTimeout{120000};
  AllReducePayload payload = AllReducePayload::kF32;  // the same for the whole group; bf16: UCX only
};

struct WorkerStepTimings {
  double computeSeconds = 0;
  double commSeconds = 0;
  double waitSeconds = 0;  // filled by the caller: queued before the compute thread took the step
};

class WorkerEngine {
 public:
  // metrics, if given, must outlive the engine: load, identity, steps and all-reduces are recorded there.
  explicit WorkerEngine(DataTransport transport, WorkerMetrics* metrics = nullptr)
      : transport_(transport), metrics_(metrics) {}
  ~WorkerEngine();

  // Replaces whatever was loaded (and drops the runner: connect must follow), unless the same request is loaded
  // already (report.reused: nothing read, weights and runner kept). Throws phx::Error naming the file, tensor or
  // shard field at fault.
  ShardLoadReport load(const ShardLoadRequest& request);
  // The fingerprint of what is loaded (0: nothing).
  uint64_t fingerprint() const { return loaded() ? fingerprint_ : 0; }
  // UCX: this process's worker address (the communicator is created on first use and kept, so the address stays
  // the same across reconnects). MPI: empty.
  std::vector<std::byte> dataPlaneAddress();
  // Joins the data plane and builds the runner. Throws phx::Error (invalid argument) before load.
  void connect(const PeerConnection& peers);
  // Throws phx::Error (invalid argument) before connect, or for a malformed batch; kDisconnected when a peer is gone.
  const StepOutput& step(const StepBatch& batch, WorkerStepTimings& timings);

  // Any thread (the event loop, when the coordinator starts rejoining the data plane): the data-plane wait running
  // now, if any, gives up at once, so the compute thread is free for the rejoin; connect() clears it.
  void interruptDataPlane() { interrupted_ = true; }

  bool loaded() const { return weights_ != nullptr; }
  bool ready() const { return runner_ != nullptr; }
  DataTransport transport() const { return transport_; }

 private:
  DataTransport transport_;
  WorkerMetrics* metrics_;
  std::unique_ptr<ShardWeights> weights_;
  std::unique_ptr<KvCache> cache_;
  ShardLoadRequest loadRequest_;
  ShardLoadReport loadReport_;
  uint64_t fingerprint_ = 0;
  // Exactly one of these is the data plane once connected.
  std::unique_ptr<Communicator> ucx_;
  std::unique_ptr<Communicator> mpi_;
  std::unique_ptr<TimedCommunicator> timed_;
  std::unique_ptr<ModelRunner> runner_;
  std::atomic<bool> interrupted_{false};
};

}  // namespace phx
