#include "cli/bench_record.h"

namespace phx::cli {
namespace {

std::string formatted(const char* format, const BenchRecord& value) {
  char text[128];
  if (value.is_number_integer()) {
    std::snprintf(text, sizeof text, format, static_cast<long long>(value.get<int64_t>()));
  } else if (value.is_number()) {
    std::snprintf(text, sizeof text, format, value.get<double>());
  } else {
    std::snprintf(text, sizeof text, format, value.is_string() ? value.get<std::string>().c_str() : "?");
  }
  return text;
}

void printRow(FILE* out, std::span<const BenchColumn> columns, const std::function<std::string(size_t)>& cell) {
  for (size_t i = 0; i < columns.size(); ++i) {
    std::fprintf(out, columns[i].leftAligned ? "| %-*s " : "| %*s ", columns[i].width, cell(i).c_str());
  }
  std::fprintf(out, "|\n");
}

}  // namespace

BenchColumn numberColumn(std::string header, int width, std::string key, std::string format) {
  return {std::move(header), width, false, [key = std::move(key), format = std::move(format)](const BenchRecord& r) {
            return formatted(format.c_str(), r.at(key));
          }};
}

BenchColumn textColumn(std::string header, int width, std::string key, bool leftAligned) {
  return {std::move(header), width, leftAligned,
          [key = std::move(key)](const BenchRecord& r) { return r.at(key).get<std::string>(); }};
}

void printBenchTable(FILE* out, std::span<const BenchColumn> columns, std::span<const BenchRecord> records) {
  printRow(out, columns, [&](size_t i) { return columns[i].header; });
  for (const BenchColumn& column : columns)
    std::fprintf(out, "|%s", std::string(size_t(column.width) + 2, '-').c_str());
  std::fprintf(out, "|\n");
  for (const BenchRecord& record : records) printRow(out, columns, [&](size_t i) { return columns[i].cell(record); });
  std::fflush(out);
}

void printBenchJson(const BenchRecord& record) {
  std::printf("%s\n", record.dump().c_str());
  std::fflush(stdout);
}

}  // namespace phx::cli
