#include "tests/serving/cluster_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/common/free_ports.h"
#include "tests/common/test_process.h"

namespace phx::testing {
namespace {

// The children of `parent` with their command lines (arguments joined by spaces), from /proc.
std::vector<std::pair<pid_t, std::string>> childrenOf(pid_t parent) {
  std::vector<std::pair<pid_t, std::string>> children;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so parse after the last ')'.
    const std::string stat = slurp(entry.path() / "stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid != parent || state == "Z") continue;
    std::string cmdline = slurp(entry.path() / "cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    children.emplace_back(pid_t(std::stoi(name)), cmdline);
  }
  return children;
}

}  // namespace

long long residentBytes(pid_t pid) {
  std::istringstream status(slurp("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmRSS:   123456 kB"
  }
  return 0;
}

HttpResult curlRequest(const std::string& method, const std::string& url, const std::filesystem::path& stem,
                       const std::string& body, const std::vector<std::string>& curlArgs) {
  std::vector<std::string> words = {"curl", "-sS", "-X", method, "-D", stem.string() + ".headers", "-o",
                                    stem.string() + ".body", "-w", "%{http_code}"};
  if (!body.empty()) {
    std::ofstream(stem.string() + ".in", std::ios::binary) << body;
    // append(), not "@" + ...: GCC 12 warns about that concatenation (a false -Wrestrict).
    words.insert(words.end(), {"-H", "Content-Type: application/json", "--data-binary",
                               std::string("@").append(stem.string()).append(".in")});
  }
  words.insert(words.end(), curlArgs.begin(), curlArgs.end());
  words.push_back(url);
  std::string command;
  for (const std::string& word : words) command.append(quote(word)).append(" ");
  command.append("2>/dev/null");
  const auto [status, out] = runShell(command);
  HttpResult result;
  try {
    result.status = out.size() >= 3 ? std::stoi(out.substr(out.size() - 3)) : 0;
  } catch (const std::exception&) {
    result.status = 0;
  }
  result.headers = slurp(stem.string() + ".headers");
  result.body = slurp(stem.string() + ".body");
  return result;
}

ClusterProcess::ClusterProcess(int tp, const std::vector<std::string>& extraArgs, const std::filesystem::path& model)
    : tp_(tp) {
  static int counter = 0;
  scratch_ = scratchDir("cluster" + std::to_string(counter++));
  port_ = freePortRun(1, {});
  workerPort_ = freePortRun(tp, {port_});
  std::vector<int> taken = {port_};
  for (int w = 0; w < tp; ++w) taken.push_back(workerPort_ + w);
  metricsPort_ = freePortRun(tp, taken);
  std::vector<std::string> args = {PHX_BINARY, "up", "--model", model.string(), "--tp", std::to_string(tp),
                                   "--port", std::to_string(port_), "--worker-port", std::to_string(workerPort_),
                                   "--metrics-port", std::to_string(metricsPort_), "--threads", "1", "--no-pin"};
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  const auto outFile = scratch_ / "stdout";
  const auto errFile = scratch_ / "stderr";
  // UCX over shared memory on loopback only; passive OpenMP threads, since the processes share two cores.
  pid_ = spawn(args, {.out = ChildOutput::toFile(outFile),
                      .err = ChildOutput::toFile(errFile),
                      .env = {{"UCX_TLS", "sm,self"}, {"UCX_NET_DEVICES", "lo"}, {"OMP_WAIT_POLICY", "passive"}},
                      .ownProcessGroup = true})
             .pid;
  for (int i = 0; i < 1800; ++i) {
    if (slurp(outFile).find("cluster ready") != std::string::npos) return;
    if (!running()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string text = stderrText();
  stop();
  throw std::runtime_error("phalanx up did not report \"cluster ready\": " + text);
}

ClusterProcess::~ClusterProcess() {
  if (pid_ > 0) stop();
  std::error_code ignored;
  std::filesystem::remove_all(scratch_, ignored);
}

std::string ClusterProcess::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

pid_t ClusterProcess::coordinatorPid() const {
  if (pid_ <= 0) return -1;
  for (const auto& [pid, cmdline] : childrenOf(pid_)) {
    if (cmdline.find(" coordinator ") != std::string::npos) return pid;
  }
  return -1;
}

pid_t ClusterProcess::workerPid(int worker) const {
  if (pid_ <= 0) return -1;
  const std::string listen = "--listen 127.0.0.1:" + std::to_string(workerPort_ + worker) + " ";
  for (const auto& [pid, cmdline] : childrenOf(pid_)) {
    if (cmdline.find(" worker ") != std::string::npos && cmdline.find(listen) != std::string::npos) return pid;
  }
  return -1;
}

bool ClusterProcess::running() const {
  if (pid_ <= 0) return false;
  siginfo_t info = {};
  return waitid(P_PID, id_t(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

std::string ClusterProcess::stderrText() const { return slurp(scratch_ / "stderr"); }

int ClusterProcess::stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGINT);
  int status = 0;
  // up stops the coordinator, then each worker, allowing each 10 s; an Exposer that served a scrape takes ~2 s.
  for (int i = 0; i < 600; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // up hung: its children run in process groups of their own, so they are killed one by one.
  for (const auto& [pid, cmdline] : childrenOf(pid_)) kill(pid, SIGKILL);
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

HttpResult ClusterProcess::http(const std::string& method, const std::string& path, const std::string& body,
                                const std::vector<std::string>& curlArgs) const {
  static std::atomic<int> counter = 0;
  return curlRequest(method, url(path), scratch_ / ("req" + std::to_string(counter++)), body, curlArgs);
}

}  // namespace phx::testing
