#include "tests/monitoring/prometheus_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/common/test_process.h"

namespace phx::testing {

namespace {

std::runtime_error systemError(const std::string& what) {
  return std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

int freeTcpPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw systemError("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    throw systemError("bind 127.0.0.1:0");
  }
  close(fd);
  return ntohs(address.sin_port);
}

HttpResponse httpGet(int port, const std::string& target) {
  HttpResponse response;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw systemError("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return response;  // not listening (yet)
  }
  std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return response;
  }
  std::string raw;
  char buffer[16384];
  for (ssize_t got; (got = recv(fd, buffer, sizeof(buffer), 0)) > 0;) raw.append(buffer, static_cast<size_t>(got));
  close(fd);
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  auto space = raw.find(' ');
  auto bodyStart = raw.find("\r\n\r\n");
  if (space == std::string::npos || bodyStart == std::string::npos) return response;
  response.status = std::atoi(raw.c_str() + space + 1);
  response.body = raw.substr(bodyStart + 4);
  return response;
}

std::string urlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string encoded;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += static_cast<char>(c);
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
  }
  return encoded;
}

CommandResult runCommand(const std::vector<std::string>& argv, const std::string& input) {
  const SpawnedChild child =
      spawn(argv, {.out = ChildOutput::pipe(), .err = ChildOutput::sameAsStdout(), .pipeStdin = true});
  // Inputs here are a few kilobytes: they fit the pipe, so writing all before reading cannot deadlock.
  if (!input.empty()) {
    ssize_t ignored = write(child.stdinFd, input.data(), input.size());
    (void)ignored;
  }
  close(child.stdinFd);
  CommandResult result;
  char buffer[4096];
  for (ssize_t got; (got = read(child.outFd, buffer, sizeof(buffer))) > 0;) {
    result.output.append(buffer, static_cast<size_t>(got));
  }
  close(child.outFd);
  int status = 0;
  waitpid(child.pid, &status, 0);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

PrometheusServer::PrometheusServer(const std::filesystem::path& configFile, const std::filesystem::path& dataDir,
                                   int port)
    : port_(port), logFile_(dataDir.parent_path() / "prometheus.log") {
  std::vector<std::string> argv = {"prometheus",
                                   "--config.file=" + configFile.string(),
                                   "--storage.tsdb.path=" + dataDir.string(),
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port)};
  // A missing binary shows in the log as "cannot run prometheus" (scripts/setup.sh installs it).
  pid_ = spawn(argv, {.out = ChildOutput::toFile(logFile_), .err = ChildOutput::sameAsStdout()}).pid;
}

PrometheusServer::~PrometheusServer() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

bool PrometheusServer::running() {
  if (pid_ <= 0) return false;
  if (waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
  return pid_ > 0;
}

std::string PrometheusServer::log() const {
  std::ifstream in(logFile_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool PrometheusServer::waitReady(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return false;
    if (httpGet(port_, "/-/ready").status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

nlohmann::json query(int port, const std::string& promql) {
  auto response = httpGet(port, "/api/v1/query?query=" + urlEncode(promql));
  if (response.status == 0) return nlohmann::json{{"status", "no connection"}};
  return nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
}

std::optional<double> queryValue(int port, const std::string& promql) {
  auto answer = query(port, promql);
  if (!answer.is_object() || answer.value("status", "") != "success") return std::nullopt;
  const auto& result = answer.at("data").at("result");
  if (result.size() != 1) return std::nullopt;
  return std::stod(result[0].at("value")[1].get<std::string>());
}

std::string scrapeConfig(int coordinatorPort, const std::vector<int>& workerPorts) {
  std::ostringstream yaml;
  yaml << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
       << "scrape_configs:\n"
       << "  - job_name: phalanx-coordinator\n    static_configs:\n      - targets: ['127.0.0.1:" << coordinatorPort
       << "']\n"
       << "  - job_name: phalanx-workers\n    static_configs:\n      - targets: [";
  for (size_t i = 0; i < workerPorts.size(); ++i) yaml << (i ? ", " : "") << "'127.0.0.1:" << workerPorts[i] << "'";
  yaml << "]\n";
  return yaml.str();
}

}  // namespace phx::testing
