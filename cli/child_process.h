// A child process of `phalanx up`: started with fork + exec (optionally pinned to a set of cores), watched without
// blocking, stopped with SIGTERM and then SIGKILL. The destructor stops it, so a supervisor that fails half-way
// never leaves processes behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace phx::cli {

class ChildProcess {
 public:
  // argv[0] is the program path. cores: the CPUs the child may run on (empty: no pinning). Throws phx::Error (io)
  // when fork or exec fails; an exec failure is reported by the child through a pipe, so it is seen here.
  ChildProcess(std::string name, std::vector<std::string> argv, std::vector<int> cores = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  // Reaps the child if it has exited; then returns a description of how it ended ("exited with 1", "killed by
  // signal 9"), else nullopt while it runs.
  std::optional<std::string> exited();
  // SIGTERM, then SIGKILL after `grace`; waits for it.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  std::string name_;
  pid_t pid_ = -1;
  std::optional<std::string> exitDescription_;
};

// The path of the running executable, so `up` can start workers and the coordinator from the same binary.
std::string selfExecutable();

}  // namespace phx::cli
