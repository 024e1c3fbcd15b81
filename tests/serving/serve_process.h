// A real `phalanx serve` process for the serving tests: started on the tiny model on a free port (--port 0; the
// port is read from its stderr), stopped with SIGINT as a user would; and HTTP requests made with curl.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/common/test_files.h"

namespace phx::testing {

// text in single quotes for /bin/sh.
std::string quote(const std::string& text);

struct HttpResult {
  int status = 0;
  std::string headers;  // the raw header block
  std::string body;
};

class ServeProcess {
 public:
  // Starts `phalanx serve --model <tiny> --port 0 --threads 1 <extraArgs>` and waits until it listens.
  explicit ServeProcess(const std::vector<std::string>& extraArgs = {});
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url(const std::string& path = "") const;
  // `signal` (SIGINT: as Ctrl-C), then waits up to 60 s (a draining server finishes its requests first); the exit
  // code (-1 when it had to be killed).
  int stop(int signal = SIGINT);
  std::string stderrText() const;
  bool running() const;

  // curl: method, path, body (sent as a file: any bytes), extra curl arguments.
  HttpResult http(const std::string& method, const std::string& path, const std::string& body = "",
                  const std::vector<std::string>& curlArgs = {}) const;

 private:
  std::filesystem::path scratch_;
  pid_t pid_ = -1;
  int port_ = 0;
};

std::filesystem::path tinyModelDir();
std::filesystem::path scratchDir(const std::string& name);  // created empty
// Runs a shell command; its exit status and stdout.
std::pair<int, std::string> runShell(const std::string& command);

}  // namespace phx::testing
