// The phalanx subcommands. Each takes the arguments after its name and returns the process exit code; errors
// propagate as phx::Error to main(), which prints them and exits non-zero.
#pragma once

#include "cli/args.h"

namespace phx::cli {

int makeModelCommand(int argc, char** argv);
int inspectCommand(int argc, char** argv);
int tokenizeCommand(int argc, char** argv);
int generateCommand(int argc, char** argv);
int benchCommand(int argc, char** argv);
int quantizeCommand(int argc, char** argv);
int benchCommCommand(int argc, char** argv);
int serveCommand(int argc, char** argv);
int benchServeCommand(int argc, char** argv);
int planCommand(int argc, char** argv);
int workerCommand(int argc, char** argv);
int coordinatorCommand(int argc, char** argv);
int upCommand(int argc, char** argv);
// `phalanx bench --tp/--pp/--cluster`, given bench's parsed flags: end-to-end decode through a cluster
// (cli/bench_cluster.cc).
int benchCluster(const ParsedArgs& args);

}  // namespace phx::cli
