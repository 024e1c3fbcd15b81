// A worker's answer to GET /health on its metrics port, for Kubernetes' readiness and liveness probes (helm/): 200
// while it serves control connections and its event loop turns, 503 while it starts, while it drains after
// SIGTERM, and when its event loop has not turned for kStallLimit, which is a hung worker that still holds its
// port. The body is JSON: {"status", "phase", "state" (the control plane's WorkerState), "loop_age_seconds"}.
// Thread-safe: the event loop writes, the HTTP server's threads read.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "monitoring/metrics_exposer.h"

namespace phx {

class WorkerHealth {
 public:
  enum class Phase { kStarting, kServing, kDraining };
  using Clock = std::chrono::steady_clock;
  // The event loop beats about once a second and answers health during a long prefill (the compute runs on its
  // own thread), so half a minute without a beat is a hang, not a busy worker.
  static constexpr std::chrono::seconds kStallLimit{30};

  WorkerHealth();
  void setPhase(Phase phase);
  // The control plane's state name (rpc/phalanx.capnp WorkerState), e.g. "ready".
  void setState(const std::string& state);
  // The event loop is turning.
  void heartbeat();

  HttpReply report() const { return reportAt(Clock::now()); }
  HttpReply reportAt(Clock::time_point now) const;

 private:
  std::atomic<Phase> phase_{Phase::kStarting};
  std::atomic<Clock::rep> lastBeat_;
  mutable std::mutex stateMutex_;
  std::string state_ = "idle";
};

}  // namespace phx
