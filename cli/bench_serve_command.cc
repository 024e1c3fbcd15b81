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

}  // namespace

int benchServeCommand(int argc, char** argv) {
  const auto parsed = parser().parse(argc, argv);
  if (!parsed) return 0;
  const ParsedArgs& args = *parsed;
  HttpTarget target = HttpTarget::parse(args.str("url"));
  if (args.has("api-key-file")) {
    std::ifstream file(args.str("api-key-file"));
    if (!file || !std::getline(file, target.apiKey))
      throwIoError("--api-key-file: cannot read " + args.str("api-key-file"));
  }
  const int64_t promptLen = args.integer("prompt-len"), genLen = args.integer("gen-len");
  if (promptLen < 1 || genLen < 1) throwInvalidArgument("--prompt-len and --gen-len must be at least 1");
  auto io = kj::setupAsyncIo();
  SseClient client(io, target);
  std::mt19937_64 rng(uint64_t(args.integer("seed")));
  // Ordinary BPE ids of cl100k (no special tokens), so any Phi-4-vocabulary server takes them.
  std::uniform_int_distribution<int32_t> ids(1000, 90000);

  std::vector<BenchServePoint> points;
  if (!args.has("json")) {
    std::printf("%5s %4s %4s %8s %9s | %-23s | %-23s | %-23s | %-23s\n", "conc", "ok", "fail", "req/s", "out tok/s",
                "TTFT ms mean/med/p99", "TPOT ms mean/med/p99", "ITL ms mean/med/p99", "E2E ms mean/med/p99");
  }
  for (int64_t concurrency : args.integerList("concurrency")) {
    if (concurrency < 1) throwInvalidArgument("--concurrency values must be at least 1");
    Run run{client, args, {}, {}, 0};
    const int64_t requests = std::max(args.integer("requests"), concurrency);
    for (int64_t r = 0; r < requests; ++r) {
      std::vector<int32_t> prompt(static_cast<size_t>(promptLen));
      for (int32_t& id : prompt) id = ids(rng);
      run.bodies.push_back({{"model", args.str("model-name")}, {"prompt", prompt}, {"max_tokens", genLen},
                            {"ignore_eos", true}, {"temperature", 0}, {"stream", true}, {"return_token_ids", true}});
    }
    run.timings.resize(run.bodies.size());
    const auto start = Clock::now();
    kj::Vector<kj::Promise<void>> workers;
    for (int64_t c = 0; c < concurrency; ++c) workers.add(run.worker());
    kj::joinPromises(workers.releaseAsArray()).wait(io.waitScope);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

    BenchServePoint point{.concurrency = concurrency};
    std::vector<double> ttft, tpot, itl, e2e;
    int64_t outputTokens = 0;
    for (const RequestTiming& t : run.timings) {
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
    const Summary sTtft = summarise(ttft), sTpot = summarise(tpot), sItl = summarise(itl), sE2e = summarise(e2e);
    point.ttftMedianMs = sTtft.median;
    point.tpotMedianMs = sTpot.median;
    point.e2eMedianMs = sE2e.median;
    points.push_back(point);
    if (args.has("json")) {
      const json line{{"concurrency", concurrency}, {"requests", requests}, {"successful", point.succeeded},
                      {"failed", point.failed}, {"duration_s", seconds}, {"prompt_len", promptLen},
                      {"gen_len", genLen}, {"request_throughput", point.requestThroughput},
                      {"output_token_throughput", point.outputThroughput},
                      {"total_token_throughput", point.requestThroughput * double(promptLen + genLen)},
                      {"ttft_ms", sTtft.toJson()}, {"tpot_ms", sTpot.toJson()}, {"itl_ms", sItl.toJson()},
                      {"e2e_ms", sE2e.toJson()}};
      std::printf("%s\n", line.dump().c_str());
    } else {
      std::printf("%5lld %4lld %4lld %8.2f %9.1f | %7.1f %7.1f %7.1f | %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f | "
                  "%7.0f %7.0f %7.0f\n",
                  (long long)concurrency, (long long)point.succeeded, (long long)point.failed, point.requestThroughput,
                  point.outputThroughput, sTtft.mean, sTtft.median, sTtft.p99, sTpot.mean, sTpot.median, sTpot.p99,
                  sItl.mean, sItl.median, sItl.p99, sE2e.mean, sE2e.median, sE2e.p99);
    }
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
