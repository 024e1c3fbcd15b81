// How the coordinator opens each worker's control connection: connect, hello (protocol version, the worker's CPU
// and compute, its challenge), authenticate both ways when the cluster has a secret (rpc/cluster_auth.h), and the
// one matmul compute the whole cluster will use.
#include <chrono>

#include "common/error.h"
#include "coordinator/cluster_control.h"
#include "rpc/cluster_auth.h"
#include "rpc/control_codec.h"

namespace phx {
namespace {

std::vector<uint8_t> bytesOf(capnp::Data::Reader data) { return {data.begin(), data.end()}; }
capnp::Data::Reader dataOf(const std::vector<uint8_t>& bytes) { return {bytes.data(), bytes.size()}; }

}  // namespace

// Retries while the worker is not there yet (a disconnect: refused, reset); a worker that answers and refuses
// (another protocol version, a wrong secret, fenced) fails at once.
kj::Promise<void> ClusterExecutor::Control::connectWithRetry(Link& link, kj::TimePoint deadline) {
  return connectAndHello(link).catch_([this, &link, deadline](kj::Exception&& e) -> kj::Promise<void> {
    drop(link, e.getDescription().cStr());
    const bool absent = e.getType() == kj::Exception::Type::DISCONNECTED;
    if (!absent || io_->provider->getTimer().now() >= deadline) return kj::mv(e);
    raised_.reset();  // this attempt's error is superseded by the next one's
    return io_->provider->getTimer().afterDelay(200 * kj::MILLISECONDS).then([this, &link, deadline] {
      return connectWithRetry(link, deadline);
    });
  });
}

kj::Promise<void> ClusterExecutor::Control::connectAndHello(Link& link) {
  return withTimeout(openConnection(link).then([this, &link] { return greet(link); }), toKj(options.connectTimeout),
                     link.name() + " cannot connect: no hello reply");
}

kj::Promise<void> ClusterExecutor::Control::openConnection(Link& link) {
  return io_->provider->getNetwork()
      .parseAddress(link.host, link.port)
      .catch_([&link](kj::Exception&& e) -> kj::Promise<kj::Own<kj::NetworkAddress>> {
        // A name with no address yet is a worker not started yet (a Kubernetes pod's DNS record appears with its
        // IP), so it is retried like a refused connection until connectTimeout.
        const std::string what = link.name() + ": cannot resolve " + link.host;
        return KJ_EXCEPTION(DISCONNECTED, what.c_str(), e.getDescription());
      })
      .then([](kj::Own<kj::NetworkAddress> address) { return address->connect().attach(kj::mv(address)); })
      .then([this, &link](kj::Own<kj::AsyncIoStream> stream) -> kj::Promise<kj::Own<kj::AsyncIoStream>> {
        // The worker's certificate must name the host dialled; a failed handshake is a refusal, not an absence.
        if (!tls_) return kj::mv(stream);
        return tls_->context().wrapClient(kj::mv(stream), link.host).catch_(
            [this, &link](kj::Exception&& e) -> kj::Promise<kj::Own<kj::AsyncIoStream>> {
              return raise(Error(ErrorKind::kPermissionDenied,
                                 link.name() + ": the TLS handshake failed: " + e.getDescription().cStr()));
            });
      })
      .then(
          [this, &link](kj::Own<kj::AsyncIoStream> stream) {
            link.stream = kj::mv(stream);
            link.rpc = kj::heap<capnp::TwoPartyClient>(*link.stream);
            link.client = link.rpc->bootstrap().castAs<proto::Worker>();
            const uint64_t generation = ++link.generation;
            tasks_->add(link.rpc->onDisconnect().then([this, &link, generation] {
              if (generation != link.generation || stopping_) return;
              log(link.name() + " disconnected");
              for (auto& abort : stepAborts_) {
                if (abort->isWaiting())
                  abort->reject(raise(Error(ErrorKind::kDisconnected, link.name() + " disconnected")));
              }
              drop(link, "disconnected");
              startRecovery(link.name() + " disconnected");
            }));
          },
          [this, &link](kj::Exception&& e) { kj::throwFatalException(lostWorker(link, "cannot connect", e)); });
}

kj::Promise<void> ClusterExecutor::Control::greet(Link& link) {
  auto request = KJ_ASSERT_NONNULL(link.client).helloRequest();
  request.setProtocolVersion(proto::PROTOCOL_VERSION);
  request.setClientName("phalanx coordinator");
  request.setCoordinatorEpoch(options.epoch);
  return request.send().then(
      [this, &link](capnp::Response<proto::Worker::HelloResults> hello) -> kj::Promise<void> {
        if (hello.hasFailure()) return workerFailure(link, "refused hello", hello.getFailure());
        if (hello.getProtocolVersion() != proto::PROTOCOL_VERSION) {
          return raise(Error(ErrorKind::kInvalidArgument,
                             link.name() + ": protocol version mismatch: the worker speaks version " +
                                 std::to_string(hello.getProtocolVersion()) + ", this coordinator speaks version " +
                                 std::to_string(proto::PROTOCOL_VERSION)));
        }
        link.report.workerName = hello.getWorkerName().cStr();
        link.report.pid = hello.getPid();
        link.report.cpu = hello.getCpu().cStr();
        link.defaultCompute = decodeMatmulCompute(hello.getCompute());
        if (hello.getAuthRequired() != options.clusterSecret.has_value()) {
          // Both ways: a coordinator with a secret must not drive a worker that cannot prove it holds the secret.
          return raise(
              Error(ErrorKind::kPermissionDenied,
                    link.name() + (options.clusterSecret ? " has no cluster secret, this coordinator has one"
                                                         : " requires a cluster secret "
                                                           "(--cluster-secret-file), this coordinator has none")));
        }
        if (!options.clusterSecret) return kj::READY_NOW;
        return authenticate(link, bytesOf(hello.getChallenge()));
      },
      [this, &link](kj::Exception&& e) -> kj::Promise<void> { return lostWorker(link, "cannot connect", e); });
}

kj::Promise<void> ClusterExecutor::Control::authenticate(Link& link, std::vector<uint8_t> challenge) {
  const std::string& secret = *options.clusterSecret;
  std::vector<uint8_t> nonce = randomNonce();
  auto request = KJ_ASSERT_NONNULL(link.client).authenticateRequest();
  request.setClientNonce(dataOf(nonce));
  request.setProof(dataOf(authProof(secret, AuthRole::kCoordinator, challenge, nonce, options.epoch)));
  return request.send().then(
      [this, &link, challenge = kj::mv(challenge),
       nonce = kj::mv(nonce)](capnp::Response<proto::Worker::AuthenticateResults> reply) -> kj::Promise<void> {
        if (reply.hasFailure()) return workerFailure(link, "refused authentication", reply.getFailure());
        const auto expected = authProof(*options.clusterSecret, AuthRole::kWorker, nonce, challenge, options.epoch);
        if (!proofMatches(bytesOf(reply.getProof()), expected)) {
          return raise(Error(ErrorKind::kPermissionDenied,
                             link.name() + " answered with a proof that does not match this cluster's secret"));
        }
        return kj::READY_NOW;
      },
      [this, &link](kj::Exception&& e) -> kj::Promise<void> { return lostWorker(link, "cannot authenticate", e); });
}

void ClusterExecutor::Control::chooseCompute() {
  MatmulCompute chosen = MatmulCompute::kF32Fma;
  if (options.compute) {
    chosen = *options.compute;
  } else {
    const auto first = links_.front().defaultCompute;
    const bool agree =
        std::all_of(links_.begin(), links_.end(), [&](const Link& l) { return l.defaultCompute == first; });
    if (agree && first) chosen = *first;
  }
  if (compute_.exchange(int(chosen)) != int(chosen) || kvEpoch == 0) {
    log(std::string("every worker multiplies BF16 weights with ") + matmulComputeName(chosen));
  }
}

}  // namespace phx
