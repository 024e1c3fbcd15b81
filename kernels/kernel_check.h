// Argument checks for the kernels. kernels/ depends on nothing else of ours, so it carries its own: a malformed
// call (shapes that disagree, a null buffer) throws std::invalid_argument naming the kernel and the values, before
// any parallel region starts; the caller (the engine) turns it into its own error kind.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace phx::kernel_detail {

template <typename... Parts>
[[noreturn]] void throwBadArgument(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw std::invalid_argument(message.str());
}

}  // namespace phx::kernel_detail

// PHX_KERNEL_REQUIRE(cols == w.cols(), "matmul: x has ", cols, " columns, the weight expects ", w.cols());
// The message parts are only evaluated when the check fails.
#define PHX_KERNEL_REQUIRE(cond, ...)                                   \
  do {                                                                  \
    if (!(cond)) [[unlikely]]                                           \
      ::phx::kernel_detail::throwBadArgument(__VA_ARGS__);              \
  } while (0)
