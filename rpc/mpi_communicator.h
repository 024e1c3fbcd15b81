// The MPI data plane, for clusters launched by mpirun: the world rank is the global worker index, all-reduce is
// MPI_Allreduce on a communicator split off for the tensor-parallel group, send/recv address peers by world rank.
//
// MPI is initialized once per process with MPI_Init_thread(MPI_THREAD_SERIALIZED): a worker drives the data plane
// from one thread at a time (the step loop), but not necessarily always the same thread (the control plane's event
// loop may hand steps to a pool), which FUNNELED would forbid; MULTIPLE is not needed and costs Open MPI a lock on
// every call. MPI_Finalize runs at process exit (atexit), after every communicator is gone.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "rpc/communicator.h"
#include "rpc/communicator_stats.h"

namespace phx {

class MpiCommunicator final : public Communicator {
 public:
  // Initializes MPI once per process (see above); group = world ranks of the TP group in rank order, this
  // process's world rank among them. Collective over the whole world (MPI_Comm_split): every world rank calls it,
  // in the same order. Throws phx::Error (kInvalidArgument) naming the group when this rank is not in it.
  static std::unique_ptr<MpiCommunicator> create(const std::vector<int>& group);
  static int worldRank();
  static int worldSize();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override;
  int size() const override;
  void allReduceSum(std::span<float> data) override;  // MPI_Allreduce(MPI_SUM) on the group's communicator
  void send(int peer, std::span<const std::byte> data) override;  // peer: world rank
  void recv(int peer, std::span<std::byte> data) override;        // peer: world rank

  CommunicatorStats stats() const;

  struct Impl;  // the MPI_Comm handles (mpi_communicator.cc): keeps <mpi.h> out of this header

 private:
  explicit MpiCommunicator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace phx
