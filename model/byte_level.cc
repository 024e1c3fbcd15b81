#include "model/byte_level.h"

#include <array>

#include "model/utf8.h"

namespace phx {
namespace {

bool isPrintableLatin1(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

struct ByteLevelTables {
  std::array<char32_t, 256> toUnicode{};
  std::array<int16_t, 324> toByte{};  // code point -> byte, -1 where none; the alphabet ends at U+0143
};

ByteLevelTables makeTables() {
  ByteLevelTables tables;
  tables.toByte.fill(-1);
  int next = 256;
  for (int byte = 0; byte < 256; ++byte) {
    tables.toUnicode[byte] = char32_t(isPrintableLatin1(byte) ? byte : next++);
    tables.toByte[tables.toUnicode[byte]] = int16_t(byte);
  }
  return tables;
}

const ByteLevelTables& tables() {
  static const ByteLevelTables kTables = makeTables();
  return kTables;
}

}  // namespace

char32_t byteToByteLevel(uint8_t byte) { return tables().toUnicode[byte]; }

std::string bytesToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char byte : bytes) appendUtf8(tables().toUnicode[uint8_t(byte)], out);
  return out;
}

std::optional<std::string> byteLevelToBytes(std::string_view text) {
  if (!isValidUtf8(text)) return std::nullopt;
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const char32_t c = decodeUtf8At(text, pos);
    if (c >= tables().toByte.size() || tables().toByte[c] < 0) return std::nullopt;
    out += char(tables().toByte[c]);
  }
  return out;
}

}  // namespace phx
