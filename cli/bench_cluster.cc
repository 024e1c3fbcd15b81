// phalanx bench --model DIR --tp T [--pp P] [--cluster HOST:PORT,...] [--dtype T] [--json]: end-to-end
// decode through a ClusterExecutor (batch 1), beside the whole model in this process with as many threads as the
// cluster has workers, measured in the same run with alternating repetitions; and where each step's time goes on
// the workers: computing, communicating (inside all-reduce/send/recv) and waiting, plus the coordinator's share.
// Without --cluster it starts the T x P workers itself (`phalanx worker`, one thread each, pinned to one core each)
// and stops them at the end.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "coordinator/cluster_executor.h"
#include "kernels/roofline.h"
#include "model/checkpoint.h"
#include "partition/shard_plan.h"
#include "worker/local_engine.h"

namespace phx::cli {
namespace {

using Clock = std::chrono::steady_clock;

ArgParser parser() {
  ArgParser p("phalanx bench --model DIR --tp T [--pp P] [--cluster HOST:PORT,...] [options]",
              "Decode tokens/s at batch 1 through a cluster (ClusterExecutor) beside the same model in this process "
              "with as many threads as the cluster has workers, alternating repetitions, and the share of each "
              "step the workers spend computing, communicating and waiting. Without --cluster, T x P workers are "
              "started here (one thread, one core each).");
  p.option("model", "DIR", "checkpoint directory (the workers read it too)")
      .option("tp", "T", "tensor-parallel ranks per stage", "2")
      .option("pp", "P", "pipeline stages", "1")
      .option("cluster", "LIST", "running workers, HOST:PORT by worker index (default: start them here)")
      .option("gen", "N", "tokens decoded per repetition", "32")
      .option("reps", "R", "timed repetitions (after one untimed)", "3")
      .option("candidates", "K", "logit candidates per row the workers return", std::to_string(kDefaultCandidates))
      .option("local-threads", "N", "threads of the in-process comparison (0: skip it; default: the worker count)")
      .option("dtype", "T", "matrix weights: bf16, int8 (each worker quantizes its shard while loading) or auto "
              "(the checkpoint's own)", "auto")
      .option("kv-dtype", "T", "KV cache: bf16, int8 or f32", "bf16")
      .option("bandwidth-gib", "N", "GiB streamed to measure the read bandwidth beside each repetition (0: skip)",
              "4")
      .flag("json", "print one JSON object on stdout (the table goes to stderr)");
  return p;
}

// Workers started by this command: /proc/self/exe worker, one per core, killed when this goes.
class LocalWorkers {
 public:
  LocalWorkers(int count, const std::string& modelRoot) {
    const int cores = int(std::thread::hardware_concurrency());
    for (int i = 0; i < count; ++i) {
      int fds[2];
      if (pipe(fds) != 0) throwIoError("bench: pipe");
      const pid_t pid = fork();
      if (pid == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(i % std::max(cores, 1), &set);
        sched_setaffinity(0, sizeof(set), &set);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        setenv("UCX_TLS", getenv("UCX_TLS") ? getenv("UCX_TLS") : "sm,self", 1);
        setenv("OMP_WAIT_POLICY", "passive", 0);
        execl("/proc/self/exe", "phalanx", "worker", "--listen", "127.0.0.1:0", "--threads", "1", "--model-root",
              modelRoot.c_str(), nullptr);
        _exit(127);
      }
      close(fds[1]);
      pids_.push_back(pid);
      endpoints_.push_back("127.0.0.1:" + std::to_string(readPort(fds[0])));
      close(fds[0]);
    }
  }
  ~LocalWorkers() {
    for (pid_t pid : pids_) kill(pid, SIGTERM);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  const std::vector<std::string>& endpoints() const { return endpoints_; }

 private:
  static int readPort(int fd) {
    std::string text;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') text += c;
    const size_t at = text.find("listening on ");
    if (at == std::string::npos) throw Error(ErrorKind::kIo, "bench: a worker did not start: '" + text + "'");
    return std::atoi(text.c_str() + text.find(':', at) + 1);
  }
  std::vector<pid_t> pids_;
  std::vector<std::string> endpoints_;
};

struct StepShares {
  double compute = 0, comm = 0, wait = 0, coordinator = 0, wall = 0;
};

// One prompt token, then `gen` decode steps; tokens/s of the decode steps. Shares summed into `shares` when given.
double decodeRate(StepExecutor& executor, int64_t gen, int32_t candidates, const ClusterExecutor* cluster,
                  StepShares* shares) {
  const std::vector<int32_t> blocks = [&] {
    std::vector<int32_t> b;
    for (int64_t i = 0; i * executor.kvBlockSize() < gen + 1; ++i) b.push_back(int32_t(i));
    return b;
  }();
  StepBatch step;
  step.candidates = candidates;
  step.tokens = {1};
  step.sequences = {{0, 1, blocks, LogitsFor::kLast}};
  executor.run(step);
  const auto start = Clock::now();
  for (int64_t i = 1; i <= gen; ++i) {
    step.tokens = {int32_t(100 + i)};
    step.sequences[0].cachedTokens = i;
    executor.run(step);
    if (cluster != nullptr && shares != nullptr) {
      const ClusterStepTimings& t = cluster->lastStepTimings();
      for (const RankStepTimings& r : t.ranks) {
        shares->compute += r.computeSeconds / double(t.ranks.size());
        shares->comm += r.commSeconds / double(t.ranks.size());
        shares->wait += r.waitSeconds / double(t.ranks.size());
      }
      shares->coordinator += t.coordinatorSeconds;
      shares->wall += t.wallSeconds;
    }
  }
  return double(gen) / std::chrono::duration<double>(Clock::now() - start).count();
}

// Bytes one decode step at batch 1 reads on all workers together: every matrix and norm (all but the embedding
// table, of which one row), and the cached keys and values (on average half of the generated context).
double decodeBytesPerStep(const ModelConfig& config, const ShardPlan& plan, KvType kvType, int64_t gen) {
  double bytes = 0;
  for (const RankPlan& rank : plan.ranks) {
    const RankShard& shard = rank.shard;
    const int64_t embedding = shard.firstStage ? shard.vocabRows.count * config.hiddenSize * 2 : 0;
    const KvCacheShape kv = kvCacheShapeFor(config, shard, 16, 16, kvType);
    bytes += double(rank.weightBytes - embedding) + double(kv.bytesPerToken()) * double(gen + 1) / 2;
  }
  return bytes;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int benchClusterCommand(int argc, char** argv) {
  const auto parsed = parser().parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  const int tp = int(args.integer("tp")), pp = int(args.integer("pp"));
  const int64_t gen = args.integer("gen"), reps = args.integer("reps");
  const int32_t candidates = int32_t(args.integer("candidates"));
  if (tp < 1 || pp < 1 || gen < 1 || reps < 1 || candidates < 0) {
    throwInvalidArgument("--tp, --pp, --gen and --reps must be positive, --candidates not negative");
  }
  const std::string model = args.str("model");
  const auto checkpoint = Checkpoint::open(model);
  const ModelConfig config = checkpoint->config();
  const WeightType weightType = resolveWeightType(*checkpoint, parseWeightDtype(args.str("dtype")));
  const KvType kvType = parseKvDtype(args.str("kv-dtype"));
  const int64_t bandwidthGiB = args.integer("bandwidth-gib");
  if (bandwidthGiB < 0) throwInvalidArgument("--bandwidth-gib must not be negative");
  ClusterSpec spec;
  spec.tp = tp;
  spec.pp = pp;
  spec.kvTokens = gen + 32;
  spec.matrices = weightType;
  const ShardPlan plan = makeShardPlan(config, spec);
  const int localThreads = args.has("local-threads") ? int(args.integer("local-threads")) : plan.workers();
  FILE* table = args.has("json") ? stderr : stdout;
  // The workers' cores together stream the weights: the bandwidth of as many threads, probed just before and just
  // after each cluster repetition (the better of the two), so that each is judged against its own minute on a host
  // whose bandwidth drifts. The buffer is allocated before the workers hold any memory.
  std::unique_ptr<ReadBandwidthProbe> probe;
  if (bandwidthGiB > 0) probe = std::make_unique<ReadBandwidthProbe>(plan.workers(), size_t(bandwidthGiB) << 30);
  const auto bandwidth = [&] { return probe ? probe->passGBs() * 1e9 : 0.0; };
  const double bytesPerStep = decodeBytesPerStep(config, plan, kvType, gen);

  std::unique_ptr<LocalWorkers> started;
  std::vector<std::string> endpoints;
  if (args.has("cluster")) {
    endpoints = args.strList("cluster");
  } else {
    started = std::make_unique<LocalWorkers>(plan.workers(), std::filesystem::absolute(model).string());
    endpoints = started->endpoints();
  }
  ClusterExecutorOptions options;
  options.endpoints = endpoints;
  options.plan = plan;
  options.checkpointDir = model;
  options.kvBlockSize = 16;
  options.kvBlocks = (gen + 32 + 15) / 16;
  options.threadsPerWorker = 1;
  options.weightType = weightType;
  options.kvType = kvType;
  const auto loadStart = Clock::now();
  auto cluster = ClusterExecutor::start(options);
  std::fprintf(stderr, "cluster of %d workers loaded in %.1f s\n", plan.workers(),
               std::chrono::duration<double>(Clock::now() - loadStart).count());
  std::unique_ptr<LocalEngine> local;
  if (localThreads > 0) {
    LocalEngineOptions localOptions;
    localOptions.kvTokens = options.kvBlocks * options.kvBlockSize;
    localOptions.kvBlockSize = options.kvBlockSize;
    localOptions.threads = localThreads;
    localOptions.weightType = weightType;
    localOptions.kvType = kvType;
    local = LocalEngine::open(model, localOptions);
  }

  std::vector<double> clusterRates, localRates, rooflines, ofRoofline;
  StepShares shares;
  for (int64_t rep = 0; rep <= reps; ++rep) {  // rep 0 is untimed
    const double before = rep > 0 ? bandwidth() : 0;
    const double c = decodeRate(*cluster, gen, candidates, cluster.get(), rep > 0 ? &shares : nullptr);
    const double after = rep > 0 ? bandwidth() : 0;
    const double l = local ? decodeRate(local->runner(), gen, candidates, nullptr, nullptr) : 0;
    if (rep == 0) continue;
    clusterRates.push_back(c);
    localRates.push_back(l);
    std::fprintf(stderr, "rep %lld: cluster %.2f tok/s", (long long)rep, c);
    if (local) std::fprintf(stderr, ", local %.2f tok/s", l);
    if (probe) {
      rooflines.push_back(std::max(before, after) / bytesPerStep);
      ofRoofline.push_back(c / rooflines.back());
      std::fprintf(stderr, ", roofline %.2f tok/s (%.1f GB/s)", rooflines.back(), std::max(before, after) / 1e9);
    }
    std::fprintf(stderr, "\n");
  }
  const auto reports = cluster->loadReports();
  const MatmulCompute compute = cluster->compute();
  cluster.reset();
  local.reset();
  started.reset();
  const double roofline = median(rooflines);
  const double bandwidthBytesPerSecond = roofline * bytesPerStep;

  const double clusterRate = median(clusterRates), localRate = median(localRates);
  const double wall = shares.wall > 0 ? shares.wall : 1;
  std::fprintf(table,
               "model %s, %s weights, %s KV, tp %d x pp %d (%d workers, 1 thread each), batch 1, %lld tokens x %lld "
               "reps\n",
               model.c_str(), weightTypeName(weightType), kvTypeName(kvType), tp, pp, plan.workers(), (long long)gen,
               (long long)reps);
  std::fprintf(table, "%-28s %10s\n", "", "tok/s (median)");
  std::fprintf(table, "%-28s %10.2f\n", "cluster decode", clusterRate);
  if (probe) {
    std::fprintf(table, "%-28s %10.2f  (%d-thread read bandwidth %.1f GB/s / %.2f GB read a step)\n",
                 "bandwidth roofline", roofline, plan.workers(), bandwidthBytesPerSecond / 1e9, bytesPerStep / 1e9);
    std::fprintf(table, "%-28s %9.1f%%  (median of each repetition over its own roofline)\n", "cluster / roofline",
                 100 * median(ofRoofline));
  }
  if (local) {
    std::fprintf(table, "%-28s %10.2f\n", ("one process, " + std::to_string(localThreads) + " threads").c_str(),
                 localRate);
    std::fprintf(table, "%-28s %9.1f%%\n", "cluster / one process", 100 * clusterRate / localRate);
  }
  std::fprintf(table, "every worker multiplies BF16 weights with %s\n", matmulComputeName(compute));
  std::fprintf(table,
               "step time (mean over ranks, share of wall): compute %.1f%%, communication %.1f%%, wait %.1f%%, "
               "coordinator %.1f%%; %.3f ms a step\n",
               100 * shares.compute / wall, 100 * shares.comm / wall, 100 * shares.wait / wall,
               100 * shares.coordinator / wall, 1e3 * wall / double(gen * reps));
  // Each worker's resident memory after loading against its plan's estimate (weights + KV cache).
  nlohmann::json memory = nlohmann::json::array();
  for (size_t w = 0; w < reports.size(); ++w) {
    const RankPlan& rank = plan.ranks[w];
    const KvCacheShape kv = kvCacheShapeFor(config, rank.shard, options.kvBlockSize,
                                            options.kvBlocks * options.kvBlockSize, kvType);
    const double planned = double(rank.weightBytes + kv.bytes());
    std::fprintf(table,
                 "worker %zu: RSS %.1f MiB after loading (peak %.1f MiB), plan %.1f MiB (weights + KV): %+.1f%%; "
                 "read %.1f MiB of the checkpoint in %.1f s\n",
                 w, double(reports[w].rssBytes) / 1048576, double(reports[w].peakRssBytes) / 1048576, planned / 1048576,
                 100 * (double(reports[w].rssBytes) / planned - 1), double(reports[w].bytesRead) / 1048576,
                 reports[w].loadSeconds);
    memory.push_back({{"worker", w}, {"rss_bytes", reports[w].rssBytes},
                      {"peak_rss_bytes", reports[w].peakRssBytes}, {"plan_bytes", planned},
                      {"bytes_read", reports[w].bytesRead}, {"load_seconds", reports[w].loadSeconds}});
  }
  if (args.has("json")) {
    nlohmann::json out = {{"model", model},
                          {"tp", tp},
                          {"pp", pp},
                          {"gen", gen},
                          {"reps", reps},
                          {"dtype", weightTypeName(weightType)},
                          {"kv_dtype", kvTypeName(kvType)},
                          {"matmul_compute", matmulComputeName(compute)},
                          {"read_bandwidth_gb_s", bandwidthBytesPerSecond / 1e9},
                          {"decode_bytes_per_step", bytesPerStep},
                          {"roofline_tokens_per_second", roofline},
                          {"roofline_fraction", median(ofRoofline)},
                          {"cluster_tokens_per_second", clusterRate},
                          {"local_threads", localThreads},
                          {"local_tokens_per_second", localRate},
                          {"compute_share", shares.compute / wall},
                          {"comm_share", shares.comm / wall},
                          {"wait_share", shares.wait / wall},
                          {"coordinator_share", shares.coordinator / wall},
                          {"workers", memory}};
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

}  // namespace phx::cli
