// Starting a program in a child process for the tests: one fork + exec for every helper that runs `phalanx`,
// `prometheus` or `mpirun` (cli_process, serve_process, cluster_process, worker_processes, prometheus_server,
// make_model_test). Each helper keeps its own way of waiting, since what it waits for differs.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace phx::testing {

// Where one of the child's output streams goes.
struct ChildOutput {
  enum class Kind { kInherit, kNull, kFile, kPipe, kStdout };  // kStdout: stderr joins stdout
  Kind kind = Kind::kInherit;
  std::filesystem::path file;  // kFile: created or truncated

  static ChildOutput null() { return {Kind::kNull, {}}; }
  static ChildOutput toFile(std::filesystem::path path) { return {Kind::kFile, std::move(path)}; }
  static ChildOutput pipe() { return {Kind::kPipe, {}}; }
  static ChildOutput sameAsStdout() { return {Kind::kStdout, {}}; }
};

struct SpawnOptions {
  ChildOutput out, err;
  bool pipeStdin = false;
  std::map<std::string, std::string> env;  // set in the child on top of this process's environment
  bool ownProcessGroup = false;            // the child leads a group of its own (killable as a whole)
};

struct SpawnedChild {
  pid_t pid = -1;
  int stdinFd = -1;  // write end, with pipeStdin
  int outFd = -1;    // read ends, with ChildOutput::pipe()
  int errFd = -1;
};

// Runs argv (argv[0] looked up on the PATH unless it holds a '/'). Throws std::runtime_error when a pipe or fork
// fails; a program that cannot be executed exits its child with 127, after saying why on its stderr.
SpawnedChild spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

}  // namespace phx::testing
