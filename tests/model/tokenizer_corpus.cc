#include "tests/model/tokenizer_corpus.h"

#include <array>
#include <cctype>
#include <string_view>

#include "model/utf8.h"

namespace phx::testing {
namespace {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {  // SplitMix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return size_t(next() % n); }
  size_t between(size_t lo, size_t hi) { return lo + below(hi - lo + 1); }
  bool chance(int percent) { return below(100) < size_t(percent); }
  template <typename T, size_t N>
  const T& pick(const std::array<T, N>& items) { return items[below(N)]; }

 private:
  uint64_t state_;
};

constexpr std::array<std::string_view, 96> kWords = {
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with",
    "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what",
    "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do",
    "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
    "her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see",
    "number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "oil",
    "tokenizer", "unbelievably", "antidisestablishmentarianism", "naïve", "café", "résumé", "Zürich", "façade",
    "coöperate", "straße"};
constexpr std::array<std::string_view, 28> kContractions = {
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "'Re", "'lL",
    "'Ve", "'sT", "’s", "’ll", "'ſ", "'x", "''", "'", "n't", "N'T", "'clock", "'tis"};
constexpr std::array<std::string_view, 16> kPunctuation = {
    ".", ",", "!", "?", ";", ":", "...", " -- ", " — ", "\"", "(", ")", "?!", "…", "»", "«"};
constexpr std::array<std::string_view, 24> kCode = {
    "int main(int argc, char** argv) {\n  return 0;\n}\n",
    "def f(x):\n    return x ** 2  # square\n",
    "for (size_t i = 0; i < n; ++i) sum += a[i] * b[i];",
    "\tif (ptr == nullptr) {\n\t\tthrow std::runtime_error(\"null\");\n\t}\n",
    "const x = await fetch(`${base}/api/v1?id=${id}`);",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\"}}",
    "SELECT name, COUNT(*) FROM users WHERE age >= 21 GROUP BY name;",
    "<div class=\"row\"><span id='x'>&amp;&lt;&gt;</span></div>",
    "#include <vector>\n#define MAX(a,b) ((a)>(b)?(a):(b))\n",
    "x = [i for i in range(10) if i % 2 == 0]\nprint(f\"{x!r:>10}\")",
    "fn main() { let v: Vec<u8> = vec![0xFF; 16]; println!(\"{:?}\", v); }",
    "$ ls -la | grep '^d' && echo \"done\" >> /tmp/log.txt 2>&1",
    "    public static void main(String[] args) throws IOException {",
    "a+=b;c-=d;e*=f;g/=h;i%=j;k<<=1;l>>=2;m&=n;o|=p;q^=r;",
    "if __name__ == '__main__':\n    main()\n",
    "// TODO(someone): fix this hack!!!\n/* block\n * comment */",
    "matrix[i][j] = (matrix[i-1][j] + matrix[i][j-1]) / 2.0f;",
    "git commit -m \"Fix off-by-one in tokenizer's BPE cache\"",
    "\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n",
    "    \n        \n            return;\n",
    "lambda x, y: x if x > y else y",
    "std::unordered_map<std::string, std::vector<int32_t>> cache_;",
    "@media (max-width: 600px) { .nav { display: none !important; } }",
    "___init___ __dunder__ CamelCaseName snake_case_name SCREAMING_CASE kConstant"};
constexpr std::array<std::string_view, 20> kEmoji = {"😀",
                                                     "🎉",
                                                     "👍🏽",
                                                     "👨‍👩‍👧‍👦",
                                                     "🇺🇸",
                                                     "🇯🇵",
                                                     "❤️",
                                                     "1️⃣",
                                                     "🏳️‍🌈",
                                                     "🤖",
                                                     "🦙",
                                                     "🧑🏿‍💻",
                                                     "✨",
                                                     "🔥",
                                                     "☕",
                                                     "⚡",
                                                     "👩‍❤️‍💋‍👨",
                                                     "🫠",
                                                     "🐍",
                                                     "©️"};
constexpr std::array<std::string_view, 14> kSpecialLookalikes = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_sep|>", "<|dummy_85|>", "<|fim_prefix|>",
    "<|endofprompt|>", "<|endoftext", "<|EndOfText|>", "<||>", "<|im_start|", "|>", "<|dummy_999|>", "<<|im_end|>>"};
constexpr std::array<std::string_view, 22> kWhitespace = {
    " ", "  ", "    ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\t\t", "\v", "\f", "\xC2\xA0",
    "\xE2\x80\x83", "\xE3\x80\x80", "\xE2\x80\x8B", "\xE2\x80\xA8", " \t \n", "\n\n\n\n", "\xC2\x85", "   \r\n  "};
constexpr std::array<std::string_view, 16> kInvalidSequences = {
    "\x80", "\xBF", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xED\xBF\xBF", "\xF0\x9F\x98",
    "\xF0\x9F", "\xF4\x90\x80\x80", "\xF5\x80", "\xFE", "\xFF", "\xF8\x88\x80\x80\x80", "\xE2\x82", "\xC3"};

// Code point ranges whose letters, digits and spaces have kept their Unicode categories since before Unicode 14,
// so PCRE2's tables and tiktoken's agree on them.
struct Range {
  char32_t first;
  char32_t last;
};
constexpr std::array<Range, 16> kMixedScriptRanges = {{{0xA1, 0xFF},       {0x100, 0x24F},   {0x370, 0x3FF},
                                                      {0x400, 0x4FF},     {0x531, 0x587},   {0x5D0, 0x5EA},
                                                      {0x621, 0x64A},     {0x905, 0x939},   {0xE01, 0xE3A},
                                                      {0x10A0, 0x10FA},   {0x1E00, 0x1EFF}, {0x2000, 0x206F},
                                                      {0x2100, 0x218B},   {0x2190, 0x23FF}, {0x2500, 0x25FF},
                                                      {0xFF01, 0xFF5E}}};
constexpr std::array<Range, 6> kCjkRanges = {
    {{0x4E00, 0x9FA5}, {0x3041, 0x3096}, {0x30A1, 0x30FA}, {0xAC00, 0xD7A3}, {0x3001, 0x3011}, {0xFF10, 0xFF19}}};

void appendCodePoint(Rng& rng, const Range& range, std::string& out) {
  appendUtf8(char32_t(range.first + rng.below(range.last - range.first + 1)), out);
}

std::string word(Rng& rng) {
  std::string w(kWords[rng.below(kWords.size())]);
  const size_t style = rng.below(10);
  if (style == 0) {
    for (char& c : w) c = char(std::toupper(uint8_t(c)));
  } else if (style < 3 && !w.empty() && uint8_t(w[0]) < 0x80) {
    w[0] = char(std::toupper(uint8_t(w[0])));
  }
  return w;
}

std::string english(Rng& rng) {
  std::string s;
  const size_t words = rng.between(1, 30);
  for (size_t i = 0; i < words; ++i) {
    if (i > 0) s += rng.chance(3) ? "  " : " ";
    s += word(rng);
    if (rng.chance(12)) s += rng.pick(kContractions);
    if (rng.chance(10)) s += rng.pick(kPunctuation);
  }
  if (rng.chance(40)) s += rng.pick(kPunctuation);
  if (rng.chance(15)) s += "\n";
  return s;
}

std::string code(Rng& rng) {
  std::string s(rng.pick(kCode));
  if (rng.chance(50)) s = std::string(rng.between(0, 12), rng.chance(50) ? ' ' : '\t') + s;
  if (rng.chance(30)) s += rng.pick(kCode);
  if (rng.chance(30)) s += " = " + std::to_string(rng.next() % 100000) + ";";
  return s;
}

std::string numbers(Rng& rng) {
  std::string s;
  const size_t parts = rng.between(1, 6);
  for (size_t p = 0; p < parts; ++p) {
    if (p > 0) s += rng.pick(std::array<std::string_view, 6>{" ", ",", ".", "-", "/", ", "});
    const size_t digits = rng.between(1, rng.chance(10) ? 40 : 8);
    for (size_t i = 0; i < digits; ++i) s += char('0' + rng.below(10));
    if (rng.chance(10)) s += rng.pick(std::array<std::string_view, 5>{"e-10", "%", "px", "th", "k"});
  }
  if (rng.chance(20)) s = "0x" + std::to_string(rng.next()) + "DEADbeef";
  if (rng.chance(10)) s += " ١٢٣ ४५६ ⅫⅣ ½ ²³ ①";
  return s;
}

std::string whitespace(Rng& rng) {
  std::string s;
  const size_t parts = rng.between(1, 10);
  for (size_t i = 0; i < parts; ++i) {
    const size_t run = rng.chance(20) ? rng.between(5, 60) : 1;
    const std::string_view ws = rng.pick(kWhitespace);
    for (size_t r = 0; r < run; ++r) s += ws;
    if (rng.chance(60)) s += rng.chance(50) ? word(rng) : std::string(rng.pick(kPunctuation));
  }
  return s;
}

std::string repeatedRanges(Rng& rng, const Range* ranges, size_t rangeCount, size_t minLength, size_t maxLength) {
  std::string s;
  const size_t length = rng.between(minLength, maxLength);
  for (size_t i = 0; i < length; ++i) {
    appendCodePoint(rng, ranges[rng.below(rangeCount)], s);
    if (rng.chance(8)) s += rng.chance(50) ? " " : "\n";
  }
  return s;
}

std::string emoji(Rng& rng) {
  std::string s;
  const size_t count = rng.between(1, 12);
  for (size_t i = 0; i < count; ++i) {
    s += rng.pick(kEmoji);
    if (rng.chance(30)) s += rng.chance(50) ? " " : word(rng);
  }
  return s;
}

std::string combiningMarks(Rng& rng) {
  static constexpr std::array<std::string_view, 10> kScripts = {
      "नमस्ते दुनिया",   "مَرْحَبًا بِالْعَالَم",         "שָׁלוֹם עוֹלָם",     "สวัสดีชาวโลก", "Tiếng Việt có dấu",
      "Zalgo: Z̷̢͎̓a̴̱̋l̸̰̈́g̶̱̀o̵̩͝", "e\xCC\x81 vs \xC3\xA9", "한국어 ᄒᆞᆫ", "ḍ̇ q̃ ŋ̊",      "Ελληνικά ἄλφα"};
  std::string s(rng.pick(kScripts));
  const size_t extra = rng.between(0, 8);
  for (size_t i = 0; i < extra; ++i) {
    s += char('a' + rng.below(26));
    const size_t marks = rng.between(1, 4);
    for (size_t m = 0; m < marks; ++m) appendUtf8(char32_t(0x300 + rng.below(0x70)), s);
    if (rng.chance(20)) s += ' ';
  }
  return s;
}

std::string invalidUtf8(Rng& rng) {
  std::string s = rng.chance(50) ? english(rng) : emoji(rng);
  const size_t insertions = rng.between(1, 4);
  for (size_t i = 0; i < insertions; ++i) {
    std::string bad = rng.chance(70) ? std::string(rng.pick(kInvalidSequences)) : std::string(1, char(rng.next()));
    s.insert(rng.below(s.size() + 1), bad);
  }
  if (rng.chance(20)) s += std::string(1, char(0x80 + rng.below(0x80)));
  return s;
}

std::string longWord(Rng& rng) {
  const size_t length = rng.between(100, rng.chance(10) ? 6000 : 1200);
  std::string s;
  switch (rng.below(7)) {
    case 0:
      for (size_t i = 0; i < length; ++i) s += char('a' + rng.below(26));
      break;
    case 1:
      s.assign(length, char('a' + rng.below(26)));
      break;
    case 2:
      while (s.size() < length) s += word(rng);
      break;
    case 3:
      for (size_t i = 0; i < length; ++i) s += char('0' + rng.below(10));
      break;
    case 4:
      s.assign(length, rng.chance(50) ? ' ' : '\n');
      s += rng.chance(50) ? "x" : "";
      break;
    case 5:
      for (size_t i = 0; i < length; ++i) s += "!@#$%^&*-=+~"[rng.below(12)];
      break;
    default:
      for (size_t i = 0; i < length; ++i) {
        s += "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.below(64)];
      }
      break;
  }
  return s;
}

std::string specialLookalikes(Rng& rng) {
  std::string s;
  const size_t parts = rng.between(1, 6);
  for (size_t i = 0; i < parts; ++i) {
    s += rng.pick(kSpecialLookalikes);
    if (rng.chance(60)) s += rng.chance(50) ? word(rng) : std::string(rng.pick(kWhitespace));
  }
  return s;
}

std::string generate(CorpusKind kind, Rng& rng, int depth);

std::string mixed(Rng& rng, int depth) {
  std::string s;
  const size_t parts = rng.between(2, 6);
  for (size_t i = 0; i < parts; ++i) {
    s += generate(CorpusKind(rng.below(kCorpusKindCount - 1)), rng, depth + 1);
    if (rng.chance(50)) s += rng.pick(kWhitespace);
  }
  return s;
}

std::string generate(CorpusKind kind, Rng& rng, int depth) {
  switch (kind) {
    case CorpusKind::kEnglish: return english(rng);
    case CorpusKind::kCode: return code(rng);
    case CorpusKind::kNumbers: return numbers(rng);
    case CorpusKind::kWhitespace: return whitespace(rng);
    case CorpusKind::kCjk: return repeatedRanges(rng, kCjkRanges.data(), kCjkRanges.size(), 1, 60);
    case CorpusKind::kEmoji: return emoji(rng);
    case CorpusKind::kCombiningMarks: return combiningMarks(rng);
    case CorpusKind::kInvalidUtf8: return invalidUtf8(rng);
    case CorpusKind::kLongWords: return depth > 0 ? word(rng) : longWord(rng);
    case CorpusKind::kSpecialLookalikes: return specialLookalikes(rng);
    case CorpusKind::kMixedScripts:
      return repeatedRanges(rng, kMixedScriptRanges.data(), kMixedScriptRanges.size(), 1, 80);
    case CorpusKind::kMixed: return mixed(rng, depth);
  }
  return {};
}

}  // namespace

std::vector<CorpusString> tokenizerCorpus(size_t count, uint64_t seed) {
  Rng rng(seed);
  std::vector<CorpusString> corpus;
  corpus.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const auto kind = CorpusKind(i % kCorpusKindCount);
    corpus.push_back({kind, generate(kind, rng, 0)});
  }
  return corpus;
}

}  // namespace phx::testing
