#include "worker/worker_core.h"

#include <capnp/dynamic.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "common/error.h"
#include "kernels/matmul.h"
#include "monitoring/worker_health.h"
#include "rpc/control_codec.h"
#include "worker/process_memory.h"

namespace phx {
namespace {

using Clock = std::chrono::steady_clock;

struct StepReply {
  StepOutput output;
  WorkerStepTimings timings;
};

bool isUnder(const std::filesystem::path& path, const std::filesystem::path& root) {
  auto [rootEnd, pathAt] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  return rootEnd == root.end();
}

// The schema's own name for a state ("ready"), as /health reports it.
std::string stateName(proto::WorkerState state) {
  KJ_IF_MAYBE (enumerant, capnp::toDynamic(state).getEnumerant()) return enumerant->getProto().getName().cStr();
  return "unknown";
}

}  // namespace

// The latest load progress, written by the compute thread and sent by the event loop on a timer (the compute
// thread never waits for the network).
struct WorkerCore::ProgressBox {
  std::mutex mutex;
  int64_t done = 0;
  int64_t total = 0;
  std::string tensor;
  uint64_t updates = 0;
};

WorkerCore::WorkerCore(const WorkerServerOptions& options, int worldRank, ComputeThread& compute, kj::Timer& timer,
                       kj::PromiseFulfiller<void>& stop)
    : options_(options), worldRank_(worldRank), compute_(compute), timer_(timer), stop_(stop), tasks_(*this) {}

void WorkerCore::describe(proto::Worker::HelloResults::Builder results) const {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  results.setWorkerName(kj::str(host, ":", boundPort));
  results.setPid(getpid());
  results.setThreads(options_.threads);
  results.setTransport(dataTransportName(options_.transport));
  results.setWorldRank(worldRank_);
  results.setCpu(cpuIdentity().describe());
  results.setCompute(encodeMatmulCompute(matmulCompute()));
  results.setAuthRequired(options_.clusterSecret.has_value());
}

bool WorkerCore::claimEpoch(uint64_t epoch) {
  if (epoch < acceptedEpoch_) return false;
  acceptedEpoch_ = epoch;
  return true;
}

std::filesystem::path WorkerCore::checkedCheckpointDir(const std::string& requested) const {
  const auto root = std::filesystem::weakly_canonical(options_.modelRoot);
  const auto path = std::filesystem::weakly_canonical(requested);
  if (!isUnder(path, root)) {
    throw Error(ErrorKind::kPermissionDenied, "load shard: checkpoint directory " + requested + " (" + path.string() +
                                                  ") is outside this worker's --model-root " + root.string());
  }
  return path;
}

kj::Promise<void> WorkerCore::loadShard(LoadShardContext context) {
  const auto params = context.getParams();
  ShardLoadRequest request;
  try {
    request.checkpointDir = checkedCheckpointDir(params.getCheckpointDir().cStr());
    request.shard = decodeRankShard(params.getShard());
    request.kvBlockSize = params.getKv().getBlockSize();
    request.kvBlocks = params.getKv().getBlocks();
    request.kvType = decodeKvDtype(params.getKv().getDtype());
    request.weightType = decodeWeightDtype(params.getWeights());
    request.compute = decodeMatmulCompute(params.getCompute());
  } catch (const Error& error) {
    setState(proto::WorkerState::FAILED, error.what());
    encodeFailure(error, context.getResults().initFailure());
    return kj::READY_NOW;
  }
  if (!request.weightType) request.weightType = options_.weightType;
  request.threads = params.getThreads() > 0 ? params.getThreads() : options_.threads;
  request.maxStepTokens = params.getMaxStepTokens() > 0 ? params.getMaxStepTokens() : 512;
  auto box = std::make_shared<ProgressBox>();
  request.progress = [box](int64_t done, int64_t total, const std::string& tensor) {
    std::lock_guard lock(box->mutex);
    box->done = done;
    box->total = total;
    box->tensor = tensor;
    ++box->updates;
  };
  kj::Maybe<proto::LoadProgress::Client> progress;
  if (params.hasProgress()) progress = params.getProgress();
  setState(proto::WorkerState::LOADING, "");
  auto loading =
      compute_.run<ShardLoadReport>([this, request = std::move(request)]() mutable { return engine_.load(request); });
  auto reporting = reportProgress(box, progress, 0).then([]() -> kj::Promise<JobOutcome<ShardLoadReport>> {
    return kj::NEVER_DONE;
  });
  return loading.exclusiveJoin(kj::mv(reporting))
      .then([this, context, box, progress](JobOutcome<ShardLoadReport> outcome) mutable -> kj::Promise<void> {
        auto results = context.getResults();
        if (outcome.error) {
          setState(proto::WorkerState::FAILED, outcome.error->what());
          encodeFailure(*outcome.error, results.initFailure());
          return kj::READY_NOW;
        }
        const ShardLoadReport& report = *outcome.value;
        fingerprint_ = report.fingerprint;
        setState(proto::WorkerState::LOADED, "");
        results.setWeightBytes(report.weightBytes);
        results.setBytesRead(report.bytesRead);
        results.setLoadSeconds(report.loadSeconds);
        results.setRssBytes(report.rssBytes);
        results.setPeakRssBytes(report.peakRssBytes);
        results.setWeights(encodeWeightDtype(report.weightType));
        results.setCompute(encodeMatmulCompute(report.compute));
        results.setFingerprint(report.fingerprint);
        results.setReused(report.reused);
        return sendProgress(*box, progress);  // the final figures, before the reply
      });
}

// The coordinator asks for addresses first when it (re)joins the data plane: a step still waiting on a peer
// belongs to the cluster as it was, so it gives up now rather than hold the compute thread for its timeout.
kj::Promise<void> WorkerCore::dataPlaneAddress(DataPlaneAddressContext context) {
  engine_.interruptDataPlane();
  return compute_.run<std::vector<std::byte>>([this] { return engine_.dataPlaneAddress(); })
      .then([context](JobOutcome<std::vector<std::byte>> outcome) mutable {
        auto results = context.getResults();
        if (outcome.error) return encodeFailure(*outcome.error, results.initFailure());
        const auto& address = *outcome.value;
        results.setAddress(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(address.data()), address.size()));
      });
}

kj::Promise<void> WorkerCore::connectPeers(ConnectPeersContext context) {
  const auto params = context.getParams();
  PeerConnection peers;
  for (auto address : params.getAddresses()) {
    const auto* bytes = reinterpret_cast<const std::byte*>(address.begin());
    peers.addresses.emplace_back(bytes, bytes + address.size());
  }
  peers.self = params.getSelf();
  peers.group = toVector(params.getGroup());
  peers.previousStagePeer = params.getPreviousStagePeer();
  peers.nextStagePeer = params.getNextStagePeer();
  if (params.getTimeoutMs() > 0) peers.timeout = std::chrono::milliseconds(params.getTimeoutMs());
  if (params.getStageTimeoutMs() > 0) peers.stageTimeout = std::chrono::milliseconds(params.getStageTimeoutMs());
  peers.payload = decodeAllReducePayload(params.getPayload());
  return compute_.run<void>([this, peers = std::move(peers)] { engine_.connect(peers); })
      .then([this, context](JobOutcome<void> outcome) mutable {
        if (outcome.error) {
          setState(proto::WorkerState::FAILED, outcome.error->what());
          return encodeFailure(*outcome.error, context.getResults().initFailure());
        }
        setState(proto::WorkerState::READY, "");
      });
}

kj::Promise<void> WorkerCore::step(StepContext context) {
  const auto arrival = Clock::now();
  StepBatch batch;
  try {
    batch = decodeStepBatch(context.getParams().getBatch());
  } catch (const Error& error) {
    encodeFailure(error, context.getResults().initFailure());
    return kj::READY_NOW;
  }
  return compute_
      .run<StepReply>([this, batch = std::move(batch), arrival] {
        StepReply reply;
        reply.timings.waitSeconds = std::chrono::duration<double>(Clock::now() - arrival).count();
        reply.output = engine_.step(batch, reply.timings);
        ++steps_;
        return reply;
      })
      .then([context](JobOutcome<StepReply> outcome) mutable {
        auto results = context.getResults();
        if (outcome.error) return encodeFailure(*outcome.error, results.initFailure());
        encodeStepOutput(outcome.value->output, results.initOutput());
        auto timings = results.initTimings();
        timings.setComputeSeconds(outcome.value->timings.computeSeconds);
        timings.setCommSeconds(outcome.value->timings.commSeconds);
        timings.setWaitSeconds(outcome.value->timings.waitSeconds);
      });
}

void WorkerCore::health(proto::Worker::HealthResults::Builder results) {
  const ProcessMemory memory = readProcessMemory();
  std::lock_guard lock(stateMutex_);
  results.setState(state_);
  results.setLoaded(state_ == proto::WorkerState::LOADED || state_ == proto::WorkerState::READY);
  results.setRssBytes(memory.rssBytes);
  results.setPeakRssBytes(memory.peakRssBytes);
  results.setSteps(int64_t(steps_.load()));
  results.setLastError(lastError_);
  results.setCompute(encodeMatmulCompute(matmulCompute()));
  results.setFingerprint(fingerprint_.load());
}

void WorkerCore::shutdown() {
  // After this call's reply has gone out.
  tasks_.add(kj::evalLater([this] { stop_.fulfill(); }));
}

void WorkerCore::taskFailed(kj::Exception&& exception) {
  std::fprintf(stderr, "phalanx worker: %s\n", exception.getDescription().cStr());
}

void WorkerCore::setState(proto::WorkerState state, const std::string& error) {
  {
    std::lock_guard lock(stateMutex_);
    state_ = state;
    if (!error.empty()) lastError_ = error;
  }
  if (options_.health) options_.health->setState(stateName(state));
}

kj::Promise<void> WorkerCore::sendProgress(ProgressBox& box, kj::Maybe<proto::LoadProgress::Client>& progress) {
  KJ_IF_MAYBE (client, progress) {
    auto request = client->progressRequest();
    {
      std::lock_guard lock(box.mutex);
      request.setBytesDone(box.done);
      request.setBytesTotal(box.total);
      request.setTensor(box.tensor);
    }
    // A coordinator that stopped listening does not fail the load.
    return request.send().ignoreResult().catch_([](kj::Exception&&) {});
  }
  return kj::READY_NOW;
}

// Every 200 ms, the latest progress if it changed; until the load resolves (which cancels this loop).
kj::Promise<void> WorkerCore::reportProgress(std::shared_ptr<ProgressBox> box,
                                             kj::Maybe<proto::LoadProgress::Client> progress, uint64_t sent) {
  return timer_.afterDelay(200 * kj::MILLISECONDS)
      .then([this, box, progress = kj::mv(progress), sent]() mutable -> kj::Promise<void> {
        uint64_t updates;
        {
          std::lock_guard lock(box->mutex);
          updates = box->updates;
        }
        auto sending = updates != sent ? sendProgress(*box, progress) : kj::Promise<void>(kj::READY_NOW);
        return sending.then([this, box, progress = kj::mv(progress), updates]() mutable {
          return reportProgress(box, kj::mv(progress), updates);
        });
      });
}

}  // namespace phx
