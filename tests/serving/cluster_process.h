// A real local cluster for the serving and monitoring tests: `phalanx up --model <tiny> --tp T` on free ports (the
// client port, a run of T worker ports and a run of T metrics ports), its worker and coordinator processes found
// among up's children, stopped with SIGINT as a user would (SIGKILL to its whole process group if that hangs).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/serving/serve_process.h"

namespace phx::testing {

class ClusterProcess {
 public:
  // Starts `phalanx up --model <model> --tp <tp> --no-pin <ports> <extraArgs>` with UCX over shared memory and waits
  // (up to 180 s: a loaded machine) for its "cluster ready" line. Throws with up's stderr when it does not come.
  explicit ClusterProcess(int tp = 2, const std::vector<std::string>& extraArgs = {},
                          const std::filesystem::path& model = tinyModelDir());
  ~ClusterProcess();
  ClusterProcess(const ClusterProcess&) = delete;
  ClusterProcess& operator=(const ClusterProcess&) = delete;

  int port() const { return port_; }
  int workerMetricsPort(int worker) const { return metricsPort_ + worker; }
  int workers() const { return tp_; }
  std::string url(const std::string& path = "") const;

  pid_t upPid() const { return pid_; }
  // The pids of up's children right now (-1 when absent, e.g. a worker between death and restart).
  pid_t coordinatorPid() const;
  pid_t workerPid(int worker) const;

  // SIGINT, then waits (up to 60 s); up's exit code, -1 when it had to be killed.
  int stop();
  bool running() const;
  std::string stderrText() const;  // up's, its children's included (they inherit it)

  HttpResult http(const std::string& method, const std::string& path, const std::string& body = "",
                  const std::vector<std::string>& curlArgs = {}) const;

 private:
  std::filesystem::path scratch_;
  pid_t pid_ = -1;
  int tp_ = 0;
  int port_ = 0;
  int workerPort_ = 0;
  int metricsPort_ = 0;
};

// VmRSS of a process in bytes (0 when it is gone).
long long residentBytes(pid_t pid);
// curl `method url` with `body` (sent as a file: any bytes) and extra arguments; files named after `stem`.
HttpResult curlRequest(const std::string& method, const std::string& url, const std::filesystem::path& stem,
                       const std::string& body = "", const std::vector<std::string>& curlArgs = {});

}  // namespace phx::testing
