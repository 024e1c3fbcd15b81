// Runs test ranks as real processes: forks one child per rank, lets them swap UCX worker addresses through files in
// a temporary directory, and collects their exit codes. Children report failure by throwing (a gtest assertion in a
// forked child would go unseen): the launcher prints the message and exits the child with 1.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rpc/ucx_communicator.h"

namespace phx::testing {

// Throws from a child with the condition and a message; the launcher turns it into exit code 1.
#define PHX_CHILD_CHECK(condition, message)                                                              \
  do {                                                                                                   \
    if (!(condition)) throw std::runtime_error(std::string(#condition " failed: ") + (message));          \
  } while (0)

// A directory the ranks share: named blobs written atomically (write then rename) and awaited by polling.
class SharedDir {
 public:
  SharedDir();  // a fresh mkdtemp directory, removed by the destructor in the creating process
  ~SharedDir();
  SharedDir(const SharedDir&) = delete;
  SharedDir& operator=(const SharedDir&) = delete;

  const std::string& path() const { return path_; }
  void put(const std::string& name, const void* data, std::size_t bytes) const;
  // Waits until `name` exists (throws after `timeout`), then returns its bytes.
  std::vector<std::byte> await(const std::string& name,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

 private:
  std::string path_;
  int owner_;
};

// Environment for a child: variables to set before UCX reads them, and an optional network namespace to enter
// (a name under /var/run/netns, as `ip netns add` makes).
struct ChildEnv {
  std::vector<std::pair<std::string, std::string>> vars;
  std::string netns;
};

// Forks `count` children; child i applies envs[i] (or envs[0] if only one is given), then runs body(i). Returns the
// exit status of each child in order (0 = passed); a child still running after `timeout` is killed (status 124).
std::vector<int> runChildren(int count, const std::vector<ChildEnv>& envs, const std::function<void(int)>& body,
                             std::chrono::seconds timeout = std::chrono::seconds(60));

// In a child: publish this communicator's address as "<prefix>.<self>", await the others, connect with every
// worker 0..workers-1 known and `group` as the TP group.
void connectThroughDir(UcxCommunicator& comm, const SharedDir& dir, const std::string& prefix, int workers,
                       int self, const std::vector<int>& group);

// The UCX settings of a transport under test: "sm" (UCX_TLS=sm,self) or "tcp" (UCX_TLS=tcp,self on lo).
ChildEnv ucxEnv(const std::string& transport);

}  // namespace phx::testing
