// "HOST:PORT", as every address flag and endpoint list in Phalanx is written: split at the last colon, the port a
// decimal number. One parser, so a worker's --listen, a coordinator's --workers entries, --metrics and a client's
// server address accept exactly the same text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace phx {

struct HostPort {
  std::string host;
  int port = 0;
};

// Nullopt unless `text` is a non-empty host, a colon and a port in [minPort, 65535] (0 lets the system choose).
std::optional<HostPort> parseHostPort(std::string_view text, int minPort = 1);

}  // namespace phx
