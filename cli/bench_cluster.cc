// phalanx bench --model DIR --tp T [--pp P] [--cluster HOST:PORT,...] [--batch 1,16] [--prompt N] [--json]:
// end-to-end decode at each batch size, and the prefill of an N-token prompt, through a ClusterExecutor, beside the
// whole model in this process with as many threads as the cluster has workers, measured in the same run with
// alternating repetitions; and where each step's time goes on the workers: computing, communicating (inside
// all-reduce/send/recv) and waiting, plus the coordinator's share, with the bytes a step's all-reduces carry.
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
  int64_t steps = 0;
};

// One measured case: decode of `tokens` tokens a sequence at `batch` sequences (tgN), or the prefill of one prompt
// of `tokens` tokens in steps of up to ubatch (ppN), as the in-process bench names them.
struct ClusterCase {
  std::string test;
  bool prefill = false;
  int64_t batch = 1;
  int64_t tokens = 0;
  int64_t stepTokens = 1;  // new tokens in each timed step (a prefill's last chunk may hold fewer)
};

// KV block ids [first, first + count).
std::vector<int32_t> blockRange(int64_t first, int64_t count) {
  std::vector<int32_t> blocks;
  for (int64_t i = 0; i < count; ++i) blocks.push_back(int32_t(first + i));
  return blocks;
}

void addShares(const ClusterExecutor& cluster, StepShares& shares) {
  const ClusterStepTimings& t = cluster.lastStepTimings();
  for (const RankStepTimings& r : t.ranks) {
    shares.compute += r.computeSeconds / double(t.ranks.size());
    shares.comm += r.commSeconds / double(t.ranks.size());
    shares.wait += r.waitSeconds / double(t.ranks.size());
  }
  shares.coordinator += t.coordinatorSeconds;
  shares.wall += t.wallSeconds;
  ++shares.steps;
}

// One repetition of a case; returns its tokens/s. A decode case's first step (every sequence's first token) is
// not timed. The timed steps' shares are summed into `shares` when given (a cluster's).
double runOnce(StepExecutor& executor, const ClusterCase& c, int64_t ubatch, int32_t candidates,
               const ClusterExecutor* cluster, StepShares* shares) {
  const int64_t blockSize = executor.kvBlockSize();
  const int64_t blocksPerSequence = (c.tokens + 1 + blockSize - 1) / blockSize;
  StepBatch step;
  step.candidates = candidates;
  const auto run = [&] {
    executor.run(step);
    if (cluster != nullptr && shares != nullptr) addShares(*cluster, *shares);
  };
  if (c.prefill) {
    const auto start = Clock::now();
    for (int64_t done = 0; done < c.tokens;) {
      const int64_t chunk = std::min(ubatch, c.tokens - done);
      step.tokens.assign(size_t(chunk), 9906);  // any id: the work does not depend on it
      step.sequences = {{done, chunk, blockRange(0, blocksPerSequence),
                         done + chunk == c.tokens ? LogitsFor::kLast : LogitsFor::kNone}};
      run();
      done += chunk;
    }
    return double(c.tokens) / secondsSince(start);
  }
  step.tokens.assign(size_t(c.batch), 1);
  for (int64_t s = 0; s < c.batch; ++s) {
    step.sequences.push_back({0, 1, blockRange(s * blocksPerSequence, blocksPerSequence), LogitsFor::kLast});
  }
  executor.run(step);
  const auto start = Clock::now();
  for (int64_t i = 1; i <= c.tokens; ++i) {
    for (int64_t s = 0; s < c.batch; ++s) {
      step.tokens[size_t(s)] = int32_t(100 + i + s);
      step.sequences[size_t(s)].cachedTokens = i;
    }
    run();
  }
  return double(c.batch * c.tokens) / secondsSince(start);
}

// Bytes one decode step reads on all workers together: every matrix and norm (all but the embedding table, of
// which one row a sequence), and each sequence's cached keys and values (on average half of its context).
double decodeBytesPerStep(const ModelConfig& config, const ShardPlan& plan, KvType kvType, const ClusterCase& c) {
  double bytes = 0;
  for (const RankPlan& rank : plan.ranks) {
    const RankShard& shard = rank.shard;
    // The embedding is held as raw BF16 rows whatever the matrices' type.
    const int64_t embedding =
        shard.firstStage ? residentBytes(tensorSlice(config, shard, TensorRole::kEmbedding), WeightType::kBf16) : 0;
    const KvCacheShape kv = kvCacheShapeFor(config, shard, 16, 16, kvType);
    bytes += double(rank.weightBytes - embedding) + double(c.batch) * double(kv.bytesPerToken()) * (c.tokens + 1) / 2;
  }
  return bytes;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// What a case measured, before it becomes the record.
struct ClusterRun {
  ClusterCase spec;
  std::vector<double> clusterRates, localRates, rooflines, ofRoofline;
  StepShares shares;
  double bytesPerStep = 0;  // decode: read by all workers a step
};

struct ClusterBench {
  std::string model;
  ModelConfig config;
  int tp = 2, pp = 1;
  int64_t reps = 3, ubatch = 512;
  int32_t candidates = kDefaultCandidates;
  int localThreads = 0;
  WeightType weightType = WeightType::kBf16;
  KvType kvType = KvType::kBf16;
  int64_t bandwidthGiB = 4;
  std::vector<ClusterCase> cases;
  ShardPlan plan;
  ClusterExecutorOptions options;
};

// Decode at each --batch and, with --prompt N, the prefill of N tokens; neither given: decode at batch 1.
std::vector<ClusterCase> clusterCases(const ParsedArgs& args, int64_t ubatch) {
  std::vector<ClusterCase> cases;
  const int64_t gen = args.integer("gen");
  if (gen < 1) throwInvalidArgument("--gen must be positive");
  std::vector<int64_t> batches;
  if (args.has("batch")) {
    batches = args.integerList("batch");
  } else if (!args.has("prompt")) {
    batches = {1};
  }
  for (int64_t batch : batches) {
    if (batch < 1) throwInvalidArgument("--batch: batch sizes must be at least 1");
    cases.push_back({"tg" + std::to_string(gen), false, batch, gen, batch});
  }
  if (args.has("prompt")) {
    const int64_t prompt = args.integer("prompt");
    if (prompt < 1) throwInvalidArgument("--prompt must be positive through a cluster");
    cases.push_back({"pp" + std::to_string(prompt), true, 1, prompt, std::min(prompt, ubatch)});
  }
  return cases;
}

ClusterBench clusterBenchFrom(const ParsedArgs& args) {
  ClusterBench b;
  b.tp = args.has("tp") ? int(args.integer("tp")) : 2;
  b.pp = args.has("pp") ? int(args.integer("pp")) : 1;
  b.reps = args.integer("reps");
  b.ubatch = args.integer("ubatch");
  b.candidates = int32_t(args.integer("candidates"));
  if (b.tp < 1 || b.pp < 1 || b.reps < 1 || b.ubatch < 1 || b.candidates < 0) {
    throwInvalidArgument("--tp, --pp, --reps and --ubatch must be positive, --candidates not negative");
  }
  b.cases = clusterCases(args, b.ubatch);
  b.model = args.str("model");
  const auto checkpoint = Checkpoint::open(b.model);
  b.config = checkpoint->config();
  b.weightType = resolveWeightType(*checkpoint, parseWeightDtype(args.str("dtype")));
  b.kvType = parseKvDtype(args.str("kv-dtype"));
  b.bandwidthGiB = args.integer("bandwidth-gib");
  if (b.bandwidthGiB < 0) throwInvalidArgument("--bandwidth-gib must not be negative");
  // KV room for the largest case: every sequence's blocks apart; steps as large as its batch or prompt chunk.
  int64_t kvBlocks = 0, stepTokens = b.ubatch;
  for (const ClusterCase& c : b.cases) {
    kvBlocks = std::max(kvBlocks, c.batch * ((c.tokens + 1 + 15) / 16));
    stepTokens = std::max(stepTokens, c.stepTokens);
  }
  ClusterSpec spec;
  spec.tp = b.tp;
  spec.pp = b.pp;
  spec.kvTokens = kvBlocks * 16;
  spec.matrices = b.weightType;
  b.plan = makeShardPlan(b.config, spec);
  b.localThreads = args.has("local-threads") ? int(args.integer("local-threads")) : b.plan.workers();
  b.options.plan = b.plan;
  b.options.checkpointDir = b.model;
  b.options.kvBlockSize = 16;
  b.options.kvBlocks = kvBlocks;
  b.options.maxStepTokens = stepTokens;
  b.options.threadsPerWorker = 1;
  b.options.weightType = b.weightType;
  b.options.kvType = b.kvType;
  b.options.allReducePayload = parseAllReducePayload(args.str("allreduce-dtype"));
  return b;
}

std::unique_ptr<LocalEngine> localComparison(const ClusterBench& b) {
  if (b.localThreads <= 0) return nullptr;
  LocalEngineOptions options;
  options.kvTokens = b.options.kvBlocks * b.options.kvBlockSize;
  options.kvBlockSize = b.options.kvBlockSize;
  options.maxStepTokens = b.options.maxStepTokens;
  options.threads = b.localThreads;
  options.weightType = b.weightType;
  options.kvType = b.kvType;
  return LocalEngine::open(b.model, options);
}

// Alternating repetitions (rep 0 untimed): the cluster, a decode case bracketed by bandwidth probes, then the
// local engine.
ClusterRun runCase(const ClusterBench& b, const ClusterCase& c, ClusterExecutor& cluster, LocalEngine* local,
                   const ReadBandwidthProbe* probe) {
  ClusterRun run;
  run.spec = c;
  run.bytesPerStep = c.prefill ? 0 : decodeBytesPerStep(b.config, b.plan, b.kvType, c);
  const bool probed = probe != nullptr && !c.prefill;
  const auto bandwidth = [&] { return probed ? probe->passGBs() * 1e9 : 0.0; };
  for (int64_t rep = 0; rep <= b.reps; ++rep) {
    const double before = rep > 0 ? bandwidth() : 0;
    const double rate = runOnce(cluster, c, b.ubatch, b.candidates, &cluster, rep > 0 ? &run.shares : nullptr);
    const double after = rep > 0 ? bandwidth() : 0;
    const double localRate = local ? runOnce(local->runner(), c, b.ubatch, b.candidates, nullptr, nullptr) : 0;
    if (rep == 0) continue;
    run.clusterRates.push_back(rate);
    run.localRates.push_back(localRate);
    std::fprintf(stderr, "%s b%lld rep %lld: cluster %.2f tok/s", c.test.c_str(), (long long)c.batch,
                 (long long)rep, rate);
    if (local) std::fprintf(stderr, ", local %.2f tok/s", localRate);
    if (probed) {
      run.rooflines.push_back(std::max(before, after) / run.bytesPerStep * double(c.batch));
      run.ofRoofline.push_back(rate / run.rooflines.back());
      std::fprintf(stderr, ", roofline %.2f tok/s (%.1f GB/s)", run.rooflines.back(), std::max(before, after) / 1e9);
    }
    std::fprintf(stderr, "\n");
  }
  return run;
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

// A prefill case has no bandwidth roofline (it is bound by arithmetic): its roofline fields are null.
BenchRecord clusterRecord(const ClusterBench& b, const ClusterRun& run, const std::vector<WorkerLoadReport>& reports,
                          MatmulCompute compute) {
  const ClusterCase& c = run.spec;
  const double wall = run.shares.wall > 0 ? run.shares.wall : 1;
  const bool roofline = !run.rooflines.empty();
  const double rooflineRate = median(run.rooflines);
  const auto orNull = [roofline](double value) { return roofline ? BenchRecord(value) : BenchRecord(nullptr); };
  return {{"model", b.model},
          {"test", c.test},
          {"tp", b.tp},
          {"pp", b.pp},
          {"batch", c.batch},
          {"gen", c.prefill ? 0 : c.tokens},
          {"prompt", c.prefill ? c.tokens : 0},
          {"reps", b.reps},
          {"dtype", weightTypeName(b.weightType)},
          {"kv_dtype", kvTypeName(b.kvType)},
          {"matmul_compute", matmulComputeName(compute)},
          {"read_bandwidth_gb_s", orNull(rooflineRate * run.bytesPerStep / double(c.batch) / 1e9)},
          {"decode_bytes_per_step", orNull(run.bytesPerStep)},
          {"roofline_tokens_per_second", orNull(rooflineRate)},
          {"roofline_fraction", orNull(median(run.ofRoofline))},
          {"cluster_tokens_per_second", median(run.clusterRates)},
          {"local_threads", b.localThreads},
          {"local_tokens_per_second", median(run.localRates)},
          {"compute_share", run.shares.compute / wall},
          {"comm_share", run.shares.comm / wall},
          {"wait_share", run.shares.wait / wall},
          {"coordinator_share", run.shares.coordinator / wall},
          {"step_ms", 1e3 * wall / double(std::max<int64_t>(run.shares.steps, 1))},
          {"tokens_per_step", c.stepTokens},
          // From the plan: what a TP group's all-reduces carry a step (each rank's contribution, over the stages;
          // the plan counts f32, BF16 sends half), and the hidden states the stages hand on.
          {"allreduce_dtype", allReducePayloadName(b.options.allReducePayload)},
          {"allreduce_bytes_per_step", double(b.plan.allReduceBytesPerToken) * double(c.stepTokens) *
                                           (b.options.allReducePayload == AllReducePayload::kBf16 ? 0.5 : 1.0)},
          {"pipeline_bytes_per_step", double(b.plan.stageSendBytesPerToken) * double(c.stepTokens)},
          {"workers", workerMemory(b, reports)}};
}

std::string percentOf(const BenchRecord& value) {
  if (value.is_null()) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", 100 * value.get<double>());
  return text;
}

std::vector<BenchColumn> clusterTable() {
  const auto rate = [](std::string header, std::string key) {
    return BenchColumn{std::move(header), 9, false, [key = std::move(key)](const BenchRecord& r) {
                         if (r.at(key).is_null()) return std::string("-");
                         char text[32];
                         std::snprintf(text, sizeof text, "%.2f", r.at(key).get<double>());
                         return std::string(text);
                       }};
  };
  const auto percent = [](std::string header, int width, std::string key) {
    return BenchColumn{std::move(header), width, false,
                       [key = std::move(key)](const BenchRecord& r) { return percentOf(r.at(key)); }};
  };
  const BenchColumn vsLocal{"/ local", 7, false, [](const BenchRecord& r) {
                              const double local = r.at("local_tokens_per_second").get<double>();
                              return local > 0 ? percentOf(r.at("cluster_tokens_per_second").get<double>() / local)
                                               : std::string("-");
                            }};
  return {textColumn("test", 6, "test", /*leftAligned=*/true),
          numberColumn("batch", 5, "batch", "%lld"),
          rate("tok/s", "cluster_tokens_per_second"),
          rate("roofline", "roofline_tokens_per_second"),
          percent("of roof", 7, "roofline_fraction"),
          rate("local", "local_tokens_per_second"),
          vsLocal,
          percent("comm", 6, "comm_share"),
          percent("coord", 6, "coordinator_share"),
          numberColumn("step ms", 8, "step_ms", "%.2f"),
          numberColumn("all-reduce B/step", 17, "allreduce_bytes_per_step", "%.0f")};
}

// The records as the human-readable report: a line of context, the table, and each worker's memory.
void printClusterReport(FILE* out, const std::vector<BenchRecord>& records) {
  const BenchRecord& r = records.front();
  std::fprintf(out, "model %s, %s weights, %s KV, tp %d x pp %d (%d workers, 1 thread each), %lld reps, median\n",
               r.at("model").get<std::string>().c_str(), r.at("dtype").get<std::string>().c_str(),
               r.at("kv_dtype").get<std::string>().c_str(), r.at("tp").get<int>(), r.at("pp").get<int>(),
               r.at("tp").get<int>() * r.at("pp").get<int>(), r.at("reps").get<long long>());
  printBenchTable(out, clusterTable(), records);
  std::fprintf(out,
               "roofline: read bandwidth probed with %d threads just before and after each decode repetition over "
               "the bytes all workers read a step; local: the whole model in this process, %d threads; comm and "
               "coord: shares of a step the ranks spend communicating and the coordinator takes\n",
               r.at("tp").get<int>() * r.at("pp").get<int>(), r.at("local_threads").get<int>());
  std::fprintf(out, "every worker multiplies BF16 weights with %s\n",
               r.at("matmul_compute").get<std::string>().c_str());
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

  std::vector<ClusterRun> runs;
  for (const ClusterCase& c : b.cases) runs.push_back(runCase(b, c, *cluster, local.get(), probe.get()));
  const std::vector<WorkerLoadReport> reports = cluster->loadReports();
  const MatmulCompute compute = cluster->compute();
  cluster.reset();
  local.reset();
  started.reset();

  std::vector<BenchRecord> records;
  for (const ClusterRun& run : runs) records.push_back(clusterRecord(b, run, reports, compute));
  printClusterReport(args.has("json") ? stderr : stdout, records);
  if (args.has("json")) {
    for (const BenchRecord& record : records) printBenchJson(record);
  }
  return 0;
}

}  // namespace phx::cli
