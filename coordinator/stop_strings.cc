#include "coordinator/stop_strings.h"

#include <algorithm>
#include <utility>

namespace phx {

StopStringFilter::StopStringFilter(std::vector<std::string> stopStrings) : stops_(std::move(stopStrings)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

std::string StopStringFilter::push(const std::string& text) {
  if (stopped_) return {};
  pending_ += text;
  size_t firstStop = std::string::npos;
  for (const auto& stop : stops_) firstStop = std::min(firstStop, pending_.find(stop));
  if (firstStop != std::string::npos) {
    stopped_ = true;
    return pending_.substr(0, firstStop);
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t holdBack = 0;
  for (const auto& stop : stops_) {
    for (size_t len = std::min(stop.size() - 1, pending_.size()); len > holdBack; --len) {
      if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
        holdBack = len;
        break;
      }
    }
  }
  std::string ready = pending_.substr(0, pending_.size() - holdBack);
  pending_.erase(0, pending_.size() - holdBack);
  return ready;
}

std::string StopStringFilter::finish() {
  if (stopped_) return {};
  return std::exchange(pending_, std::string());
}

}  // namespace phx
