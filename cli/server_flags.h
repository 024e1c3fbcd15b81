// What `phalanx serve` and `phalanx coordinator` share: the HTTP API's flags, turned into ServerOptions, and a
// run-until-Ctrl-C wrapper around runServer. One place, so the two front doors take the same options.
#pragma once

#include <filesystem>
#include <functional>
#include <stop_token>

#include "cli/args.h"
#include "coordinator/server.h"
#include "model/config.h"

namespace phx::cli {

// --host --port --api-key-file --model-name --max-batch-tokens --max-running --max-waiting --max-connections
// --body-timeout --drain-timeout --no-prefix-cache
void addServerFlags(ArgParser& parser, int defaultPort);

// Validates the flags (errors name the flag) and reads the API key file.
ServerOptions serverOptionsFrom(const ParsedArgs& args, const std::filesystem::path& modelDir,
                                const ModelConfig& config);

// Calls serve(stop) on this thread; SIGINT or SIGTERM requests the stop.
void serveUntilSignalled(const std::function<void(std::stop_token)>& serve);

}  // namespace phx::cli
