// A benchmark's results as records, llama-bench's way: each case is one JSON object of named figures (the record
// --json prints), and the table is printed from those same records by columns that each format one or two fields.
// The table and the JSON can then never disagree on a figure.
#pragma once

#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

namespace phx::cli {

using BenchRecord = nlohmann::json;

struct BenchColumn {
  std::string header;
  int width = 0;  // characters (padded to it, never cut)
  bool leftAligned = false;
  std::function<std::string(const BenchRecord& record)> cell;
};

// A column showing field `key` through a printf format ("%.2f", "%lld", "%s").
BenchColumn numberColumn(std::string header, int width, std::string key, std::string format);
BenchColumn textColumn(std::string header, int width, std::string key, bool leftAligned = false);

// A Markdown table: the header, the rule, a row per record.
void printBenchTable(FILE* out, std::span<const BenchColumn> columns, std::span<const BenchRecord> records);

// One record per line on stdout.
void printBenchJson(const BenchRecord& record);

}  // namespace phx::cli
