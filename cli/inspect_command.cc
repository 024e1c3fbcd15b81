#include "cli/commands.h"
#include "common/error.h"

namespace phx::cli {

int inspectCommand(int argc, char** argv) { throwUnsupported("not built yet"); }

}  // namespace phx::cli
