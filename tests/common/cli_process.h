// Runs the phalanx binary in a child process as a user would, capturing stdout and stderr, optionally sending it
// SIGINT once it has printed something (to test Ctrl-C).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace phx::testing {

struct ProcessResult {
  int exitCode = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// interruptOnOutput: send SIGINT as soon as stdout is non-empty (the first streamed text).
ProcessResult runPhalanx(const std::vector<std::string>& args, bool interruptOnOutput = false);

// `phalanx generate --model MODEL --threads 2 --json EXTRA...`: its JSON summary (a test failure when it fails).
nlohmann::json generateJson(const std::string& model, const std::vector<std::string>& extra);

}  // namespace phx::testing
