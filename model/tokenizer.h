// Phi-4's tokenizer: byte-level BPE that gives exactly tiktoken cl100k_base's ids, plus Phi-4's 96 added tokens.
//
// encode: text -> ids. Ill-formed UTF-8 is first replaced as TextDecoder does (model/utf8.h: each maximal invalid
// subpart -> U+FFFD), then split by the pre-tokenizer pattern, and each piece is byte-pair encoded (model/bpe.h).
// Added tokens such as <|im_start|> are recognised only when the caller allows it (the chat template's output);
// otherwise their text is encoded as plain text like any other. decode is the exact inverse on well-formed text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace phx {

// What a tokenizer is made of, whichever files it came from.
struct TokenizerVocab {
  std::vector<std::string> tokens;  // id -> the token's bytes (an added token: its text)
  std::vector<bool> added;          // id -> an added (special) token rather than a BPE token
  std::string pattern;              // the pre-tokenizer's regular expression
  std::string source;               // the file(s) it came from, for error messages
};

class Tokenizer {
 public:
  // Validates (every byte value is a token, no token twice, no id without a token, the pattern compiles); errors
  // are phx::Error (invalid checkpoint) naming vocab.source.
  explicit Tokenizer(TokenizerVocab vocab);

  // tokenizer.json, else vocab.json + merges.txt (+ added_tokens.json or tokenizer_config.json's
  // added_tokens_decoder); errors name the file and what is wrong. Defined in model/tokenizer_load.cc.
  static Tokenizer load(const std::filesystem::path& modelDir);

  // Special tokens are recognised only when allowed; otherwise their text is plain text.
  std::vector<int32_t> encode(std::string_view text, bool allowSpecial = false) const;
  // The tokens' bytes, concatenated (exact: no replacement of partial characters). Throws phx::Error (invalid
  // argument) for an id out of range.
  std::string decode(std::span<const int32_t> ids) const;
  std::string_view tokenBytes(int32_t id) const;

  // The id of an added token such as "<|im_end|>"; nullopt for anything else.
  std::optional<int32_t> tokenId(std::string_view specialToken) const;
  bool isSpecial(int32_t id) const;
  int64_t vocabSize() const;
  const std::string& pattern() const;

 private:
  struct Data;
  struct PieceCache;
  void encodeOrdinary(std::string_view text, std::vector<int32_t>& out) const;
  void encodePiece(std::string_view piece, std::vector<int32_t>& out) const;
  // The earliest added token in text[from..]: its start, or npos; `id` receives its id.
  size_t findSpecial(std::string_view text, size_t from, int32_t& id, size_t& length) const;

  std::shared_ptr<const Data> data_;
  std::shared_ptr<PieceCache> cache_;  // shared by copies; internally locked
};

// Streaming decode: returns text only up to the last complete UTF-8 character, holding back a partial one until the
// tokens that complete it arrive. Ill-formed bytes become U+FFFD as in replaceInvalidUtf8, so the concatenation of
// every push() and finish() equals replaceInvalidUtf8(tokenizer.decode(all ids)).
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer);  // which must outlive the decoder
  std::string push(int32_t id);  // the newly complete text
  std::string finish();          // whatever is left (an incomplete character as U+FFFD); the decoder can be reused

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;  // bytes of an incomplete character
};

}  // namespace phx
