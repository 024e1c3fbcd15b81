#include "tests/common/cli_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/common/test_files.h"
#include "tests/common/test_process.h"

namespace phx::testing {

ProcessResult runPhalanx(const std::vector<std::string>& args, bool interruptOnOutput) {
  const auto scratch = std::filesystem::temp_directory_path() / ("phx_cli_" + std::to_string(getpid()));
  std::filesystem::create_directories(scratch);
  const auto outFile = scratch / "stdout", errFile = scratch / "stderr";
  std::vector<std::string> argv = {PHX_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t pid =
      spawn(argv, {.out = ChildOutput::toFile(outFile), .err = ChildOutput::toFile(errFile)}).pid;
  int status = 0;
  bool reaped = false;
  if (interruptOnOutput) {
    while (!(reaped = waitpid(pid, &status, WNOHANG) == pid)) {
      std::error_code missing;  // file_size gives uintmax_t(-1), not 0, while the child has not created it yet
      const auto size = std::filesystem::file_size(outFile, missing);
      if (!missing && size > 0) {
        kill(pid, SIGINT);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  if (!reaped) waitpid(pid, &status, 0);
  ProcessResult result;
  if (WIFEXITED(status)) result.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.out = slurp(outFile);
  result.err = slurp(errFile);
  std::filesystem::remove_all(scratch);
  return result;
}

nlohmann::json generateJson(const std::string& model, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"generate", "--model", model, "--threads", "2", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const ProcessResult run = runPhalanx(args);
  EXPECT_EQ(run.exitCode, 0) << run.err;
  return nlohmann::json::parse(run.out, nullptr, /*allow_exceptions=*/false);
}

}  // namespace phx::testing
