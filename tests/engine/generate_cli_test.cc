// `phalanx generate` and `phalanx bench` as a user runs them, on the generated tiny model: greedy output equal to
// the reference's greedy continuation, the JSON shape, chat template, stop strings, Ctrl-C, and clear errors for
// bad requests (also under AddressSanitizer).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"
#include "model/utf8.h"
#include "tests/common/cli_process.h"
#include "tests/common/test_files.h"
#include "tests/reference/reference_model.h"

namespace phx::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kTiny = ::phx::testing::testModelDir("tiny").string();

json generateJson(const std::vector<std::string>& extra) { return testing::generateJson(kTiny, extra); }

struct TopTwo {
  int32_t best = -1;
  float margin = 0;
};

TopTwo topTwo(const std::vector<float>& row) {
  std::vector<int32_t> ids(row.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + 2, ids.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  return {ids[0], row[size_t(ids[0])] - row[size_t(ids[1])]};
}

// The engine's logits are within NMSE 1e-4 of the reference's (engine_reference_test): the largest error of a row
// is taken as 4 x its RMS bound, and greedy choices must agree where the margin exceeds twice that.
double clearMargin(const std::vector<float>& row) {
  double power = 0;
  for (float v : row) power += double(v) * v;
  return 2 * 4.0 * std::sqrt(1e-4 * power / double(row.size()));
}

// Greedy decoding through the CLI equals the reference model's own greedy choice after each prefix, wherever that
// choice is clear.
TEST(GenerateCliTest, GreedyTokensEqualTheReferenceWhereTheMarginIsClear) {
  const json out = generateJson({"--prompt-tokens", "9906,1917,11,1268", "--max-tokens", "8", "--temperature", "0"});
  const std::vector<int32_t> tokens = out["tokens"].get<std::vector<int32_t>>();
  ASSERT_EQ(tokens.size(), 8u);
  const reference::ReferenceModel reference(kTiny);
  std::vector<int32_t> sequence = {9906, 1917, 11, 1268};
  int clear = 0;
  for (int32_t token : tokens) {
    const std::vector<float> row = reference.forward(sequence, /*lastOnly=*/true);
    const TopTwo ref = topTwo(row);
    if (ref.margin > clearMargin(row)) {
      ++clear;
      EXPECT_EQ(token, ref.best) << "after " << sequence.size() << " tokens, margin " << ref.margin;
    }
    sequence.push_back(token);
  }
  EXPECT_GE(clear, 4) << "too few clear steps for the comparison to say much";
  const Tokenizer tokenizer = Tokenizer::load(kTiny);
  EXPECT_EQ(out["text"].get<std::string>(), replaceInvalidUtf8(tokenizer.decode(tokens)));
  EXPECT_EQ(out["finish_reason"], "length");
  EXPECT_EQ(out["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(out["usage"]["completion_tokens"], 8);
}

TEST(GenerateCliTest, TopLogprobsAreSortedAndIncludeTheGreedyChoice) {
  const json out = generateJson({"--prompt", "Hello world", "--max-tokens", "4", "--temperature", "0",
                                 "--top-logprobs", "3"});
  ASSERT_EQ(out["top_logprobs"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const json& top = out["top_logprobs"][i];
    ASSERT_EQ(top.size(), 3u);
    EXPECT_EQ(top[0][0], out["tokens"][i]);  // greedy picks the most likely
    EXPECT_GE(top[0][1].get<double>(), top[1][1].get<double>());
    EXPECT_GE(top[1][1].get<double>(), top[2][1].get<double>());
    EXPECT_LE(top[0][1].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(out["logprobs"][i].get<double>(), top[0][1].get<double>());
  }
}

TEST(GenerateCliTest, ChatAppliesTheTemplateWithSpecialTokens) {
  const json out = generateJson({"--chat", "Hi", "--max-tokens", "1", "--temperature", "0"});
  // <|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>
  const Tokenizer tokenizer = Tokenizer::load(kTiny);
  const int64_t expected =
      int64_t(tokenizer.encode("<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>", true).size());
  EXPECT_EQ(out["usage"]["prompt_tokens"], expected);
  EXPECT_EQ(expected, 8);  // five special tokens, "user", "Hi", "assistant"
}

TEST(GenerateCliTest, StopStringEndsGenerationBeforeIt) {
  const json full = generateJson({"--prompt-tokens", "9906", "--max-tokens", "12", "--temperature", "0"});
  const std::string text = full["text"];
  ASSERT_GE(text.size(), 6u);
  const std::string stop = text.substr(text.size() / 2, 3);
  const json stopped = generateJson({"--prompt-tokens", "9906", "--max-tokens", "12", "--temperature", "0",
                                     "--stop", stop});
  EXPECT_EQ(stopped["finish_reason"], "stop");
  EXPECT_EQ(stopped["text"], text.substr(0, text.find(stop)));
}

TEST(GenerateCliTest, StreamsTextAndEndsWithASummary) {
  const ProcessResult run = runPhalanx({"generate", "--model", kTiny, "--prompt", "Hello", "--max-tokens", "5",
                                        "--temperature", "0", "--threads", "1"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_FALSE(run.out.empty());
  EXPECT_THAT(run.err, HasSubstr("prompt tokens: 1, generated tokens: 5 (length)"));
  EXPECT_THAT(run.err, HasSubstr("decode:"));
}

TEST(GenerateCliTest, CtrlCStopsCleanlyWithTheSummary) {
  const ProcessResult run = runPhalanx({"generate", "--model", kTiny, "--prompt", "Hello", "--max-tokens", "100000",
                                        "--temperature", "0"},
                                       /*interruptOnOutput=*/true);
  EXPECT_EQ(run.signal, 0);
  EXPECT_EQ(run.exitCode, 0) << run.err;
  EXPECT_THAT(run.err, HasSubstr("(cancelled)"));
}

TEST(GenerateCliTest, BadRequestsFailWithAClearMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--prompt", "a", "--chat", "b"}, "exactly one of --prompt, --chat and --prompt-tokens"},
      {{"--prompt-tokens", "1,100352"}, "id 100352 is outside the vocabulary"},
      {{"--prompt-tokens", "1,x"}, "--prompt-tokens expects comma-separated integers"},
      {{"--prompt", "a", "--temperature", "-1"}, "temperature"},
      {{"--prompt", "a", "--threads", "0"}, "--threads must be at least 1"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"generate", "--model", kTiny};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const ProcessResult run = runPhalanx(args);
    EXPECT_EQ(run.exitCode, 2) << c.message << ": " << run.err;
    EXPECT_EQ(run.signal, 0);
    EXPECT_THAT(run.err, HasSubstr(c.message));
  }
  const ProcessResult missing = runPhalanx({"generate", "--model", "/nonexistent/model", "--prompt", "a"});
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/model"));
}

TEST(BenchCliTest, PrintsOneJsonObjectPerCaseWithItsLimit) {
  const ProcessResult run = runPhalanx({"bench", "--model", kTiny, "--threads", "2", "--prompt", "16", "--gen", "4",
                                        "--batch", "1,2", "--reps", "2", "--bandwidth-gib", "1", "--json"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  std::istringstream lines(run.out);
  std::vector<json> cases;
  for (std::string line; std::getline(lines, line);) cases.push_back(json::parse(line));
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[0]["test"], "pp16");
  EXPECT_EQ(cases[1]["test"], "tg4");
  EXPECT_EQ(cases[2]["batch"], 2);
  for (const json& c : cases) {
    EXPECT_EQ(c["threads"], 2);
    EXPECT_EQ(c["dtype"], "bf16");
    EXPECT_GT(c["tokens_per_s"].get<double>(), 0);
    EXPECT_GT(c["limit_tokens_per_s"].get<double>(), 0);
    const auto perRep = c["tokens_per_s_per_rep"].get<std::vector<double>>();
    ASSERT_EQ(perRep.size(), 2u);
    if (c["test"] == "pp16") {
      EXPECT_NEAR(c["limit_fraction"].get<double>(),
                  c["tokens_per_s"].get<double>() / c["limit_tokens_per_s"].get<double>(), 1e-9);
      continue;
    }
    // Decode: each repetition over the roofline of the bandwidth probed beside it (unless compute bounds it).
    const auto bandwidth = c["read_bandwidth_gb_s_per_rep"].get<std::vector<double>>();
    ASSERT_EQ(bandwidth.size(), 2u);
    if (c["bound"] != "bandwidth") continue;
    double fraction = 0;
    for (size_t r = 0; r < 2; ++r) {
      EXPECT_GT(bandwidth[r], 0);
      const double roofline = c["batch"].get<double>() * bandwidth[r] * 1e9 / c["decode_bytes_per_step"].get<double>();
      fraction += perRep[r] / roofline / 2;
    }
    EXPECT_NEAR(c["limit_fraction"].get<double>(), fraction, 1e-9);
  }
  EXPECT_THAT(run.err, HasSubstr("| test"));
}

TEST(BenchCliTest, ClusterBenchLoadsInt8ShardsAndPrintsItsRoofline) {
  const ProcessResult run = runPhalanx({"bench", "--model", kTiny, "--tp", "2", "--dtype", "int8", "--gen", "4",
                                        "--reps", "1", "--bandwidth-gib", "1", "--json"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  const json out = json::parse(run.out);
  EXPECT_EQ(out["dtype"], "int8");
  EXPECT_GT(out["cluster_tokens_per_second"].get<double>(), 0);
  EXPECT_GT(out["roofline_tokens_per_second"].get<double>(), 0);
  EXPECT_GT(out["roofline_fraction"].get<double>(), 0);
  ASSERT_EQ(out["workers"].size(), 2u);
  for (const json& worker : out["workers"]) {
    EXPECT_GE(worker["peak_rss_bytes"].get<int64_t>(), worker["rss_bytes"].get<int64_t>());
    EXPECT_GT(worker["bytes_read"].get<int64_t>(), 0);
  }
  EXPECT_THAT(run.err, HasSubstr("int8 weights"));
}

// Batched decode and a chunked prefill through the cluster: a record per case, each step's all-reduce bytes the
// plan's bytes per token (from `phalanx plan --json`, computed apart) times the step's tokens.
TEST(BenchCliTest, ClusterBenchMeasuresBatchedDecodeAndPrefill) {
  const ProcessResult plan = runPhalanx({"plan", "--model", kTiny, "--tp", "2", "--json"});
  ASSERT_EQ(plan.exitCode, 0) << plan.err;
  const double bytesPerToken = json::parse(plan.out)["all_reduce_bytes_per_token"].get<double>();
  const ProcessResult run = runPhalanx({"bench", "--model", kTiny, "--tp", "2", "--gen", "4", "--batch", "1,3",
                                        "--prompt", "20", "--ubatch", "8", "--reps", "1", "--bandwidth-gib", "1",
                                        "--json"});
  ASSERT_EQ(run.exitCode, 0) << run.err;
  std::vector<json> records;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) records.push_back(json::parse(line));
  ASSERT_EQ(records.size(), 3u) << run.out;
  const std::vector<std::tuple<std::string, int, int>> expected = {{"tg4", 1, 1}, {"tg4", 3, 3}, {"pp20", 1, 8}};
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& [test, batch, stepTokens] = expected[i];
    const json& r = records[i];
    EXPECT_EQ(r["test"], test);
    EXPECT_EQ(r["batch"], batch);
    EXPECT_EQ(r["tokens_per_step"], stepTokens);
    EXPECT_DOUBLE_EQ(r["allreduce_bytes_per_step"].get<double>(), bytesPerToken * stepTokens) << test;
    EXPECT_EQ(r["pipeline_bytes_per_step"], 0) << "one stage hands nothing on";
    EXPECT_GT(r["cluster_tokens_per_second"].get<double>(), 0) << test;
    EXPECT_GT(r["local_tokens_per_second"].get<double>(), 0) << test;
    EXPECT_EQ(r["roofline_tokens_per_second"].is_null(), test == "pp20") << "prefill has no bandwidth roofline";
  }
  EXPECT_EQ(records[2]["prompt"], 20);
  EXPECT_THAT(run.err, HasSubstr("| pp20"));
}

TEST(BenchCliTest, EachModesFlagsAreRefusedInTheOtherByName) {
  ProcessResult run = runPhalanx({"bench", "--model", kTiny, "--tp", "2", "--threads", "2"});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_THAT(run.err, HasSubstr("--threads applies to the in-process bench"));
  run = runPhalanx({"bench", "--model", kTiny, "--local-threads", "1"});
  EXPECT_EQ(run.exitCode, 2);
  EXPECT_THAT(run.err, HasSubstr("--local-threads applies only through a cluster"));
}

}  // namespace
}  // namespace phx::testing
