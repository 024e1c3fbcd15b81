// phalanx: one multi-call binary; the first argument picks the subcommand.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "cli/version.h"
#include "common/error.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
};

constexpr Command kCommands[] = {
    {"make-model", "write a Phi-4-architecture checkpoint with random weights in the Hugging Face layout",
     phx::cli::makeModelCommand},
    {"inspect", "summarise and validate a checkpoint directory", phx::cli::inspectCommand},
    {"tokenize", "encode stdin to token ids, or decode ids back to text", phx::cli::tokenizeCommand},
    {"generate", "generate text in this process (or through a running cluster: --cluster), streaming it",
     phx::cli::generateCommand},
    {"bench", "prefill and decode tokens/s beside this machine's bandwidth and FMA limits", phx::cli::benchCommand},
    {"quantize", "write an INT8 copy of a BF16 checkpoint (per-channel weights + scales) that loads as is",
     phx::cli::quantizeCommand},
    {"bench-comm", "all-reduce latency and bandwidth: UCX (shared memory, TCP) against MPI_Allreduce",
     phx::cli::benchCommCommand},
    {"serve", "serve the model from this process over an OpenAI-compatible HTTP API", phx::cli::serveCommand},
    {"bench-serve", "throughput and latency of a running server against concurrency", phx::cli::benchServeCommand},
    {"plan", "print the shard plan of a tp x pp cluster: each rank's heads, columns, memory", phx::cli::planCommand},
    {"worker", "serve one rank of a cluster: load a shard and run steps for a coordinator", phx::cli::workerCommand},
    {"coordinator", "drive a cluster of workers and serve its OpenAI-compatible HTTP API",
     phx::cli::coordinatorCommand},
    {"up", "start a whole local cluster (workers + coordinator) and stop it on Ctrl-C", phx::cli::upCommand},
};

void printHelp() {
  std::printf("usage: phalanx COMMAND [options]\n\n"
              "Phalanx serves Microsoft's Phi-4 from a cluster of CPU-only machines.\n\ncommands:\n");
  for (const auto& command : kCommands) std::printf("  %-14s%s\n", command.name, command.summary);
  std::printf("\n'phalanx COMMAND --help' describes a command's options; 'phalanx --version' the build and CPU.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    printHelp();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::fputs(phx::cli::versionText().c_str(), stdout);
    return 0;
  }
  // Before any kernel runs: a clear refusal, not SIGILL in the middle of loading 29 GB.
  if (const std::string unsupported = phx::cli::unsupportedCpuMessage(); !unsupported.empty()) {
    std::fprintf(stderr, "%s\n", unsupported.c_str());
    return 1;
  }
  for (const auto& command : kCommands) {
    if (std::strcmp(argv[1], command.name) != 0) continue;
    try {
      return command.run(argc - 2, argv + 2);
    } catch (const phx::Error& error) {
      std::fprintf(stderr, "phalanx %s: %s: %s\n", command.name, std::string(phx::errorKindName(error.kind())).c_str(),
                   error.what());
      return error.kind() == phx::ErrorKind::kInvalidArgument ? 2 : 1;
    } catch (const std::exception& error) {
      std::fprintf(stderr, "phalanx %s: error: %s\n", command.name, error.what());
      return 1;
    }
  }
  std::fprintf(stderr, "phalanx: unknown command '%s' (see 'phalanx --help')\n", argv[1]);
  return 2;
}
