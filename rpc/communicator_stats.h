// Counters every Communicator implementation keeps for metrics (phalanx_allreduce_*) and benchmarks.
#pragma once

#include <cstdint>

namespace phx {

struct CommunicatorStats {
  std::uint64_t allReduces = 0;       // allReduceSum calls completed
  std::uint64_t allReduceBytes = 0;   // payload bytes of those calls (element count x 4), not wire bytes
  double allReduceSeconds = 0;        // wall time spent inside allReduceSum
  std::uint64_t sends = 0;            // completed send calls
  std::uint64_t sendBytes = 0;
  std::uint64_t recvs = 0;            // completed recv calls
  std::uint64_t recvBytes = 0;
  double sendRecvSeconds = 0;         // wall time spent inside send and recv
};

}  // namespace phx
