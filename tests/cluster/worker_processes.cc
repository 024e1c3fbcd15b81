#include "tests/cluster/worker_processes.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "common/host_port.h"
#include "tests/common/free_ports.h"
#include "tests/common/test_process.h"

namespace phx::testing {

ListeningProcess::ListeningProcess(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env) {
  const SpawnedChild child = spawn(argv, {.out = ChildOutput::pipe(), .env = env, .ownProcessGroup = true});
  pid_ = child.pid;
  stdoutFd_ = child.outFd;
}

ListeningProcess::~ListeningProcess() {
  terminate();
  if (stdoutFd_ >= 0) close(stdoutFd_);
}

void ListeningProcess::terminate() {
  if (pid_ <= 0) return;
  // SIGTERM first: mpirun forwards it to its ranks (which may sit in process groups of their own).
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      ::kill(-pid_, SIGKILL);
      pid_ = -1;
      return;
    }
    usleep(50000);
  }
  kill();
}

void ListeningProcess::kill() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::vector<int> ListeningProcess::waitListening(int count, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<int> ports;
  const std::string marker = "listening on ";
  while (int(ports.size()) < count) {
    size_t newline;
    while ((newline = pending_.find('\n')) != std::string::npos) {
      const std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      const size_t at = line.find(marker);
      if (at == std::string::npos) continue;
      const std::string rest = line.substr(at + marker.size());
      const std::optional<HostPort> address = parseHostPort(rest.substr(0, rest.find(' ')), /*minPort=*/0);
      if (!address) throw std::runtime_error("a worker printed an unreadable address: '" + line + "'");
      ports.push_back(address->port);
    }
    if (int(ports.size()) >= count) break;
    using std::chrono::milliseconds;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("workers did not start listening in time");
    pollfd fd{stdoutFd_, POLLIN, 0};
    if (poll(&fd, 1, int(left.count())) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(stdoutFd_, buffer, sizeof(buffer));
    if (n <= 0) throw std::runtime_error("a worker process exited before listening");
    pending_.append(buffer, size_t(n));
  }
  return ports;
}

std::map<std::string, std::string> ucxTestEnv() {
  return {{"UCX_TLS", "sm,self"}, {"UCX_NET_DEVICES", "lo"}, {"OMP_WAIT_POLICY", "passive"}};
}

UcxWorkers::UcxWorkers(int count, std::vector<std::string> extraArgs)
    : extraArgs_(std::move(extraArgs)), processes_(size_t(count)), ports_(size_t(count), 0) {
  for (int i = 0; i < count; ++i) launch(i, 0);
  for (int i = 0; i < count; ++i) {
    ports_[size_t(i)] = processes_[size_t(i)]->waitListening(1, std::chrono::seconds(30))[0];
  }
}

void UcxWorkers::launch(int worker, int port) {
  std::vector<std::string> argv = {PHX_BINARY, "worker", "--listen", "127.0.0.1:" + std::to_string(port),
                                   "--threads", "1", "--model-root", PHX_TEST_DATA_DIR};
  argv.insert(argv.end(), extraArgs_.begin(), extraArgs_.end());
  processes_[size_t(worker)] = std::make_unique<ListeningProcess>(argv, ucxTestEnv());
}

std::vector<std::string> UcxWorkers::endpoints() const {
  std::vector<std::string> endpoints;
  for (int port : ports_) endpoints.push_back("127.0.0.1:" + std::to_string(port));
  return endpoints;
}

void UcxWorkers::kill(int worker) { processes_[size_t(worker)]->kill(); }

void UcxWorkers::restart(int worker) {
  processes_[size_t(worker)]->kill();
  launch(worker, ports_[size_t(worker)]);
  processes_[size_t(worker)]->waitListening(1, std::chrono::seconds(30));
}

MpiWorkers::MpiWorkers(int count) : count_(count) {
  basePort_ = freePortRun(count);
  // Loopback only, shared memory for MPI's own transfers; every rank a worker on port base + world rank.
  mpirun_ = std::make_unique<ListeningProcess>(
      std::vector<std::string>{"mpirun", "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(count),
                               "--mca", "btl", "self,vader", "--mca", "oob_tcp_if_include", "lo", "-x",
                               "UCX_TLS=sm,self", "-x", "OMP_WAIT_POLICY=passive", PHX_BINARY, "worker", "--listen",
                               "127.0.0.1:" + std::to_string(basePort_), "--threads", "1", "--transport", "mpi",
                               "--model-root", PHX_TEST_DATA_DIR},
      std::map<std::string, std::string>{});
  mpirun_->waitListening(count, std::chrono::seconds(60));
}

std::vector<std::string> MpiWorkers::endpoints() const {
  std::vector<std::string> endpoints;
  for (int i = 0; i < count_; ++i) endpoints.push_back("127.0.0.1:" + std::to_string(basePort_ + i));
  return endpoints;
}

}  // namespace phx::testing
