#include "tests/serving/serve_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/common/test_files.h"
#include "tests/common/test_process.h"

namespace phx::testing {

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::filesystem::path tinyModelDir() { return ::phx::testing::testModelDir("tiny"); }

std::filesystem::path scratchDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("phx_serving_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::pair<int, std::string> runShell(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  std::string out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

ServeProcess::ServeProcess(const std::vector<std::string>& extraArgs) {
  static int counter = 0;
  scratch_ = scratchDir("serve" + std::to_string(counter++));
  std::vector<std::string> args = {PHX_BINARY, "serve", "--model", tinyModelDir().string(), "--port", "0",
                                   "--threads", "1"};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  const auto errFile = scratch_ / "stderr";
  pid_ = spawn(args, {.out = ChildOutput::null(), .err = ChildOutput::toFile(errFile)}).pid;
  const std::regex listening("listening on http://[0-9.]+:([0-9]+)");
  for (int i = 0; i < 600; ++i) {
    std::smatch match;
    const std::string text = slurp(errFile);
    if (std::regex_search(text, match, listening)) {
      port_ = std::stoi(match[1]);
      return;
    }
    if (!running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string text = slurp(errFile);
  stop();
  throw std::runtime_error("phalanx serve did not start listening: " + text);
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0) stop();
  std::error_code ignored;
  std::filesystem::remove_all(scratch_, ignored);
}

bool ServeProcess::running() const {
  if (pid_ <= 0) return false;
  // Peek without reaping, so stop() still collects the exit status.
  siginfo_t info = {};
  return waitid(P_PID, id_t(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

std::string ServeProcess::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::string ServeProcess::stderrText() const { return slurp(scratch_ / "stderr"); }

int ServeProcess::stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  for (int i = 0; i < 1200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

HttpResult ServeProcess::http(const std::string& method, const std::string& path, const std::string& body,
                              const std::vector<std::string>& curlArgs) const {
  static int counter = 0;
  const auto stem = scratch_ / ("req" + std::to_string(counter++));
  std::string command = "curl -sS -X " + method + " -D " + quote(stem.string() + ".headers") + " -o " +
                        quote(stem.string() + ".body") + " -w '%{http_code}'";
  if (!body.empty()) {
    std::ofstream(stem.string() + ".in", std::ios::binary) << body;
    command += " -H 'Content-Type: application/json' --data-binary @" + quote(stem.string() + ".in");
  }
  for (const std::string& arg : curlArgs) command += " " + quote(arg);
  command += " " + quote(url(path)) + " 2>&1";
  const auto [status, out] = runShell(command);
  HttpResult result;
  try {
    result.status = std::stoi(out.substr(out.size() >= 3 ? out.size() - 3 : 0));
  } catch (const std::exception&) {
    result.status = 0;
  }
  result.headers = slurp(stem.string() + ".headers");
  result.body = slurp(stem.string() + ".body");
  return result;
}

}  // namespace phx::testing
