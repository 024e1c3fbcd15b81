// Real `phalanx worker` processes for the cluster tests, on 127.0.0.1 with free ports: each launched process is
// killed (SIGKILL, whole process group) when its handle goes, so a failing test leaves nothing behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace phx::testing {

// One child process (its own process group) whose stdout is read for "listening on HOST:PORT" lines.
class ListeningProcess {
 public:
  ListeningProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);
  ~ListeningProcess();
  ListeningProcess(const ListeningProcess&) = delete;
  ListeningProcess& operator=(const ListeningProcess&) = delete;

  // Waits for `count` lines "phalanx worker listening on HOST:PORT ..." on stdout; returns the ports in order of
  // appearance. Fails the test (throws) after the timeout or when the process exits first.
  std::vector<int> waitListening(int count, std::chrono::seconds timeout);
  void kill();       // SIGKILL to the group, reaped
  void terminate();  // SIGTERM, then SIGKILL to the group after 5 s
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int stdoutFd_ = -1;
  std::string pending_;
};

// The UCX settings of the tests: shared memory on this host.
std::map<std::string, std::string> ucxTestEnv();

// `count` workers over UCX, each its own process with one thread (and `extraArgs`); endpoints() by worker index.
class UcxWorkers {
 public:
  explicit UcxWorkers(int count, std::vector<std::string> extraArgs = {});
  std::vector<std::string> endpoints() const;
  void kill(int worker);
  void restart(int worker);  // at the same port
  pid_t pid(int worker) const { return processes_[size_t(worker)]->pid(); }

 private:
  void launch(int worker, int port);
  std::vector<std::string> extraArgs_;
  std::vector<std::unique_ptr<ListeningProcess>> processes_;
  std::vector<int> ports_;
};

// `count` workers launched by one mpirun (--transport mpi), ports base..base+count-1.
class MpiWorkers {
 public:
  explicit MpiWorkers(int count);
  std::vector<std::string> endpoints() const;

 private:
  std::unique_ptr<ListeningProcess> mpirun_;
  int basePort_ = 0;
  int count_ = 0;
};

}  // namespace phx::testing
