#include "cli/args.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/error.h"

namespace phx::cli {

bool ParsedArgs::has(const std::string& name) const { return values_.count(name) > 0; }

std::optional<std::string> ParsedArgs::optionalStr(const std::string& name) const {
  if (auto it = values_.find(name); it != values_.end()) return it->second;
  if (auto it = defaults_.find(name); it != defaults_.end() && !it->second.empty()) return it->second;
  return std::nullopt;
}

std::string ParsedArgs::str(const std::string& name) const {
  auto value = optionalStr(name);
  if (!value) throwInvalidArgument("missing required option --" + name);
  return *value;
}

int64_t ParsedArgs::integer(const std::string& name) const {
  const std::string text = str(name);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throwInvalidArgument("--" + name + " expects an integer, got '" + text + "'");
  }
  return value;
}

double ParsedArgs::number(const std::string& name) const {
  const std::string text = str(name);
  try {
    size_t used = 0;
    double value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throwInvalidArgument("--" + name + " expects a number, got '" + text + "'");
}

std::vector<double> ParsedArgs::numberList(const std::string& name) const {
  std::vector<double> values;
  std::stringstream stream(str(name));
  std::string item;
  while (std::getline(stream, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used == item.size()) continue;
    } catch (const std::exception&) {
    }
    throwInvalidArgument("--" + name + " expects comma-separated numbers such as 1,2, got '" + item + "'");
  }
  return values;
}

std::vector<int64_t> ParsedArgs::integerList(const std::string& name) const {
  std::vector<int64_t> values;
  std::stringstream stream(str(name));
  std::string item;
  while (std::getline(stream, item, ',')) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size()) {
      throwInvalidArgument("--" + name + " expects comma-separated integers, got '" + item + "'");
    }
    values.push_back(value);
  }
  return values;
}

std::vector<std::string> ParsedArgs::strList(const std::string& name) const {
  std::vector<std::string> items;
  std::stringstream stream(str(name));
  for (std::string item; std::getline(stream, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

int64_t ParsedArgs::bytes(const std::string& name) const { return parseByteSize(str(name), name); }

int64_t parseByteSize(const std::string& text, const std::string& flag) {
  struct Unit {
    const char* suffix;
    double scale;
  };
  static const Unit kUnits[] = {{"KiB", 0x1p10}, {"MiB", 0x1p20}, {"GiB", 0x1p30}, {"TiB", 0x1p40},
                                {"KB", 1e3},     {"MB", 1e6},     {"GB", 1e9},     {"TB", 1e12},
                                {"K", 1e3},      {"M", 1e6},      {"G", 1e9},      {"T", 1e12},
                                {"B", 1}};
  std::string number = text;
  double scale = 1;
  for (const Unit& unit : kUnits) {
    const std::string suffix = unit.suffix;
    if (text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0) {
      number = text.substr(0, text.size() - suffix.size());
      scale = unit.scale;
      break;
    }
  }
  try {
    size_t used = 0;
    const double value = std::stod(number, &used);
    if (used == number.size() && std::isfinite(value) && value >= 0) return int64_t(std::llround(value * scale));
  } catch (const std::exception&) {
  }
  throwInvalidArgument("--" + flag + " expects a size such as 8GB, 7.5GiB or 123456789 (bytes), got '" + text + "'");
}

ArgParser::ArgParser(std::string usage, std::string description)
    : usage_(std::move(usage)), description_(std::move(description)) {}

ArgParser& ArgParser::option(const std::string& name, const std::string& metavar, const std::string& help,
                             const std::string& defaultValue) {
  specs_.push_back({name, metavar, help, defaultValue});
  return *this;
}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, ""});
  return *this;
}

ArgParser& ArgParser::positional(const std::string& name, const std::string& help, bool required) {
  positionals_.push_back({name, help, required});
  return *this;
}

const ArgParser::Spec* ArgParser::find(const std::string& name) const {
  for (const auto& spec : specs_) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::optional<ParsedArgs> ArgParser::parse(int argc, char** argv) const {
  ParsedArgs parsed;
  for (const auto& spec : specs_) parsed.defaults_[spec.name] = spec.defaultValue;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(help().c_str(), stdout);
      return std::nullopt;
    }
    if (arg.rfind("--", 0) != 0 || arg == "--") {
      parsed.positionals_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inlineValue;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inlineValue = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Spec* spec = find(name);
    if (!spec) throwInvalidArgument("unknown option --" + name + " (see --help)");
    if (spec->metavar.empty()) {
      if (inlineValue) throwInvalidArgument("--" + name + " takes no value");
      parsed.values_[name] = "1";
    } else if (inlineValue) {
      parsed.values_[name] = *inlineValue;
    } else {
      if (i + 1 >= argc) throwInvalidArgument("--" + name + " expects a value (" + spec->metavar + ")");
      parsed.values_[name] = argv[++i];
    }
  }
  size_t required = 0;
  for (const auto& p : positionals_) required += p.required ? 1 : 0;
  if (parsed.positionals_.size() < required) {
    throwInvalidArgument("missing argument " + positionals_[parsed.positionals_.size()].name + " (see --help)");
  }
  if (parsed.positionals_.size() > positionals_.size()) {
    throwInvalidArgument("unexpected argument '" + parsed.positionals_[positionals_.size()] + "' (see --help)");
  }
  return parsed;
}

std::string ArgParser::help() const {
  std::ostringstream out;
  out << "usage: " << usage_ << "\n\n" << description_ << "\n";
  if (!positionals_.empty()) {
    out << "\narguments:\n";
    for (const auto& p : positionals_)
      out << "  " << p.name << std::string(p.name.size() < 24 ? 24 - p.name.size() : 1, ' ') << p.help << "\n";
  }
  out << "\noptions:\n";
  for (const auto& spec : specs_) {
    std::string left = "--" + spec.name + (spec.metavar.empty() ? "" : " " + spec.metavar);
    out << "  " << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << spec.help;
    if (!spec.defaultValue.empty()) out << " (default: " << spec.defaultValue << ")";
    out << "\n";
  }
  out << "  --help                  show this help\n";
  return out.str();
}

}  // namespace phx::cli
