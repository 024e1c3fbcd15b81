// phalanx: one multi-call binary; the first argument picks the subcommand.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
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
    {"generate", "generate text with the whole model in this process, streaming it", phx::cli::generateCommand},
    {"bench", "prefill and decode tokens/s beside this machine's bandwidth and FMA limits", phx::cli::benchCommand},
};

void printHelp() {
  std::printf("usage: phalanx COMMAND [options]\n\n"
              "Phalanx serves Microsoft's Phi-4 from a cluster of CPU-only machines.\n\ncommands:\n");
  for (const auto& command : kCommands) std::printf("  %-14s%s\n", command.name, command.summary);
  std::printf("\n'phalanx COMMAND --help' describes a command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    printHelp();
    return argc < 2 ? 2 : 0;
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
