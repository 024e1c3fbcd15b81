#include "model/cl100k_ranks.h"

#include <array>

#include <nlohmann/json.hpp>

#include "common/error.h"

// PHX_CL100K_JSON (the absolute path of the npm package's cl100k_base.json) is set for this file alone by
// model/CMakeLists.txt, which also makes this object depend on that file.
asm(".pushsection .rodata.phx_cl100k, \"a\"\n"
    ".global phx_cl100k_json_begin\n"
    ".hidden phx_cl100k_json_begin\n"
    ".global phx_cl100k_json_end\n"
    ".hidden phx_cl100k_json_end\n"
    "phx_cl100k_json_begin:\n"
    ".incbin \"" PHX_CL100K_JSON "\"\n"
    "phx_cl100k_json_end:\n"
    ".byte 0\n"
    ".popsection\n");

extern "C" const char phx_cl100k_json_begin[];
extern "C" const char phx_cl100k_json_end[];

namespace phx {
namespace {

struct Cl100k {
  std::vector<std::string> tokens;
  std::string pattern;
};

std::string decodeBase64(std::string_view text) {
  static const std::array<int8_t, 256> kValues = [] {
    std::array<int8_t, 256> values{};
    values.fill(-1);
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < alphabet.size(); ++i) values[uint8_t(alphabet[i])] = int8_t(i);
    return values;
  }();
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    const int value = kValues[uint8_t(c)];
    if (value < 0) {
      throw Error(ErrorKind::kInternal, "embedded cl100k_base.json: bad base64 token '" + std::string(text) + "'");
    }
    bits = (bits << 6) | uint32_t(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += char((bits >> count) & 0xFF);
    }
  }
  return out;
}

// bpe_ranks is tiktoken's compact form: lines "LABEL OFFSET tok tok ...", base64 tokens taking consecutive ranks
// from OFFSET (one line for cl100k_base).
std::vector<std::string> parseRanks(std::string_view ranks) {
  std::vector<std::string> tokens;
  tokens.reserve(kCl100kRankCount);
  size_t lineStart = 0;
  while (lineStart < ranks.size()) {
    size_t lineEnd = ranks.find('\n', lineStart);
    if (lineEnd == std::string_view::npos) lineEnd = ranks.size();
    std::string_view line = ranks.substr(lineStart, lineEnd - lineStart);
    lineStart = lineEnd + 1;
    std::vector<std::string_view> fields;
    for (size_t start = 0; start < line.size();) {
      size_t end = line.find(' ', start);
      if (end == std::string_view::npos) end = line.size();
      if (end > start) fields.push_back(line.substr(start, end - start));
      start = end + 1;
    }
    if (fields.size() < 2) continue;
    if (std::stoll(std::string(fields[1])) != int64_t(tokens.size())) {
      throw Error(ErrorKind::kInternal, "embedded cl100k_base.json: bpe_ranks line starts at rank " +
                                            std::string(fields[1]) + ", expected " + std::to_string(tokens.size()));
    }
    for (size_t i = 2; i < fields.size(); ++i) tokens.push_back(decodeBase64(fields[i]));
  }
  if (tokens.size() != size_t(kCl100kRankCount)) {
    throw Error(ErrorKind::kInternal, "embedded cl100k_base.json holds " + std::to_string(tokens.size()) +
                                          " ranks, expected " + std::to_string(kCl100kRankCount));
  }
  return tokens;
}

const Cl100k& cl100k() {
  static const Cl100k kData = [] {
    const nlohmann::json json = nlohmann::json::parse(cl100kEncoderJson());
    return Cl100k{parseRanks(json.at("bpe_ranks").get<std::string>()), json.at("pat_str").get<std::string>()};
  }();
  return kData;
}

}  // namespace

std::string_view cl100kEncoderJson() {
  return std::string_view(phx_cl100k_json_begin, size_t(phx_cl100k_json_end - phx_cl100k_json_begin));
}

const std::vector<std::string>& cl100kTokens() { return cl100k().tokens; }

const std::string& cl100kPattern() { return cl100k().pattern; }

}  // namespace phx
