#include "cli/child_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "common/error.h"

namespace phx::cli {
namespace {

std::string describeStatus(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with status " + std::to_string(status);
}

}  // namespace

ChildProcess::ChildProcess(std::string name, std::vector<std::string> argv, std::vector<int> cores)
    : name_(std::move(name)) {
  std::vector<char*> args;
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);

  // The child writes errno here if exec fails; a successful exec closes the pipe (O_CLOEXEC) with nothing written.
  int execStatus[2];
  if (pipe2(execStatus, O_CLOEXEC) != 0) throwIoError("cannot create a pipe for " + name_);
  pid_ = fork();
  if (pid_ < 0) throwIoError("cannot fork " + name_);
  if (pid_ == 0) {
    close(execStatus[0]);
    if (!cores.empty()) {
      cpu_set_t set;
      CPU_ZERO(&set);
      for (int core : cores) CPU_SET(core, &set);
      sched_setaffinity(0, sizeof(set), &set);
    }
    // Its own process group, so a Ctrl-C at the terminal reaches `up` alone, which then stops children in order.
    setpgid(0, 0);
    execv(args[0], args.data());
    const int error = errno;
    (void)!write(execStatus[1], &error, sizeof(error));
    _exit(127);
  }
  close(execStatus[1]);
  int error = 0;
  const ssize_t got = read(execStatus[0], &error, sizeof(error));
  close(execStatus[0]);
  if (got == sizeof(error)) {
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    throw Error(ErrorKind::kIo, "cannot start " + name_ + " (" + argv[0] + "): " + std::strerror(error));
  }
}

ChildProcess::~ChildProcess() { stop(std::chrono::seconds(5)); }

std::optional<std::string> ChildProcess::exited() {
  if (exitDescription_ || pid_ < 0) return exitDescription_;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) exitDescription_ = describeStatus(status);
  return exitDescription_;
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ < 0 || exited()) return;
  kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!exited() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!exited()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    exitDescription_ = describeStatus(status);
  }
}

std::string selfExecutable() {
  char path[PATH_MAX];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (length <= 0) throwIoError("cannot read /proc/self/exe");
  return std::string(path, size_t(length));
}

}  // namespace phx::cli
