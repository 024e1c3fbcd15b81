// The UCX communicator between real processes over shared memory (UCX_TLS=sm,self) and TCP on loopback
// (UCX_TLS=tcp,self, UCX_NET_DEVICES=lo): all-reduce sums for 2-4 ranks and 1 to 4 Mi elements, rank-identical
// results, send/recv beside all-reduces, a dead peer's timeout and a reconnect after a restart.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/bf16.h"
#include "rpc/ucx_communicator.h"
#include "tests/rpc/communicator_inputs.h"
#include "tests/rpc/rank_launcher.h"

namespace phx::testing {
namespace {

const std::vector<std::size_t> kSizes = {1, 3, 1000, 5120, 3 * 5120, 65536 + 7, 1 << 20, 4 << 20};

std::vector<int> iota(int n) {
  std::vector<int> group(n);
  for (int i = 0; i < n; ++i) group[i] = i;
  return group;
}

// Every rank publishes its result under `label`; rank 0 checks that each other rank ended with the same bytes.
void expectRankIdentical(SharedDir& dir, const std::string& label, int self, int n, const std::vector<float>& data) {
  dir.put(label + "." + std::to_string(self), data.data(), data.size() * sizeof(float));
  if (self != 0) return;
  for (int r = 1; r < n; ++r) {
    const auto other = dir.await(label + "." + std::to_string(r));
    PHX_CHILD_CHECK(other.size() == data.size() * sizeof(float) &&
                        std::memcmp(other.data(), data.data(), other.size()) == 0,
                    "rank " + std::to_string(r) + " ended with other floats than rank 0, " + label);
  }
}

// Every rank's integer inputs at every kSizes count, summed: exact (integers below 2^24 add exactly), and with a
// shared dir, bitwise the same on every rank.
void expectExactIntegerSums(Communicator& comm, int self, int n, const std::string& what, SharedDir* dir = nullptr) {
  for (std::size_t count : kSizes) {
    std::vector<float> data(count);
    for (std::size_t i = 0; i < count; ++i) data[i] = integerInput(self, i);
    comm.allReduceSum(data);
    for (std::size_t i = 0; i < count; ++i) {
      float expected = 0;
      for (int r = 0; r < n; ++r) expected += integerInput(r, i);
      PHX_CHILD_CHECK(data[i] == expected, what + "n=" + std::to_string(n) + " count=" + std::to_string(count) +
                                               " element " + std::to_string(i) + ": " + std::to_string(data[i]) +
                                               " != " + std::to_string(expected));
    }
    if (dir) expectRankIdentical(*dir, what + std::to_string(count), self, n, data);
  }
}

class UcxCommunicatorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void expectAllPass(const std::vector<int>& results) {
    for (std::size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i], 0) << "rank process " << i;
  }
};

TEST_P(UcxCommunicatorTest, AllReduceSumsIntegersExactly) {
  for (int n : {2, 3, 4}) {
    SharedDir dir;
    expectAllPass(runChildren(n, {ucxEnv(GetParam())}, [&](int self) {
      auto comm = UcxCommunicator::create();
      connectThroughDir(*comm, dir, "addr", n, self, iota(n));
      PHX_CHILD_CHECK(comm->rank() == self && comm->size() == n, "rank and size follow the group");
      expectExactIntegerSums(*comm, self, n, "");
      PHX_CHILD_CHECK(comm->stats().allReduces == kSizes.size(), "stats count every all-reduce");
    }));
  }
}

TEST_P(UcxCommunicatorTest, RandomFloatsMatchDoubleReferenceAndAreRankIdentical) {
  for (int n : {2, 3, 4}) {
    SharedDir dir;
    expectAllPass(runChildren(n, {ucxEnv(GetParam())}, [&](int self) {
      auto comm = UcxCommunicator::create();
      connectThroughDir(*comm, dir, "addr", n, self, iota(n));
      for (std::size_t count : kSizes) {
        std::vector<float> data = randomInput(self, count, 1234);
        comm->allReduceSum(data);
        std::vector<double> reference(count, 0.0);
        for (int r = 0; r < n; ++r) {
          const auto input = randomInput(r, count, 1234);
          for (std::size_t i = 0; i < count; ++i) reference[i] += input[i];
        }
        // n floats in [-1, 1] summed in any order: error below n * eps(float) * n.
        const double tolerance = n * n * 1.2e-7;
        for (std::size_t i = 0; i < count; ++i) {
          PHX_CHILD_CHECK(std::abs(data[i] - reference[i]) <= tolerance,
                          "count=" + std::to_string(count) + " element " + std::to_string(i));
        }
        expectRankIdentical(dir, "sum." + std::to_string(count), self, n, data);
      }
    }));
  }
}

// The BF16 payload: half the bytes; in the one-round exchange exactly the rank-order f32 sum of every rank's rounded
// vector, in the ring within BF16's rounding of each partial sum; bitwise the same on every rank either way.
TEST_P(UcxCommunicatorTest, Bf16PayloadSumsRoundedVectorsInF32OnEveryRankAlike) {
  for (int n : {2, 3}) {
    SharedDir dir;
    expectAllPass(runChildren(n, {ucxEnv(GetParam())}, [&](int self) {
      auto comm = UcxCommunicator::create();
      connectThroughDir(*comm, dir, "addr", n, self, iota(n));
      comm->setPayload(AllReducePayload::kBf16);
      uint64_t wireBytes = 0;
      for (std::size_t count : kSizes) {
        std::vector<float> data = randomInput(self, count, 99);
        comm->allReduceSum(data);
        wireBytes += count * 2;
        const bool oneRound = count * 2 * (n - 1) <= 256 * 1024;
        std::vector<std::vector<float>> inputs;
        for (int r = 0; r < n; ++r) inputs.push_back(randomInput(r, count, 99));
        for (std::size_t i = 0; i < count; ++i) {
          float rounded = 0;
          double exact = 0;
          for (int r = 0; r < n; ++r) {
            const float x = inputs[size_t(r)][i];
            rounded += bf16ToFloat(floatToBf16(x));
            exact += x;
          }
          // Each of n values in [-1, 1] off by at most 2^-9 of itself, each partial sum rounded once on the ring.
          const bool close = oneRound ? data[i] == rounded : std::abs(data[i] - exact) <= n * n * 0x1p-8;
          PHX_CHILD_CHECK(close, "n=" + std::to_string(n) + " count=" + std::to_string(count) + " element " +
                                     std::to_string(i) + ": " + std::to_string(data[i]) + " vs " +
                                     std::to_string(oneRound ? rounded : exact));
          if (!close) break;
        }
        expectRankIdentical(dir, "bf16." + std::to_string(count), self, n, data);
      }
      PHX_CHILD_CHECK(comm->stats().allReduceBytes == wireBytes, "stats count the BF16 bytes sent");
    }));
  }
}

// The algorithm chosen at connect from a measurement: two ranks measure (the same crossover on every rank, since they
// decide from the same all-reduced timings, or their all-reduces would stop matching); three keep the fixed
// crossover (their algorithms add in other orders); the sums stay exact and rank-identical at every size.
TEST_P(UcxCommunicatorTest, TunedAlgorithmIsTheSameOnEveryRankAndSumsStayExact) {
  for (int n : {2, 3}) {
    SharedDir dir;
    expectAllPass(runChildren(n, {ucxEnv(GetParam())}, [&](int self) {
      auto comm = UcxCommunicator::create();
      connectThroughDir(*comm, dir, "addr", n, self, iota(n));
      const AllReduceTuning tuning = comm->tuneAllReduce();
      if (n > 2) {
        PHX_CHILD_CHECK(tuning.sizes.empty() && tuning.directMaxBytesSent == 256 * 1024, "three ranks keep it fixed");
      } else {
        PHX_CHILD_CHECK(!tuning.sizes.empty() && tuning.sizes.front().bytes == 1024 * 1024, "sizes measured");
      }
      for (const auto& size : tuning.sizes) {
        PHX_CHILD_CHECK(size.directUs > 0 && size.ringUs > 0, "a timing for each algorithm");
      }
      const std::uint64_t choice = tuning.directMaxBytesSent;
      dir.put("choice." + std::to_string(self), &choice, sizeof choice);
      for (int r = 0; r < n; ++r) {
        const auto other = dir.await("choice." + std::to_string(r));
        PHX_CHILD_CHECK(other.size() == sizeof choice && std::memcmp(other.data(), &choice, sizeof choice) == 0,
                        "rank " + std::to_string(r) + " chose another crossover than rank " + std::to_string(self));
      }
      expectExactIntegerSums(*comm, self, n, "tuned, ", &dir);
    }));
  }
}

TEST_P(UcxCommunicatorTest, SendRecvBesideAllReduces) {
  // Three workers: 0 and 1 form a TP group; 2 is the next pipeline stage. Point-to-point traffic interleaves with
  // the group's all-reduces, so the tags of both must stay apart.
  SharedDir dir;
  expectAllPass(runChildren(3, {ucxEnv(GetParam())}, [&](int self) {
    auto comm = UcxCommunicator::create();
    const std::vector<int> group = self == 2 ? std::vector<int>{2} : std::vector<int>{0, 1};
    connectThroughDir(*comm, dir, "addr", 3, self, group);
    auto pattern = [](int from, std::size_t bytes, int salt) {
      std::vector<std::byte> data(bytes);
      for (std::size_t i = 0; i < bytes; ++i) data[i] = static_cast<std::byte>((i * 31 + from * 7 + salt) & 0xff);
      return data;
    };
    for (std::size_t bytes : {std::size_t{1}, std::size_t{20480}, std::size_t{3 << 20}}) {
      for (int salt = 0; salt < 3; ++salt) {
        if (self < 2) {
          comm->send(2, pattern(self, bytes, salt));  // both ranks to the next stage
          std::vector<float> sum(1000, static_cast<float>(self + 1));
          comm->allReduceSum(sum);
          PHX_CHILD_CHECK(sum[999] == 3.0f, "all-reduce beside send/recv");
          std::vector<std::byte> back(bytes);
          comm->recv(2, back);
          PHX_CHILD_CHECK(back == pattern(2, bytes, salt + self), "data sent back by worker 2");
        } else {
          // Receive from 1 first, then 0: per-peer tags make the order of arrival irrelevant.
          for (int from : {1, 0}) {
            std::vector<std::byte> data(bytes);
            comm->recv(from, data);
            PHX_CHILD_CHECK(data == pattern(from, bytes, salt), "data from worker " + std::to_string(from));
          }
          for (int to : {0, 1}) comm->send(to, pattern(2, bytes, salt + to));
        }
      }
    }
  }));
}

TEST_P(UcxCommunicatorTest, DeadPeerMakesAllReduceThrowWithinTimeout) {
  SharedDir dir;
  expectAllPass(runChildren(2, {ucxEnv(GetParam())}, [&](int self) {
    auto comm = UcxCommunicator::create();
    connectThroughDir(*comm, dir, "addr", 2, self, {0, 1});
    std::vector<float> data(5120, 1.0f);
    comm->allReduceSum(data);
    if (self == 1) _exit(0);  // the peer dies without a word
    comm->setTimeout(std::chrono::milliseconds(300));
    for (const char* operation : {"all-reduce", "recv"}) {
      const auto start = std::chrono::steady_clock::now();
      bool threw = false;
      try {
        if (std::string(operation) == "recv") {
          std::vector<std::byte> bytes(64);
          comm->recv(1, bytes);
        } else {
          comm->allReduceSum(data);
        }
      } catch (const Error& error) {
        threw = true;
        PHX_CHILD_CHECK(error.kind() == ErrorKind::kDisconnected, error.what());
        PHX_CHILD_CHECK(std::string(error.what()).find("worker 1") != std::string::npos, error.what());
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      PHX_CHILD_CHECK(threw, std::string(operation) + " with a dead peer returned");
      PHX_CHILD_CHECK(seconds < 2.0, std::string(operation) + " took " + std::to_string(seconds) + " s");
    }
  }));
}

TEST_P(UcxCommunicatorTest, ReconnectsAfterPeerRestart) {
  // Process 0 survives; process 1 is worker 1's first life, which leaves a stale message behind and dies;
  // process 2 is worker 1 restarted with a new address. After connect() with the new table, all-reduce and recv
  // work again and the stale message is never delivered.
  SharedDir dir;
  expectAllPass(runChildren(3, {ucxEnv(GetParam())}, [&](int process) {
    auto comm = UcxCommunicator::create();
    comm->setTimeout(std::chrono::milliseconds(500));
    const int self = process == 0 ? 0 : 1;
    auto message = [](std::uint8_t value) { return std::vector<std::byte>(256, static_cast<std::byte>(value)); };
    if (process == 2) dir.await("first-life-over");
    connectThroughDir(*comm, dir, process == 2 ? "life2" : "life1", 2, self, {0, 1});
    std::vector<float> data(5120, static_cast<float>(self + 1));
    if (process == 1) {
      comm->allReduceSum(data);
      comm->send(0, message(0xAA));  // stale: worker 0 never receives it in this life
      return;
    }
    if (process == 0) {
      comm->allReduceSum(data);
      PHX_CHILD_CHECK(data[0] == 3.0f, "first life all-reduce");
      bool threw = false;
      try {
        comm->allReduceSum(data);
      } catch (const Error& error) {
        threw = error.kind() == ErrorKind::kDisconnected;
      }
      PHX_CHILD_CHECK(threw, "all-reduce with the dead first life throws");
      dir.put("first-life-over", "", 0);
      const auto mine = comm->address();
      dir.put("life2.0", mine.data(), mine.size());
      std::vector<std::vector<std::byte>> addresses = {mine, dir.await("life2.1")};
      comm->connect(addresses, 0, {0, 1});
      comm->setTimeout(std::chrono::seconds(10));
    }
    std::fill(data.begin(), data.end(), static_cast<float>(self + 1));
    comm->allReduceSum(data);
    PHX_CHILD_CHECK(data[0] == 3.0f && data[5119] == 3.0f, "all-reduce after reconnect");
    if (process == 2) {
      comm->send(0, message(0x55));
    } else {
      std::vector<std::byte> received(256);
      comm->recv(1, received);
      PHX_CHILD_CHECK(received == message(0x55), "the restarted worker's message, not the stale one");
    }
  }));
}

TEST_P(UcxCommunicatorTest, RefusesBadGroupsAndPeers) {
  SharedDir dir;
  expectAllPass(runChildren(1, {ucxEnv(GetParam())}, [&](int) {
    auto comm = UcxCommunicator::create();
    const std::vector<std::vector<std::byte>> addresses = {comm->address(), comm->address()};
    auto kindOf = [](auto&& call) {
      try {
        call();
      } catch (const Error& error) {
        return error.kind();
      }
      return ErrorKind::kInternal;
    };
    PHX_CHILD_CHECK(kindOf([&] { comm->connect(addresses, 0, {1}); }) == ErrorKind::kInvalidArgument,
                    "self outside its group");
    PHX_CHILD_CHECK(kindOf([&] { comm->connect(addresses, 2, {2}); }) == ErrorKind::kInvalidArgument,
                    "self out of range");
    PHX_CHILD_CHECK(kindOf([&] { comm->connect(addresses, 0, {0, 0}); }) == ErrorKind::kInvalidArgument,
                    "repeated member");
    comm->connect({comm->address()}, 0, {0});
    std::vector<float> data(4, 2.0f);
    comm->allReduceSum(data);  // one rank: unchanged
    PHX_CHILD_CHECK(data[3] == 2.0f && comm->size() == 1, "single rank all-reduce");
    std::vector<std::byte> bytes(4);
    PHX_CHILD_CHECK(kindOf([&] { comm->send(5, bytes); }) == ErrorKind::kInvalidArgument, "send to unknown peer");
    PHX_CHILD_CHECK(kindOf([&] { comm->recv(0, bytes); }) == ErrorKind::kInvalidArgument, "recv from self");
  }));
}

INSTANTIATE_TEST_SUITE_P(Transports, UcxCommunicatorTest, ::testing::Values("sm", "tcp"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace phx::testing
