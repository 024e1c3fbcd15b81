#include "coordinator/cluster_control.h"

#include <unistd.h>

#include <cstdio>

#include "common/error.h"
#include "rpc/control_codec.h"

namespace phx {
namespace {

kj::Duration toKj(std::chrono::milliseconds ms) { return ms.count() * kj::MILLISECONDS; }

// Errors cross the event loop as kj exceptions whose description starts with the phx kind's name; remote ones
// arrive prefixed with "remote exception: ".
kj::Exception kjError(ErrorKind kind, const std::string& message) {
  const auto type = kind == ErrorKind::kDisconnected ? kj::Exception::Type::DISCONNECTED : kj::Exception::Type::FAILED;
  return kj::Exception(type, __FILE__, __LINE__, kj::str(std::string(errorKindName(kind)).c_str(), ": ", message));
}

constexpr ErrorKind kKinds[] = {ErrorKind::kInvalidArgument, ErrorKind::kInvalidCheckpoint, ErrorKind::kUnsupported,
                                ErrorKind::kIo, ErrorKind::kDisconnected, ErrorKind::kOverloaded,
                                ErrorKind::kInternal};

// The kind a description names and the message after it; kDisconnected for anything else (the RPC layer's own).
std::pair<ErrorKind, std::string> parseKind(std::string text, ErrorKind fallback) {
  const std::string remote = "remote exception: ";
  if (text.rfind(remote, 0) == 0) text = text.substr(remote.size());
  for (ErrorKind kind : kKinds) {
    const std::string prefix = std::string(errorKindName(kind)) + ": ";
    if (text.rfind(prefix, 0) == 0) return {kind, text.substr(prefix.size())};
  }
  return {fallback, text};
}

Error toError(const kj::Exception& e) {
  auto [kind, message] = parseKind(e.getDescription().cStr(), ErrorKind::kDisconnected);
  return Error(kind, message);
}

// A worker's failure, re-described as "<worker> <what>: <its message>", keeping the worker's error kind
// (invalid argument stays invalid argument: the batch was wrong, the cluster is fine).
kj::Exception workerFailure(const std::string& worker, const std::string& what, const kj::Exception& e) {
  const bool rpcLevel = e.getType() == kj::Exception::Type::DISCONNECTED;
  auto [kind, message] = parseKind(e.getDescription().cStr(), ErrorKind::kDisconnected);
  if (rpcLevel) kind = ErrorKind::kDisconnected;
  return kjError(kind, worker + " " + what + ": " + message);
}

// Resolves when every promise has; rejects as soon as one does (kj::joinPromises would wait for the rest).
kj::Promise<void> allOrFirstError(kj::Vector<kj::Promise<void>> promises) {
  auto failure = kj::newPromiseAndFulfiller<void>();
  auto fulfiller = std::make_shared<kj::Own<kj::PromiseFulfiller<void>>>(kj::mv(failure.fulfiller));
  auto guarded = kj::heapArrayBuilder<kj::Promise<void>>(promises.size());
  for (auto& promise : promises) {
    guarded.add(promise.catch_([fulfiller](kj::Exception&& e) {
      if ((*fulfiller)->isWaiting()) (*fulfiller)->reject(kj::cp(e));
      kj::throwFatalException(kj::mv(e));
    }));
  }
  return kj::joinPromises(guarded.finish()).exclusiveJoin(kj::mv(failure.promise)).attach(kj::mv(fulfiller));
}

}  // namespace

// Logs a worker's load progress at every 25% (one call per tensor arrives, throttled by the worker).
class ClusterExecutor::Control::ProgressLogger final : public proto::LoadProgress::Server {
 public:
  ProgressLogger(const Control& control, std::string worker) : control_(control), worker_(std::move(worker)) {}

 protected:
  kj::Promise<void> progress(ProgressContext context) override {
    const auto params = context.getParams();
    if (params.getBytesTotal() <= 0) return kj::READY_NOW;
    const int quarter = int(4 * params.getBytesDone() / params.getBytesTotal());
    if (quarter > lastQuarter_) {
      lastQuarter_ = quarter;
      control_.log(worker_ + ": loaded " + std::to_string(params.getBytesDone() >> 20) + " of " +
                   std::to_string(params.getBytesTotal() >> 20) + " MiB");
    }
    return kj::READY_NOW;
  }

 private:
  const Control& control_;
  std::string worker_;
  int lastQuarter_ = 0;
};

ClusterExecutor::Control::Control(ClusterExecutorOptions opts) : options(std::move(opts)) {
  if (int(options.endpoints.size()) != options.plan.workers()) {
    throwInvalidArgument("cluster: " + std::to_string(options.endpoints.size()) + " worker endpoints for a plan of " +
                         std::to_string(options.plan.workers()) + " workers (tp " + std::to_string(options.plan.tp) +
                         " x pp " + std::to_string(options.plan.pp) + ")");
  }
  links_.resize(options.endpoints.size());
  for (size_t i = 0; i < links_.size(); ++i) {
    Link& link = links_[i];
    link.index = int(i);
    link.endpoint = options.endpoints[i];
    const size_t colon = link.endpoint.rfind(':');
    char* end = nullptr;
    const long port = colon == std::string::npos ? -1 : std::strtol(link.endpoint.c_str() + colon + 1, &end, 10);
    if (colon == std::string::npos || colon == 0 || *end != '\0' || port <= 0 || port > 65535) {
      throwInvalidArgument("cluster: worker " + std::to_string(i) + " endpoint '" + link.endpoint +
                           "' is not HOST:PORT");
    }
    link.host = link.endpoint.substr(0, colon);
    link.port = unsigned(port);
    link.report.endpoint = link.endpoint;
  }
  thread_ = std::thread([this] { threadMain(); });
  std::unique_lock lock(startMutex_);
  started_.wait(lock, [this] { return executor_ != nullptr; });
}

ClusterExecutor::Control::~Control() {
  executor_->executeSync([this] {
    stopping_ = true;
    stop_->fulfill();
  });
  thread_.join();
}

void ClusterExecutor::Control::threadMain() {
  auto io = kj::setupAsyncIo();
  auto stop = kj::newPromiseAndFulfiller<void>();
  tasks_ = kj::heap<kj::TaskSet>(taskErrors_);
  {
    std::lock_guard lock(startMutex_);
    io_ = &io;
    stop_ = stop.fulfiller.get();
    executor_ = &kj::getCurrentThreadExecutor();
  }
  started_.notify_all();
  stop.promise.wait(io.waitScope);
  // Connections are the loop's objects: they go before it.
  tasks_ = nullptr;
  links_.clear();
}

template <typename Func>
void ClusterExecutor::Control::call(Func&& func) {
  try {
    executor_->executeSync(kj::fwd<Func>(func));
  } catch (const kj::Exception& e) {
    throw toError(e);
  }
}

void ClusterExecutor::Control::log(const std::string& line) const {
  if (options.log) {
    options.log(line);
  } else {
    std::fprintf(stderr, "cluster: %s\n", line.c_str());
  }
}

template <typename T>
kj::Promise<T> ClusterExecutor::Control::withTimeout(kj::Promise<T> promise, kj::Duration timeout,
                                                     std::string message) {
  return promise.exclusiveJoin(io_->provider->getTimer().afterDelay(timeout).then([message]() -> kj::Promise<T> {
    return kjError(ErrorKind::kDisconnected, message);
  }));
}

void ClusterExecutor::Control::startUp() {
  call([this] { return bringUp(); });
}

kj::Promise<void> ClusterExecutor::Control::bringUp() {
  ready = false;
  const kj::TimePoint deadline = io_->provider->getTimer().now() + toKj(options.connectTimeout);
  kj::Vector<kj::Promise<void>> workers;
  for (Link& link : links_) {
    kj::Promise<void> connected = link.client == nullptr ? connectWithRetry(link, deadline) : kj::READY_NOW;
    workers.add(connected.then([this, &link]() -> kj::Promise<void> {
      return link.loaded ? kj::Promise<void>(kj::READY_NOW) : load(link);
    }));
  }
  return allOrFirstError(kj::mv(workers)).then([this] { return swapAddresses(); }).then([this] {
    ready = true;
  });
}

kj::Promise<void> ClusterExecutor::Control::connectWithRetry(Link& link, kj::TimePoint deadline) {
  return connectAndHello(link).catch_([this, &link, deadline](kj::Exception&& e) -> kj::Promise<void> {
    drop(link, e.getDescription().cStr());
    const bool refused = std::string(e.getDescription().cStr()).find("protocol version") == std::string::npos;
    if (!refused || io_->provider->getTimer().now() >= deadline) return kj::mv(e);
    return io_->provider->getTimer().afterDelay(200 * kj::MILLISECONDS).then([this, &link, deadline] {
      return connectWithRetry(link, deadline);
    });
  });
}

kj::Promise<void> ClusterExecutor::Control::connectAndHello(Link& link) {
  auto connecting = io_->provider->getNetwork()
                        .parseAddress(link.host, link.port)
                        .then([](kj::Own<kj::NetworkAddress> address) {
                          return address->connect().attach(kj::mv(address));
                        })
                        .then([this, &link](kj::Own<kj::AsyncIoStream> stream) {
                          link.stream = kj::mv(stream);
                          link.rpc = kj::heap<capnp::TwoPartyClient>(*link.stream);
                          link.client = link.rpc->bootstrap().castAs<proto::Worker>();
                          const uint64_t generation = ++link.generation;
                          tasks_->add(link.rpc->onDisconnect().then([this, &link, generation] {
                            if (generation != link.generation || stopping_) return;
                            log(link.name() + " disconnected");
                            if (stepAbort_ && stepAbort_->isWaiting()) {
                              stepAbort_->reject(kjError(ErrorKind::kDisconnected, link.name() + " disconnected"));
                            }
                            drop(link, "disconnected");
                            startRecovery(link.name() + " disconnected");
                          }));
                          auto request = KJ_ASSERT_NONNULL(link.client).helloRequest();
                          request.setProtocolVersion(proto::PROTOCOL_VERSION);
                          request.setClientName("phalanx coordinator");
                          return request.send();
                        })
                        .then([&link](capnp::Response<proto::Worker::HelloResults> hello) -> kj::Promise<void> {
                          if (hello.getProtocolVersion() != proto::PROTOCOL_VERSION) {
                            return kjError(ErrorKind::kInvalidArgument,
                                           "protocol version mismatch: the worker speaks version " +
                                               std::to_string(hello.getProtocolVersion()) +
                                               ", this coordinator speaks version " +
                                               std::to_string(proto::PROTOCOL_VERSION));
                          }
                          link.report.workerName = hello.getWorkerName().cStr();
                          link.report.pid = hello.getPid();
                          return kj::READY_NOW;
                        });
  return withTimeout(kj::mv(connecting), toKj(options.connectTimeout), "no hello reply")
      .catch_([&link](kj::Exception&& e) -> kj::Promise<void> {
        return workerFailure(link.name(), "cannot connect", e);
      });
}

kj::Promise<void> ClusterExecutor::Control::load(Link& link) {
  const RankPlan& rank = options.plan.ranks[size_t(link.index)];
  auto request = KJ_ASSERT_NONNULL(link.client).loadShardRequest();
  request.setCheckpointDir(options.checkpointDir.string());
  encodeRankShard(rank.shard, request.initShard());
  request.getKv().setBlockSize(options.kvBlockSize);
  request.getKv().setBlocks(options.kvBlocks);
  request.getKv().setDtype(encodeKvDtype(options.kvType));
  request.setWeights(encodeWeightDtype(options.weightType));
  request.setThreads(options.threadsPerWorker);
  request.setMaxStepTokens(options.maxStepTokens);
  request.setProgress(kj::heap<ProgressLogger>(*this, link.name()));
  log(link.name() + ": loading " + describeRankShard(rank.shard));
  return withTimeout(request.send(), toKj(options.loadTimeout), "loadShard took too long")
      .then(
          [this, &link](capnp::Response<proto::Worker::LoadShardResults> loaded) {
            link.loaded = true;
            link.report.weightType = decodeWeightDtype(loaded.getWeights()).value_or(WeightType::kBf16);
            link.report.weightBytes = loaded.getWeightBytes();
            link.report.bytesRead = loaded.getBytesRead();
            link.report.loadSeconds = loaded.getLoadSeconds();
            link.report.rssBytes = loaded.getRssBytes();
            link.report.peakRssBytes = loaded.getPeakRssBytes();
            log(link.name() + ": loaded " + std::to_string(loaded.getWeightBytes() >> 20) + " MiB of " +
                weightTypeName(link.report.weightType) + " weights in " +
                std::to_string(loaded.getLoadSeconds()) + " s, RSS " + std::to_string(loaded.getRssBytes() >> 20) +
                " MiB");
          },
          [&link](kj::Exception&& e) { kj::throwFatalException(workerFailure(link.name(), "cannot load", e)); });
}

kj::Promise<void> ClusterExecutor::Control::swapAddresses() {
  kj::Vector<kj::Promise<void>> addresses;
  for (Link& link : links_) {
    addresses.add(KJ_ASSERT_NONNULL(link.client).dataPlaneAddressRequest().send().then(
        [&link](capnp::Response<proto::Worker::DataPlaneAddressResults> reply) {
          const auto data = reply.getAddress();
          const auto* bytes = reinterpret_cast<const std::byte*>(data.begin());
          link.address.assign(bytes, bytes + data.size());
        },
        [&link](kj::Exception&& e) { kj::throwFatalException(workerFailure(link.name(), "gave no address", e)); }));
  }
  return allOrFirstError(kj::mv(addresses)).then([this] {
    const ShardPlan& plan = options.plan;
    kj::Vector<kj::Promise<void>> joins;
    for (Link& link : links_) {
      const RankPlan& rank = plan.ranks[size_t(link.index)];
      auto request = KJ_ASSERT_NONNULL(link.client).connectPeersRequest();
      auto addresses = request.initAddresses(unsigned(links_.size()));
      for (size_t i = 0; i < links_.size(); ++i) {
        addresses.set(unsigned(i), capnp::Data::Reader(reinterpret_cast<const kj::byte*>(links_[i].address.data()),
                                                       links_[i].address.size()));
      }
      request.setSelf(link.index);
      auto group = request.initGroup(unsigned(plan.tp));
      for (int t = 0; t < plan.tp; ++t) group.set(unsigned(t), plan.rank(rank.stage, t).worker);
      request.setPreviousStagePeer(rank.stage > 0 ? plan.rank(rank.stage - 1, rank.tpRank).worker : -1);
      request.setNextStagePeer(rank.stage + 1 < plan.pp ? plan.rank(rank.stage + 1, rank.tpRank).worker : -1);
      request.setTimeoutMs(int32_t(options.dataPlaneTimeout.count()));
      joins.add(request.send().ignoreResult().catch_([&link](kj::Exception&& e) -> kj::Promise<void> {
        return workerFailure(link.name(), "cannot join the data plane", e);
      }));
    }
    return allOrFirstError(kj::mv(joins));
  });
}

// Pings every worker's health each interval; rejects naming the first worker that does not answer in time.
kj::Promise<void> ClusterExecutor::Control::heartbeat() {
  return io_->provider->getTimer().afterDelay(toKj(options.heartbeatInterval)).then([this] {
    kj::Vector<kj::Promise<void>> pings;
    for (Link& link : links_) {
      KJ_IF_MAYBE(client, link.client) {
        const std::string silence = "stopped answering (no health reply within " +
                                    std::to_string(options.heartbeatTimeout.count()) + " ms)";
        pings.add(withTimeout(client->healthRequest().send().ignoreResult(), toKj(options.heartbeatTimeout), silence)
                      .catch_([this, &link](kj::Exception&& e) -> kj::Promise<void> {
                        drop(link, e.getDescription().cStr());  // a hung worker is reconnected (and reloaded)
                        return workerFailure(link.name(), "is unavailable", e);
                      }));
      } else {
        pings.add(kjError(ErrorKind::kDisconnected, link.name() + " is not connected"));
      }
    }
    return allOrFirstError(kj::mv(pings)).then([this] { return heartbeat(); });
  });
}

kj::Promise<void> ClusterExecutor::Control::stepAll(const StepBatch& batch, std::vector<StepOutput>& outputs,
                                                    std::vector<RankStepTimings>& timings) {
  kj::Vector<kj::Promise<void>> steps;
  for (Link& link : links_) {
    KJ_IF_MAYBE(client, link.client) {
      auto request = client->stepRequest();
      encodeStepBatch(batch, request.initBatch());
      steps.add(request.send().then(
          [&link, &outputs, &timings](capnp::Response<proto::Worker::StepResults> reply) {
            decodeStepOutput(reply.getOutput(), outputs[size_t(link.index)]);
            const auto t = reply.getTimings();
            timings[size_t(link.index)] = {t.getComputeSeconds(), t.getCommSeconds(), t.getWaitSeconds()};
          },
          [&link](kj::Exception&& e) { kj::throwFatalException(workerFailure(link.name(), "failed", e)); }));
    } else {
      steps.add(kjError(ErrorKind::kDisconnected, link.name() + " is not connected"));
    }
  }
  const std::string slow = "the step took longer than " + std::to_string(options.stepTimeout.count()) + " ms";
  auto abort = kj::newPromiseAndFulfiller<void>();
  stepAbort_ = kj::mv(abort.fulfiller);
  return withTimeout(allOrFirstError(kj::mv(steps)), toKj(options.stepTimeout), slow)
      .exclusiveJoin(heartbeat().then([]() -> kj::Promise<void> { return kj::NEVER_DONE; }))
      .exclusiveJoin(abort.promise.then([]() -> kj::Promise<void> { return kj::NEVER_DONE; }));
}

void ClusterExecutor::Control::step(const StepBatch& batch, std::vector<StepOutput>& outputs,
                                    std::vector<RankStepTimings>& timings) {
  outputs.resize(links_.size());
  timings.assign(links_.size(), {});
  if (!ready) {
    std::string failure;
    executor_->executeSync([this, &failure] { failure = lastFailure_; });
    throw Error(ErrorKind::kDisconnected, "cluster not ready (reconnecting): " + failure);
  }
  call([&]() {
    return stepAll(batch, outputs, timings).catch_([this](kj::Exception&& e) -> kj::Promise<void> {
      const Error error = toError(e);
      // A batch every worker refused left the cluster as it was; anything else may have left a TP group halfway
      // through its all-reduces: rejoin everyone before the next step.
      if (error.kind() != ErrorKind::kInvalidArgument) startRecovery(error.what());
      return kj::mv(e);
    });
  });
}

void ClusterExecutor::Control::drop(Link& link, const std::string& reason) {
  if (link.client == nullptr && link.rpc.get() == nullptr) return;
  ++link.generation;
  link.client = nullptr;
  link.loaded = false;
  // Freed on a later turn: this may run inside one of the connection's own callbacks.
  tasks_->add(kj::evalLater([rpc = kj::mv(link.rpc), stream = kj::mv(link.stream)]() mutable {
    rpc = nullptr;
    stream = nullptr;
  }));
}

void ClusterExecutor::Control::startRecovery(const std::string& reason) {
  ready = false;
  lastFailure_ = reason;
  if (recovering_ || stopping_) return;
  recovering_ = true;
  log("recovering: " + reason);
  tasks_->add(recoveryLoop());
}

kj::Promise<void> ClusterExecutor::Control::recoveryLoop() {
  return io_->provider->getTimer()
      .afterDelay(toKj(options.reconnectInterval))
      .then([this] { return bringUp(); })
      .then(
          [this]() -> kj::Promise<void> {
            recovering_ = false;
            log("every worker is back: service resumes");
            return kj::READY_NOW;
          },
          [this](kj::Exception&& e) -> kj::Promise<void> {
            lastFailure_ = toError(e).what();
            if (stopping_) return kj::READY_NOW;
            return recoveryLoop();
          });
}

std::vector<WorkerLoadReport> ClusterExecutor::Control::loadReports() {
  std::vector<WorkerLoadReport> reports;
  executor_->executeSync([this, &reports] {
    for (const Link& link : links_) reports.push_back(link.report);
  });
  return reports;
}

void ClusterExecutor::Control::shutdownWorkers() {
  call([this] {
    stopping_ = true;
    kj::Vector<kj::Promise<void>> calls;
    for (Link& link : links_) {
      KJ_IF_MAYBE(client, link.client) {
        calls.add(withTimeout(client->shutdownRequest().send().ignoreResult(), 2 * kj::SECONDS, "no reply")
                      .catch_([](kj::Exception&&) {}));
      }
    }
    return kj::joinPromises(calls.releaseAsArray());
  });
  ready = false;
}

}  // namespace phx
