// `phalanx worker`: serves the control plane's Worker interface (rpc/phalanx.capnp) over Cap'n Proto RPC on one
// TCP port. The kj event loop (this thread) answers calls; loading, joining the data plane and steps run on a
// compute thread (worker/compute_thread.h), so health answers during a long prefill. State between calls lives
// in a WorkerEngine (worker/worker_engine.h).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "rpc/control_tls.h"
#include "worker/worker_engine.h"

namespace phx {

class WorkerHealth;

struct WorkerServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port (printed); under MPI the port is port + the MPI world rank
  int threads = 1;  // kernel threads, unless loadShard asks for another count
  std::optional<WeightType> weightType;  // for loads that leave the matrices' dtype to the worker; unset: the
                                         // checkpoint's own
  DataTransport transport = DataTransport::kUcx;
  WorkerMetrics* metrics = nullptr;  // optional; outlives the server
  WorkerHealth* health = nullptr;    // optional: told the phase, the state and each event-loop turn; outlives it
  std::optional<std::string> clusterSecret;  // set: every connection must authenticate (rpc/cluster_auth.h)
  std::filesystem::path modelRoot = std::filesystem::current_path();  // loadShard refuses directories outside it
  int maxConnections = 64;  // control connections at once; more are closed on accept
  std::chrono::milliseconds drainTimeout{30000};  // on SIGTERM: the running job gets this long to finish
  std::optional<ControlTlsFiles> tls;  // set: mutual TLS on every control connection (rpc/control_tls.h)
};

// Serves until SIGTERM or SIGINT (or a shutdown() call), lets the running step or load finish (drainTimeout), then
// returns. Once listening, prints one line to stdout:
// "phalanx worker listening on HOST:PORT (transport ucx, pid N)". Each connection gets its own session
// (worker/worker_session.h). Throws phx::Error (kIo) when the port cannot be bound. Warns on stderr when bound to a
// non-loopback address without a cluster secret.
void serveWorker(const WorkerServerOptions& options);

}  // namespace phx
