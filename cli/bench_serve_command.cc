// phalanx bench-serve --url URL [--concurrency 1,4,16,64] [--requests N] [--prompt-len L] [--gen-len G] [--json]
// [--plot FILE]: like `vllm bench serve`. At each concurrency, that many clients stream completions of random
// L-token prompts (token arrays, ignore_eos, max_tokens G) back to back; the table gives successful and failed
// requests, request and output token throughput, and TTFT, TPOT, ITL and end-to-end latency (mean, median, p99).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/bench_serve_plot.h"
#include "cli/commands.h"
#include "cli/sse_client.h"
#include "common/error.h"

namespace phx::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

ArgParser parser() {
  ArgParser p("phalanx bench-serve --url URL [options]",
              "Measures a running server (phalanx serve or up) under load: at each concurrency, that many streaming "
              "clients send random token prompts back to back.");
  p.option("url", "URL", "the server, http://HOST:PORT")
      .option("concurrency", "LIST", "concurrent clients, one run each", "1,4,16,64")
      .option("requests", "N", "requests per run (at least the concurrency)", "64")
      .option("prompt-len", "L", "prompt tokens", "128")
      .option("gen-len", "G", "generated tokens (ignore_eos)", "64")
      .option("model-name", "NAME", "the model field", "phi-4")
      .option("api-key-file", "F", "the server's API key")
      .option("seed", "S", "seed of the random prompts", "1")
      .option("plot", "FILE", "write an SVG of throughput and latency against concurrency")
      .flag("json", "one JSON line per concurrency instead of the table");
  return p;
}

struct RequestTiming {
  bool ok = false;
  int64_t tokens = 0;
  double ttft = 0, e2e = 0;
  std::vector<double> itl;
};

struct Summary {
  double mean = 0, median = 0, p99 = 0;
  json toJson() const { return {{"mean", mean}, {"median", median}, {"p99", p99}}; }
};

Summary summarise(std::vector<double> values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  for (double v : values) s.mean += v;
  s.mean /= double(values.size());
  s.median = values[values.size() / 2];
  s.p99 = values[std::min(values.size() - 1, size_t(double(values.size()) * 0.99))];
  return s;
}

struct Run {
  SseClient& client;
  const ParsedArgs& args;
  std::vector<json> bodies;
  std::vector<RequestTiming> timings;
  size_t next = 0;

  kj::Promise<void> worker() {
    if (next >= bodies.size()) return kj::READY_NOW;
    const size_t index = next++;
    auto start = std::make_shared<Clock::time_point>(Clock::now());
    auto last = std::make_shared<Clock::time_point>();
    RequestTiming& timing = timings[index];
    return client
        .postStream("/v1/completions", bodies[index].dump(),
                    [&timing, start, last](std::string_view data) {
                      const json chunk = json::parse(data, nullptr, false);
                      if (!chunk.is_object() || !chunk.contains("choices")) return;
                      int64_t tokens = 0;
                      for (const json& choice : chunk["choices"])
                        tokens += int64_t(choice.value("token_ids", json::array()).size());
                      if (tokens == 0) return;
                      const auto now = Clock::now();
                      if (timing.tokens == 0) {
                        timing.ttft = std::chrono::duration<double>(now - *start).count();
                      } else {
                        timing.itl.push_back(std::chrono::duration<double>(now - *last).count());
                      }
                      *last = now;
                      timing.tokens += tokens;
                    })
        .then([this, &timing, start](HttpReply reply) {
                timing.e2e = std::chrono::duration<double>(Clock::now() - *start).count();
                timing.ok = reply.status == 200 && timing.tokens == args.integer("gen-len");
              },
              [&timing](kj::Exception&&) { timing.ok = false; })
        .then([this]() { return worker(); });
  }
};

// The requests of one run: random ordinary BPE ids of cl100k (no special tokens), so any Phi-4-vocabulary server
// takes them.
std::vector<json> randomBodies(const ParsedArgs& args, int64_t requests, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> ids(1000, 90000);
  std::vector<json> bodies;
  for (int64_t r = 0; r < requests; ++r) {
    std::vector<int32_t> prompt(size_t(args.integer("prompt-len")));
    for (int32_t& id : prompt) id = ids(rng);
    bodies.push_back({{"model", args.str("model-name")}, {"prompt", prompt}, {"max_tokens", args.integer("gen-len")},
                      {"ignore_eos", true}, {"temperature", 0}, {"stream", true}, {"return_token_ids", true}});
  }
  return bodies;
}

// One concurrency's figures.
struct RunResult {
  BenchServePoint point;
  int64_t requests = 0;
  double seconds = 0;
  Summary ttft, tpot, itl, e2e;  // milliseconds
};

RunResult summariseRun(int64_t concurrency, const std::vector<RequestTiming>& timings, double seconds) {
  RunResult result;
  result.requests = int64_t(timings.size());
  result.seconds = seconds;
  BenchServePoint& point = result.point;
  point.concurrency = concurrency;
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t outputTokens = 0;
  for (const RequestTiming& t : timings) {
    if (!t.ok) {
      ++point.failed;
      continue;
    }
    ++point.succeeded;
    outputTokens += t.tokens;
    ttft.push_back(t.ttft * 1e3);
    e2e.push_back(t.e2e * 1e3);
    if (t.tokens > 1) tpot.push_back((t.e2e - t.ttft) * 1e3 / double(t.tokens - 1));
    for (double gap : t.itl) itl.push_back(gap * 1e3);
  }
  point.requestThroughput = double(point.succeeded) / seconds;
  point.outputThroughput = double(outputTokens) / seconds;
  result.ttft = summarise(ttft), result.tpot = summarise(tpot), result.itl = summarise(itl);
  result.e2e = summarise(e2e);
  point.ttftMedianMs = result.ttft.median;
  point.tpotMedianMs = result.tpot.median;
  point.e2eMedianMs = result.e2e.median;
  return result;
}

RunResult runConcurrency(kj::AsyncIoContext& io, SseClient& client, const ParsedArgs& args, int64_t concurrency,
                         std::mt19937_64& rng) {
  Run run{client, args, randomBodies(args, std::max(args.integer("requests"), concurrency), rng), {}, 0};
  run.timings.resize(run.bodies.size());
  const auto start = Clock::now();
  kj::Vector<kj::Promise<void>> workers;
  for (int64_t c = 0; c < concurrency; ++c) workers.add(run.worker());
  kj::joinPromises(workers.releaseAsArray()).wait(io.waitScope);
  return summariseRun(concurrency, run.timings, std::chrono::duration<double>(Clock::now() - start).count());
}

void printTableHeader() {
  std::printf("%5s %4s %4s %8s %9s | %-23s | %-23s | %-23s | %-23s\n", "conc", "ok", "fail", "req/s", "out tok/s",
              "TTFT ms mean/med/p99", "TPOT ms mean/med/p99", "ITL ms mean/med/p99", "E2E ms mean/med/p99");
}

void printTableRow(const RunResult& r) {
  const BenchServePoint& p = r.point;
  std::printf("%5lld %4lld %4lld %8.2f %9.1f | %7.1f %7.1f %7.1f | %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f | "
              "%7.0f %7.0f %7.0f\n",
              (long long)p.concurrency, (long long)p.succeeded, (long long)p.failed, p.requestThroughput,
              p.outputThroughput, r.ttft.mean, r.ttft.median, r.ttft.p99, r.tpot.mean, r.tpot.median, r.tpot.p99,
              r.itl.mean, r.itl.median, r.itl.p99, r.e2e.mean, r.e2e.median, r.e2e.p99);
}

void printJsonLine(const RunResult& r, int64_t promptLen, int64_t genLen) {
  const BenchServePoint& p = r.point;
  const json line{{"concurrency", p.concurrency}, {"requests", r.requests}, {"successful", p.succeeded},
                  {"failed", p.failed}, {"duration_s", r.seconds}, {"prompt_len", promptLen},
                  {"gen_len", genLen}, {"request_throughput", p.requestThroughput},
                  {"output_token_throughput", p.outputThroughput},
                  {"total_token_throughput", p.requestThroughput * double(promptLen + genLen)},
                  {"ttft_ms", r.ttft.toJson()}, {"tpot_ms", r.tpot.toJson()}, {"itl_ms", r.itl.toJson()},
                  {"e2e_ms", r.e2e.toJson()}};
  std::printf("%s\n", line.dump().c_str());
}

HttpTarget targetOf(const ParsedArgs& args) {
  HttpTarget target = HttpTarget::parse(args.str("url"));
  if (args.has("api-key-file")) {
    std::ifstream file(args.str("api-key-file"));
    if (!file || !std::getline(file, target.apiKey))
      throwIoError("--api-key-file: cannot read " + args.str("api-key-file"));
  }
  return target;
}

}  // namespace

int benchServeCommand(int argc, char** argv) {
  const auto parsed = parser().parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  const int64_t promptLen = args.integer("prompt-len"), genLen = args.integer("gen-len");
  if (promptLen < 1 || genLen < 1) throwInvalidArgument("--prompt-len and --gen-len must be at least 1");
  auto io = kj::setupAsyncIo();
  SseClient client(io, targetOf(args));
  std::mt19937_64 rng(uint64_t(args.integer("seed")));
  const bool jsonLines = args.has("json");
  if (!jsonLines) printTableHeader();
  std::vector<BenchServePoint> points;
  for (int64_t concurrency : args.integerList("concurrency")) {
    if (concurrency < 1) throwInvalidArgument("--concurrency values must be at least 1");
    const RunResult result = runConcurrency(io, client, args, concurrency, rng);
    points.push_back(result.point);
    jsonLines ? printJsonLine(result, promptLen, genLen) : printTableRow(result);
    std::fflush(stdout);
  }
  if (args.has("plot")) {
    writeBenchServePlot(args.str("plot"), points,
                        "bench-serve " + args.str("url") + ": prompt " + std::to_string(promptLen) + ", generate " +
                            std::to_string(genLen) + " tokens");
  }
  return 0;
}

}  // namespace phx::cli
