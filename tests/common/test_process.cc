#include "tests/common/test_process.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace phx::testing {
namespace {

struct Pipe {
  int read = -1, write = -1;
};

Pipe makePipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe failed: ") + std::strerror(errno));
  return {fds[0], fds[1]};
}

// In the child: point `fd` where `output` says (a pipe's write end is `pipeWrite`).
void redirect(int fd, const ChildOutput& output, int pipeWrite) {
  switch (output.kind) {
    case ChildOutput::Kind::kInherit:
      return;
    case ChildOutput::Kind::kNull:
      dup2(::open("/dev/null", O_WRONLY), fd);
      return;
    case ChildOutput::Kind::kFile:
      dup2(::open(output.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), fd);
      return;
    case ChildOutput::Kind::kPipe:
      dup2(pipeWrite, fd);
      return;
    case ChildOutput::Kind::kStdout:
      dup2(STDOUT_FILENO, fd);
      return;
  }
}

}  // namespace

SpawnedChild spawn(const std::vector<std::string>& argv, const SpawnOptions& options) {
  const bool pipeOut = options.out.kind == ChildOutput::Kind::kPipe;
  const bool pipeErr = options.err.kind == ChildOutput::Kind::kPipe;
  const Pipe in = options.pipeStdin ? makePipe() : Pipe{}, out = pipeOut ? makePipe() : Pipe{},
             err = pipeErr ? makePipe() : Pipe{};
  std::vector<char*> pointers;
  for (const std::string& arg : argv) pointers.push_back(const_cast<char*>(arg.c_str()));
  pointers.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    if (options.ownProcessGroup) setpgid(0, 0);
    if (options.pipeStdin) dup2(in.read, STDIN_FILENO);
    redirect(STDOUT_FILENO, options.out, out.write);
    redirect(STDERR_FILENO, options.err, err.write);
    for (const auto& [name, value] : options.env) setenv(name.c_str(), value.c_str(), 1);
    execvp(pointers[0], pointers.data());
    std::fprintf(stderr, "cannot run %s: %s\n", pointers[0], std::strerror(errno));
    _exit(127);
  }
  if (options.ownProcessGroup) setpgid(pid, pid);  // also here: the caller may signal the group at once
  for (int fd : {in.read, out.write, err.write}) {
    if (fd >= 0) close(fd);
  }
  return {pid, in.write, out.read, err.read};
}

}  // namespace phx::testing
