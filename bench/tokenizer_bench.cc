// tokenizer_bench: encode throughput of Phalanx's tokenizer beside the npm tiktoken package's (tiktoken's Rust core
// as WebAssembly, run under node by this benchmark) on the same text, one thread each. Ours cold (a freshly loaded
// tokenizer: empty piece cache) and warm (the same text again: every piece cached); tiktoken has no such cache.
// Also the pre-tokenizer's regex split alone (the bound of this design) and the machine's one-thread memory read
// bandwidth (the hardware limit). Prints a table and one JSON line per case, and writes them to --out (default
// tokenizer_bench.json). Speedup is cold over npm.
//
// usage: tokenizer_bench [--megabytes N] [--repeats N] [--out FILE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "kernels/roofline.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"
#include "model/tokenizer_files.h"
#include "model/utf8.h"
#include "tests/model/tokenizer_corpus.h"

namespace phx {
namespace {

namespace fs = std::filesystem;
using testing::CorpusKind;

struct Case {
  std::string name;
  std::string text;  // well-formed UTF-8, so both sides see the same characters
};

// "prose+code": English, code, numbers and whitespace, the bulk of real prompts. "corpus": every kind of the
// oracle corpus (CJK, emoji, combining marks, long words, ...).
std::vector<Case> makeCases(size_t bytes) {
  Case prose{"prose+code", {}};
  Case all{"corpus", {}};
  for (uint64_t seed = 1; prose.text.size() < bytes || all.text.size() < bytes; ++seed) {
    for (const auto& s : testing::tokenizerCorpus(12000, seed)) {
      const std::string text = replaceInvalidUtf8(s.text) + "\n";
      const bool proseKind = s.kind == CorpusKind::kEnglish || s.kind == CorpusKind::kCode ||
                             s.kind == CorpusKind::kNumbers || s.kind == CorpusKind::kWhitespace;
      if (proseKind && prose.text.size() < bytes) prose.text += text;
      if (all.text.size() < bytes) all.text += text;
    }
  }
  return {prose, all};
}

// Median over `repeats` timed runs of body(), each after an untimed setup().
template <typename Setup, typename Body>
double medianSeconds(int repeats, Setup&& setup, Body&& body) {
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    setup();
    const auto start = std::chrono::steady_clock::now();
    body();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

nlohmann::json runNode(const fs::path& textFile, int repeats) {
  const std::string command = std::string("node '") + PHX_SOURCE_DIR + "/bench/tiktoken_bench.mjs' '" + PHX_NPM_DIR +
                              "' '" + textFile.string() + "' " + std::to_string(repeats);
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return nullptr;
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output.append(buffer, n);
  if (::pclose(pipe) != 0 || output.empty()) return nullptr;
  return nlohmann::json::parse(output, nullptr, false);
}

int run(int argc, char** argv) {
  size_t megabytes = 4;
  int repeats = 5;
  std::string outPath = "tokenizer_bench.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--megabytes")) megabytes = std::stoul(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--repeats")) repeats = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--out")) outPath = argv[i + 1];
  }
  const fs::path work = fs::temp_directory_path() / ("phx_tokenizer_bench_" + std::to_string(::getpid()));
  fs::create_directories(work);
  writeTokenizerFiles(work);
  Tokenizer tokenizer = Tokenizer::load(work);
  const Pretokenizer pretokenizer(tokenizer.pattern(), "cl100k");
  const double bandwidth = measureReadBandwidthGBs(1, size_t(1) << 30, 3) * 1e9;
  const fs::path textFile = work / "text.txt";

  std::printf("%-11s %6s %9s %13s %13s %13s %8s %11s %11s\n", "case", "MB", "tokens", "phalanx cold", "phalanx warm",
              "tiktoken npm", "speedup", "regex split", "limit: read");
  std::printf("%-11s %6s %9s %13s %13s %13s %8s %11s %11s\n", "", "", "", "MB/s", "MB/s", "MB/s", "cold/npm", "MB/s",
              "GB/s 1 thr");
  std::vector<nlohmann::json> results;
  for (const Case& c : makeCases(megabytes << 20)) {
    std::vector<int32_t> ids;
    auto encode = [&] { ids = tokenizer.encode(c.text); };
    const double cold = medianSeconds(repeats, [&] { tokenizer = Tokenizer::load(work); }, encode);
    const double warm = medianSeconds(repeats, [] {}, encode);
    std::vector<std::string_view> pieces;
    const double split = medianSeconds(repeats, [&] { pieces.clear(); }, [&] { pretokenizer.split(c.text, pieces); });
    std::ofstream(textFile, std::ios::binary) << c.text;
    const nlohmann::json node = runNode(textFile, repeats);
    const double mb = double(c.text.size()) / 1e6;
    const double npmRate = node.is_object() ? node["mbPerSecond"].get<double>() : 0.0;
    const bool sameCount = node.is_object() && node["tokens"].get<size_t>() == ids.size();
    nlohmann::json result = {{"case", c.name},
                             {"bytes", c.text.size()},
                             {"tokens", ids.size()},
                             {"phalanx_cold_mb_per_s", mb / cold},
                             {"phalanx_warm_mb_per_s", mb / warm},
                             {"tiktoken_npm_mb_per_s", npmRate},
                             {"npm_same_token_count", sameCount},
                             {"regex_split_mb_per_s", mb / split},
                             {"read_bandwidth_gb_per_s_1_thread", bandwidth / 1e9}};
    std::printf("%-11s %6.2f %9zu %13.1f %13.1f %13.1f %7.2fx %11.1f %11.1f%s\n", c.name.c_str(), mb, ids.size(),
                mb / cold, mb / warm, npmRate, npmRate > 0 ? mb / cold / npmRate : 0.0, mb / split, bandwidth / 1e9,
                sameCount ? "" : "  (npm token count differs or node failed)");
    results.push_back(result);
  }
  fs::remove_all(work);
  std::ofstream out(outPath);
  for (const auto& result : results) {
    std::printf("%s\n", result.dump().c_str());
    out << result.dump() << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace phx

int main(int argc, char** argv) { return phx::run(argc, argv); }
