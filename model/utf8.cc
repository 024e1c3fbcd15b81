#include "model/utf8.h"

#include <cstdint>
#include <cstring>

namespace phx {
namespace {

enum class SequenceStatus { kValid, kInvalid, kIncomplete };

struct Sequence {
  SequenceStatus status;
  size_t length;  // bytes of the sequence (kValid), of the maximal ill-formed subpart (kInvalid), or present so far
};

// Classifies the sequence that starts at text[pos] (text[pos] >= 0x80) following the WHATWG decoder: the lead byte
// sets how many continuation bytes follow and narrows the range of the first one (no overlongs, surrogates or code
// points above U+10FFFF).
Sequence classify(std::string_view text, size_t pos) {
  const auto lead = uint8_t(text[pos]);
  size_t needed = 0;
  uint8_t lower = 0x80;
  uint8_t upper = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 2;
    if (lead == 0xE0) lower = 0xA0;
    if (lead == 0xED) upper = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 3;
    if (lead == 0xF0) lower = 0x90;
    if (lead == 0xF4) upper = 0x8F;
  } else {
    return {SequenceStatus::kInvalid, 1};
  }
  for (size_t seen = 0; seen < needed; ++seen) {
    if (pos + 1 + seen >= text.size()) return {SequenceStatus::kIncomplete, 1 + seen};
    const auto byte = uint8_t(text[pos + 1 + seen]);
    if (byte < lower || byte > upper) return {SequenceStatus::kInvalid, 1 + seen};
    lower = 0x80;
    upper = 0xBF;
  }
  return {SequenceStatus::kValid, 1 + needed};
}

// Skips ASCII eight bytes at a time: most text is mostly ASCII.
size_t skipAscii(std::string_view text, size_t pos) {
  while (pos + 8 <= text.size()) {
    uint64_t word;
    std::memcpy(&word, text.data() + pos, 8);
    if (word & 0x8080808080808080ull) break;
    pos += 8;
  }
  while (pos < text.size() && uint8_t(text[pos]) < 0x80) ++pos;
  return pos;
}

}  // namespace

size_t validUtf8PrefixLength(std::string_view text) {
  size_t pos = 0;
  while (true) {
    pos = skipAscii(text, pos);
    if (pos == text.size()) return pos;
    const Sequence sequence = classify(text, pos);
    if (sequence.status != SequenceStatus::kValid) return pos;
    pos += sequence.length;
  }
}

size_t appendReplacingInvalidUtf8(std::string_view text, bool final, std::string& out) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t asciiEnd = skipAscii(text, pos);
    out.append(text.substr(pos, asciiEnd - pos));
    pos = asciiEnd;
    if (pos == text.size()) break;
    const Sequence sequence = classify(text, pos);
    switch (sequence.status) {
      case SequenceStatus::kValid:
        out.append(text.substr(pos, sequence.length));
        break;
      case SequenceStatus::kInvalid:
        out.append(kReplacementCharacter);
        break;
      case SequenceStatus::kIncomplete:
        if (!final) return pos;
        out.append(kReplacementCharacter);
        break;
    }
    pos += sequence.length;
  }
  return pos;
}

std::string replaceInvalidUtf8(std::string_view text) {
  const size_t valid = validUtf8PrefixLength(text);
  if (valid == text.size()) return std::string(text);
  std::string out(text.substr(0, valid));
  out.reserve(text.size() + 16);
  appendReplacingInvalidUtf8(text.substr(valid), true, out);
  return out;
}

void appendUtf8(char32_t codePoint, std::string& out) {
  const auto c = uint32_t(codePoint);
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

char32_t decodeUtf8At(std::string_view text, size_t& pos) {
  const auto lead = uint8_t(text[pos]);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  const size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  uint32_t c = lead & (0x7F >> length);
  for (size_t i = 1; i < length; ++i) c = (c << 6) | (uint8_t(text[pos + i]) & 0x3F);
  pos += length;
  return char32_t(c);
}

}  // namespace phx
