// Phi-4's tokenizer as Hugging Face ships it in microsoft/phi-4: tokenizer.json, tokenizer_config.json (with the
// chat template), vocab.json, merges.txt, special_tokens_map.json and added_tokens.json, written from the
// compiled-in cl100k_base ranks (model/cl100k_ranks.h) plus Phi-4's 96 added tokens.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace phx {

inline constexpr int32_t kPhi4FirstAddedId = 100256;  // == kCl100kRankCount: BPE ids are cl100k ranks
inline constexpr int32_t kPhi4AddedTokenCount = 96;
inline constexpr int32_t kPhi4VocabSize = kPhi4FirstAddedId + kPhi4AddedTokenCount;  // 100352

// Phi-4's added tokens: [i] has id kPhi4FirstAddedId + i. <|endoftext|> 100257, <|fim_prefix|> 100258,
// <|fim_middle|> 100259, <|fim_suffix|> 100260, <|im_start|> 100264, <|im_end|> 100265, <|im_sep|> 100266,
// <|endofprompt|> 100276, and <|dummy_N|> for the rest, numbered in id order (<|dummy_85|> = 100349 pads).
const std::vector<std::string>& phi4AddedTokens();

// The tokenizer those files describe, built straight from the compiled-in ranks (no files read).
Tokenizer phi4Tokenizer();

// One line of merges.txt: tokens `left` and `right` concatenate to token `merged`.
struct Merge {
  int32_t left;
  int32_t right;
  int32_t merged;
};

// As Hugging Face's tiktoken converter derives them: for each token of two or more bytes, in rank order, BPE its
// bytes using only ranks below its own until two parts remain; those two are its merge. tokens[rank] = bytes.
// Throws phx::Error (invalid checkpoint) if some token does not end in exactly two parts.
std::vector<Merge> deriveMerges(const std::vector<std::string>& tokens);

// Writes the six files into modelDir (which must exist); throws phx::Error (I/O) naming the file on failure.
void writeTokenizerFiles(const std::filesystem::path& modelDir);

}  // namespace phx
