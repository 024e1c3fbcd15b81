// phalanx tokenize: text on stdin -> token ids on stdout, or with --decode ids -> text, using a checkpoint's
// tokenizer files. Exit 2 on a usage error, 1 on bad input (an id out of range, a word that is no id).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "common/error.h"
#include "model/tokenizer.h"
#include "model/utf8.h"

namespace phx::cli {
namespace {

std::string readStdin() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (std::cin.bad()) throwIoError("cannot read stdin");
  return text;
}

void writeStdout(const std::string& text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    throwIoError("cannot write stdout");
  }
}

// "1 2 3", "1,2,3" or "[1, 2, 3]" -> {1, 2, 3}. Throws phx::Error (invalid argument) naming the first bad word.
std::vector<int32_t> parseIds(std::string text) {
  for (char& c : text) {
    if (c == '[' || c == ']' || c == ',' || c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  std::vector<int32_t> ids;
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = text.find_first_not_of(' ', pos);
    if (start == std::string::npos) break;
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    const bool digits = word.find_first_not_of("0123456789", word[0] == '-' ? 1 : 0) == std::string::npos;
    if (!digits || word == "-" || word.size() > 11) throwInvalidArgument("'" + word + "' is not a token id");
    const long long id = std::stoll(word);
    if (id < INT32_MIN || id > INT32_MAX) throwInvalidArgument("'" + word + "' is not a token id");
    ids.push_back(int32_t(id));
    pos = end;
  }
  return ids;
}

std::string formatIds(const std::vector<int32_t>& ids, bool asJson) {
  if (asJson) return nlohmann::json(ids).dump() + "\n";
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ' ';
    out += std::to_string(ids[i]);
  }
  return out + "\n";
}

}  // namespace

int tokenizeCommand(int argc, char** argv) {
  const ArgParser parser =
      ArgParser("phalanx tokenize --model DIR [--special] [--json] [--decode]",
                "Reads text on stdin and prints its token ids, space-separated, using the tokenizer files of a "
                "checkpoint (tokenizer.json, else vocab.json + merges.txt). Bytes that are not UTF-8 are replaced "
                "by U+FFFD first, as TextDecoder does. With --decode, reads ids (separated by spaces, commas or "
                "newlines, or a JSON array) and prints the text they stand for, byte for byte.")
          .option("model", "DIR", "the model directory holding the tokenizer files")
          .flag("special", "recognise added tokens such as <|im_start|> in the input (otherwise they are plain text)")
          .flag("json", "print the ids as a JSON array (with --decode: the text as a JSON string)")
          .flag("decode", "read token ids and print text");
  const auto args = parser.parse(argc, argv);
  if (!args) return 0;
  const std::string modelDir = args->str("model");
  const bool decode = args->has("decode");
  if (decode && args->has("special")) throwInvalidArgument("--special applies to encoding, not to --decode");
  const Tokenizer tokenizer = Tokenizer::load(modelDir);
  const std::string input = readStdin();
  try {
    if (!decode) {
      writeStdout(formatIds(tokenizer.encode(input, args->has("special")), args->has("json")));
      return 0;
    }
    const std::string text = tokenizer.decode(parseIds(input));
    writeStdout(args->has("json") ? nlohmann::json(replaceInvalidUtf8(text)).dump() + "\n" : text);
    return 0;
  } catch (const Error& error) {
    if (error.kind() != ErrorKind::kInvalidArgument) throw;
    std::fprintf(stderr, "phalanx tokenize: bad input: %s\n", error.what());
    return 1;
  }
}

}  // namespace phx::cli
