#include "monitoring/worker_health.h"

#include <cstdio>

namespace phx {
namespace {

const char* phaseName(WorkerHealth::Phase phase) {
  switch (phase) {
    case WorkerHealth::Phase::kStarting: return "starting";
    case WorkerHealth::Phase::kServing: return "serving";
    case WorkerHealth::Phase::kDraining: return "draining";
  }
  return "unknown";
}

}  // namespace

WorkerHealth::WorkerHealth() : lastBeat_(Clock::now().time_since_epoch().count()) {}

void WorkerHealth::setPhase(Phase phase) { phase_.store(phase); }

void WorkerHealth::setState(const std::string& state) {
  std::lock_guard lock(stateMutex_);
  state_ = state;
}

void WorkerHealth::heartbeat() { lastBeat_.store(Clock::now().time_since_epoch().count()); }

HttpReply WorkerHealth::reportAt(Clock::time_point now) const {
  const Phase phase = phase_.load();
  const Clock::duration loopAge = now - Clock::time_point(Clock::duration(lastBeat_.load()));
  const double ageSeconds = std::chrono::duration<double>(loopAge).count();
  const bool stalled = loopAge > kStallLimit;
  const bool healthy = phase == Phase::kServing && !stalled;
  std::string state;
  {
    std::lock_guard lock(stateMutex_);
    state = state_;
  }
  char body[256];
  std::snprintf(body, sizeof body,
                "{\"status\":\"%s\",\"phase\":\"%s\",\"state\":\"%s\",\"loop_age_seconds\":%.3f}\n",
                healthy ? "ok" : (stalled ? "stalled" : "unavailable"), phaseName(phase), state.c_str(), ageSeconds);
  return HttpReply{healthy ? 200 : 503, "application/json", body};
}

}  // namespace phx
