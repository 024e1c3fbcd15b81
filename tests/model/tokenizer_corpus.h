// A deterministic corpus for checking the tokenizer against tiktoken: varied strings of English, code, numbers,
// whitespace runs, newlines, CJK, emoji, combining marks, ill-formed UTF-8, very long words, contractions in mixed
// case and special-token look-alikes, alone and mixed. The same seed gives the same strings on every machine (its
// own PRNG; no std distributions, whose output is implementation-defined).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace phx::testing {

enum class CorpusKind {
  kEnglish,
  kCode,
  kNumbers,
  kWhitespace,
  kCjk,
  kEmoji,
  kCombiningMarks,
  kInvalidUtf8,
  kLongWords,
  kSpecialLookalikes,
  kMixedScripts,
  kMixed,
};
inline constexpr int kCorpusKindCount = 12;

struct CorpusString {
  CorpusKind kind;
  std::string text;
};

// `count` strings cycling through the kinds.
std::vector<CorpusString> tokenizerCorpus(size_t count, uint64_t seed);

}  // namespace phx::testing
