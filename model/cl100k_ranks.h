// The real cl100k_base BPE ranks (tiktoken's encoding, whose 100,256 ranks are Phi-4's first 100,256 token ids),
// compiled into the binary at build time from the npm tiktoken package's encoders/cl100k_base.json, so that
// `phalanx make-model` can write Phi-4's tokenizer files anywhere, with no download.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace phx {

inline constexpr int32_t kCl100kRankCount = 100256;

// tokens[rank]: the token's bytes; parsed once from the embedded JSON on first use (~10 ms).
const std::vector<std::string>& cl100kTokens();

// The pre-tokenizer pattern (tiktoken's pat_str) from the same file.
const std::string& cl100kPattern();

// The embedded file as compiled in: {"pat_str": ..., "special_tokens": {...}, "bpe_ranks": "..."}.
std::string_view cl100kEncoderJson();

}  // namespace phx
