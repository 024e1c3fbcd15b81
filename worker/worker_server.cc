#include "worker/worker_server.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "common/error.h"
#include "rpc/control_codec.h"
#include "rpc/mpi_communicator.h"
#include "rpc/phalanx.capnp.h"
#include "worker/compute_thread.h"
#include "worker/process_memory.h"

namespace phx {
namespace {

using Clock = std::chrono::steady_clock;

// The latest load progress, written by the compute thread and sent by the event loop on a timer (the compute
// thread never waits for the network).
struct ProgressBox {
  std::mutex mutex;
  int64_t done = 0;
  int64_t total = 0;
  std::string tensor;
  uint64_t updates = 0;
};

struct StepReply {
  StepOutput output;
  WorkerStepTimings timings;
};

class WorkerImpl final : public proto::Worker::Server, private kj::TaskSet::ErrorHandler {
 public:
  WorkerImpl(const WorkerServerOptions& options, int worldRank, ComputeThread& compute, kj::Timer& timer,
             kj::PromiseFulfiller<void>& stop)
      : options_(options), worldRank_(worldRank), compute_(compute), timer_(timer), stop_(stop), tasks_(*this) {}

 protected:
  kj::Promise<void> hello(HelloContext context) override {
    const auto params = context.getParams();
    if (params.getProtocolVersion() != proto::PROTOCOL_VERSION) {
      return KJ_EXCEPTION(FAILED, kj::str("invalid argument: protocol version mismatch: ", params.getClientName(),
                                          " speaks version ", params.getProtocolVersion(),
                                          ", this worker speaks version ", proto::PROTOCOL_VERSION));
    }
    auto results = context.getResults();
    results.setProtocolVersion(proto::PROTOCOL_VERSION);
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    results.setWorkerName(kj::str(host, ":", boundPort));
    results.setPid(getpid());
    results.setThreads(options_.threads);
    results.setTransport(dataTransportName(options_.transport));
    results.setWorldRank(worldRank_);
    return kj::READY_NOW;
  }

  kj::Promise<void> loadShard(LoadShardContext context) override {
    const auto params = context.getParams();
    ShardLoadRequest request;
    request.checkpointDir = std::string(params.getCheckpointDir().cStr());
    request.shard = decodeRankShard(params.getShard());
    request.kvBlockSize = params.getKv().getBlockSize();
    request.kvBlocks = params.getKv().getBlocks();
    request.kvType = decodeKvDtype(params.getKv().getDtype());
    request.weightType = decodeWeightDtype(params.getWeights());
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
    auto loading = compute_.run<ShardLoadReport>([this, request = std::move(request)]() mutable {
      return engine_.load(request);
    });
    auto reporting = reportProgress(box, progress, 0).then([]() -> kj::Promise<ShardLoadReport> {
      return kj::NEVER_DONE;
    });
    return loading.exclusiveJoin(kj::mv(reporting))
        .then(
            [this, context, box, progress](ShardLoadReport report) mutable -> kj::Promise<void> {
              setState(proto::WorkerState::LOADED, "");
              auto results = context.getResults();
              results.setWeightBytes(report.weightBytes);
              results.setBytesRead(report.bytesRead);
              results.setLoadSeconds(report.loadSeconds);
              results.setRssBytes(report.rssBytes);
              results.setPeakRssBytes(report.peakRssBytes);
              results.setWeights(encodeWeightDtype(report.weightType));
              return sendProgress(*box, progress);  // the final figures, before the reply
            },
            [this](kj::Exception&& error) -> kj::Promise<void> {
              setState(proto::WorkerState::FAILED, error.getDescription().cStr());
              return kj::mv(error);
            });
  }

  kj::Promise<void> dataPlaneAddress(DataPlaneAddressContext context) override {
    return compute_.run<std::vector<std::byte>>([this] { return engine_.dataPlaneAddress(); })
        .then([context](std::vector<std::byte> address) mutable {
          context.getResults().setAddress(
              capnp::Data::Reader(reinterpret_cast<const kj::byte*>(address.data()), address.size()));
        });
  }

  kj::Promise<void> connectPeers(ConnectPeersContext context) override {
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
    return compute_.run<void>([this, peers = std::move(peers)] { engine_.connect(peers); })
        .then(
            [this]() -> kj::Promise<void> {
              setState(proto::WorkerState::READY, "");
              return kj::READY_NOW;
            },
              [this](kj::Exception&& error) -> kj::Promise<void> {
                setState(proto::WorkerState::FAILED, error.getDescription().cStr());
                return kj::mv(error);
              });
  }

  kj::Promise<void> step(StepContext context) override {
    const auto arrival = Clock::now();
    StepBatch batch = decodeStepBatch(context.getParams().getBatch());
    return compute_.run<StepReply>([this, batch = std::move(batch), arrival] {
                     StepReply reply;
                     reply.timings.waitSeconds = std::chrono::duration<double>(Clock::now() - arrival).count();
                     reply.output = engine_.step(batch, reply.timings);
                     ++steps_;
                     return reply;
                   })
        .then([context](StepReply reply) mutable {
          auto results = context.getResults();
          encodeStepOutput(reply.output, results.initOutput());
          auto timings = results.initTimings();
          timings.setComputeSeconds(reply.timings.computeSeconds);
          timings.setCommSeconds(reply.timings.commSeconds);
          timings.setWaitSeconds(reply.timings.waitSeconds);
        });
  }

  kj::Promise<void> health(HealthContext context) override {
    auto results = context.getResults();
    const ProcessMemory memory = readProcessMemory();
    std::lock_guard lock(stateMutex_);
    results.setState(state_);
    results.setLoaded(state_ == proto::WorkerState::LOADED || state_ == proto::WorkerState::READY);
    results.setRssBytes(memory.rssBytes);
    results.setPeakRssBytes(memory.peakRssBytes);
    results.setSteps(int64_t(steps_.load()));
    results.setLastError(lastError_);
    return kj::READY_NOW;
  }

  kj::Promise<void> shutdown(ShutdownContext context) override {
    // After this call's reply has gone out.
    tasks_.add(kj::evalLater([this] { stop_.fulfill(); }));
    return kj::READY_NOW;
  }

 public:
  unsigned boundPort = 0;

 private:
  void taskFailed(kj::Exception&& exception) override {
    std::fprintf(stderr, "phalanx worker: %s\n", exception.getDescription().cStr());
  }

  void setState(proto::WorkerState state, const std::string& error) {
    std::lock_guard lock(stateMutex_);
    state_ = state;
    if (!error.empty()) lastError_ = error;
  }

  kj::Promise<void> sendProgress(ProgressBox& box, kj::Maybe<proto::LoadProgress::Client>& progress) {
    KJ_IF_MAYBE(client, progress) {
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
  kj::Promise<void> reportProgress(std::shared_ptr<ProgressBox> box, kj::Maybe<proto::LoadProgress::Client> progress,
                                   uint64_t sent) {
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

  const WorkerServerOptions options_;
  const int worldRank_;
  ComputeThread& compute_;
  kj::Timer& timer_;
  kj::PromiseFulfiller<void>& stop_;
  kj::TaskSet tasks_;
  WorkerEngine engine_{options_.transport, options_.metrics};  // touched only on the compute thread
  std::atomic<uint64_t> steps_{0};
  std::mutex stateMutex_;
  proto::WorkerState state_ = proto::WorkerState::IDLE;
  std::string lastError_;
};

}  // namespace

void serveWorker(const WorkerServerOptions& options) {
  // Before any thread starts (the compute thread, MPI's): the signals are blocked everywhere but delivered to the
  // event loop, which then stops.
  kj::UnixEventPort::captureSignal(SIGTERM);
  kj::UnixEventPort::captureSignal(SIGINT);
  const int worldRank = options.transport == DataTransport::kMpi ? MpiCommunicator::worldRank() : -1;
  const int port = options.port == 0 ? 0 : options.port + std::max(worldRank, 0);

  auto io = kj::setupAsyncIo();
  auto stop = kj::newPromiseAndFulfiller<void>();
  // Declared before the server: destroyed after it, once no call can reach the compute thread any more.
  ComputeThread compute;
  auto impl = kj::heap<WorkerImpl>(options, worldRank, compute, io.provider->getTimer(), *stop.fulfiller);
  WorkerImpl& worker = *impl;
  capnp::TwoPartyServer server(kj::mv(impl));

  kj::Own<kj::ConnectionReceiver> listener;
  try {
    auto address = io.provider->getNetwork().parseAddress(options.host, unsigned(port)).wait(io.waitScope);
    listener = address->listen();
  } catch (const kj::Exception& e) {
    throw Error(ErrorKind::kIo, "worker: cannot listen on " + options.host + ":" + std::to_string(port) + ": " +
                                    e.getDescription().cStr());
  }
  worker.boundPort = listener->getPort();
  std::printf("phalanx worker listening on %s:%u (transport %s, pid %d)\n", options.host.c_str(), worker.boundPort,
              dataTransportName(options.transport), int(getpid()));
  std::fflush(stdout);

  auto signalled = io.unixEventPort.onSignal(SIGTERM).ignoreResult().exclusiveJoin(
      io.unixEventPort.onSignal(SIGINT).ignoreResult());
  server.listen(*listener).exclusiveJoin(kj::mv(signalled)).exclusiveJoin(kj::mv(stop.promise)).wait(io.waitScope);
  // Let a shutdown() reply reach the coordinator.
  io.provider->getTimer().afterDelay(50 * kj::MILLISECONDS).wait(io.waitScope);
  std::fprintf(stderr, "phalanx worker on port %u: stopping\n", worker.boundPort);
  if (compute.busy()) {
    // A load or step still runs on the engine the server owns: end here rather than free it under the job.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(0);
  }
}

}  // namespace phx
