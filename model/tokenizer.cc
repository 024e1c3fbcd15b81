#include "model/tokenizer.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <unordered_map>

#include "common/error.h"
#include "model/bpe.h"
#include "model/pretokenizer.h"
#include "model/utf8.h"

namespace phx {

struct Tokenizer::Data {
  std::vector<std::string> tokens;
  std::vector<bool> added;
  RankTable ranks;  // BPE tokens only
  Pretokenizer pretokenizer;
  std::unordered_map<std::string, int32_t> addedIds;
  std::vector<std::pair<std::string_view, int32_t>> addedLongestFirst;  // views into tokens
  std::array<bool, 256> addedFirstByte{};
};

// Pieces that are no single token, with their BPE result: words and indentation runs repeat, and a hash lookup is
// far cheaper than merging again (a 200-byte run of spaces takes hundreds of rank lookups). Bounded: cleared when
// its keys and ids pass kMaxBytes.
struct Tokenizer::PieceCache {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>()(text); }
  };
  static constexpr size_t kMaxBytes = 16 << 20;
  static constexpr size_t kMaxPieceBytes = 256;

  std::mutex mutex;
  size_t bytes = 0;
  std::unordered_map<std::string, std::vector<int32_t>, Hash, std::equal_to<>> entries;
};

namespace {

void validateVocab(const TokenizerVocab& vocab) {
  if (vocab.tokens.empty()) throwInvalidCheckpoint(vocab.source + ": the vocabulary is empty");
  if (vocab.added.size() != vocab.tokens.size()) {
    throwInvalidCheckpoint(vocab.source + ": " + std::to_string(vocab.added.size()) + " added flags for " +
                           std::to_string(vocab.tokens.size()) + " tokens");
  }
  if (vocab.tokens.size() > size_t(INT32_MAX)) throwInvalidCheckpoint(vocab.source + ": vocabulary too large");
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.tokens[id].empty()) throwInvalidCheckpoint(vocab.source + ": no token has id " + std::to_string(id));
  }
}

}  // namespace

Tokenizer::Tokenizer(TokenizerVocab vocab) {
  validateVocab(vocab);
  const size_t count = vocab.tokens.size();
  auto data = std::make_shared<Data>(Data{std::move(vocab.tokens), std::move(vocab.added), RankTable(count),
                                          Pretokenizer(vocab.pattern, vocab.source), {}, {}, {}});
  for (size_t id = 0; id < data->tokens.size(); ++id) {
    const std::string& token = data->tokens[id];
    if (data->added[id]) {
      if (!data->addedIds.emplace(token, int32_t(id)).second) {
        throwInvalidCheckpoint(vocab.source + ": added token '" + token + "' appears twice (id " +
                               std::to_string(id) + " and " + std::to_string(data->addedIds.at(token)) + ")");
      }
      data->addedLongestFirst.emplace_back(token, int32_t(id));
      data->addedFirstByte[uint8_t(token[0])] = true;
    } else if (!data->ranks.insert(token, int32_t(id))) {
      throwInvalidCheckpoint(vocab.source + ": token id " + std::to_string(id) + " repeats the bytes of id " +
                             std::to_string(data->ranks.find(token)));
    }
  }
  for (int byte = 0; byte < 256; ++byte) {
    if (data->ranks.find(std::string(1, char(byte))) == RankTable::kAbsent) {
      throwInvalidCheckpoint(vocab.source + ": byte " + std::to_string(byte) +
                             " has no token, so some text could not be encoded");
    }
  }
  std::stable_sort(data->addedLongestFirst.begin(), data->addedLongestFirst.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  data_ = std::move(data);
  cache_ = std::make_shared<PieceCache>();
}

int64_t Tokenizer::vocabSize() const { return int64_t(data_->tokens.size()); }

const std::string& Tokenizer::pattern() const { return data_->pretokenizer.pattern(); }

bool Tokenizer::isSpecial(int32_t id) const {
  return id >= 0 && size_t(id) < data_->tokens.size() && data_->added[size_t(id)];
}

std::optional<int32_t> Tokenizer::tokenId(std::string_view specialToken) const {
  const auto it = data_->addedIds.find(std::string(specialToken));
  if (it == data_->addedIds.end()) return std::nullopt;
  return it->second;
}

std::string_view Tokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || size_t(id) >= data_->tokens.size()) {
    throwInvalidArgument("token id " + std::to_string(id) + " is out of range [0, " +
                         std::to_string(data_->tokens.size()) + ")");
  }
  return data_->tokens[size_t(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  size_t total = 0;
  for (int32_t id : ids) total += tokenBytes(id).size();
  std::string text;
  text.reserve(total);
  for (int32_t id : ids) text.append(data_->tokens[size_t(id)]);
  return text;
}

void Tokenizer::encodePiece(std::string_view piece, std::vector<int32_t>& out) const {
  const int32_t whole = data_->ranks.find(piece);
  if (whole != RankTable::kAbsent) {
    out.push_back(whole);
    return;
  }
  if (piece.size() > PieceCache::kMaxPieceBytes) {
    bytePairEncode(piece, data_->ranks, out);
    return;
  }
  {
    std::lock_guard lock(cache_->mutex);
    const auto it = cache_->entries.find(piece);
    if (it != cache_->entries.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  bytePairEncode(piece, data_->ranks, out);
  std::lock_guard lock(cache_->mutex);
  if (cache_->bytes > PieceCache::kMaxBytes) {
    cache_->entries.clear();
    cache_->bytes = 0;
  }
  const auto [it, inserted] =
      cache_->entries.emplace(std::string(piece), std::vector<int32_t>(out.begin() + std::ptrdiff_t(first), out.end()));
  if (inserted) cache_->bytes += piece.size() + it->second.size() * sizeof(int32_t) + 64;  // + node overhead
}

void Tokenizer::encodeOrdinary(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  data_->pretokenizer.split(text, pieces);
  for (std::string_view piece : pieces) encodePiece(piece, out);
}

size_t Tokenizer::findSpecial(std::string_view text, size_t from, int32_t& id, size_t& length) const {
  for (size_t pos = from; pos < text.size(); ++pos) {
    if (!data_->addedFirstByte[uint8_t(text[pos])]) continue;
    for (const auto& [token, tokenId] : data_->addedLongestFirst) {
      if (text.compare(pos, token.size(), token) == 0) {
        id = tokenId;
        length = token.size();
        return pos;
      }
    }
  }
  return std::string_view::npos;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool allowSpecial) const {
  std::string replaced;
  if (!isValidUtf8(text)) {
    replaced = replaceInvalidUtf8(text);
    text = replaced;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  size_t pos = 0;
  while (allowSpecial && pos < text.size()) {
    int32_t id = 0;
    size_t length = 0;
    const size_t start = findSpecial(text, pos, id, length);
    if (start == std::string_view::npos) break;
    encodeOrdinary(text.substr(pos, start - pos), ids);
    ids.push_back(id);
    pos = start + length;
  }
  encodeOrdinary(text.substr(pos), ids);
  return ids;
}

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

std::string IncrementalDecoder::push(int32_t id) {
  pending_.append(tokenizer_->tokenBytes(id));
  std::string text;
  const size_t consumed = appendReplacingInvalidUtf8(pending_, false, text);
  pending_.erase(0, consumed);
  return text;
}

std::string IncrementalDecoder::finish() {
  std::string text;
  appendReplacingInvalidUtf8(pending_, true, text);
  pending_.clear();
  return text;
}

}  // namespace phx
