// Phi-4's tokenizer files: the compiled-in ranks are the official cl100k_base file, the written files say what
// microsoft/phi-4's say, both formats load back to the same tokenizer, merges.txt follows Hugging Face's tiktoken
// converter, and malformed files are refused with errors that name the file.
#include <climits>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "common/error.h"
#include "model/byte_level.h"
#include "model/chat_template.h"
#include "model/cl100k_ranks.h"
#include "model/tokenizer.h"
#include "model/tokenizer_files.h"
#include "tests/common/test_files.h"
#include "tests/model/tokenizer_corpus.h"

namespace phx {
namespace {

using ::phx::testing::slurp;

namespace fs = std::filesystem;
using nlohmann::json;

void writeText(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string base64(std::string_view bytes) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t group = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) group |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) group |= uint8_t(bytes[i + 2]);
    out += kAlphabet[(group >> 18) & 63];
    out += kAlphabet[(group >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(group >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[group & 63] : '=';
  }
  return out;
}

std::string sha256sum(const fs::path& path) {
  FILE* pipe = ::popen(("sha256sum '" + path.string() + "'").c_str(), "r");
  if (!pipe) return "popen failed";
  char digest[65] = {};
  const size_t got = std::fread(digest, 1, 64, pipe);
  ::pclose(pipe);
  return std::string(digest, got);
}

fs::path makeTempDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("phx_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(Cl100kRanks, AreTheOfficialFile) {
  const std::vector<std::string>& tokens = cl100kTokens();
  ASSERT_EQ(tokens.size(), 100256u);
  std::string lines;
  for (size_t rank = 0; rank < tokens.size(); ++rank) lines += base64(tokens[rank]) + " " + std::to_string(rank) + "\n";
  const fs::path dir = makeTempDir("cl100k");
  writeText(dir / "cl100k_base.tiktoken", lines);
  EXPECT_EQ(sha256sum(dir / "cl100k_base.tiktoken"),
            "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7");
  fs::remove_all(dir);
  // tiktoken's published pattern for cl100k_base.
  EXPECT_EQ(cl100kPattern(),
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
            R"(|\s*[\r\n]+|\s+(?!\S)|\s+)");
}

class WrittenTokenizerFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(makeTempDir("tokenizer_files"));
    writeTokenizerFiles(*dir_);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static json readJson(const std::string& name) { return json::parse(slurp(*dir_ / name)); }
  static fs::path* dir_;
};
fs::path* WrittenTokenizerFiles::dir_ = nullptr;

TEST_F(WrittenTokenizerFiles, LoadFromEitherFormatGivesIdenticalIds) {
  const fs::path slowDir = makeTempDir("tokenizer_slow");  // vocab.json + merges.txt + added_tokens.json
  const fs::path configDir = makeTempDir("tokenizer_config");  // ... + tokenizer_config.json's added tokens
  for (const char* name : {"vocab.json", "merges.txt", "added_tokens.json"}) fs::copy(*dir_ / name, slowDir / name);
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json"}) {
    fs::copy(*dir_ / name, configDir / name);
  }
  const Tokenizer fromJson = Tokenizer::load(*dir_);
  const Tokenizer fromVocab = Tokenizer::load(slowDir);
  const Tokenizer fromConfig = Tokenizer::load(configDir);
  const Tokenizer builtIn = phi4Tokenizer();
  for (const Tokenizer* t : {&fromJson, &fromVocab, &fromConfig}) {
    EXPECT_EQ(t->vocabSize(), 100352);
    EXPECT_EQ(t->tokenId("<|im_sep|>"), 100266);
    EXPECT_EQ(t->pattern(), cl100kPattern());
  }
  size_t compared = 0;
  for (const auto& s : testing::tokenizerCorpus(3000, 99)) {
    for (bool special : {false, true}) {
      const std::vector<int32_t> expected = builtIn.encode(s.text, special);
      ASSERT_EQ(fromJson.encode(s.text, special), expected) << s.text;
      ASSERT_EQ(fromVocab.encode(s.text, special), expected) << s.text;
      ASSERT_EQ(fromConfig.encode(s.text, special), expected) << s.text;
      compared += expected.size();
    }
  }
  EXPECT_GT(compared, 100000u);
  fs::remove_all(slowDir);
  fs::remove_all(configDir);
}

// The converter's rule, written out naively: BPE the token's bytes with the ranks below its own.
std::vector<std::string> converterParts(const std::unordered_map<std::string, int>& ranks, const std::string& token,
                                        int maxRank) {
  std::vector<std::string> parts;
  for (char c : token) parts.emplace_back(1, c);
  while (true) {
    int best = -1;
    int bestRank = INT_MAX;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto it = ranks.find(parts[i] + parts[i + 1]);
      if (it != ranks.end() && it->second < bestRank) {
        bestRank = it->second;
        best = int(i);
      }
    }
    if (best < 0 || bestRank >= maxRank) return parts;
    parts[size_t(best)] += parts[size_t(best) + 1];
    parts.erase(parts.begin() + best + 1);
  }
}

TEST_F(WrittenTokenizerFiles, MergesFollowTheConverter) {
  const std::vector<std::string>& tokens = cl100kTokens();
  std::unordered_map<std::string, int> ranks;
  for (size_t rank = 0; rank < tokens.size(); ++rank) ranks.emplace(tokens[rank], int(rank));
  std::ifstream in(*dir_ / "merges.txt");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, "#version: 0.2");
  size_t rank = 0;
  size_t lines = 0;
  while (std::getline(in, line)) {
    while (tokens[rank].size() < 2) ++rank;  // single bytes have no merge
    const size_t space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    const std::string left = byteLevelToBytes(line.substr(0, space)).value();
    const std::string right = byteLevelToBytes(line.substr(space + 1)).value();
    ASSERT_EQ(left + right, tokens[rank]) << "merge " << lines;
    ASSERT_LT(ranks.at(left), int(rank));
    ASSERT_LT(ranks.at(right), int(rank));
    if (lines % 97 == 0) {
      EXPECT_EQ(converterParts(ranks, tokens[rank], int(rank)), (std::vector<std::string>{left, right})) << line;
    }
    ++rank;
    ++lines;
  }
  EXPECT_EQ(lines, 100000u);  // every token of two or more bytes
  EXPECT_EQ(readJson("tokenizer.json")["model"]["merges"].size(), 100000u);
}

TEST_F(WrittenTokenizerFiles, SayWhatPhi4sSay) {
  const json config = readJson("tokenizer_config.json");
  EXPECT_EQ(config["tokenizer_class"], "GPT2Tokenizer");
  EXPECT_EQ(config["bos_token"], "<|endoftext|>");
  EXPECT_EQ(config["eos_token"], "<|im_end|>");
  EXPECT_EQ(config["pad_token"], "<|dummy_85|>");
  EXPECT_EQ(config["model_max_length"], 16384);
  EXPECT_EQ(config["chat_template"],
            "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + "
            "message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' "
            "+ message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'assistant') %}{{'<|im_start|>assistant"
            "<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}{% if add_generation_prompt %}"
            "{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}");
  EXPECT_EQ(config["chat_template"], std::string(kPhi4ChatTemplate));
  ASSERT_EQ(config["added_tokens_decoder"].size(), 96u);
  EXPECT_EQ(config["added_tokens_decoder"]["100265"]["content"], "<|im_end|>");
  EXPECT_EQ(config["added_tokens_decoder"]["100349"]["content"], "<|dummy_85|>");
  EXPECT_EQ(config["added_tokens_decoder"]["100351"]["content"], "<|dummy_87|>");
  for (const auto& [id, token] : config["added_tokens_decoder"].items()) EXPECT_TRUE(token["special"].get<bool>());

  const json map = readJson("special_tokens_map.json");
  EXPECT_EQ(map["bos_token"]["content"], "<|endoftext|>");
  EXPECT_EQ(map["eos_token"]["content"], "<|im_end|>");
  EXPECT_EQ(map["pad_token"]["content"], "<|dummy_85|>");
  const json added = readJson("added_tokens.json");
  EXPECT_EQ(added.size(), 96u);
  EXPECT_EQ(added["<|im_start|>"], 100264);
  EXPECT_EQ(added["<|dummy_0|>"], 100256);

  const json vocab = readJson("vocab.json");
  EXPECT_EQ(vocab.size(), 100256u);
  EXPECT_EQ(vocab["hello"], 15339);
  EXPECT_EQ(vocab["\xC4\xA0hello"], 24748);  // "Ġhello"

  const json tokenizer = readJson("tokenizer.json");
  EXPECT_EQ(tokenizer["model"]["type"], "BPE");
  EXPECT_EQ(tokenizer["model"]["vocab"], vocab);
  EXPECT_EQ(tokenizer["added_tokens"].size(), 96u);
  EXPECT_EQ(tokenizer["added_tokens"][1]["content"], "<|endoftext|>");
  EXPECT_EQ(tokenizer["added_tokens"][1]["id"], 100257);
  const json& pre = tokenizer["pre_tokenizer"];
  EXPECT_EQ(pre["type"], "Sequence");
  EXPECT_EQ(pre["pretokenizers"][0]["type"], "Split");
  EXPECT_EQ(pre["pretokenizers"][0]["behavior"], "Isolated");
  EXPECT_EQ(pre["pretokenizers"][0]["pattern"]["Regex"], cl100kPattern());
  EXPECT_EQ(pre["pretokenizers"][1]["type"], "ByteLevel");
  EXPECT_EQ(pre["pretokenizers"][1]["add_prefix_space"], false);
  EXPECT_EQ(pre["pretokenizers"][1]["use_regex"], false);
  EXPECT_EQ(tokenizer["decoder"]["type"], "ByteLevel");
}

// A small byte-level tokenizer: the 256 bytes, "ab" (256) from the merge "a b", and the added token <|x|> (257).
json tinyTokenizerJson() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[bytesToByteLevel(std::string(1, char(b)))] = b;
  vocab["ab"] = 256;
  return {{"added_tokens", {{{"id", 257}, {"content", "<|x|>"}, {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", "\\s?\\p{L}+|\\s+|."}}}, {"behavior", "Isolated"}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b"}}}}};
}

class TokenizerLoad : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = makeTempDir("tokenizer_load"); }
  void TearDown() override { fs::remove_all(dir_); }

  void expectRefused(ErrorKind kind, const std::string& file, const std::string& mentions) {
    try {
      Tokenizer::load(dir_);
      FAIL() << "accepted; expected an error mentioning " << mentions;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(mentions), std::string::npos) << e.what();
    }
  }
  void expectJsonRefused(const json& tokenizer, ErrorKind kind, const std::string& mentions) {
    writeText(dir_ / "tokenizer.json", tokenizer.dump());
    expectRefused(kind, "tokenizer.json", mentions);
  }
  fs::path dir_;
};

TEST_F(TokenizerLoad, ReadsASmallTokenizerJson) {
  writeText(dir_ / "tokenizer.json", tinyTokenizerJson().dump());
  const Tokenizer tokenizer = Tokenizer::load(dir_);
  EXPECT_EQ(tokenizer.vocabSize(), 258);
  EXPECT_EQ(tokenizer.encode("ab ab"), (std::vector<int32_t>{256, ' ', 256}));  // pieces "ab", " ab"
  EXPECT_EQ(tokenizer.encode("<|x|>ab", true), (std::vector<int32_t>{257, 256}));
  EXPECT_EQ(tokenizer.encode("ba"), (std::vector<int32_t>{'b', 'a'}));
  EXPECT_EQ(tokenizer.pattern(), "\\s?\\p{L}+|\\s+|.");
}

TEST_F(TokenizerLoad, RefusesMalformedTokenizerJson) {
  expectRefused(ErrorKind::kInvalidCheckpoint, dir_.string(), "no tokenizer.json");
  writeText(dir_ / "tokenizer.json", "{\"model\": {");
  expectRefused(ErrorKind::kInvalidCheckpoint, "tokenizer.json", "malformed JSON");

  json j = tinyTokenizerJson();
  j["model"]["vocab"]["ab"] = "256";
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "number");
  j = tinyTokenizerJson();
  j["model"]["vocab"].erase("q");
  j["model"]["vocab"]["qq"] = int('q');
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "byte 113 has no token");
  j = tinyTokenizerJson();
  j["model"]["vocab"].erase("ab");
  j["model"]["merges"] = json::array();
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "no token has id 256");
  j = tinyTokenizerJson();
  j["model"]["vocab"]["zz"] = 5;
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "id 5 is given to two tokens");
  j = tinyTokenizerJson();
  j["model"]["vocab"]["\xE4\xB8\x80"] = 258;
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "not a byte-level BPE string");
  j = tinyTokenizerJson();
  j["model"]["vocab"]["big"] = int64_t(1) << 40;
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "outside");
  j = tinyTokenizerJson();
  j["model"]["merges"] = {"a b", "x yz"};
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "merge 1 ('x yz') names 'yz'");
  j["model"]["merges"] = {"a b c"};
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "not two tokens");
  j = tinyTokenizerJson();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}+";
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "does not compile");
  j = tinyTokenizerJson();
  j["normalizer"] = {{"type", "NFC"}};
  expectJsonRefused(j, ErrorKind::kUnsupported, "normalizer");
  j = tinyTokenizerJson();
  j["model"]["type"] = "WordPiece";
  expectJsonRefused(j, ErrorKind::kUnsupported, "WordPiece");
  j = tinyTokenizerJson();
  j.erase("model");
  expectJsonRefused(j, ErrorKind::kInvalidCheckpoint, "model");
}

TEST_F(TokenizerLoad, RefusesMalformedVocabAndMerges) {
  json vocab = tinyTokenizerJson()["model"]["vocab"];
  writeText(dir_ / "vocab.json", vocab.dump());
  writeText(dir_ / "merges.txt", "#version: 0.2\na b\n");
  writeText(dir_ / "added_tokens.json", "{\"<|x|>\": 257}");
  EXPECT_EQ(Tokenizer::load(dir_).encode("<|x|>ab", true), (std::vector<int32_t>{257, 256}));

  writeText(dir_ / "merges.txt", "#version: 0.2\na b\nb q\n");
  expectRefused(ErrorKind::kInvalidCheckpoint, "merges.txt", "merge 1 ('b q') names 'bq'");
  writeText(dir_ / "merges.txt", "a b\n");
  writeText(dir_ / "vocab.json", "[1, 2");
  expectRefused(ErrorKind::kInvalidCheckpoint, "vocab.json", "malformed JSON");
  writeText(dir_ / "vocab.json", "[1, 2]");
  expectRefused(ErrorKind::kInvalidCheckpoint, "vocab.json", "not a JSON object");
  writeText(dir_ / "vocab.json", vocab.dump());
  writeText(dir_ / "added_tokens.json", "{\"<|x|>\": \"many\"}");
  expectRefused(ErrorKind::kInvalidCheckpoint, "added_tokens.json", "number");
  fs::remove(dir_ / "added_tokens.json");
  writeText(dir_ / "tokenizer_config.json", R"({"added_tokens_decoder": {"seven": {"content": "<|x|>"}}})");
  expectRefused(ErrorKind::kInvalidCheckpoint, "tokenizer_config.json", "added_tokens_decoder");
}

}  // namespace
}  // namespace phx
