// The tokenizer's parts and whole: UTF-8 replacement, the byte-level alphabet, BPE, the pre-tokenizer, encode and
// decode (spot checks from tiktoken's published ids), streaming decode and the chat template. The full comparison
// with tiktoken is tokenizer_oracle_test; the files on disk are tokenizer_files_test.
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/bpe.h"
#include "model/byte_level.h"
#include "model/chat_template.h"
#include "model/cl100k_ranks.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"
#include "model/tokenizer_files.h"
#include "model/utf8.h"

namespace phx {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Expected outputs follow the WHATWG decoder / Unicode's "maximal subpart" practice (Unicode 15, section 3.9,
// table 3-8 is the first case).
TEST(Utf8, ReplacesEachMaximalSubpartWithOneReplacementCharacter) {
  const std::pair<std::string, std::string> cases[] = {
      {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "a" + repeat(kFffd, 3) + "b" + kFffd + "c" +
                                                                   repeat(kFffd, 2) + "d"},
      {"\xC0\xAF", repeat(kFffd, 2)},                // C0 never starts a sequence
      {"\xE0\x80\xAF", repeat(kFffd, 3)},            // overlong: E0 needs A0..BF next
      {"\xED\xA0\x80", repeat(kFffd, 3)},            // a surrogate
      {"\xF4\x90\x80\x80", repeat(kFffd, 4)},        // above U+10FFFF
      {"\xF0\x9F\x98", kFffd},                       // truncated at the end
      {"a\xF0\x9F\x98 b", "a" + kFffd + " b"},       // truncated in the middle
      {"\xF8\x88\x80\x80\x80", repeat(kFffd, 5)},    // five-byte forms do not exist
      {"\xFF\xFE", repeat(kFffd, 2)},
      {"\xEF\xBB\xBF" "bom", "\xEF\xBB\xBF" "bom"},     // a BOM is a character like any other
      {"h\xC3\xA9llo \xF0\x9F\x98\x80", "h\xC3\xA9llo \xF0\x9F\x98\x80"},
  };
  for (const auto& [input, expected] : cases) {
    EXPECT_EQ(replaceInvalidUtf8(input), expected);
    EXPECT_EQ(isValidUtf8(input), input == expected);
  }
}

TEST(Utf8, StreamingHoldsBackAnIncompleteTail) {
  std::string out;
  EXPECT_EQ(appendReplacingInvalidUtf8("a\xF0\x9F", false, out), 1u);
  EXPECT_EQ(out, "a");
  out.clear();
  EXPECT_EQ(appendReplacingInvalidUtf8("a\xF0\x9F", true, out), 3u);
  EXPECT_EQ(out, "a" + kFffd);
  out.clear();
  EXPECT_EQ(appendReplacingInvalidUtf8("\xF0\x41", false, out), 2u);  // can never complete: replaced at once
  EXPECT_EQ(out, kFffd + "A");
}

TEST(ByteLevel, IsGpt2sAlphabet) {
  EXPECT_EQ(bytesToByteLevel(" "), "\xC4\xA0");      // U+0120 'Ġ'
  EXPECT_EQ(bytesToByteLevel("\n"), "\xC4\x8A");     // U+010A 'Ċ'
  EXPECT_EQ(bytesToByteLevel(std::string(1, '\0')), "\xC4\x80");  // U+0100
  EXPECT_EQ(bytesToByteLevel("\x7F"), "\xC4\xA1");   // U+0121: the 34th non-printable byte after 0..32
  EXPECT_EQ(bytesToByteLevel("\xAD"), "\xC5\x83");   // U+0143: the last one
  EXPECT_EQ(bytesToByteLevel("A~\xA1\xFF"), "A~\xC2\xA1\xC3\xBF");
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string byte(1, char(b));
    seen.insert(byteToByteLevel(uint8_t(b)));
    EXPECT_EQ(byteLevelToBytes(bytesToByteLevel(byte)), byte);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_FALSE(byteLevelToBytes("\xE4\xB8\x80").has_value());  // U+4E00 is not in the alphabet
  EXPECT_FALSE(byteLevelToBytes(" ").has_value());             // nor is a raw space
}

TEST(Pretokenizer, SplitsByTheCl100kPattern) {
  const Pretokenizer pretokenizer(cl100kPattern(), "cl100k");
  std::vector<std::string_view> pieces;
  pretokenizer.split("Hello world's  test\n\n1234567 ?!x", pieces);
  const std::vector<std::string_view> expected = {"Hello", " world", "'s", " ", " test", "\n\n", "123", "456", "7",
                                                  " ?!", "x"};
  EXPECT_EQ(pieces, expected);
  EXPECT_THROW(Pretokenizer("(unclosed", "bad.json"), Error);
}

TEST(Bpe, HeapAndLinearMergeIdentically) {
  const std::vector<std::string>& tokens = cl100kTokens();
  RankTable ranks(tokens.size());
  for (size_t rank = 0; rank < tokens.size(); ++rank) ASSERT_TRUE(ranks.insert(tokens[rank], int32_t(rank)));
  EXPECT_EQ(ranks.find("hello"), 15339);
  EXPECT_EQ(ranks.find("no such token, surely"), RankTable::kAbsent);
  uint64_t state = 42;
  auto next = [&] { return (state = state * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  const std::string alphabets[] = {"ab", "abcdefghijklmnopqrstuvwxyz", " \n\t", "0123456789",
                                   "e\xCC\x81\xF0\x9F\x98\x80"};
  for (int trial = 0; trial < 400; ++trial) {
    const std::string& alphabet = alphabets[trial % 5];
    std::string piece;
    const size_t length = 1 + next() % (trial % 10 == 0 ? 2000 : 60);
    for (size_t i = 0; i < length; ++i) piece += alphabet[next() % alphabet.size()];
    std::vector<int32_t> linear, heap;
    detail::bytePairEncodeLinear(piece, ranks, linear);
    detail::bytePairEncodeHeap(piece, ranks, heap);
    ASSERT_EQ(linear, heap) << piece;
    std::string joined;
    for (int32_t id : heap) joined += tokens[size_t(id)];
    ASSERT_EQ(joined, piece);
  }
}

// Ids published for cl100k_base (PLATFORM.md, tiktoken's documentation).
TEST(Tokenizer, SpotChecks) {
  const Tokenizer tokenizer = phi4Tokenizer();
  EXPECT_EQ(tokenizer.vocabSize(), 100352);
  EXPECT_EQ(tokenizer.encode("hello"), std::vector<int32_t>{15339});
  EXPECT_EQ(tokenizer.encode(" hello"), std::vector<int32_t>{24748});
  EXPECT_EQ(tokenizer.encode("Hello"), std::vector<int32_t>{9906});
  EXPECT_EQ(tokenizer.encode(" world"), std::vector<int32_t>{1917});
  EXPECT_EQ(tokenizer.encode("hello world"), (std::vector<int32_t>{15339, 1917}));
  EXPECT_TRUE(tokenizer.encode("").empty());
}

TEST(Tokenizer, SpecialTokensOnlyWhenAllowed) {
  const Tokenizer tokenizer = phi4Tokenizer();
  EXPECT_EQ(tokenizer.encode("<|endoftext|>", true), std::vector<int32_t>{100257});
  const std::vector<int32_t> plain = tokenizer.encode("<|endoftext|>", false);
  EXPECT_GT(plain.size(), 1u);
  for (int32_t id : plain) EXPECT_LT(id, kPhi4FirstAddedId);
  EXPECT_EQ(tokenizer.decode(plain), "<|endoftext|>");
  EXPECT_EQ(tokenizer.encode("a<|im_start|>b<|im_end|>", true),
            (std::vector<int32_t>{tokenizer.encode("a")[0], 100264, tokenizer.encode("b")[0], 100265}));
  EXPECT_EQ(tokenizer.encode("<|im_start", true), tokenizer.encode("<|im_start", false));
}

TEST(Tokenizer, AddedTokenIdsArePhi4s) {
  const Tokenizer tokenizer = phi4Tokenizer();
  const std::pair<const char*, int32_t> expected[] = {
      {"<|endoftext|>", 100257}, {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259}, {"<|fim_suffix|>", 100260},
      {"<|im_start|>", 100264},  {"<|im_end|>", 100265},     {"<|im_sep|>", 100266},     {"<|endofprompt|>", 100276},
      {"<|dummy_0|>", 100256},   {"<|dummy_1|>", 100261},    {"<|dummy_3|>", 100263},    {"<|dummy_4|>", 100267},
      {"<|dummy_12|>", 100275},  {"<|dummy_13|>", 100277},   {"<|dummy_85|>", 100349},   {"<|dummy_87|>", 100351}};
  for (const auto& [text, id] : expected) {
    EXPECT_EQ(tokenizer.tokenId(text), id) << text;
    EXPECT_TRUE(tokenizer.isSpecial(id));
    EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{id}), text);
  }
  EXPECT_FALSE(tokenizer.tokenId("<|dummy_88|>").has_value());
  EXPECT_FALSE(tokenizer.tokenId("hello").has_value());
  EXPECT_FALSE(tokenizer.isSpecial(15339));
}

TEST(Tokenizer, DecodeIsExactAndRefusesUnknownIds) {
  const Tokenizer tokenizer = phi4Tokenizer();
  for (const std::string text :
       {"The quick brown fox.\n", "  indented\tcode();\r\n", "naïve café 😀 你好, 世界",
        "e\xCC\x81\xCC\x81 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9", "123456789 3.14159"}) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  }
  try {
    tokenizer.decode(std::vector<int32_t>{15339, 100352});
    FAIL() << "accepted id 100352";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("100352"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tokenizer.decode(std::vector<int32_t>{-1}), Error);
}

TEST(Tokenizer, IllFormedUtf8IsReplacedBeforeEncoding) {
  const Tokenizer tokenizer = phi4Tokenizer();
  EXPECT_EQ(tokenizer.encode("a\xFF" "b"), tokenizer.encode("a" + kFffd + "b"));
  EXPECT_EQ(tokenizer.encode("\xED\xA0\x80"), tokenizer.encode(repeat(kFffd, 3)));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("x\xC3")), "x" + kFffd);
}

// The coordinator encodes requests on several threads: one tokenizer (and its piece cache) shared by all.
TEST(Tokenizer, EncodesConcurrently) {
  const Tokenizer tokenizer = phi4Tokenizer();
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) {
    texts.push_back("Request " + std::to_string(i * 7919) + ": summarise antidisestablishmentarianism's " +
                    repeat("zyx", i % 17) + " 你好世界 " + std::to_string(i));
  }
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& text : texts) expected.push_back(tokenizer.encode(text));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const Tokenizer copy = tokenizer;  // copies share the cache
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) mismatches[size_t(t)] += copy.encode(texts[i]) != expected[i];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(IncrementalDecoder, NeverSplitsACharacter) {
  const Tokenizer tokenizer = phi4Tokenizer();
  const std::string text = "🦙 llama, 你好世界, 👨‍👩‍👧‍👦 and ĳssel ꙮ";
  const std::vector<int32_t> ids = tokenizer.encode(text);
  int partialTokens = 0;
  for (int32_t id : ids) partialTokens += !isValidUtf8(tokenizer.tokenBytes(id));
  ASSERT_GT(partialTokens, 2) << "the test needs characters split across tokens";
  IncrementalDecoder decoder(tokenizer);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = decoder.push(id);
    EXPECT_TRUE(isValidUtf8(piece));
    streamed += piece;
  }
  EXPECT_EQ(decoder.finish(), "");
  EXPECT_EQ(streamed, text);

  // The first token of an emoji alone: nothing until finish(), which flushes it as U+FFFD.
  const std::vector<int32_t> emoji = tokenizer.encode("🦙");
  ASSERT_GT(emoji.size(), 1u);
  EXPECT_EQ(decoder.push(emoji[0]), "");
  EXPECT_EQ(decoder.finish(), kFffd);
  std::string whole;
  for (int32_t id : emoji) whole += decoder.push(id);
  EXPECT_EQ(whole, "🦙");
  EXPECT_THROW(decoder.push(100352), Error);
}

TEST(ChatTemplate, FormatsPhi4Turns) {
  const std::vector<ChatMessage> messages = {
      {"system", "You are helpful."}, {"user", "Hi!"}, {"assistant", "Hello."}, {"user", "2+2?"}};
  EXPECT_EQ(applyChatTemplate(messages, true),
            "<|im_start|>system<|im_sep|>You are helpful.<|im_end|><|im_start|>user<|im_sep|>Hi!<|im_end|>"
            "<|im_start|>assistant<|im_sep|>Hello.<|im_end|><|im_start|>user<|im_sep|>2+2?<|im_end|>"
            "<|im_start|>assistant<|im_sep|>");
  EXPECT_EQ(applyChatTemplate(std::span(messages).first(1), false),
            "<|im_start|>system<|im_sep|>You are helpful.<|im_end|>");
  EXPECT_EQ(applyChatTemplate({}, true), "<|im_start|>assistant<|im_sep|>");

  const Tokenizer tokenizer = phi4Tokenizer();
  const std::vector<int32_t> ids = tokenizer.encode(applyChatTemplate(std::span(messages).subspan(1, 1), true), true);
  std::vector<int32_t> expected = {100264};
  for (int32_t id : tokenizer.encode("user")) expected.push_back(id);
  expected.push_back(100266);
  for (int32_t id : tokenizer.encode("Hi!")) expected.push_back(id);
  expected.insert(expected.end(), {100265, 100264});
  for (int32_t id : tokenizer.encode("assistant")) expected.push_back(id);
  expected.push_back(100266);
  EXPECT_EQ(ids, expected);
}

TEST(ChatTemplate, RefusesUnknownRoles) {
  const std::vector<ChatMessage> messages = {{"user", "hi"}, {"tool", "{}"}};
  try {
    applyChatTemplate(messages, true);
    FAIL() << "accepted role 'tool'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("'tool'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("message 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace phx
