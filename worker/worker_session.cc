#include "worker/worker_session.h"

#include <string>

#include "rpc/cluster_auth.h"
#include "rpc/control_codec.h"

namespace phx {
namespace {

std::vector<uint8_t> bytesOf(capnp::Data::Reader data) { return {data.begin(), data.end()}; }

capnp::Data::Reader dataOf(const std::vector<uint8_t>& bytes) { return {bytes.data(), bytes.size()}; }

}  // namespace

std::optional<Error> WorkerSession::refusal(const char* method) const {
  const std::string call = std::string(method) + ": ";
  if (!greeted_) return Error(ErrorKind::kPermissionDenied, call + "call hello first");
  if (!authenticated_) {
    return Error(ErrorKind::kPermissionDenied,
                 call +
                     "not authenticated: this worker has a cluster secret (--cluster-secret-file); authenticate "
                     "with the same secret first");
  }
  if (epoch_ < core_.acceptedEpoch()) {
    return Error(ErrorKind::kPermissionDenied, call + "fenced: this connection's coordinator (epoch " +
                                                   std::to_string(epoch_) + ") was superseded by epoch " +
                                                   std::to_string(core_.acceptedEpoch()));
  }
  return std::nullopt;
}

std::optional<Error> WorkerSession::claim() {
  if (core_.claimEpoch(epoch_)) return std::nullopt;
  return Error(ErrorKind::kPermissionDenied, "fenced: a newer coordinator (epoch " +
                                                 std::to_string(core_.acceptedEpoch()) +
                                                 ") holds this worker; this one's epoch is " + std::to_string(epoch_));
}

kj::Promise<void> WorkerSession::hello(HelloContext context) {
  const auto params = context.getParams();
  auto results = context.getResults();
  results.setProtocolVersion(proto::PROTOCOL_VERSION);
  if (params.getProtocolVersion() != proto::PROTOCOL_VERSION) {
    encodeFailure(Error(ErrorKind::kInvalidArgument,
                        "protocol version mismatch: " + std::string(params.getClientName().cStr()) +
                            " speaks version " + std::to_string(params.getProtocolVersion()) +
                            ", this worker speaks version " + std::to_string(proto::PROTOCOL_VERSION)),
                  results.initFailure());
    return kj::READY_NOW;
  }
  core_.describe(results);
  greeted_ = true;
  epoch_ = params.getCoordinatorEpoch();
  authenticated_ = !core_.secret().has_value();
  if (!authenticated_) {
    challenge_ = randomNonce();
    results.setChallenge(dataOf(challenge_));
    return kj::READY_NOW;
  }
  if (auto fenced = claim()) encodeFailure(*fenced, results.initFailure());
  return kj::READY_NOW;
}

kj::Promise<void> WorkerSession::authenticate(AuthenticateContext context) {
  const auto params = context.getParams();
  auto results = context.getResults();
  if (!greeted_ || !core_.secret() || challenge_.empty()) {
    encodeFailure(Error(ErrorKind::kPermissionDenied,
                        "authenticate: no challenge is pending (call hello first; a worker without a cluster secret "
                        "needs no authentication)"),
                  results.initFailure());
    return kj::READY_NOW;
  }
  const std::vector<uint8_t> clientNonce = bytesOf(params.getClientNonce());
  const std::string& secret = *core_.secret();
  const auto expected = authProof(secret, AuthRole::kCoordinator, challenge_, clientNonce, epoch_);
  const bool valid = clientNonce.size() == kAuthNonceBytes && proofMatches(bytesOf(params.getProof()), expected);
  const std::vector<uint8_t> challenge = std::move(challenge_);
  challenge_.clear();  // one attempt per challenge: a guess needs a new hello
  if (!valid) {
    encodeFailure(
        Error(ErrorKind::kPermissionDenied, "authenticate: the proof does not match this worker's cluster secret"),
        results.initFailure());
    return kj::READY_NOW;
  }
  authenticated_ = true;
  results.setProof(dataOf(authProof(secret, AuthRole::kWorker, clientNonce, challenge, epoch_)));
  if (auto fenced = claim()) encodeFailure(*fenced, results.initFailure());
  return kj::READY_NOW;
}

#define PHX_ADMIT(method)                                        \
  if (auto refused = refusal(method)) {                          \
    encodeFailure(*refused, context.getResults().initFailure()); \
    return kj::READY_NOW;                                        \
  }

kj::Promise<void> WorkerSession::loadShard(LoadShardContext context) {
  PHX_ADMIT("loadShard");
  return core_.loadShard(context);
}

kj::Promise<void> WorkerSession::dataPlaneAddress(DataPlaneAddressContext context) {
  PHX_ADMIT("dataPlaneAddress");
  return core_.dataPlaneAddress(context);
}

kj::Promise<void> WorkerSession::connectPeers(ConnectPeersContext context) {
  PHX_ADMIT("connectPeers");
  return core_.connectPeers(context);
}

kj::Promise<void> WorkerSession::step(StepContext context) {
  PHX_ADMIT("step");
  return core_.step(context);
}

kj::Promise<void> WorkerSession::health(HealthContext context) {
  PHX_ADMIT("health");
  core_.health(context.getResults());
  return kj::READY_NOW;
}

kj::Promise<void> WorkerSession::shutdown(ShutdownContext context) {
  PHX_ADMIT("shutdown");
  core_.shutdown();
  return kj::READY_NOW;
}

#undef PHX_ADMIT

}  // namespace phx
