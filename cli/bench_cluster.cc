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
#include "cli/bench_record.h"
#include "cli/commands.h"
#include "common/elapsed.h"
#include "common/error.h"
#include "common/host_port.h"
#include "coordinator/cluster_executor.h"
#include "kernels/roofline.h"
#include "model/checkpoint.h"
#include "partition/shard_plan.h"
#include "partition/tensor_table.h"
#include "worker/local_engine.h"

namespace phx::cli {
namespace {

using Clock = std::chrono::steady_clock;

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
    // "phalanx worker listening on HOST:PORT (transport ...)"
    const std::string marker = "listening on ";
    const size_t at = text.find(marker);
    std::optional<HostPort> address;
    if (at != std::string::npos) {
      const std::string rest = text.substr(at + marker.size());
      address = parseHostPort(rest.substr(0, rest.find(' ')));
    }
    if (!address) throw Error(ErrorKind::kIo, "bench: a worker did not start: '" + text + "'");
    return address->port;
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
    // The embedding is held as raw BF16 rows whatever the matrices' type.
    const int64_t embedding =
        shard.firstStage ? residentBytes(tensorSlice(config, shard, TensorRole::kEmbedding), WeightType::kBf16) : 0;
    const KvCacheShape kv = kvCacheShapeFor(config, shard, 16, 16, kvType);
    bytes += double(rank.weightBytes - embedding) + double(kv.bytesPerToken()) * double(gen + 1) / 2;
  }
  return bytes;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// What a run measured, before it becomes the record.
struct ClusterRun {
  std::vector<double> clusterRates, localRates, rooflines, ofRoofline;
  StepShares shares;
  std::vector<WorkerLoadReport> reports;
  MatmulCompute compute = MatmulCompute::kF32Fma;
};

struct ClusterBench {
  std::string model;
  ModelConfig config;
  int tp = 2, pp = 1;
  int64_t gen = 32, reps = 3;
  int32_t candidates = kDefaultCandidates;
  int localThreads = 0;
  WeightType weightType = WeightType::kBf16;
  KvType kvType = KvType::kBf16;
  int64_t bandwidthGiB = 4;
  ShardPlan plan;
  ClusterExecutorOptions options;
};

ClusterBench clusterBenchFrom(const ParsedArgs& args) {
  ClusterBench b;
  b.tp = args.has("tp") ? int(args.integer("tp")) : 2;
  b.pp = args.has("pp") ? int(args.integer("pp")) : 1;
  b.gen = args.integer("gen");
  b.reps = args.integer("reps");
  b.candidates = int32_t(args.integer("candidates"));
  if (b.tp < 1 || b.pp < 1 || b.gen < 1 || b.reps < 1 || b.candidates < 0) {
    throwInvalidArgument("--tp, --pp, --gen and --reps must be positive, --candidates not negative");
  }
  b.model = args.str("model");
  const auto checkpoint = Checkpoint::open(b.model);
  b.config = checkpoint->config();
  b.weightType = resolveWeightType(*checkpoint, parseWeightDtype(args.str("dtype")));
  b.kvType = parseKvDtype(args.str("kv-dtype"));
  b.bandwidthGiB = args.integer("bandwidth-gib");
  if (b.bandwidthGiB < 0) throwInvalidArgument("--bandwidth-gib must not be negative");
  ClusterSpec spec;
  spec.tp = b.tp;
  spec.pp = b.pp;
  spec.kvTokens = b.gen + 32;
  spec.matrices = b.weightType;
  b.plan = makeShardPlan(b.config, spec);
  b.localThreads = args.has("local-threads") ? int(args.integer("local-threads")) : b.plan.workers();
  b.options.plan = b.plan;
  b.options.checkpointDir = b.model;
  b.options.kvBlockSize = 16;
  b.options.kvBlocks = (b.gen + 32 + 15) / 16;
  b.options.threadsPerWorker = 1;
  b.options.weightType = b.weightType;
  b.options.kvType = b.kvType;
  return b;
}

std::unique_ptr<LocalEngine> localComparison(const ClusterBench& b) {
  if (b.localThreads <= 0) return nullptr;
  LocalEngineOptions options;
  options.kvTokens = b.options.kvBlocks * b.options.kvBlockSize;
  options.kvBlockSize = b.options.kvBlockSize;
  options.threads = b.localThreads;
  options.weightType = b.weightType;
  options.kvType = b.kvType;
  return LocalEngine::open(b.model, options);
}

// Alternating repetitions (rep 0 untimed): the cluster, bracketed by bandwidth probes, then the local engine.
void runRepetitions(const ClusterBench& b, ClusterExecutor& cluster, LocalEngine* local,
                    const ReadBandwidthProbe* probe, double bytesPerStep, ClusterRun& run) {
  const auto bandwidth = [&] { return probe ? probe->passGBs() * 1e9 : 0.0; };
  for (int64_t rep = 0; rep <= b.reps; ++rep) {
    const double before = rep > 0 ? bandwidth() : 0;
    const double c = decodeRate(cluster, b.gen, b.candidates, &cluster, rep > 0 ? &run.shares : nullptr);
    const double after = rep > 0 ? bandwidth() : 0;
    const double l = local ? decodeRate(local->runner(), b.gen, b.candidates, nullptr, nullptr) : 0;
    if (rep == 0) continue;
    run.clusterRates.push_back(c);
    run.localRates.push_back(l);
    std::fprintf(stderr, "rep %lld: cluster %.2f tok/s", (long long)rep, c);
    if (local) std::fprintf(stderr, ", local %.2f tok/s", l);
    if (probe) {
      run.rooflines.push_back(std::max(before, after) / bytesPerStep);
      run.ofRoofline.push_back(c / run.rooflines.back());
      std::fprintf(stderr, ", roofline %.2f tok/s (%.1f GB/s)", run.rooflines.back(), std::max(before, after) / 1e9);
    }
    std::fprintf(stderr, "\n");
  }
}

// Each worker's resident memory after loading against its plan's estimate (weights + KV cache).
nlohmann::json workerMemory(const ClusterBench& b, const std::vector<WorkerLoadReport>& reports) {
  nlohmann::json memory = nlohmann::json::array();
  for (size_t w = 0; w < reports.size(); ++w) {
    const RankPlan& rank = b.plan.ranks[w];
    const KvCacheShape kv = kvCacheShapeFor(b.config, rank.shard, b.options.kvBlockSize,
                                            b.options.kvBlocks * b.options.kvBlockSize, b.kvType);
    memory.push_back({{"worker", w},
                      {"rss_bytes", reports[w].rssBytes},
                      {"peak_rss_bytes", reports[w].peakRssBytes},
                      {"plan_bytes", double(rank.weightBytes + kv.bytes())},
                      {"bytes_read", reports[w].bytesRead},
                      {"load_seconds", reports[w].loadSeconds}});
  }
  return memory;
}

BenchRecord clusterRecord(const ClusterBench& b, const ClusterRun& run, double bytesPerStep) {
  const double roofline = median(run.rooflines);
  const double wall = run.shares.wall > 0 ? run.shares.wall : 1;
  return {{"model", b.model},
          {"tp", b.tp},
          {"pp", b.pp},
          {"gen", b.gen},
          {"reps", b.reps},
          {"dtype", weightTypeName(b.weightType)},
          {"kv_dtype", kvTypeName(b.kvType)},
          {"matmul_compute", matmulComputeName(run.compute)},
          {"read_bandwidth_gb_s", roofline * bytesPerStep / 1e9},
          {"decode_bytes_per_step", bytesPerStep},
          {"roofline_tokens_per_second", roofline},
          {"roofline_fraction", median(run.ofRoofline)},
          {"cluster_tokens_per_second", median(run.clusterRates)},
          {"local_threads", b.localThreads},
          {"local_tokens_per_second", median(run.localRates)},
          {"compute_share", run.shares.compute / wall},
          {"comm_share", run.shares.comm / wall},
          {"wait_share", run.shares.wait / wall},
          {"coordinator_share", run.shares.coordinator / wall},
          {"step_ms", 1e3 * wall / double(b.gen * b.reps)},
          {"workers", workerMemory(b, run.reports)}};
}

// The record as the human-readable report.
void printClusterReport(FILE* out, const BenchRecord& r, bool probed) {
  const auto d = [&r](const char* key) { return r.at(key).get<double>(); };
  std::fprintf(out,
               "model %s, %s weights, %s KV, tp %d x pp %d (%d workers, 1 thread each), batch 1, %lld tokens x %lld "
               "reps\n",
               r.at("model").get<std::string>().c_str(), r.at("dtype").get<std::string>().c_str(),
               r.at("kv_dtype").get<std::string>().c_str(), r.at("tp").get<int>(), r.at("pp").get<int>(),
               r.at("tp").get<int>() * r.at("pp").get<int>(), r.at("gen").get<long long>(),
               r.at("reps").get<long long>());
  std::fprintf(out, "%-28s %10s\n", "", "tok/s (median)");
  std::fprintf(out, "%-28s %10.2f\n", "cluster decode", d("cluster_tokens_per_second"));
  if (probed) {
    std::fprintf(out, "%-28s %10.2f  (%d-thread read bandwidth %.1f GB/s / %.2f GB read a step)\n",
                 "bandwidth roofline", d("roofline_tokens_per_second"), r.at("tp").get<int>() * r.at("pp").get<int>(),
                 d("read_bandwidth_gb_s"), d("decode_bytes_per_step") / 1e9);
    std::fprintf(out, "%-28s %9.1f%%  (median of each repetition over its own roofline)\n", "cluster / roofline",
                 100 * d("roofline_fraction"));
  }
  if (r.at("local_threads").get<int>() > 0) {
    const std::string local = "one process, " + std::to_string(r.at("local_threads").get<int>()) + " threads";
    std::fprintf(out, "%-28s %10.2f\n", local.c_str(), d("local_tokens_per_second"));
    std::fprintf(out, "%-28s %9.1f%%\n", "cluster / one process",
                 100 * d("cluster_tokens_per_second") / d("local_tokens_per_second"));
  }
  std::fprintf(out, "every worker multiplies BF16 weights with %s\n",
               r.at("matmul_compute").get<std::string>().c_str());
  std::fprintf(out,
               "step time (mean over ranks, share of wall): compute %.1f%%, communication %.1f%%, wait %.1f%%, "
               "coordinator %.1f%%; %.3f ms a step\n",
               100 * d("compute_share"), 100 * d("comm_share"), 100 * d("wait_share"), 100 * d("coordinator_share"),
               d("step_ms"));
  for (const auto& w : r.at("workers")) {
    const double rss = w.at("rss_bytes").get<double>(), planned = w.at("plan_bytes").get<double>();
    std::fprintf(out,
                 "worker %d: RSS %.1f MiB after loading (peak %.1f MiB), plan %.1f MiB (weights + KV): %+.1f%%; "
                 "read %.1f MiB of the checkpoint in %.1f s\n",
                 w.at("worker").get<int>(), rss / 1048576, w.at("peak_rss_bytes").get<double>() / 1048576,
                 planned / 1048576, 100 * (rss / planned - 1), w.at("bytes_read").get<double>() / 1048576,
                 w.at("load_seconds").get<double>());
  }
}

}  // namespace

int benchCluster(const ParsedArgs& args) {
  ClusterBench b = clusterBenchFrom(args);
  // The workers' cores together stream the weights: the bandwidth of as many threads, probed just before and just
  // after each cluster repetition (the better of the two), so that each is judged against its own minute on a host
  // whose bandwidth drifts. The buffer is allocated before the workers hold any memory.
  std::unique_ptr<ReadBandwidthProbe> probe;
  if (b.bandwidthGiB > 0) probe = std::make_unique<ReadBandwidthProbe>(b.plan.workers(), size_t(b.bandwidthGiB) << 30);
  const double bytesPerStep = decodeBytesPerStep(b.config, b.plan, b.kvType, b.gen);

  std::unique_ptr<LocalWorkers> started;
  if (args.has("cluster")) {
    b.options.endpoints = args.strList("cluster");
  } else {
    started = std::make_unique<LocalWorkers>(b.plan.workers(), std::filesystem::absolute(b.model).string());
    b.options.endpoints = started->endpoints();
  }
  const auto loadStart = Clock::now();
  auto cluster = ClusterExecutor::start(b.options);
  std::fprintf(stderr, "cluster of %d workers loaded in %.1f s\n", b.plan.workers(), secondsSince(loadStart));
  std::unique_ptr<LocalEngine> local = localComparison(b);

  ClusterRun run;
  runRepetitions(b, *cluster, local.get(), probe.get(), bytesPerStep, run);
  run.reports = cluster->loadReports();
  run.compute = cluster->compute();
  cluster.reset();
  local.reset();
  started.reset();

  const BenchRecord record = clusterRecord(b, run, bytesPerStep);
  printClusterReport(args.has("json") ? stderr : stdout, record, probe != nullptr);
  if (args.has("json")) printBenchJson(record);
  return 0;
}

}  // namespace phx::cli
