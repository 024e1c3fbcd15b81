#include "coordinator/cluster_control.h"

#include <unistd.h>

#include <cstdio>

#include "common/error.h"
#include "common/host_port.h"
#include "rpc/control_codec.h"

namespace phx {
namespace {

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
    const std::optional<HostPort> address = parseHostPort(link.endpoint);
    if (!address) {
      throwInvalidArgument("cluster: worker " + std::to_string(i) + " endpoint '" + link.endpoint +
                           "' is not HOST:PORT");
    }
    link.host = address->host;
    link.port = unsigned(address->port);
    link.report.endpoint = link.endpoint;
  }
  if (options.tls) tls_ = std::make_unique<ControlTls>(*options.tls, ControlTls::Side::kCoordinator);
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
    // The reset and the call in one turn of the loop: no other task's error can slip in between.
    executor_->executeSync([this, &func] {
      raised_.reset();
      return func();
    });
  } catch (const kj::Exception& e) {
    std::optional<Error> error;
    executor_->executeSync([&] { error = toError(e); });
    throw *error;
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
  return promise.exclusiveJoin(io_->provider->getTimer().afterDelay(timeout).then([this, message]() -> kj::Promise<T> {
    return raise(Error(ErrorKind::kDisconnected, message));
  }));
}

kj::Exception ClusterExecutor::Control::raise(Error error) {
  const auto type =
      error.kind() == ErrorKind::kDisconnected ? kj::Exception::Type::DISCONNECTED : kj::Exception::Type::FAILED;
  kj::Exception exception(type, __FILE__, __LINE__, kj::str(error.what()));
  if (!raised_) raised_ = std::move(error);
  return exception;
}

kj::Exception ClusterExecutor::Control::workerFailure(const Link& link, const std::string& what,
                                                      proto::Failure::Reader failure) {
  const Error error = decodeFailure(failure);
  return raise(Error(error.kind(), link.name() + " " + what + ": " + error.what()));
}

kj::Exception ClusterExecutor::Control::lostWorker(const Link& link, const std::string& what, const kj::Exception& e) {
  if (raised_) return kj::cp(e);  // already ours, kind recorded
  return raise(Error(ErrorKind::kDisconnected, link.name() + " " + what + ": " + e.getDescription().cStr()));
}

Error ClusterExecutor::Control::toError(const kj::Exception& e) const {
  if (raised_) return *raised_;
  return Error(ErrorKind::kDisconnected, e.getDescription().cStr());
}

void ClusterExecutor::Control::startUp() {
  call([this] { return bringUp(); });
}

kj::Promise<void> ClusterExecutor::Control::bringUp() {
  ready = false;
  const kj::TimePoint deadline = io_->provider->getTimer().now() + toKj(options.connectTimeout);
  kj::Vector<kj::Promise<void>> workers;
  for (Link& link : links_) {
    workers.add(link.client == nullptr ? connectWithRetry(link, deadline) : kj::READY_NOW);
  }
  // Every worker greeted before any loads: the compute they will all use depends on every hello.
  return allOrFirstError(kj::mv(workers))
      .then([this] {
        chooseCompute();
        kj::Vector<kj::Promise<void>> loads;
        for (Link& link : links_) {
          if (!link.loaded) loads.add(load(link));
        }
        return allOrFirstError(kj::mv(loads));
      }).then([this] { return swapAddresses(); }).then([this] {
    ++kvEpoch;
    ready = true;
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
  request.setCompute(encodeMatmulCompute(compute()));
  request.setThreads(options.threadsPerWorker);
  request.setMaxStepTokens(options.maxStepTokens);
  request.setProgress(kj::heap<ProgressLogger>(*this, link.name()));
  log(link.name() + ": loading " + describeRankShard(rank.shard));
  return withTimeout(request.send(), toKj(options.loadTimeout), "loadShard took too long")
      .then(
          [this, &link](capnp::Response<proto::Worker::LoadShardResults> loaded) -> kj::Promise<void> {
            if (loaded.hasFailure()) return workerFailure(link, "cannot load", loaded.getFailure());
            link.loaded = true;
            link.report.weightType = decodeWeightDtype(loaded.getWeights()).value_or(WeightType::kBf16);
            link.report.weightBytes = loaded.getWeightBytes();
            link.report.bytesRead = loaded.getBytesRead();
            link.report.loadSeconds = loaded.getLoadSeconds();
            link.report.rssBytes = loaded.getRssBytes();
            link.report.peakRssBytes = loaded.getPeakRssBytes();
            link.report.compute = decodeMatmulCompute(loaded.getCompute()).value_or(MatmulCompute::kF32Fma);
            link.report.fingerprint = loaded.getFingerprint();
            link.report.reused = loaded.getReused();
            log(link.name() + (link.report.reused ? ": re-attached to its loaded " : ": loaded ") +
                std::to_string(loaded.getWeightBytes() >> 20) + " MiB of " + weightTypeName(link.report.weightType) +
                " weights (" + matmulComputeName(link.report.compute) + ") in " +
                std::to_string(loaded.getLoadSeconds()) + " s, RSS " + std::to_string(loaded.getRssBytes() >> 20) +
                " MiB");
            return kj::READY_NOW;
          },
          [this, &link](kj::Exception&& e) -> kj::Promise<void> { return lostWorker(link, "cannot load", e); });
}

kj::Promise<void> ClusterExecutor::Control::swapAddresses() {
  kj::Vector<kj::Promise<void>> addresses;
  for (Link& link : links_) {
    addresses.add(KJ_ASSERT_NONNULL(link.client).dataPlaneAddressRequest().send().then(
        [this, &link](capnp::Response<proto::Worker::DataPlaneAddressResults> reply) -> kj::Promise<void> {
          if (reply.hasFailure()) return workerFailure(link, "gave no address", reply.getFailure());
          const auto data = reply.getAddress();
          const auto* bytes = reinterpret_cast<const std::byte*>(data.begin());
          link.address.assign(bytes, bytes + data.size());
          return kj::READY_NOW;
        },
        [this, &link](kj::Exception&& e) -> kj::Promise<void> { return lostWorker(link, "gave no address", e); }));
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
      request.setStageTimeoutMs(int32_t(options.stepTimeout.count()));
      request.setPayload(encodeAllReducePayload(options.allReducePayload));
      joins.add(request.send().then(
          [this, &link](capnp::Response<proto::Worker::ConnectPeersResults> reply) -> kj::Promise<void> {
            if (reply.hasFailure()) return workerFailure(link, "cannot join the data plane", reply.getFailure());
            return kj::READY_NOW;
          },
          [this, &link](kj::Exception&& e) -> kj::Promise<void> {
            return lostWorker(link, "cannot join the data plane", e);
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
        auto answered = client->healthRequest().send().then(
            [this, &link](capnp::Response<proto::Worker::HealthResults> reply) -> kj::Promise<void> {
              if (reply.hasFailure()) return workerFailure(link, "refused health", reply.getFailure());
              return kj::READY_NOW;
            });
        pings.add(withTimeout(kj::mv(answered), toKj(options.heartbeatTimeout), link.name() + " " + silence)
                      .catch_([this, &link](kj::Exception&& e) -> kj::Promise<void> {
                        drop(link, e.getDescription().cStr());  // a hung worker is reconnected (and reloaded)
                        return lostWorker(link, "is unavailable", e);
                      }));
      } else {
        pings.add(raise(Error(ErrorKind::kDisconnected, link.name() + " is not connected")));
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
          [this, &link, &outputs, &timings](capnp::Response<proto::Worker::StepResults> reply) -> kj::Promise<void> {
            if (reply.hasFailure()) return workerFailure(link, "failed", reply.getFailure());
            try {
              decodeStepOutput(reply.getOutput(), outputs[size_t(link.index)]);
            } catch (const Error& malformed) {
              // A reply that does not add up is the worker's bug, not the batch's: the step fails, nothing else.
              return raise(Error(ErrorKind::kInternal, link.name() + " sent a malformed step reply: " +
                                                           malformed.what()));
            }
            const auto t = reply.getTimings();
            timings[size_t(link.index)] = {t.getComputeSeconds(), t.getCommSeconds(), t.getWaitSeconds()};
            return kj::READY_NOW;
          },
          [this, &link](kj::Exception&& e) -> kj::Promise<void> { return lostWorker(link, "failed", e); }));
    } else {
      steps.add(raise(Error(ErrorKind::kDisconnected, link.name() + " is not connected")));
    }
  }
  const std::string slow = "the step took longer than " + std::to_string(options.stepTimeout.count()) + " ms";
  auto abort = kj::newPromiseAndFulfiller<void>();
  std::erase_if(stepAborts_, [](auto& fulfiller) { return !fulfiller->isWaiting(); });
  stepAborts_.push_back(kj::mv(abort.fulfiller));
  return withTimeout(allOrFirstError(kj::mv(steps)), toKj(options.stepTimeout), slow)
      .exclusiveJoin(heartbeat().then([]() -> kj::Promise<void> { return kj::NEVER_DONE; }))
      .exclusiveJoin(abort.promise.then([]() -> kj::Promise<void> { return kj::NEVER_DONE; }));
}

void ClusterExecutor::Control::launch(const StepBatch& batch, const std::shared_ptr<PendingStep>& step) {
  step->batch = &batch;
  step->outputs.resize(links_.size());
  step->timings.assign(links_.size(), {});
  if (!ready) {
    std::string failure;
    executor_->executeSync([this, &failure] { failure = lastFailure_; });
    throw Error(ErrorKind::kDisconnected, "cluster not ready (reconnecting): " + failure);
  }
  executor_->executeSync([this, &batch, step] {
    if (stepsInFlight_++ == 0) raised_.reset();  // the first error of this run of steps is theirs
    kj::Promise<void> work = nullptr;
    if (batch.kvEpoch != 0 && batch.kvEpoch != kvEpoch) {
      work = raise(Error(ErrorKind::kDisconnected, "the cluster reconnected since this batch was planned (KV epoch " +
                                                       std::to_string(batch.kvEpoch) + ", now " +
                                                       std::to_string(kvEpoch) + "): its KV may be gone"));
    } else {
      // Encoded and sent in this turn of the loop: every worker receives the steps in launch order. evalNow: what
      // encoding throws rejects this step, as a worker's failure would, instead of escaping to the caller.
      work = kj::evalNow([&] {
               return stepAll(batch, step->outputs, step->timings);
             }).catch_([this](kj::Exception&& e) -> kj::Promise<void> {
        const Error error = toError(e);
        // A batch every worker refused left the cluster as it was; anything else may have left a TP group halfway
        // through its all-reduces: rejoin everyone before the next step.
        if (error.kind() != ErrorKind::kInvalidArgument) startRecovery(error.what());
        return kj::mv(e);
      });
    }
    tasks_->add(work.then([this, step] { finish(*step, std::nullopt); },
                          [this, step](kj::Exception&& e) { finish(*step, toError(e)); }));
  });
}

void ClusterExecutor::Control::finish(PendingStep& step, std::optional<Error> error) {
  --stepsInFlight_;
  {
    std::lock_guard lock(pendingMutex_);
    step.done = true;
    step.error = std::move(error);
  }
  pendingDone_.notify_all();
}

void ClusterExecutor::Control::await(PendingStep& step) {
  std::unique_lock lock(pendingMutex_);
  pendingDone_.wait(lock, [&step] { return step.done; });
  if (step.error) throw *step.error;
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
      .then([this] {
        raised_.reset();  // no blocking call waits on a recovery: its errors are only logged
        return bringUp();
      })
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
