// phalanx up --model DIR --tp T [--pp P] [--port N] [--mpi]: a whole cluster on this machine as separate
// processes: T x P workers (each pinned to its own cores) and one coordinator serving the client port. It waits
// until the coordinator reports every worker loaded, restarts a worker that dies (the coordinator reconnects to
// it) or a coordinator that dies (the new one re-attaches to the loaded workers without reading weights), and on
// Ctrl-C stops every process it started, the coordinator first (it drains its requests).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/args.h"
#include "cli/child_process.h"
#include "cli/commands.h"
#include "common/error.h"
#include "rpc/cluster_auth.h"
#include "worker/local_engine.h"

namespace phx::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<bool> stopRequested{false};

void onStopSignal(int) { stopRequested.store(true); }

ArgParser parser() {
  ArgParser p("phalanx up --model DIR --tp T [--pp P] [--port N] [options]",
              "Starts a whole cluster on this machine: T x P worker processes pinned to cores and a coordinator "
              "serving the client port (generate --cluster and the HTTP API). Waits until every worker has loaded, "
              "restarts workers and the coordinator when they die (a new coordinator re-attaches to the loaded "
              "workers), and stops every process it started on Ctrl-C.");
  p.option("model", "DIR", "checkpoint directory (Hugging Face layout)")
      .option("tp", "T", "tensor-parallel ranks per pipeline stage", "1")
      .option("pp", "P", "pipeline stages", "1")
      .option("port", "N", "the coordinator's client port", "8000")
      .option("host", "H", "address the client port listens on", "127.0.0.1")
      .option("worker-port", "N", "first worker control port (worker i listens on N + i)", "7100")
      .option("metrics-port", "N", "first worker Prometheus port (worker i serves /metrics on N + i; 0: none)",
              "9100")
      .option("threads", "N", "compute threads per worker (and cores it is pinned to)", "1")
      .option("kv-tokens", "N", "KV cache capacity in tokens", "16384")
      .option("dtype", "T", "matrix weights: bf16, int8 (each worker quantizes its shard while loading) or auto "
              "(the checkpoint's own)", "auto")
      .option("kv-dtype", "T", "KV cache: bf16, int8 or f32", "bf16")
      .option("api-key-file", "F", "require this API key (Authorization: Bearer) on the HTTP API")
      .option("cluster-secret-file", "F", "the cluster secret the coordinator and workers authenticate with")
      .option("coordinator-args", "ARGS", "extra arguments for the coordinator, space separated")
      .flag("mpi", "launch the workers with mpirun and use MPI collectives instead of UCX")
      .flag("no-pin", "do not pin workers to cores")
      .flag("no-restart", "do not restart a worker that dies");
  return p;
}

// A TCP connection to host:port (IPv4) with a 2 s receive timeout, or -1.
int connectTo(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(uint16_t(port));
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when something accepts TCP connections on host:port.
bool acceptsConnections(const std::string& host, int port) {
  const int fd = connectTo(host, port);
  if (fd >= 0) close(fd);
  return fd >= 0;
}

// GET /health on the client port: 200 once every worker has loaded.
bool healthy(const std::string& host, int port) {
  const int fd = connectTo(host, port);
  if (fd < 0) return false;
  bool ok = false;
  const std::string request = "GET /health HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (write(fd, request.data(), request.size()) == ssize_t(request.size())) {
    // Read the whole reply: closing early would cut the server's response off mid-write.
    std::string reply;
    char buffer[1024];
    for (ssize_t got; (got = read(fd, buffer, sizeof(buffer))) > 0;) reply.append(buffer, size_t(got));
    ok = reply.size() > 12 && reply.compare(0, 12, "HTTP/1.1 200") == 0;
  }
  close(fd);
  return ok;
}

// "a b c" -> {"a", "b", "c"}
std::vector<std::string> splitWords(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (c == ' ') {
      if (!word.empty()) words.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

struct ClusterLayout {
  std::string model;
  int workers = 1;
  int threads = 1;
  std::vector<std::string> secretFlag;  // --cluster-secret-file F, for every process
  int firstWorkerPort = 7100;
  int firstMetricsPort = 9100;  // 0: workers export no metrics
  bool pin = true;
  bool mpi = false;

  std::string workerEndpoint(int worker) const { return "127.0.0.1:" + std::to_string(firstWorkerPort + worker); }

  // Worker i gets `threads` cores of its own, wrapping around when there are more workers than cores.
  std::vector<int> coresOf(int worker) const {
    if (!pin) return {};
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<int> set;
    for (int t = 0; t < threads; ++t) set.push_back((worker * threads + t) % cores);
    return set;
  }

  std::vector<std::string> metricsFlag(int worker) const {
    if (firstMetricsPort == 0) return {};
    return {"--metrics", "127.0.0.1:" + std::to_string(firstMetricsPort + worker)};
  }

  // Workers may load only the model being served.
  std::vector<std::string> workerFlags() const {
    std::vector<std::string> flags = {"--model-root", std::filesystem::absolute(model).string()};
    flags.insert(flags.end(), secretFlag.begin(), secretFlag.end());
    return flags;
  }

  std::unique_ptr<ChildProcess> startWorker(int worker) const {
    std::vector<std::string> argv = {selfExecutable(), "worker", "--listen", workerEndpoint(worker), "--threads",
                                     std::to_string(threads)};
    for (auto& arg : metricsFlag(worker)) argv.push_back(arg);
    for (auto& arg : workerFlags()) argv.push_back(arg);
    return std::make_unique<ChildProcess>("worker " + std::to_string(worker), argv, coresOf(worker));
  }

  // Every worker under one mpirun: MPI ranks are the global worker indices; worker i listens on the first port + i.
  std::unique_ptr<ChildProcess> startMpiWorkers() const {
    std::vector<std::string> argv = {"/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe", "-np",
                                     std::to_string(workers), "--bind-to", pin ? "core" : "none",
                                     selfExecutable(), "worker", "--transport", "mpi", "--listen",
                                     workerEndpoint(0), "--threads", std::to_string(threads)};
    for (auto& arg : metricsFlag(0)) argv.push_back(arg);  // worker i adds its MPI rank to the port
    for (auto& arg : workerFlags()) argv.push_back(arg);
    return std::make_unique<ChildProcess>("mpirun", argv);
  }
};

void waitForWorkerPorts(const ClusterLayout& layout, std::vector<std::unique_ptr<ChildProcess>>& children) {
  for (int w = 0; w < layout.workers; ++w) {
    const int port = layout.firstWorkerPort + w;
    while (!acceptsConnections("127.0.0.1", port)) {
      for (auto& child : children) {
        if (auto how = child->exited()) throwInvalidArgument(child->name() + " " + *how + " while starting");
      }
      if (stopRequested.load()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

// The coordinator's command line: the cluster's shape and the serving flags up was given.
std::vector<std::string> coordinatorArguments(const ParsedArgs& args, const ClusterLayout& layout) {
  std::string endpoints;
  for (int w = 0; w < layout.workers; ++w) endpoints.append(w ? "," : "").append(layout.workerEndpoint(w));
  std::vector<std::string> argv = {selfExecutable(), "coordinator", "--model", layout.model, "--tp",
                                   args.str("tp"), "--pp", args.str("pp"), "--workers", endpoints,
                                   "--host", args.str("host"), "--port", args.str("port"), "--threads",
                                   std::to_string(layout.threads), "--kv-tokens", args.str("kv-tokens"),
                                   "--dtype", args.str("dtype"), "--kv-dtype", args.str("kv-dtype")};
  if (auto keyFile = args.optionalStr("api-key-file")) argv.insert(argv.end(), {"--api-key-file", *keyFile});
  argv.insert(argv.end(), layout.secretFlag.begin(), layout.secretFlag.end());
  if (auto extra = args.optionalStr("coordinator-args")) {
    for (auto& word : splitWords(*extra)) argv.push_back(word);
  }
  return argv;
}

// The processes up watches, and what it does when one of them ends.
struct Supervision {
  Supervision(const ClusterLayout& layout, std::vector<std::string> coordinatorArgv, std::string host, int port,
              bool restart)
      : layout(layout), coordinatorArgv(std::move(coordinatorArgv)), host(std::move(host)), port(port),
        restart(restart) {}

  const ClusterLayout& layout;
  std::vector<std::string> coordinatorArgv;
  std::string host;
  int port = 0;
  bool restart = true;
  std::vector<std::unique_ptr<ChildProcess>> workers;
  std::unique_ptr<ChildProcess> coordinator;
  Clock::time_point started = Clock::now();
  Clock::time_point coordinatorStarted = Clock::now();
  int coordinatorRestarts = 0;
  bool ready = false;

  // False: stop the cluster. Only a coordinator that was serving is restarted (one that dies while starting would
  // die again); the new one re-attaches to the loaded workers.
  bool watchCoordinator() {
    auto how = coordinator->exited();
    if (!how) return true;
    if (!restart || !ready) {
      std::fprintf(stderr, "up: the coordinator %s; stopping the cluster\n", how->c_str());
      return false;
    }
    std::fprintf(stderr, "up: the coordinator %s; restarting it (it re-attaches to the loaded workers)\n",
                 how->c_str());
    coordinator = std::make_unique<ChildProcess>("coordinator", coordinatorArgv);
    coordinatorStarted = Clock::now();
    ++coordinatorRestarts;
    ready = false;
    return true;
  }

  // False: stop the cluster (a worker died and restarts are off).
  bool watchWorkers() {
    for (size_t w = 0; w < workers.size(); ++w) {
      auto how = workers[w]->exited();
      if (!how) continue;
      std::fprintf(stderr, "up: %s %s\n", workers[w]->name().c_str(), how->c_str());
      if (!restart) return false;
      std::fprintf(stderr, "up: restarting %s; the coordinator reconnects to it\n", workers[w]->name().c_str());
      workers[w] = layout.startWorker(int(w));
    }
    return true;
  }

  void watchHealth() {
    if (ready || !healthy(host, port)) return;
    ready = true;
    if (coordinatorRestarts == 0) {
      std::printf("up: cluster ready in %.1f s: http://%s:%d (try: phalanx generate --cluster %s:%d --prompt "
                  "\"Hello\")\n",
                  std::chrono::duration<double>(Clock::now() - started).count(), host.c_str(), port, host.c_str(),
                  port);
    } else {
      std::printf("up: the restarted coordinator serves again after %.1f s\n",
                  std::chrono::duration<double>(Clock::now() - coordinatorStarted).count());
    }
    std::fflush(stdout);
  }
};

}  // namespace

int upCommand(int argc, char** argv) {
  const auto args = parser().parse(argc, argv);
  if (!args) return 0;
  ClusterLayout layout;
  layout.model = args->str("model");
  const int64_t tp = args->integer("tp");
  const int64_t pp = args->integer("pp");
  if (tp < 1 || pp < 1) throwInvalidArgument("--tp and --pp must be at least 1");
  parseWeightDtype(args->str("dtype"));  // a bad name fails before any process starts
  parseKvDtype(args->str("kv-dtype"));
  layout.workers = int(tp * pp);
  layout.threads = int(args->integer("threads"));
  layout.firstWorkerPort = int(args->integer("worker-port"));
  layout.firstMetricsPort = int(args->integer("metrics-port"));
  layout.pin = !args->has("no-pin");
  layout.mpi = args->has("mpi");
  if (auto secret = args->optionalStr("cluster-secret-file")) {
    readClusterSecret(*secret);  // a bad file fails before any process starts
    layout.secretFlag = {"--cluster-secret-file", std::filesystem::absolute(*secret).string()};
  }

  struct sigaction action = {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  Supervision cluster(layout, coordinatorArguments(*args, layout), args->str("host"), int(args->integer("port")),
                      !args->has("no-restart") && !layout.mpi);
  if (layout.mpi) {
    cluster.workers.push_back(layout.startMpiWorkers());
  } else {
    for (int w = 0; w < layout.workers; ++w) cluster.workers.push_back(layout.startWorker(w));
  }
  waitForWorkerPorts(layout, cluster.workers);
  cluster.coordinator = std::make_unique<ChildProcess>("coordinator", cluster.coordinatorArgv);
  cluster.coordinatorStarted = Clock::now();
  std::fprintf(stderr, "up: %d worker(s) (tp %lld x pp %lld, %s), coordinator on %s:%d; loading %s\n",
               layout.workers, (long long)tp, (long long)pp, layout.mpi ? "MPI" : "UCX", cluster.host.c_str(),
               cluster.port, layout.model.c_str());
  int exitCode = 0;
  while (!stopRequested.load()) {
    if (!cluster.watchCoordinator() || !cluster.watchWorkers()) {
      exitCode = 1;
      break;
    }
    cluster.watchHealth();
    std::this_thread::sleep_for(std::chrono::milliseconds(cluster.ready ? 200 : 100));
  }
  std::fprintf(stderr, "up: stopping the coordinator and %d worker(s)\n", layout.workers);
  cluster.coordinator->stop(std::chrono::seconds(45));  // it drains first (--drain-timeout, 30 s by default)
  for (auto& worker : cluster.workers) worker->stop();
  return exitCode;
}

}  // namespace phx::cli
