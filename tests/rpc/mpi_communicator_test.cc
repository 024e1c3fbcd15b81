// The MPI communicator under mpirun (every rank runs this binary; ctest launches it with -np 2, 3 and 4), and UCX
// and MPI summing the same inputs: identical bits for integers and for two ranks (x0 + x1 either way), within a
// float tolerance of each other for random floats on more ranks (MPI picks its own summation order).
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "rpc/mpi_communicator.h"
#include "rpc/ucx_communicator.h"
#include "tests/rpc/communicator_inputs.h"

namespace phx::testing {
namespace {

const std::vector<std::size_t> kSizes = {1, 1000, 5120, 65536 + 7, 1 << 20};

std::vector<int> wholeWorld() {
  std::vector<int> group(MpiCommunicator::worldSize());
  for (std::size_t i = 0; i < group.size(); ++i) group[i] = static_cast<int>(i);
  return group;
}

TEST(MpiCommunicator, AllReduceSumsIntegersExactly) {
  auto comm = MpiCommunicator::create(wholeWorld());
  const int n = comm->size();
  ASSERT_EQ(comm->rank(), MpiCommunicator::worldRank());
  for (std::size_t count : kSizes) {
    std::vector<float> data(count);
    for (std::size_t i = 0; i < count; ++i) data[i] = integerInput(comm->rank(), i);
    comm->allReduceSum(data);
    for (std::size_t i = 0; i < count; ++i) {
      float expected = 0;
      for (int r = 0; r < n; ++r) expected += integerInput(r, i);
      ASSERT_EQ(data[i], expected) << "count " << count << " element " << i;
    }
  }
  EXPECT_EQ(comm->stats().allReduces, kSizes.size());
}

TEST(MpiCommunicator, SplitGroupsReduceSeparately) {
  // Pairs {0,1}, {2,3}, ...; an odd last rank is a group of one.
  const int me = MpiCommunicator::worldRank();
  const int first = me - me % 2;
  std::vector<int> group = {first};
  if (first + 1 < MpiCommunicator::worldSize()) group.push_back(first + 1);
  auto comm = MpiCommunicator::create(group);
  std::vector<float> data(100, static_cast<float>(me + 1));
  comm->allReduceSum(data);
  float expected = 0;
  for (int member : group) expected += static_cast<float>(member + 1);
  EXPECT_EQ(data[99], expected);
  EXPECT_EQ(comm->rank(), me % 2);
}

TEST(MpiCommunicator, SendRecvAroundTheWorld) {
  auto comm = MpiCommunicator::create(wholeWorld());
  const int me = MpiCommunicator::worldRank(), n = MpiCommunicator::worldSize();
  for (std::size_t bytes : {std::size_t{1}, std::size_t{20480}, std::size_t{3 << 20}}) {
    std::vector<std::byte> out(bytes), in(bytes);
    for (std::size_t i = 0; i < bytes; ++i) out[i] = static_cast<std::byte>((i + me) & 0xff);
    // Even ranks send first, odd ranks receive first: no deadlock even when MPI_Send waits for the receiver.
    const int next = (me + 1) % n, prev = (me + n - 1) % n;
    if (me % 2 == 0) {
      comm->send(next, out);
      comm->recv(prev, in);
    } else {
      comm->recv(prev, in);
      comm->send(next, out);
    }
    for (std::size_t i = 0; i < bytes; ++i) ASSERT_EQ(in[i], static_cast<std::byte>((i + prev) & 0xff)) << bytes;
  }
}

TEST(MpiCommunicator, RefusesAGroupWithoutThisRank) {
  const int me = MpiCommunicator::worldRank();
  try {
    MpiCommunicator::create({me + 1000});
    FAIL() << "a group without this rank was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInvalidArgument);
  }
}

TEST(UcxAndMpi, GiveTheSameSums) {
  auto mpi = MpiCommunicator::create(wholeWorld());
  const int me = mpi->rank(), n = mpi->size();
  // Swap UCX addresses through MPI (the control plane's job in a cluster).
  auto ucx = UcxCommunicator::create();
  const auto mine = ucx->address();
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(n);
  MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::vector<int> offsets(n, 0);
  for (int r = 1; r < n; ++r) offsets[r] = offsets[r - 1] + lengths[r - 1];
  std::vector<std::byte> all(offsets[n - 1] + lengths[n - 1]);
  MPI_Allgatherv(mine.data(), length, MPI_BYTE, all.data(), lengths.data(), offsets.data(), MPI_BYTE, MPI_COMM_WORLD);
  std::vector<std::vector<std::byte>> addresses(n);
  for (int r = 0; r < n; ++r) addresses[r].assign(all.begin() + offsets[r], all.begin() + offsets[r] + lengths[r]);
  ucx->connect(addresses, me, wholeWorld());

  for (std::size_t count : kSizes) {
    std::vector<float> viaMpi(count), viaUcx;
    for (std::size_t i = 0; i < count; ++i) viaMpi[i] = integerInput(me, i);
    viaUcx = viaMpi;
    mpi->allReduceSum(viaMpi);
    ucx->allReduceSum(viaUcx);
    ASSERT_EQ(std::memcmp(viaMpi.data(), viaUcx.data(), count * sizeof(float)), 0) << "integers, count " << count;

    viaMpi = randomInput(me, count, 99);
    viaUcx = viaMpi;
    mpi->allReduceSum(viaMpi);
    ucx->allReduceSum(viaUcx);
    if (n == 2) {
      ASSERT_EQ(std::memcmp(viaMpi.data(), viaUcx.data(), count * sizeof(float)), 0) << "2 ranks, count " << count;
    } else {
      const float tolerance = n * n * 1.2e-7f;  // n values in [-1, 1], two summation orders
      for (std::size_t i = 0; i < count; ++i) ASSERT_NEAR(viaMpi[i], viaUcx[i], tolerance) << count << " " << i;
    }
  }
}

}  // namespace
}  // namespace phx::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  phx::MpiCommunicator::worldRank();  // MPI_Init_thread before any test; finalized at exit
  return RUN_ALL_TESTS();
}
