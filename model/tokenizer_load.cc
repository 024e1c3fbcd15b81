// Tokenizer::load: reads a checkpoint's Hugging Face tokenizer files. BPE merge priority is the merged token's id
// (tiktoken's rank), which is how byte-level BPE files converted from tiktoken, Phi-4's included, are ordered;
// merges.txt and tokenizer.json's merges are checked against the vocabulary but not otherwise needed. So the ids are
// tiktoken's exactly. (Hugging Face's merge-list BPE can differ from tiktoken on rare strings: transformers.js
// loading these same files disagreed with tiktoken on 41 of the 12,000 oracle strings, all odd whitespace runs.)
#include <fstream>
#include <sstream>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "model/byte_level.h"
#include "model/cl100k_ranks.h"
#include "model/tokenizer.h"

namespace phx {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kMaxTokenId = 1 << 24;

std::string readText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throwIoError("cannot open " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throwIoError("cannot read " + path.string());
  return text.str();
}

json readJson(const fs::path& path) {
  const std::string text = readText(path);
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throwInvalidCheckpoint(path.string() + ": malformed JSON: " + e.what());
  }
}

// Collects id -> token from the vocabulary and the added tokens, refusing contradictions.
class VocabBuilder {
 public:
  explicit VocabBuilder(std::string source) { vocab_.source = std::move(source); }

  void set(int64_t id, std::string bytes, bool added, const std::string& what) {
    if (id < 0 || id >= kMaxTokenId) {
      throwInvalidCheckpoint(vocab_.source + ": " + what + " has id " + std::to_string(id) + ", outside [0, " +
                             std::to_string(kMaxTokenId) + ")");
    }
    if (bytes.empty()) throwInvalidCheckpoint(vocab_.source + ": " + what + " is empty");
    if (size_t(id) >= vocab_.tokens.size()) {
      vocab_.tokens.resize(size_t(id) + 1);
      vocab_.added.resize(size_t(id) + 1, false);
    }
    std::string& slot = vocab_.tokens[size_t(id)];
    if (!slot.empty() && slot != bytes) {
      throwInvalidCheckpoint(vocab_.source + ": id " + std::to_string(id) + " is given to two tokens ('" + slot +
                             "' and " + what + ")");
    }
    slot = std::move(bytes);
    if (added) vocab_.added[size_t(id)] = true;
  }

  TokenizerVocab finish(std::string pattern) && {
    vocab_.pattern = std::move(pattern);
    return std::move(vocab_);
  }

 private:
  TokenizerVocab vocab_;
};

// Adds a byte-level vocabulary ({"Ġhello": 24748, ...}); returns the set of its strings for checking merges.
std::unordered_set<std::string> addByteLevelVocab(const json& vocab, VocabBuilder& builder, const std::string& file) {
  if (!vocab.is_object()) throwInvalidCheckpoint(file + ": the vocabulary is not a JSON object");
  std::unordered_set<std::string> strings;
  strings.reserve(vocab.size());
  for (const auto& [key, value] : vocab.items()) {
    std::optional<std::string> bytes = byteLevelToBytes(key);
    if (!bytes) throwInvalidCheckpoint(file + ": vocabulary entry '" + key + "' is not a byte-level BPE string");
    builder.set(value.get<int64_t>(), std::move(*bytes), false, "vocabulary entry '" + key + "'");
    strings.insert(key);
  }
  return strings;
}

// Each merge "A B" must join two vocabulary strings into a third.
void checkMerge(std::string_view left, std::string_view right, size_t index,
                const std::unordered_set<std::string>& vocab, const std::string& file) {
  const std::string merged = std::string(left) + std::string(right);
  for (const std::string& part : {std::string(left), std::string(right), merged}) {
    if (part.empty() || !vocab.contains(part)) {
      throwInvalidCheckpoint(file + ": merge " + std::to_string(index) + " ('" + std::string(left) + " " +
                             std::string(right) + "') names '" + part + "', which is not in the vocabulary");
    }
  }
}

void checkMergeLine(std::string_view line, size_t index, const std::unordered_set<std::string>& vocab,
                    const std::string& file) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
    throwInvalidCheckpoint(file + ": merge " + std::to_string(index) + " ('" + std::string(line) +
                           "') is not two tokens separated by one space");
  }
  checkMerge(line.substr(0, space), line.substr(space + 1), index, vocab, file);
}

// The regular expression of a Split pre-tokenizer, alone or inside a Sequence; nullopt when there is none.
std::optional<std::string> splitPattern(const json& pre, const std::string& file) {
  if (pre.is_null()) return std::nullopt;
  const std::string type = pre.value("type", "");
  if (type == "Sequence") {
    std::optional<std::string> pattern;
    for (const json& inner : pre.at("pretokenizers")) {
      if (auto found = splitPattern(inner, file)) pattern = std::move(found);
    }
    return pattern;
  }
  if (type == "Split") {
    const json& pattern = pre.at("pattern");
    if (!pattern.contains("Regex")) throwUnsupported(file + ": a Split pre-tokenizer without a Regex pattern");
    return pattern.at("Regex").get<std::string>();
  }
  if (type == "ByteLevel") {
    if (pre.value("use_regex", false)) {
      throwUnsupported(file + ": a ByteLevel pre-tokenizer with use_regex (GPT-2's pattern) is not supported");
    }
    return std::nullopt;
  }
  throwUnsupported(file + ": pre-tokenizer type '" + type + "' is not supported");
}

TokenizerVocab loadTokenizerJson(const fs::path& path) {
  const std::string file = path.string();
  const json root = readJson(path);
  VocabBuilder builder(file);
  if (root.contains("normalizer") && !root.at("normalizer").is_null()) {
    throwUnsupported(file + ": a normalizer is not supported (Phi-4 has none)");
  }
  const json& model = root.at("model");
  if (model.value("type", "BPE") != "BPE") throwUnsupported(file + ": model type '" + model.value("type", "") + "'");
  for (const json& token : root.value("added_tokens", json::array())) {
    const std::string content = token.at("content").get<std::string>();
    builder.set(token.at("id").get<int64_t>(), content, true, "added token '" + content + "'");
  }
  const std::unordered_set<std::string> vocab = addByteLevelVocab(model.at("vocab"), builder, file);
  size_t index = 0;
  for (const json& merge : model.value("merges", json::array())) {
    if (merge.is_array() && merge.size() == 2) {
      checkMerge(merge[0].get<std::string>(), merge[1].get<std::string>(), index++, vocab, file);
    } else {
      checkMergeLine(merge.get<std::string>(), index++, vocab, file);
    }
  }
  std::optional<std::string> pattern = splitPattern(root.value("pre_tokenizer", json()), file);
  return std::move(builder).finish(pattern ? *pattern : cl100kPattern());
}

// vocab.json + merges.txt, with the added tokens from added_tokens.json or else tokenizer_config.json. GPT2Tokenizer
// files name no pattern: cl100k's is used, as for Phi-4's tokenizer.json.
TokenizerVocab loadVocabAndMerges(const fs::path& dir) {
  const fs::path vocabPath = dir / "vocab.json";
  const fs::path mergesPath = dir / "merges.txt";
  VocabBuilder builder(vocabPath.string() + " + " + mergesPath.string());
  if (fs::exists(dir / "added_tokens.json")) {
    const fs::path path = dir / "added_tokens.json";
    try {
      const json added = readJson(path);
      for (const auto& [content, id] : added.items()) {
        builder.set(id.get<int64_t>(), content, true, "added token '" + content + "'");
      }
    } catch (const json::exception& e) {
      throwInvalidCheckpoint(path.string() + ": " + e.what());
    }
  } else if (fs::exists(dir / "tokenizer_config.json")) {
    const fs::path path = dir / "tokenizer_config.json";
    try {
      const json decoder = readJson(path).value("added_tokens_decoder", json::object());
      for (const auto& [id, token] : decoder.items()) {
        const std::string content = token.at("content").get<std::string>();
        builder.set(std::stoll(id), content, true, "added token '" + content + "'");
      }
    } catch (const json::exception& e) {
      throwInvalidCheckpoint(path.string() + ": " + e.what());
    } catch (const std::logic_error& e) {  // std::stoll: an id that is not a number
      throwInvalidCheckpoint(path.string() + ": added_tokens_decoder: " + e.what());
    }
  }
  std::unordered_set<std::string> vocab;
  try {
    vocab = addByteLevelVocab(readJson(vocabPath), builder, vocabPath.string());
  } catch (const json::exception& e) {
    throwInvalidCheckpoint(vocabPath.string() + ": " + e.what());
  }
  std::istringstream merges(readText(mergesPath));
  size_t index = 0;
  for (std::string line; std::getline(merges, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.starts_with("#version")) continue;
    checkMergeLine(line, index++, vocab, mergesPath.string());
  }
  return std::move(builder).finish(cl100kPattern());
}

}  // namespace

Tokenizer Tokenizer::load(const fs::path& modelDir) {
  const fs::path tokenizerJson = modelDir / "tokenizer.json";
  if (fs::exists(tokenizerJson)) {
    TokenizerVocab vocab;
    try {
      vocab = loadTokenizerJson(tokenizerJson);
    } catch (const json::exception& e) {
      throwInvalidCheckpoint(tokenizerJson.string() + ": " + e.what());
    }
    return Tokenizer(std::move(vocab));
  }
  if (fs::exists(modelDir / "vocab.json") && fs::exists(modelDir / "merges.txt")) {
    return Tokenizer(loadVocabAndMerges(modelDir));
  }
  throwInvalidCheckpoint(modelDir.string() + ": no tokenizer.json, and no vocab.json + merges.txt");
}

}  // namespace phx
