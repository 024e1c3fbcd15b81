// phalanx worker --listen HOST:PORT [--threads N] [--transport ucx|mpi]: one rank of a cluster. It holds nothing
// until a coordinator connects and sends its shard over the control plane (rpc/phalanx.capnp); it then reads only
// that shard's slices of the checkpoint, joins its tensor-parallel group's data plane and runs steps. SIGTERM or
// SIGINT stops it.
#include <cstdlib>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "worker/worker_server.h"

namespace phx::cli {
namespace {

ArgParser parser() {
  ArgParser p("phalanx worker --listen HOST:PORT [--threads N] [--transport ucx|mpi]",
              "Serves one rank of a cluster: a coordinator connects on HOST:PORT (Cap'n Proto RPC), sends the shard "
              "to load and drives steps. PORT 0 picks a free port (printed on stdout). With --transport mpi (under "
              "mpirun) the port is PORT + the MPI world rank and the data plane is MPI; with ucx (the default) it "
              "is UCX, transports from UCX_TLS. Stops on SIGTERM or SIGINT.");
  p.option("listen", "HOST:PORT", "control-plane address", "127.0.0.1:0")
      .option("threads", "N", "compute threads (kernels)", "1")
      .option("transport", "NAME", "data plane: ucx or mpi", "ucx");
  return p;
}

}  // namespace

int workerCommand(int argc, char** argv) {
  const auto args = parser().parse(argc, argv);
  if (!args) return 0;
  WorkerServerOptions options;
  const std::string listen = args->str("listen");
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throwInvalidArgument("--listen must be HOST:PORT, got '" + listen + "'");
  }
  options.host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  char* end = nullptr;
  const long value = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || value < 0 || value > 65535) {
    throwInvalidArgument("--listen: the port must be 0..65535, got '" + port + "'");
  }
  options.port = int(value);
  options.threads = int(args->integer("threads"));
  if (options.threads < 1) throwInvalidArgument("--threads must be at least 1");
  options.transport = parseDataTransport(args->str("transport"));
  serveWorker(options);
  return 0;
}

}  // namespace phx::cli
