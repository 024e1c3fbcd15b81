// A small declarative command-line parser for the phalanx subcommands: each command lists its options once, and
// the same list drives parsing, validation (errors name the flag and what it expected) and --help.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace phx::cli {

class ParsedArgs {
 public:
  bool has(const std::string& name) const;
  // The option's value, its default, or an error naming the missing flag.
  std::string str(const std::string& name) const;
  std::optional<std::string> optionalStr(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  // "1,16,64" -> {1, 16, 64}
  std::vector<int64_t> integerList(const std::string& name) const;
  std::vector<double> numberList(const std::string& name) const;
  // "a,b,,c" -> {"a", "b", "c"}: empty items are dropped.
  std::vector<std::string> strList(const std::string& name) const;
  // A byte size (parseByteSize), naming this flag in the error.
  int64_t bytes(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  friend class ArgParser;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> defaults_;
  std::vector<std::string> positionals_;
};

// "8GB" -> 8e9, "7.5GiB" -> 7.5 * 2^30, "64MiB" -> 2^26, "123" -> 123 bytes: decimal (K, M, G, T with or without B)
// and binary (KiB ... TiB) units, as Hugging Face's max_shard_size and storage use them. Throws phx::Error (invalid
// argument) naming --flag for anything else (negative, not a number, an unknown unit).
int64_t parseByteSize(const std::string& text, const std::string& flag);

class ArgParser {
 public:
  // usage: e.g. "phalanx inspect DIR [options]"; description: one paragraph for --help.
  ArgParser(std::string usage, std::string description);

  // --name VALUE. An empty default means "no default".
  ArgParser& option(const std::string& name, const std::string& metavar, const std::string& help,
                    const std::string& defaultValue = "");
  // --name, no value.
  ArgParser& flag(const std::string& name, const std::string& help);
  // A positional argument, in order; required unless optional is set.
  ArgParser& positional(const std::string& name, const std::string& help, bool required = true);

  // Returns nullopt when --help was asked (help already printed to stdout). Throws phx::Error (invalid argument)
  // for an unknown flag, a missing value or a missing positional.
  std::optional<ParsedArgs> parse(int argc, char** argv) const;
  std::string help() const;

 private:
  struct Spec {
    std::string name;
    std::string metavar;  // empty for flags
    std::string help;
    std::string defaultValue;
  };
  struct Positional {
    std::string name;
    std::string help;
    bool required;
  };
  const Spec* find(const std::string& name) const;

  std::string usage_;
  std::string description_;
  std::vector<Spec> specs_;
  std::vector<Positional> positionals_;
};

}  // namespace phx::cli
