// Minimal leveled logging to stderr, with the process's role in each line (e.g. "worker 3"), so the interleaved
// output of a local cluster stays readable.
#pragma once

#include <string>

namespace phx {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

void setLogRole(std::string role);
void setLogLevel(LogLevel level);
void logMessage(LogLevel level, const std::string& message);

inline void logInfo(const std::string& message) { logMessage(LogLevel::kInfo, message); }
inline void logWarning(const std::string& message) { logMessage(LogLevel::kWarning, message); }
inline void logError(const std::string& message) { logMessage(LogLevel::kError, message); }

}  // namespace phx
