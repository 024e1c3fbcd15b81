// A Communicator that forwards to another and adds up the wall time spent inside its calls: how a worker splits
// a step into computing and communicating whatever the data plane (UCX, MPI) is.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "rpc/communicator.h"

namespace phx {

class TimedCommunicator final : public Communicator {
 public:
  // onAllReduce, if given, hears each all-reduce's wall time and payload bytes (the worker's metrics).
  using AllReduceObserver = std::function<void(double seconds, uint64_t bytes)>;
  explicit TimedCommunicator(Communicator& inner, AllReduceObserver onAllReduce = {})
      : inner_(inner), onAllReduce_(std::move(onAllReduce)) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void allReduceSum(std::span<float> data) override {
    const double before = seconds_;
    {
      Timer timer(seconds_);
      inner_.allReduceSum(data);
    }
    if (onAllReduce_) onAllReduce_(seconds_ - before, data.size_bytes());
  }
  void send(int peer, std::span<const std::byte> data) override {
    Timer timer(seconds_);
    inner_.send(peer, data);
  }
  void recv(int peer, std::span<std::byte> data) override {
    Timer timer(seconds_);
    inner_.recv(peer, data);
  }

  // Seconds inside the calls since the last reset.
  double seconds() const { return seconds_; }
  void reset() { seconds_ = 0; }

 private:
  struct Timer {
    explicit Timer(double& total) : total(total), start(std::chrono::steady_clock::now()) {}
    ~Timer() { total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
    double& total;
    std::chrono::steady_clock::time_point start;
  };

  Communicator& inner_;
  AllReduceObserver onAllReduce_;
  double seconds_ = 0;
};

}  // namespace phx
