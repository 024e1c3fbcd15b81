#include "cli/bench_serve_plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/error.h"

namespace phx::cli {
namespace {

struct Series {
  std::string name;
  std::string colour;
  std::function<double(const BenchServePoint&)> value;
};

constexpr double kPanelWidth = 420, kPanelHeight = 280, kMargin = 60;

// One panel at x offset `left`: axes, ticks at each concurrency, a polyline with dots per series, a legend.
void panel(std::ostringstream& svg, double left, const std::string& title, const std::string& unit,
           const std::vector<BenchServePoint>& points, const std::vector<Series>& series) {
  double top = 0;
  for (const auto& s : series) {
    for (const auto& p : points) top = std::max(top, s.value(p));
  }
  top = top > 0 ? top * 1.1 : 1;
  const double minX = std::log2(double(points.front().concurrency));
  const double maxX = std::max(minX + 1, std::log2(double(points.back().concurrency)));
  auto x = [&](double c) {
    return left + kMargin + (std::log2(c) - minX) / (maxX - minX) * (kPanelWidth - kMargin - 20);
  };
  auto y = [&](double v) { return 40 + (1 - v / top) * (kPanelHeight - 40); };
  svg << "<text x='" << left + kPanelWidth / 2 << "' y='28' text-anchor='middle' font-size='14'>" << title
      << "</text>\n";
  svg << "<line x1='" << left + kMargin << "' y1='" << y(0) << "' x2='" << left + kPanelWidth - 10 << "' y2='" << y(0)
      << "' stroke='black'/>\n<line x1='" << left + kMargin << "' y1='40' x2='" << left + kMargin << "' y2='" << y(0)
      << "' stroke='black'/>\n";
  for (int i = 0; i <= 4; ++i) {
    const double v = top * i / 4;
    svg << "<text x='" << left + kMargin - 6 << "' y='" << y(v) + 4 << "' text-anchor='end' font-size='11'>"
        << (v >= 100 ? std::to_string(int64_t(v)) : std::to_string(v).substr(0, 4)) << "</text>\n";
  }
  for (const auto& p : points) {
    svg << "<text x='" << x(double(p.concurrency)) << "' y='" << y(0) + 16 << "' text-anchor='middle' font-size='11'>"
        << p.concurrency << "</text>\n";
  }
  svg << "<text x='" << left + kPanelWidth / 2 << "' y='" << y(0) + 34
      << "' text-anchor='middle' font-size='12'>concurrency</text>\n";
  svg << "<text x='" << left + 14 << "' y='" << (40 + y(0)) / 2 << "' font-size='12' transform='rotate(-90 "
      << left + 14 << " " << (40 + y(0)) / 2 << ")' text-anchor='middle'>" << unit << "</text>\n";
  for (size_t s = 0; s < series.size(); ++s) {
    svg << "<polyline fill='none' stroke='" << series[s].colour << "' stroke-width='2' points='";
    for (const auto& p : points) svg << x(double(p.concurrency)) << "," << y(series[s].value(p)) << " ";
    svg << "'/>\n";
    for (const auto& p : points) {
      svg << "<circle cx='" << x(double(p.concurrency)) << "' cy='" << y(series[s].value(p)) << "' r='3' fill='"
          << series[s].colour << "'/>\n";
    }
    svg << "<text x='" << left + kMargin + 10 << "' y='" << 52 + 14 * s << "' font-size='11' fill='"
        << series[s].colour << "'>" << series[s].name << "</text>\n";
  }
}

}  // namespace

void writeBenchServePlot(const std::string& path, const std::vector<BenchServePoint>& points,
                         const std::string& title) {
  if (points.empty()) return;
  std::ostringstream svg;
  const double width = 2 * kPanelWidth + 20, height = kPanelHeight + 70;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << width << "' height='" << height
      << "' font-family='sans-serif'>\n<rect width='100%' height='100%' fill='white'/>\n";
  svg << "<text x='" << width / 2 << "' y='12' text-anchor='middle' font-size='12' fill='#444'>" << title
      << "</text>\n";
  panel(svg, 0, "output throughput", "tokens/s", points,
        {{"output tokens/s", "#1f77b4", [](const BenchServePoint& p) { return p.outputThroughput; }}});
  panel(svg, kPanelWidth + 20, "median latency", "ms", points,
        {{"TTFT", "#d62728", [](const BenchServePoint& p) { return p.ttftMedianMs; }},
         {"TPOT", "#2ca02c", [](const BenchServePoint& p) { return p.tpotMedianMs; }},
         {"E2E / 10", "#9467bd", [](const BenchServePoint& p) { return p.e2eMedianMs / 10; }}});
  svg << "</svg>\n";
  std::ofstream file(path);
  if (!file || !(file << svg.str())) throwIoError("--plot: cannot write " + path);
}

}  // namespace phx::cli
