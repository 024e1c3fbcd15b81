// One control connection to a worker: the gate in front of WorkerCore. Every call but hello (and authenticate) is
// refused with a permission-denied failure until the connection has (1) said hello, (2) proved the cluster secret
// when the worker has one (rpc/cluster_auth.h), and while (3) its coordinator epoch is still the newest the worker
// has accepted: a second coordinator fences the first. docs/security.md.
#pragma once

#include <optional>
#include <vector>

#include "common/error.h"
#include "rpc/phalanx.capnp.h"
#include "worker/worker_core.h"

namespace phx {

class WorkerSession final : public proto::Worker::Server {
 public:
  explicit WorkerSession(WorkerCore& core) : core_(core) {}

 protected:
  kj::Promise<void> hello(HelloContext context) override;
  kj::Promise<void> authenticate(AuthenticateContext context) override;
  kj::Promise<void> loadShard(LoadShardContext context) override;
  kj::Promise<void> dataPlaneAddress(DataPlaneAddressContext context) override;
  kj::Promise<void> connectPeers(ConnectPeersContext context) override;
  kj::Promise<void> step(StepContext context) override;
  kj::Promise<void> health(HealthContext context) override;
  kj::Promise<void> shutdown(ShutdownContext context) override;

 private:
  // Why this connection may not call `method` now; nullopt when it may.
  std::optional<Error> refusal(const char* method) const;
  // Takes the coordinator's epoch once the connection is trusted; a refusal when a newer one holds the worker.
  std::optional<Error> claim();

  WorkerCore& core_;
  bool greeted_ = false;
  bool authenticated_ = false;
  uint64_t epoch_ = 0;
  std::vector<uint8_t> challenge_;
};

}  // namespace phx
