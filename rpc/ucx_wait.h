// Posting UCP tag sends and receives and waiting for them by busy polling with a deadline (internal to ucx_*.cc).
// A wait that passes its deadline cancels what it posted and throws phx::Error (kDisconnected) naming the peer, so
// neither a dead peer nor a wrong-sized message can hang a step or leave UCX writing into a caller's buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "rpc/ucx_impl.h"

namespace phx {

struct UcxOp {
  void* request = nullptr;  // null once complete
  int peer = -1;            // global worker index, for messages
  bool isRecv = false;
  std::size_t bytes = 0;    // expected length of a receive
  ucs_status_t status = UCS_OK;
};

// Post a tagged send of `bytes` at `buffer` to `peer`; the buffer must stay untouched until the op completes.
UcxOp postSend(UcxCommunicator::Impl& impl, int peer, const void* buffer, std::size_t bytes, std::uint64_t tag);
// Post a receive of exactly `bytes` from `peer` (the tag carries the sender) into `buffer`.
UcxOp postRecv(UcxCommunicator::Impl& impl, int peer, void* buffer, std::size_t bytes, std::uint64_t tag);
// Busy-poll the worker until every op completes, or the communicator's timeout passes. `what` names the operation
// for messages ("all-reduce #12", "send"). Throws phx::Error (kDisconnected) after cancelling what is pending.
// `seq`, when given, is appended to `what` as "#seq" (only formatted when there is an error to report).
// `timeout` overrides the communicator's (a stage hand-off's longer one). Gives up at once while impl.interrupt is
// set.
void waitAll(UcxCommunicator::Impl& impl, std::span<UcxOp> ops, const char* what, std::int64_t seq = -1,
             std::optional<std::chrono::milliseconds> timeout = std::nullopt);

}  // namespace phx
