// The phalanx subcommands. Each takes the arguments after its name and returns the process exit code; errors
// propagate as phx::Error to main(), which prints them and exits non-zero.
#pragma once

namespace phx::cli {

int makeModelCommand(int argc, char** argv);
int inspectCommand(int argc, char** argv);
int tokenizeCommand(int argc, char** argv);
int generateCommand(int argc, char** argv);
int benchCommand(int argc, char** argv);

}  // namespace phx::cli
