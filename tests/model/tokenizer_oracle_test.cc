// The tokenizer against tiktoken itself: the npm `tiktoken` package (tiktoken's Rust core as WebAssembly) run once
// under node on the whole corpus (tests/model/tokenizer_corpus.h, >= 10,000 strings). Zero mismatches allowed, in
// the UTF-8 replacement of ill-formed input, in plain-text ids and in ids with added tokens allowed.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/tokenizer.h"
#include "model/tokenizer_files.h"
#include "model/utf8.h"
#include "tests/common/test_files.h"
#include "tests/model/tokenizer_corpus.h"

namespace phx {
namespace {

using ::phx::testing::slurp;

namespace fs = std::filesystem;
using testing::CorpusString;

constexpr size_t kCorpusSize = 12000;

struct OracleResult {
  std::string text;  // TextDecoder's decoding of the bytes, as UTF-8
  std::vector<int32_t> plainIds;
  std::vector<int32_t> specialIds;
};

void appendU32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out += char((value >> (8 * i)) & 0xFF);
}

class Reader {
 public:
  explicit Reader(std::string data) : data_(std::move(data)) {}
  bool done() const { return pos_ == data_.size(); }
  uint32_t u32() {
    if (pos_ + 4 > data_.size()) throw std::runtime_error("oracle output truncated");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) value |= uint32_t(uint8_t(data_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return value;
  }
  std::string bytes(size_t n) {
    if (pos_ + n > data_.size()) throw std::runtime_error("oracle output truncated");
    pos_ += n;
    return data_.substr(pos_ - n, n);
  }
  std::vector<int32_t> ids() {
    std::vector<int32_t> out(u32());
    for (int32_t& id : out) id = int32_t(u32());
    return out;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
};

// Runs node once over the corpus.
std::vector<OracleResult> runOracle(const std::vector<CorpusString>& corpus, const fs::path& dir) {
  std::string input;
  for (const CorpusString& s : corpus) {
    appendU32(input, uint32_t(s.text.size()));
    input += s.text;
  }
  std::ofstream(dir / "corpus.bin", std::ios::binary) << input;
  nlohmann::json added = nlohmann::json::object();
  for (size_t i = 0; i < phi4AddedTokens().size(); ++i) added[phi4AddedTokens()[i]] = kPhi4FirstAddedId + int(i);
  std::ofstream(dir / "added.json") << added.dump();

  const std::string command = std::string("node '") + PHX_SOURCE_DIR + "/tests/model/tiktoken_oracle.mjs' '" +
                              PHX_NPM_DIR + "' '" + (dir / "added.json").string() + "' '" +
                              (dir / "corpus.bin").string() + "' '" + (dir / "oracle.bin").string() + "'";
  const int status = std::system(command.c_str());
  if (status != 0) throw std::runtime_error("node oracle failed (" + std::to_string(status) + "): " + command);

  Reader reader(slurp(dir / "oracle.bin"));
  std::vector<OracleResult> results;
  while (!reader.done()) {
    OracleResult result;
    result.text = reader.bytes(reader.u32());
    result.plainIds = reader.ids();
    result.specialIds = reader.ids();
    results.push_back(std::move(result));
  }
  return results;
}

std::string describe(std::string_view bytes) {
  std::string out;
  for (char c : bytes.substr(0, 160)) {
    const auto b = uint8_t(c);
    if (b >= 0x20 && b < 0x7F && b != '\\') {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02X", b);
      out += hex;
    }
  }
  return bytes.size() > 160 ? out + "... (" + std::to_string(bytes.size()) + " bytes)" : out;
}

std::string idsText(const std::vector<int32_t>& ids) {
  std::ostringstream out;
  for (size_t i = 0; i < ids.size() && i < 40; ++i) out << (i ? " " : "") << ids[i];
  if (ids.size() > 40) out << " ... (" << ids.size() << " ids)";
  return out.str();
}

class TokenizerOracleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("phx_tokenizer_oracle_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(TokenizerOracleTest, MatchesTiktokenOnTheWholeCorpus) {
  const std::vector<CorpusString> corpus = testing::tokenizerCorpus(kCorpusSize, 20250101);
  ASSERT_GE(corpus.size(), 10000u);
  const std::vector<OracleResult> oracle = runOracle(corpus, dir_);
  ASSERT_EQ(oracle.size(), corpus.size());

  // Written to disk and loaded back, as the coordinator does: the files are what is checked.
  writeTokenizerFiles(dir_);
  const Tokenizer tokenizer = Tokenizer::load(dir_);

  size_t mismatches = 0;
  size_t invalidUtf8 = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string& text = corpus[i].text;
    bytes += text.size();
    invalidUtf8 += !isValidUtf8(text);
    const std::string replaced = replaceInvalidUtf8(text);
    const std::vector<int32_t> plain = tokenizer.encode(text, false);
    const std::vector<int32_t> special = tokenizer.encode(text, true);
    const bool ok = replaced == oracle[i].text && plain == oracle[i].plainIds && special == oracle[i].specialIds;
    if (ok) continue;
    if (++mismatches <= 10) {
      ADD_FAILURE() << "string " << i << " (kind " << int(corpus[i].kind) << "): " << describe(text)
                    << "\n  replaced  ours: " << describe(replaced)
                    << "\n  replaced  node: " << describe(oracle[i].text)
                    << "\n  plain     ours: " << idsText(plain) << "\n  plain tiktoken: " << idsText(oracle[i].plainIds)
                    << "\n  special   ours: " << idsText(special)
                    << "\n  special tiktoken: " << idsText(oracle[i].specialIds);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << corpus.size() << " strings";
  // The corpus exercises what it claims to.
  EXPECT_GE(invalidUtf8, 500u);
  EXPECT_GE(bytes, 1000000u);
  std::printf("%zu strings, %zu bytes, %zu with ill-formed UTF-8: %zu mismatches\n", corpus.size(), bytes,
              invalidUtf8, mismatches);
}

// decode inverts encode exactly on well-formed text, and streaming decode gives the same text without ever
// emitting part of a character.
TEST(TokenizerCorpus, DecodeRoundTripsAndStreams) {
  const Tokenizer tokenizer = phi4Tokenizer();
  const std::vector<CorpusString> corpus = testing::tokenizerCorpus(kCorpusSize, 7);
  size_t failures = 0;
  for (const CorpusString& s : corpus) {
    const std::vector<int32_t> ids = tokenizer.encode(s.text, true);
    const std::string expected = replaceInvalidUtf8(s.text);
    IncrementalDecoder stream(tokenizer);
    std::string streamed;
    bool piecesValid = true;
    for (int32_t id : ids) {
      const std::string piece = stream.push(id);
      piecesValid = piecesValid && isValidUtf8(piece);
      streamed += piece;
    }
    streamed += stream.finish();
    const bool ok = tokenizer.decode(ids) == expected && streamed == expected && piecesValid;
    if (!ok && ++failures <= 5) ADD_FAILURE() << describe(s.text);
  }
  EXPECT_EQ(failures, 0u);
}

}  // namespace
}  // namespace phx
