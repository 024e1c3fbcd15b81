#include "tests/rpc/rank_launcher.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "common/network_namespace.h"

namespace phx::testing {

SharedDir::SharedDir() : owner_(getpid()) {
  char pattern[] = "/tmp/phx-ranks-XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

SharedDir::~SharedDir() {
  if (getpid() != owner_) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void SharedDir::put(const std::string& name, const void* data, std::size_t bytes) const {
  const std::string temporary = path_ + "/." + name + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    if (!out) throw std::runtime_error("cannot write " + temporary);
  }
  std::filesystem::rename(temporary, path_ + "/" + name);
}

std::vector<std::byte> SharedDir::await(const std::string& name, std::chrono::milliseconds timeout) const {
  const std::string file = path_ + "/" + name;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(file)) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("timed out waiting for " + file);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::ifstream in(file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* begin = reinterpret_cast<const std::byte*>(bytes.data());
  return {begin, begin + bytes.size()};
}

namespace {

void applyEnv(const ChildEnv& env) {
  for (const auto& [name, value] : env.vars) setenv(name.c_str(), value.c_str(), 1);
  if (!env.netns.empty()) enterNetworkNamespace(env.netns);
}

}  // namespace

std::vector<int> runChildren(int count, const std::vector<ChildEnv>& envs, const std::function<void(int)>& body,
                             std::chrono::seconds timeout) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<pid_t> pids;
  for (int i = 0; i < count; ++i) {
    const pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      int code = 0;
      try {
        if (!envs.empty()) applyEnv(envs[std::min<std::size_t>(i, envs.size() - 1)]);
        body(i);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "rank process %d: %s\n", i, error.what());
        code = 1;
      }
      std::fflush(stdout);
      std::fflush(stderr);
      _exit(code);  // no atexit handlers or gtest teardown in the child
    }
    pids.push_back(pid);
  }
  std::vector<int> results(count, -1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int remaining = count;
  while (remaining > 0) {
    for (int i = 0; i < count; ++i) {
      if (results[i] != -1) continue;
      int status = 0;
      if (waitpid(pids[i], &status, WNOHANG) != pids[i]) continue;
      results[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      --remaining;
    }
    if (remaining > 0 && std::chrono::steady_clock::now() > deadline) {
      for (int i = 0; i < count; ++i) {
        if (results[i] != -1) continue;
        kill(pids[i], SIGKILL);
        waitpid(pids[i], nullptr, 0);
        results[i] = 124;
        std::fprintf(stderr, "rank process %d killed after %lld s\n", i, static_cast<long long>(timeout.count()));
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return results;
}

void connectThroughDir(UcxCommunicator& comm, const SharedDir& dir, const std::string& prefix, int workers,
                       int self, const std::vector<int>& group) {
  const auto mine = comm.address();
  dir.put(prefix + "." + std::to_string(self), mine.data(), mine.size());
  std::vector<std::vector<std::byte>> addresses(workers);
  for (int i = 0; i < workers; ++i) addresses[i] = dir.await(prefix + "." + std::to_string(i));
  comm.connect(addresses, self, group);
}

ChildEnv ucxEnv(const std::string& transport) {
  if (transport == "sm") return {{{"UCX_TLS", "sm,self"}}, ""};
  return {{{"UCX_TLS", "tcp,self"}, {"UCX_NET_DEVICES", "lo"}}, ""};
}

}  // namespace phx::testing
