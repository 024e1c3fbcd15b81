#include "common/host_port.h"

#include <charconv>

namespace phx {

std::optional<HostPort> parseHostPort(std::string_view text, int minPort) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view digits = text.substr(colon + 1);
  int port = -1;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || port < minPort ||
      port > 65535) {
    return std::nullopt;
  }
  return HostPort{std::string(text.substr(0, colon)), port};
}

}  // namespace phx
