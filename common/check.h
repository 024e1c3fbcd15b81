// Invariants in hot code: PHX_CHECK aborts with the failing expression and the values that broke it. Bad input
// must never reach a PHX_CHECK; it is rejected earlier with a phx::Error.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace phx::detail {

[[noreturn]] inline void checkFailed(const char* file, int line, const char* expr, const std::string& values) {
  std::fprintf(stderr, "%s:%d: check failed: %s %s\n", file, line, expr, values.c_str());
  std::abort();
}

template <typename A, typename B>
std::string describePair(const A& a, const B& b) {
  std::ostringstream out;
  out << "(" << a << " vs " << b << ")";
  return out.str();
}

}  // namespace phx::detail

#define PHX_CHECK(cond)                                                       \
  do {                                                                        \
    if (!(cond)) [[unlikely]]                                                 \
      ::phx::detail::checkFailed(__FILE__, __LINE__, #cond, std::string());   \
  } while (0)

#define PHX_CHECK_OP(a, op, b)                                                                           \
  do {                                                                                                   \
    const auto& phxA = (a);                                                                              \
    const auto& phxB = (b);                                                                              \
    if (!(phxA op phxB)) [[unlikely]]                                                                    \
      ::phx::detail::checkFailed(__FILE__, __LINE__, #a " " #op " " #b,                                  \
                                 ::phx::detail::describePair(phxA, phxB));                              \
  } while (0)

#define PHX_CHECK_EQ(a, b) PHX_CHECK_OP(a, ==, b)
#define PHX_CHECK_LE(a, b) PHX_CHECK_OP(a, <=, b)
#define PHX_CHECK_LT(a, b) PHX_CHECK_OP(a, <, b)
