#include "cli/commands.h"
#include "common/error.h"

namespace phx::cli {

int tokenizeCommand(int argc, char** argv) { throwUnsupported("not built yet"); }

}  // namespace phx::cli
