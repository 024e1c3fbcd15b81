// phalanx worker --listen HOST:PORT [--threads N] [--transport ucx|mpi]: one rank of a cluster. It holds nothing
// until a coordinator connects and sends its shard over the control plane (rpc/phalanx.capnp); it then reads only
// that shard's slices of the checkpoint, joins its tensor-parallel group's data plane and runs steps. SIGTERM or
// SIGINT stops it.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "common/host_port.h"
#include "monitoring/worker_health.h"
#include "monitoring/worker_metrics.h"
#include "rpc/cluster_auth.h"
#include "rpc/mpi_communicator.h"
#include "worker/local_engine.h"
#include "worker/worker_server.h"

namespace phx::cli {
namespace {

ArgParser parser() {
  ArgParser p("phalanx worker --listen HOST:PORT [--threads N] [--transport ucx|mpi] [--cluster-secret-file F] "
              "[--model-root DIR]",
              "Serves one rank of a cluster: a coordinator connects on HOST:PORT (Cap'n Proto RPC), sends the shard "
              "to load and drives steps. PORT 0 picks a free port (printed on stdout). With --transport mpi (under "
              "mpirun) the port is PORT + the MPI world rank and the data plane is MPI; with ucx (the default) it "
              "is UCX, transports from UCX_TLS. With a cluster secret every control connection must prove it "
              "(challenge-response; docs/security.md). Stops on SIGTERM or SIGINT.");
  p.option("listen", "HOST:PORT", "control-plane address", "127.0.0.1:0")
      .option("threads", "N", "compute threads (kernels)", "1")
      .option("transport", "NAME", "data plane: ucx or mpi", "ucx")
      .option("dtype", "T",
              "matrix weights when the coordinator leaves it to the worker: bf16, int8 (quantized while loading) or "
              "auto (the checkpoint's own)", "auto")
      .option("metrics", "HOST:PORT",
              "serve Prometheus metrics at /metrics and health at /health on this address (under MPI: PORT + world "
              "rank)")
      .option("cluster-secret-file", "FILE",
              "the cluster secret (at least 16 bytes): coordinators must prove it; without it any client that "
              "reaches the port may drive this worker")
      .option("model-root", "DIR", "load checkpoints only from under this directory (default: the working directory)")
      .option("drain-timeout", "S", "on SIGTERM: seconds the running step or load gets to finish", "30")
      .option("tls-cert", "FILE", "PEM certificate for mutual TLS on the control plane (with --tls-key, --tls-ca)")
      .option("tls-key", "FILE", "PEM private key of --tls-cert")
      .option("tls-ca", "FILE", "PEM CA that must have signed the coordinator's client certificate");
  return p;
}

HostPort listenAddress(const char* flag, const std::string& text) {
  const std::optional<HostPort> address = parseHostPort(text, /*minPort=*/0);
  if (!address) {
    throwInvalidArgument(std::string(flag) + " must be HOST:PORT with a port in 0..65535, got '" + text + "'");
  }
  return *address;
}

}  // namespace

int workerCommand(int argc, char** argv) {
  const auto args = parser().parse(argc, argv);
  if (!args) return 0;
  WorkerServerOptions options;
  const HostPort listen = listenAddress("--listen", args->str("listen"));
  options.host = listen.host;
  options.port = listen.port;
  options.threads = int(args->integer("threads"));
  if (options.threads < 1) throwInvalidArgument("--threads must be at least 1");
  options.transport = parseDataTransport(args->str("transport"));
  options.weightType = parseWeightDtype(args->str("dtype"));
  if (auto file = args->optionalStr("cluster-secret-file")) options.clusterSecret = readClusterSecret(*file);
  options.tls = controlTlsFiles(args->optionalStr("tls-cert"), args->optionalStr("tls-key"), args->optionalStr("tls-ca"));
  const double drainSeconds = args->number("drain-timeout");
  if (!(drainSeconds >= 0)) throwInvalidArgument("--drain-timeout must be a non-negative number of seconds");
  options.drainTimeout = std::chrono::milliseconds(int64_t(drainSeconds * 1000));
  if (auto root = args->optionalStr("model-root")) {
    if (!std::filesystem::is_directory(*root)) throwInvalidArgument("--model-root " + *root + " is not a directory");
    options.modelRoot = *root;
  }
  WorkerHealth health;  // before the metrics: their server answers /health from it until it stops
  WorkerMetrics metrics;
  if (auto address = args->optionalStr("metrics")) {
    HostPort where = listenAddress("--metrics", *address);
    if (options.transport == DataTransport::kMpi && where.port != 0) where.port += MpiCommunicator::worldRank();
    const int port = metrics.startExposer(where.host + ":" + std::to_string(where.port), &health);
    std::printf("phalanx worker metrics on http://%s:%d/metrics (health: /health)\n", where.host.c_str(), port);
    std::fflush(stdout);
    options.metrics = &metrics;
    options.health = &health;
  }
  serveWorker(options);
  return 0;
}

}  // namespace phx::cli
