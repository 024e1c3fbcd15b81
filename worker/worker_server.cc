#include "worker/worker_server.h"

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"
#include "monitoring/worker_health.h"
#include "rpc/mpi_communicator.h"
#include "worker/compute_thread.h"
#include "worker/worker_core.h"
#include "worker/worker_session.h"

namespace phx {
namespace {

bool isLoopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

// Accepts control connections, each with its own session over the shared core, up to maxConnections at once.
// A failed accept (out of file descriptors) waits and tries again rather than ending the listener.
class ControlListener final : private kj::TaskSet::ErrorHandler {
 public:
  ControlListener(kj::ConnectionReceiver& listener, WorkerCore& core, kj::Timer& timer, int maxConnections)
      : listener_(listener), core_(core), timer_(timer), maxConnections_(maxConnections), connections_(*this) {}

  kj::Promise<void> run() {
    return listener_.accept().then(
        [this](kj::Own<kj::AsyncIoStream> stream) {
          if (open_ >= maxConnections_) {
            std::fprintf(stderr, "phalanx worker: refusing a control connection: %d already open\n", open_);
          } else {
            serve(kj::mv(stream));
          }
          return run();
        },
        [this](kj::Exception&& e) {
          std::fprintf(stderr, "phalanx worker: accept failed (%s); retrying\n", e.getDescription().cStr());
          return timer_.afterDelay(100 * kj::MILLISECONDS).then([this] { return run(); });
        });
  }

 private:
  // One connection's parts, torn down in reverse order of their making: the RPC system before the network it
  // speaks over, the network before the stream.
  struct Connection {
    Connection(kj::Own<kj::AsyncIoStream> socket, WorkerCore& core)
        : stream(kj::mv(socket)),
          network(*stream, capnp::rpc::twoparty::Side::SERVER),
          rpc(capnp::makeRpcServer(network, capnp::Capability::Client(kj::heap<WorkerSession>(core)))) {}
    kj::Own<kj::AsyncIoStream> stream;
    capnp::TwoPartyVatNetwork network;
    capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
  };

  void serve(kj::Own<kj::AsyncIoStream> stream) {
    auto connection = kj::heap<Connection>(kj::mv(stream), core_);
    auto closed = connection->network.onDisconnect();
    ++open_;
    connections_.add(closed.attach(kj::mv(connection)).then([this] { --open_; }));
  }
  void taskFailed(kj::Exception&&) override { --open_; }

  kj::ConnectionReceiver& listener_;
  WorkerCore& core_;
  kj::Timer& timer_;
  const int maxConnections_;
  int open_ = 0;
  kj::TaskSet connections_;
};

// Tells `health` the event loop turns, for as long as the returned promise lives.
kj::Promise<void> beatEverySecond(kj::Timer& timer, WorkerHealth& health) {
  health.heartbeat();
  return timer.afterDelay(1 * kj::SECONDS).then([&timer, &health] { return beatEverySecond(timer, health); });
}

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
  // Declared before the core: destroyed after it, once no call can reach the compute thread any more.
  ComputeThread compute;
  WorkerCore core(options, worldRank, compute, io.provider->getTimer(), *stop.fulfiller);

  kj::Own<kj::ConnectionReceiver> listener;
  try {
    auto address = io.provider->getNetwork().parseAddress(options.host, unsigned(port)).wait(io.waitScope);
    listener = address->listen();
  } catch (const kj::Exception& e) {
    throw Error(ErrorKind::kIo, "worker: cannot listen on " + options.host + ":" + std::to_string(port) + ": " +
                                    e.getDescription().cStr());
  }
  core.boundPort = listener->getPort();
  std::unique_ptr<ControlTls> tls;
  if (options.tls) {
    tls = std::make_unique<ControlTls>(*options.tls, ControlTls::Side::kWorker, &io.provider->getTimer());
    listener = tls->context().wrapPort(kj::mv(listener));
  }
  if (!options.clusterSecret && !isLoopback(options.host)) {
    std::fprintf(stderr,
                 "phalanx worker: WARNING: listening on %s without a cluster secret: anyone who reaches this port "
                 "can drive this worker. Pass --cluster-secret-file (docs/security.md).\n",
                 options.host.c_str());
  }
  std::printf("phalanx worker listening on %s:%u (transport %s, pid %d%s)\n", options.host.c_str(), core.boundPort,
              dataTransportName(options.transport), int(getpid()), tls ? ", mutual TLS" : "");
  std::fflush(stdout);

  {
    ControlListener control(*listener, core, io.provider->getTimer(), options.maxConnections);
    kj::Promise<void> heartbeat = kj::READY_NOW;
    if (options.health) {
      heartbeat = beatEverySecond(io.provider->getTimer(), *options.health).eagerlyEvaluate(nullptr);
      options.health->setPhase(WorkerHealth::Phase::kServing);
    }
    auto signalled = io.unixEventPort.onSignal(SIGTERM).ignoreResult().exclusiveJoin(
        io.unixEventPort.onSignal(SIGINT).ignoreResult());
    control.run().exclusiveJoin(kj::mv(signalled)).exclusiveJoin(kj::mv(stop.promise)).wait(io.waitScope);
    if (options.health) options.health->setPhase(WorkerHealth::Phase::kDraining);
    // Drain: no new connections; the steps (or load) in progress or queued finish and their replies go out on the
    // open ones, up to the drain timeout.
    auto& timer = io.provider->getTimer();
    const auto deadline = timer.now() + options.drainTimeout.count() * kj::MILLISECONDS;
    timer.afterDelay(100 * kj::MILLISECONDS).wait(io.waitScope);  // calls already on the wire are dispatched
    while (compute.pending() && timer.now() < deadline) timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
    timer.afterDelay(50 * kj::MILLISECONDS).wait(io.waitScope);  // the last reply reaches the coordinator
    std::fprintf(stderr, "phalanx worker on port %u: stopping\n", core.boundPort);
    if (compute.busy()) {
      // A load or step still runs on the engine the core owns: end here rather than free it under the job.
      std::fflush(stdout);
      std::fflush(stderr);
      std::_Exit(0);
    }
  }
}

}  // namespace phx
