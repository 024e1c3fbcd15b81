// GPT-2's byte-level alphabet: the reversible map from the 256 byte values to 256 printable Unicode characters that
// Hugging Face's ByteLevel pre-tokenizer and decoder use, so that vocab.json, merges.txt and tokenizer.json can hold
// arbitrary bytes as JSON strings. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the
// other 68 bytes map, in byte order, to U+0100.. (space 0x20 -> 'Ġ' U+0120, newline 0x0A -> 'Ċ' U+010A).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phx {

char32_t byteToByteLevel(uint8_t byte);

// Raw bytes -> the byte-level string (UTF-8), e.g. " hello" -> "Ġhello".
std::string bytesToByteLevel(std::string_view bytes);

// The inverse; nullopt when `text` is not UTF-8 or holds a character outside the 256-character alphabet.
std::optional<std::string> byteLevelToBytes(std::string_view text);

}  // namespace phx
