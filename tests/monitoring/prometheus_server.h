// Test helpers around Debian's real Prometheus server: a scratch directory, a free port, a plain HTTP GET, running
// a command for its output (promtool), and the server itself as an RAII process that is killed when the test ends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/common/test_files.h"

namespace phx::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, read back, closed).
int freeTcpPort();

struct HttpResponse {
  int status = 0;  // 0: no connection
  std::string body;
};
// GET http://127.0.0.1:PORT/target with HTTP/1.0 (the body runs to the end of the connection).
HttpResponse httpGet(int port, const std::string& target);
// Percent-encodes a query parameter value.
std::string urlEncode(std::string_view text);

// A Prometheus server's answer to an instant query; {"status": "no connection"} when nothing answers.
nlohmann::json query(int port, const std::string& promql);
// The value of an instant query that returns exactly one series; nullopt otherwise (not scraped yet).
std::optional<double> queryValue(int port, const std::string& promql);
// A scrape config, every second: one job for the coordinator, one for the workers, all on 127.0.0.1.
std::string scrapeConfig(int coordinatorPort, const std::vector<int>& workerPorts);

struct CommandResult {
  int exitCode = -1;
  std::string output;  // stdout and stderr together
};
// Runs argv[0] (searched in PATH) with `input` on its stdin and waits for it.
CommandResult runCommand(const std::vector<std::string>& argv, const std::string& input = "");

// `prometheus --config.file=CONFIG --storage.tsdb.path=DATA --web.listen-address=127.0.0.1:PORT`, logging to
// DATA/../prometheus.log. The destructor stops it (SIGTERM, then SIGKILL after 5 s) and reaps it.
class PrometheusServer {
 public:
  PrometheusServer(const std::filesystem::path& configFile, const std::filesystem::path& dataDir, int port);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  int port() const { return port_; }
  bool running();
  std::string log() const;
  // Polls GET /-/ready until it answers 200; false when the process exits or the timeout passes.
  bool waitReady(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int port_;
  std::filesystem::path logFile_;
};

}  // namespace phx::testing
