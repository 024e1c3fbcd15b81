// The data plane as the engine sees it: sums across the ranks of a tensor-parallel group, and point-to-point
// transfers between pipeline stages. The decoder layer calls allReduceSum where the math needs it (after o_proj
// and after down_proj); what carries the bytes (nothing for one rank; UCX or MPI in a cluster) is behind this
// interface, so the layer never knows how many ranks there are.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace phx {

// What a tensor-parallel all-reduce carries between ranks: f32 vectors, or BF16 ones (half the bytes; each rank
// sums what it receives in f32).
enum class AllReducePayload { kF32, kBf16 };
const char* allReducePayloadName(AllReducePayload payload);
// "f32" or "bf16"; anything else throws phx::Error (kInvalidArgument) naming --allreduce-dtype.
AllReducePayload parseAllReducePayload(const std::string& name);

class Communicator {
 public:
  virtual ~Communicator() = default;

  // This rank and the number of ranks of the tensor-parallel group.
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // data <- sum over the group's ranks of data, element-wise, the same on every rank. Every rank calls it with the
  // same length, in the same order.
  virtual void allReduceSum(std::span<float> data) = 0;

  // Blocking transfers to and from a peer process (e.g. hidden states to the next pipeline stage). `peer` is an
  // index into the cluster's worker list; both sides agree on the length.
  virtual void send(int peer, std::span<const std::byte> data) = 0;
  virtual void recv(int peer, std::span<std::byte> data) = 0;
};

// One rank alone: all-reduce leaves the data as it is; there is no peer to send to or receive from.
class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allReduceSum(std::span<float>) override {}
  // Throw phx::Error (invalid argument) naming the peer: a single rank has none.
  void send(int peer, std::span<const std::byte> data) override;
  void recv(int peer, std::span<std::byte> data) override;
};

}  // namespace phx
