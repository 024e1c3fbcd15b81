// The UCX data plane: a tensor-parallel group's all-reduce and stage-to-stage send/recv over UCP tag messages.
// Transports are whatever UCX picks from UCX_TLS / UCX_NET_DEVICES (shared memory and TCP here, RDMA verbs in a
// datacenter); worker addresses are swapped by the caller (the Cap'n Proto control plane, or a test's pipe).
//
// Threading: the UCP worker runs in SINGLE thread mode; one thread at a time drives a communicator. Every wait busy
// polls ucp_worker_progress (lowest latency for 10 KiB decode all-reduces) and checks a deadline, so a dead or hung
// peer makes the call throw phx::Error (kDisconnected) naming it instead of hanging the step.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "rpc/communicator.h"
#include "rpc/communicator_stats.h"

namespace phx {

// What tuneAllReduce measured and chose.
struct AllReduceTuning {
  struct Size {
    std::size_t bytes = 0;  // the vector's
    double directUs = 0, ringUs = 0;  // median of a few calls, mean over the ranks
  };
  std::vector<Size> sizes;
  std::size_t directMaxBytesSent = 0;  // direct while a rank sends at most this many bytes; ring above
};

class UcxCommunicator final : public Communicator {
 public:
  // Creates the UCP context and worker; transports come from UCX_TLS / UCX_NET_DEVICES as UCX reads them.
  // Throws phx::Error (kDisconnected: the data plane is unavailable) naming the UCX call that failed.
  static std::unique_ptr<UcxCommunicator> create();
  ~UcxCommunicator() override;
  UcxCommunicator(const UcxCommunicator&) = delete;
  UcxCommunicator& operator=(const UcxCommunicator&) = delete;

  // This process's UCP worker address, to be swapped through the control plane.
  std::vector<std::byte> address() const;

  // (Re)connects: addresses[i] is worker i's address (global worker index), self is this worker's index, group
  // lists the global indices of this worker's tensor-parallel group in rank order (self among them). Callable
  // again after a peer restarts (old endpoints are closed and replaced). An empty address means "no endpoint"
  // (e.g. a worker this one never talks to).
  void connect(const std::vector<std::vector<std::byte>>& addresses, int self, const std::vector<int>& group);

  // Every wait (all-reduce, send, recv) gives up after this long, throwing phx::Error (kDisconnected) that names
  // the peer ("no data from worker 2 within 5 s"), so a dead peer never hangs a step. Default 10 s.
  void setTimeout(std::chrono::milliseconds timeout);
  // Point-to-point waits (a pipeline stage's hand-off) take longer: a stage waits while its neighbour computes a
  // whole step (a long prefill chunk), and with several steps in flight it waits on a step ahead of its own.
  // Default: the same as setTimeout.
  void setStageTimeout(std::chrono::milliseconds timeout);
  // While *flag is true, every wait gives up at once (kDisconnected): the worker sets it from its event loop when
  // the coordinator rejoins the data plane, so a compute thread waiting on a peer that is gone is free for the
  // rejoin at once rather than at a timeout. Null: none.
  void setInterrupt(const std::atomic<bool>* flag);

  // Chooses this group's all-reduce algorithm by message size from a measurement, as the CPU collective runtimes
  // tune theirs: times the direct all-reduce (one round of whole vectors) and the ring (2 (n-1) rounds of 1/n
  // chunks) at 1, 4 and 16 MiB, above the fixed crossover, agrees on the median timings (summed over the ranks, so
  // every rank decides from the same numbers) and keeps direct up to the largest size below which it never lost.
  // A collective: every rank of the group calls it, right after connect(). Untuned: direct up to 256 KiB sent a
  // rank, ring above. Only two-rank groups are tuned, where both algorithms give the same floats
  // (ucx_allreduce_tuning.cc says why); larger groups and the BF16 payload keep the fixed crossover.
  AllReduceTuning tuneAllReduce();

  // What the all-reduce sends (default f32; every group member must use the same): BF16 halves the bytes, every
  // sum is still taken in f32 and every rank still ends with the same floats.
  void setPayload(AllReducePayload payload);

  int rank() const override;
  int size() const override;
  // Sums in rank order on every rank, so every rank ends with bitwise identical floats.
  void allReduceSum(std::span<float> data) override;
  void send(int peer, std::span<const std::byte> data) override;
  void recv(int peer, std::span<std::byte> data) override;

  // All-reduce count, bytes and time since creation, for metrics and benchmarks.
  CommunicatorStats stats() const;

  struct Impl;  // UCP handles and per-peer state (ucx_communicator.cc)

 private:
  explicit UcxCommunicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace phx
