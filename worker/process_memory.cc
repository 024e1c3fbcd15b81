#include "worker/process_memory.h"

#include <fstream>
#include <sstream>
#include <string>

namespace phx {

ProcessMemory readProcessMemory() {
  ProcessMemory memory;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream fields(line);
    std::string key;
    int64_t kib = 0;
    fields >> key >> kib;
    if (key == "VmRSS:") memory.rssBytes = kib * 1024;
    if (key == "VmHWM:") memory.peakRssBytes = kib * 1024;
  }
  return memory;
}

}  // namespace phx
