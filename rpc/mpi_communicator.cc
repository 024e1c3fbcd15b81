#include "rpc/mpi_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <string>

#include "common/elapsed.h"
#include "common/error.h"

namespace phx {
namespace {

// Send/recv between stages use their own duplicate of MPI_COMM_WORLD and this tag, so they never match the
// group's collectives or anything else the process does with MPI.
constexpr int kStageTag = 17;

void throwMpi(const char* call, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(ErrorKind::kDisconnected,
              std::string("MPI data plane: ") + call + " failed: " + std::string(text, length));
}

void check(const char* call, int code) {
  if (code != MPI_SUCCESS) throwMpi(call, code);
}

void finalizeAtExit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

// MPI_Init_thread once per process, SERIALIZED (see the header for why). Errors return codes instead of aborting
// the job, so they become phx::Error naming the call.
void initializeOnce() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  check("MPI_Init_thread", MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided));
  if (provided < MPI_THREAD_SERIALIZED) {
    throw Error(ErrorKind::kUnsupported, "MPI provides thread level " + std::to_string(provided) +
                                             ", the data plane needs MPI_THREAD_SERIALIZED");
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::atexit(finalizeAtExit);
}

int checkedCount(std::size_t count, const char* what) {
  if (count > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throwInvalidArgument(std::string("MPI ") + what + ": " + std::to_string(count) +
                         " elements exceed MPI's int count");
  }
  return static_cast<int>(count);
}

}  // namespace

struct MpiCommunicator::Impl {
  MPI_Comm group = MPI_COMM_NULL;   // the TP group, ranks in group order
  MPI_Comm stages = MPI_COMM_NULL;  // duplicate of the world for send/recv
  int rank = 0;
  int size = 1;
  CommunicatorStats stats;

  ~Impl() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    if (group != MPI_COMM_NULL) MPI_Comm_free(&group);
    if (stages != MPI_COMM_NULL) MPI_Comm_free(&stages);
  }
};

MpiCommunicator::MpiCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MpiCommunicator::~MpiCommunicator() = default;

int MpiCommunicator::worldRank() {
  initializeOnce();
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int MpiCommunicator::worldSize() {
  initializeOnce();
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::create(const std::vector<int>& group) {
  const int me = worldRank();
  const int world = worldSize();
  auto position = std::find(group.begin(), group.end(), me);
  bool valid = position != group.end();
  for (int member : group) {
    valid = valid && member >= 0 && member < world && std::count(group.begin(), group.end(), member) == 1;
  }
  if (!valid) {
    std::string list;
    for (int member : group) {
      if (!list.empty()) list += ',';
      list += std::to_string(member);
    }
    throwInvalidArgument("MPI communicator: group [" + list + "] must hold distinct world ranks below " +
                         std::to_string(world) + " including this rank " + std::to_string(me));
  }
  auto impl = std::make_unique<Impl>();
  impl->rank = static_cast<int>(position - group.begin());
  impl->size = static_cast<int>(group.size());
  // Every world rank splits at once; the colour is the group's first member (groups are disjoint), the key the
  // position in the group, so MPI ranks follow group order.
  check("MPI_Comm_split", MPI_Comm_split(MPI_COMM_WORLD, group.front(), impl->rank, &impl->group));
  check("MPI_Comm_dup", MPI_Comm_dup(MPI_COMM_WORLD, &impl->stages));
  MPI_Comm_set_errhandler(impl->group, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(impl->stages, MPI_ERRORS_RETURN);
  int splitSize = 0;
  MPI_Comm_size(impl->group, &splitSize);
  if (splitSize != impl->size) {
    throwInvalidArgument("MPI communicator: the group starting at world rank " + std::to_string(group.front()) +
                         " has " + std::to_string(splitSize) + " members by MPI_Comm_split but " +
                         std::to_string(impl->size) + " were given: every rank must pass the same group");
  }
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(std::move(impl)));
}

int MpiCommunicator::rank() const { return impl_->rank; }
int MpiCommunicator::size() const { return impl_->size; }
CommunicatorStats MpiCommunicator::stats() const { return impl_->stats; }

void MpiCommunicator::allReduceSum(std::span<float> data) {
  if (impl_->size == 1 || data.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  check("MPI_Allreduce", MPI_Allreduce(MPI_IN_PLACE, data.data(), checkedCount(data.size(), "all-reduce"), MPI_FLOAT,
                                       MPI_SUM, impl_->group));
  ++impl_->stats.allReduces;
  impl_->stats.allReduceBytes += data.size_bytes();
  impl_->stats.allReduceSeconds += secondsSince(start);
}

void MpiCommunicator::send(int peer, std::span<const std::byte> data) {
  const auto start = std::chrono::steady_clock::now();
  check("MPI_Send", MPI_Send(data.data(), checkedCount(data.size(), "send"), MPI_BYTE, peer, kStageTag,
                             impl_->stages));
  ++impl_->stats.sends;
  impl_->stats.sendBytes += data.size();
  impl_->stats.sendRecvSeconds += secondsSince(start);
}

void MpiCommunicator::recv(int peer, std::span<std::byte> data) {
  const auto start = std::chrono::steady_clock::now();
  MPI_Status status;
  check("MPI_Recv", MPI_Recv(data.data(), checkedCount(data.size(), "recv"), MPI_BYTE, peer, kStageTag,
                             impl_->stages, &status));
  int received = 0;
  MPI_Get_count(&status, MPI_BYTE, &received);
  if (static_cast<std::size_t>(received) != data.size()) {
    throw Error(ErrorKind::kInternal, "MPI recv from world rank " + std::to_string(peer) + ": got " +
                                          std::to_string(received) + " bytes, expected " +
                                          std::to_string(data.size()));
  }
  ++impl_->stats.recvs;
  impl_->stats.recvBytes += data.size();
  impl_->stats.sendRecvSeconds += secondsSince(start);
}

}  // namespace phx
