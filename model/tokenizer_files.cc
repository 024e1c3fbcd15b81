#include "model/tokenizer_files.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/bpe.h"
#include "model/byte_level.h"
#include "model/chat_template.h"
#include "model/cl100k_ranks.h"

namespace phx {
namespace {

namespace fs = std::filesystem;
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kBosToken = "<|endoftext|>";
constexpr const char* kEosToken = "<|im_end|>";
constexpr const char* kPadToken = "<|dummy_85|>";
constexpr const char* kUnkToken = "<|endoftext|>";
constexpr int kModelMaxLength = 16384;

std::vector<std::string> makePhi4AddedTokens() {
  const std::pair<int32_t, const char*> named[] = {
      {100257, "<|endoftext|>"}, {100258, "<|fim_prefix|>"}, {100259, "<|fim_middle|>"}, {100260, "<|fim_suffix|>"},
      {100264, "<|im_start|>"},  {100265, "<|im_end|>"},     {100266, "<|im_sep|>"},     {100276, "<|endofprompt|>"},
  };
  std::vector<std::string> tokens(kPhi4AddedTokenCount);
  for (const auto& [id, text] : named) tokens[size_t(id - kPhi4FirstAddedId)] = text;
  int dummy = 0;
  for (std::string& token : tokens) {
    if (token.empty()) token = "<|dummy_" + std::to_string(dummy++) + "|>";
  }
  return tokens;
}

const std::vector<Merge>& phi4Merges() {
  static const std::vector<Merge> kMerges = deriveMerges(cl100kTokens());
  return kMerges;
}

std::string quoted(const std::string& text) { return nlohmann::json(text).dump(); }

std::string mergeLine(const Merge& merge, const std::vector<std::string>& tokens) {
  return bytesToByteLevel(tokens[size_t(merge.left)]) + " " + bytesToByteLevel(tokens[size_t(merge.right)]);
}

void writeFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throwIoError("cannot create " + path.string());
  out.write(content.data(), std::streamsize(content.size()));
  out.close();
  if (!out) throwIoError("cannot write " + path.string());
}

OrderedJson addedTokenJson(int32_t id, const std::string& content) {
  return {{"id", id},         {"content", content},    {"single_word", false}, {"lstrip", false},
          {"rstrip", false},  {"normalized", false},   {"special", true}};
}

// tokenizer.json as the tokenizers library writes it (two-space indent, vocab in id order). The vocabulary and
// merges are spliced in as text: 100k entries are too many for an insertion-ordered JSON object.
std::string tokenizerJson() {
  const std::vector<std::string>& tokens = cl100kTokens();
  const std::vector<std::string>& added = phi4AddedTokens();
  OrderedJson root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = OrderedJson::array();
  for (size_t i = 0; i < added.size(); ++i) {
    root["added_tokens"].push_back(addedTokenJson(kPhi4FirstAddedId + int32_t(i), added[i]));
  }
  root["normalizer"] = nullptr;
  root["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", cl100kPattern()}}}, {"behavior", "Isolated"}, {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  root["post_processor"] = nullptr;
  root["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  root["model"] = {{"type", "BPE"},
                   {"dropout", nullptr},
                   {"unk_token", nullptr},
                   {"continuing_subword_prefix", ""},
                   {"end_of_word_suffix", ""},
                   {"fuse_unk", false},
                   {"byte_fallback", false},
                   {"ignore_merges", false},
                   {"vocab", "@VOCAB@"},     // spliced in below
                   {"merges", "@MERGES@"}};  // spliced in below
  std::string vocab = "{";
  for (size_t rank = 0; rank < tokens.size(); ++rank) {
    vocab += (rank ? ",\n      " : "\n      ") + quoted(bytesToByteLevel(tokens[rank])) + ": " + std::to_string(rank);
  }
  vocab += "\n    }";
  std::string merges = "[";
  for (const Merge& merge : phi4Merges()) {
    merges += (merges.size() > 1 ? ",\n      " : "\n      ") + quoted(mergeLine(merge, tokens));
  }
  merges += "\n    ]";
  std::string text = root.dump(2);
  text.replace(text.find("\"@VOCAB@\""), 9, vocab);
  text.replace(text.find("\"@MERGES@\""), 10, merges);
  return text + "\n";
}

OrderedJson tokenizerConfigJson() {
  const std::vector<std::string>& added = phi4AddedTokens();
  OrderedJson decoder = OrderedJson::object();
  for (size_t i = 0; i < added.size(); ++i) {
    decoder[std::to_string(kPhi4FirstAddedId + int32_t(i))] = {
        {"content", added[i]}, {"lstrip", false},      {"normalized", false},
        {"rstrip", false},     {"single_word", false}, {"special", true}};
  }
  return {{"add_prefix_space", false},
          {"added_tokens_decoder", decoder},
          {"bos_token", kBosToken},
          {"chat_template", std::string(kPhi4ChatTemplate)},
          {"clean_up_tokenization_spaces", false},
          {"eos_token", kEosToken},
          {"extra_special_tokens", OrderedJson::object()},
          {"model_max_length", kModelMaxLength},
          {"pad_token", kPadToken},
          {"padding_side", "left"},
          {"tokenizer_class", "GPT2Tokenizer"},
          {"unk_token", kUnkToken}};
}

OrderedJson specialTokensMapJson() {
  auto entry = [](const char* content) {
    return OrderedJson{{"content", content},  {"lstrip", false},     {"normalized", false},
                       {"rstrip", false},     {"single_word", false}};
  };
  return {{"bos_token", entry(kBosToken)},
          {"eos_token", entry(kEosToken)},
          {"pad_token", entry(kPadToken)},
          {"unk_token", entry(kUnkToken)}};
}

}  // namespace

const std::vector<std::string>& phi4AddedTokens() {
  static const std::vector<std::string> kTokens = makePhi4AddedTokens();
  return kTokens;
}

Tokenizer phi4Tokenizer() {
  static const Tokenizer kTokenizer = [] {
    TokenizerVocab vocab{cl100kTokens(), std::vector<bool>(kCl100kRankCount, false), cl100kPattern(),
                         "the compiled-in cl100k_base ranks"};
    for (const std::string& token : phi4AddedTokens()) {
      vocab.tokens.push_back(token);
      vocab.added.push_back(true);
    }
    return Tokenizer(std::move(vocab));
  }();
  return kTokenizer;
}

std::vector<Merge> deriveMerges(const std::vector<std::string>& tokens) {
  RankTable ranks(tokens.size());
  for (size_t rank = 0; rank < tokens.size(); ++rank) ranks.insert(tokens[rank], int32_t(rank));
  std::vector<Merge> merges;
  merges.reserve(tokens.size());
  std::vector<int32_t> parts;
  for (size_t rank = 0; rank < tokens.size(); ++rank) {
    if (tokens[rank].size() < 2) continue;
    parts.clear();
    detail::bytePairEncodeLinear(tokens[rank], ranks, parts, int32_t(rank));
    if (parts.size() != 2) {
      throwInvalidCheckpoint("token " + std::to_string(rank) + " ('" + bytesToByteLevel(tokens[rank]) +
                             "') BPEs into " + std::to_string(parts.size()) + " parts with the ranks below it, "
                             "expected 2");
    }
    merges.push_back({parts[0], parts[1], int32_t(rank)});
  }
  return merges;
}

void writeTokenizerFiles(const fs::path& modelDir) {
  const std::vector<std::string>& tokens = cl100kTokens();
  writeFile(modelDir / "tokenizer.json", tokenizerJson());
  writeFile(modelDir / "tokenizer_config.json", tokenizerConfigJson().dump(2) + "\n");
  writeFile(modelDir / "special_tokens_map.json", specialTokensMapJson().dump(2) + "\n");

  nlohmann::json vocab = nlohmann::json::object();  // sorted by key, as GPT2Tokenizer.save_vocabulary writes it
  for (size_t rank = 0; rank < tokens.size(); ++rank) vocab[bytesToByteLevel(tokens[rank])] = rank;
  writeFile(modelDir / "vocab.json", vocab.dump(2) + "\n");

  std::string merges = "#version: 0.2\n";
  for (const Merge& merge : phi4Merges()) merges += mergeLine(merge, tokens) + "\n";
  writeFile(modelDir / "merges.txt", merges);

  nlohmann::json added = nlohmann::json::object();
  for (size_t i = 0; i < phi4AddedTokens().size(); ++i) added[phi4AddedTokens()[i]] = kPhi4FirstAddedId + int32_t(i);
  writeFile(modelDir / "added_tokens.json", added.dump(2) + "\n");
}

}  // namespace phx
