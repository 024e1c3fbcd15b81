// `phalanx --version`: what this binary is (version, commit, the instructions it was built for) and what it found
// on this CPU, so that a bug report or a node that refuses to start says which build met which machine.
#pragma once

#include <string>

namespace phx::cli {

std::string versionText();

// Where this CPU cannot run this build's kernels: the message naming the missing instructions; else empty.
std::string unsupportedCpuMessage();

}  // namespace phx::cli
