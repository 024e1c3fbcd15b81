#include "common/log.h"

#include <cstdio>
#include <mutex>

namespace phx {
namespace {

std::mutex gLogMutex;
std::string gRole = "phalanx";
LogLevel gLevel = LogLevel::kInfo;

const char* levelTag(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "";
}

}  // namespace

void setLogRole(std::string role) {
  std::lock_guard lock(gLogMutex);
  gRole = std::move(role);
}

void setLogLevel(LogLevel level) {
  std::lock_guard lock(gLogMutex);
  gLevel = level;
}

void logMessage(LogLevel level, const std::string& message) {
  std::lock_guard lock(gLogMutex);
  if (level < gLevel) return;
  std::fprintf(stderr, "[%s] %s: %s\n", gRole.c_str(), levelTag(level), message.c_str());
}

}  // namespace phx
