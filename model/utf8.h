// UTF-8 helpers for the tokenizer: validation, the WHATWG replacement of ill-formed bytes, and code point coding.
//
// Invalid input policy: the tokenizer encodes text, so bytes that are not UTF-8 are first replaced exactly as the
// WHATWG Encoding Standard's UTF-8 decoder (JavaScript's TextDecoder) does: each maximal subpart of an ill-formed
// sequence becomes one U+FFFD. "a\xF0\x9F\x98b" -> "a\uFFFDb" (one subpart), "\xC0\xAF" -> two U+FFFD (0xC0 can
// never start a sequence), "\xED\xA0\x80" (a surrogate) -> three U+FFFD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace phx {

inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// Length of the longest prefix of `text` that is well-formed UTF-8 (ends on a character boundary).
size_t validUtf8PrefixLength(std::string_view text);
inline bool isValidUtf8(std::string_view text) { return validUtf8PrefixLength(text) == text.size(); }

// `text` with every maximal ill-formed subpart replaced by U+FFFD (WHATWG); valid text comes back unchanged.
std::string replaceInvalidUtf8(std::string_view text);

// The streaming form (TextDecoder with {stream: true} until `final`): appends the decoded text to `out` and returns
// how many bytes were consumed. Unless `final`, a trailing sequence that is incomplete but could still become valid
// is left unconsumed for the caller to prepend to the next chunk; when `final` it becomes one U+FFFD.
size_t appendReplacingInvalidUtf8(std::string_view text, bool final, std::string& out);

void appendUtf8(char32_t codePoint, std::string& out);

// Decodes the code point starting at text[pos] and advances pos. Precondition: `text` is well-formed from pos.
char32_t decodeUtf8At(std::string_view text, size_t& pos);

}  // namespace phx
