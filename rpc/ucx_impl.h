// Internal to the UCX communicator (ucx_*.cc): the UCP handles, per-peer state and tag layout. Not for callers.
#pragma once

#include <ucp/api/ucp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rpc/ucx_communicator.h"

namespace phx {

struct UcxOp;

// A tag names one message: what it belongs to, who sent it, which connection generation, which step of a
// collective, and the sequence number of the call. Receives match all 64 bits, so all-reduce traffic never meets
// stage send/recv traffic, successive calls never meet, and a restarted peer's stale messages never match.
//   bit 63      kind (0 all-reduce, 1 point-to-point)
//   bits 52-62  sender's global worker index (up to 2048 workers)
//   bits 40-51  generation: a hash of the address table given to connect(), the same on every worker
//   bits 32-39  step within one collective (ring: up to 2 (n-1) steps)
//   bits 0-31   sequence number of the call (per group for all-reduce, per peer pair for send/recv)
enum class TagKind : std::uint64_t { kAllReduce = 0, kPointToPoint = 1 };
constexpr int kMaxUcxWorkers = 2048;
constexpr int kMaxCollectiveSteps = 256;
// Up to this many bytes sent per rank, all-reduce is one round of whole vectors (latency-bound); above, a ring;
// UcxCommunicator::tuneAllReduce replaces it with a measured crossover.
constexpr std::size_t kDirectAllReduceMaxBytes = 256 * 1024;
constexpr std::uint64_t kGenerationMask = 0xfffull << 40;

// Where chunk c of n of `count` elements begins in the ring all-reduce: the first count % n chunks get one more.
inline std::size_t ringChunkBegin(std::size_t count, int n, int c) {
  const std::size_t base = count / n, extra = count % n;
  return c * base + std::min<std::size_t>(c, extra);
}

inline std::uint64_t makeTag(TagKind kind, int source, std::uint64_t generation, int step, std::uint64_t seq) {
  return (static_cast<std::uint64_t>(kind) << 63) | (static_cast<std::uint64_t>(source & 0x7ff) << 52) |
         ((generation & 0xfff) << 40) | (static_cast<std::uint64_t>(step & 0xff) << 32) | (seq & 0xffffffffull);
}

struct UcxCommunicator::Impl {
  ucp_context_h context = nullptr;
  ucp_worker_h worker = nullptr;
  std::vector<std::byte> address;       // this worker's UCP address
  std::vector<ucp_ep_h> endpoints;      // by global worker index; null for self and for workers without address
  int self = 0;                         // global worker index
  std::vector<int> group;               // global indices of the TP group in rank order
  int rank = 0;                         // index of self in group
  std::uint64_t generation = 0;         // see makeTag
  bool connected = false;
  std::chrono::milliseconds timeout{10000};
  std::optional<std::chrono::milliseconds> stageTimeout;  // send/recv; unset: timeout
  const std::atomic<bool>* interrupt = nullptr;
  std::uint64_t allReduceSeq = 0;
  std::vector<std::uint64_t> sendSeq;   // by destination global index
  std::vector<std::uint64_t> recvSeq;   // by source global index
  std::vector<float> scratch;           // received vectors of the direct all-reduce / ring chunks
  std::vector<const float*> slotBuffer;  // each rank's vector in the direct all-reduce
  std::vector<UcxOp> opBuffer;          // the direct all-reduce's posted operations
  std::vector<float> sumBuffer;         // running sum of the direct all-reduce for 3+ ranks
  AllReducePayload payload = AllReducePayload::kF32;
  std::size_t directMaxBytesSent = kDirectAllReduceMaxBytes;
  std::vector<std::uint16_t> wireBuffer;  // BF16 payload: the vectors as sent and received
  CommunicatorStats stats;

  ~Impl();
  void closeEndpoints();
  void drainGeneration(std::uint64_t generation);
  ucp_ep_h endpointFor(int peer, const char* operation);
  void allReduceDirect(std::span<float> data, std::uint64_t seq);
  void allReduceRing(std::span<float> data, std::uint64_t seq);
  void allReduceDirectBf16(std::span<float> data, std::uint64_t seq);  // rpc/ucx_allreduce_bf16.cc
  void allReduceRingBf16(std::span<float> data, std::uint64_t seq);
};

// "worker 3" or "worker 3 (rank 1)", for messages.
std::string describePeer(const UcxCommunicator::Impl& impl, int peer);

}  // namespace phx
