#include "rpc/ucx_wait.h"

#include <sched.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "common/error.h"

namespace phx {
namespace {

constexpr unsigned kSpinsBeforeYield = 1024;

std::string seconds(std::chrono::milliseconds timeout) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", timeout.count() / 1000.0);
  return text;
}

// After a receive completed: a short message is as wrong as a long one (UCX reports only the long one).
ucs_status_t checkLength(const UcxOp& op, const ucp_tag_recv_info_t& info) {
  return info.length == op.bytes ? UCS_OK : UCS_ERR_MESSAGE_TRUNCATED;
}

// Give a posted op back to UCX. A pending receive is cancelled and waited for (briefly), so UCX never writes into
// the caller's buffer after we return; a pending send is released to complete (or not) on its own.
void abandon(UcxCommunicator::Impl& impl, UcxOp& op) {
  if (!op.request) return;
  if (op.isRecv) {
    ucp_request_cancel(impl.worker, op.request);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (ucp_request_check_status(op.request) == UCS_INPROGRESS && std::chrono::steady_clock::now() < deadline) {
      ucp_worker_progress(impl.worker);
    }
  }
  ucp_request_free(op.request);
  op.request = nullptr;
}

bool interrupted(const UcxCommunicator::Impl& impl) {
  return impl.interrupt != nullptr && impl.interrupt->load(std::memory_order_relaxed);
}

}  // namespace

UcxOp postSend(UcxCommunicator::Impl& impl, int peer, const void* buffer, std::size_t bytes, std::uint64_t tag) {
  UcxOp op;
  op.peer = peer;
  op.bytes = bytes;
  ucp_request_param_t param{};
  ucs_status_ptr_t request = ucp_tag_send_nbx(impl.endpointFor(peer, "send"), buffer, bytes, tag, &param);
  if (UCS_PTR_IS_ERR(request)) {
    throw Error(ErrorKind::kDisconnected, "ucp_tag_send_nbx to " + describePeer(impl, peer) + " failed: " +
                                              ucs_status_string(UCS_PTR_STATUS(request)));
  }
  op.request = request;  // null: sent (or buffered) at once
  return op;
}

UcxOp postRecv(UcxCommunicator::Impl& impl, int peer, void* buffer, std::size_t bytes, std::uint64_t tag) {
  UcxOp op;
  op.peer = peer;
  op.isRecv = true;
  op.bytes = bytes;
  ucp_request_param_t param{};
  // Always get a request back (no immediate completion), so ucp_tag_recv_request_test reports the length.
  param.op_attr_mask = UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
  ucs_status_ptr_t request = ucp_tag_recv_nbx(impl.worker, buffer, bytes, tag, ~0ull, &param);
  if (UCS_PTR_IS_ERR(request)) {
    throw Error(ErrorKind::kDisconnected, "ucp_tag_recv_nbx from " + describePeer(impl, peer) + " failed: " +
                                              ucs_status_string(UCS_PTR_STATUS(request)));
  }
  op.request = request;
  return op;
}

void waitAll(UcxCommunicator::Impl& impl, std::span<UcxOp> ops, const char* operation, std::int64_t seq,
             std::optional<std::chrono::milliseconds> timeout) {
  auto name = [&] { return std::string(operation) + (seq >= 0 ? " #" + std::to_string(seq) : std::string()); };
  const std::chrono::milliseconds limit = timeout.value_or(impl.timeout);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::size_t pending = 0;
  for (const auto& op : ops) pending += op.request != nullptr;
  unsigned idleSpins = 0;
  for (unsigned spins = 0; pending > 0; ++spins) {
    // Busy polling gives the lowest latency while every rank has a core; when ranks outnumber cores, a spinning
    // rank would hold the core its peer needs for a whole time slice, so after ~50 us without progress it yields.
    if (ucp_worker_progress(impl.worker) != 0) {
      idleSpins = 0;
    } else if (++idleSpins == kSpinsBeforeYield) {
      idleSpins = 0;
      sched_yield();
    }
    for (auto& op : ops) {
      if (!op.request) continue;
      ucs_status_t status;
      if (op.isRecv) {
        ucp_tag_recv_info_t info{};
        status = ucp_tag_recv_request_test(op.request, &info);
        if (status == UCS_OK) status = checkLength(op, info);
      } else {
        status = ucp_request_check_status(op.request);
      }
      if (status == UCS_INPROGRESS) continue;
      op.status = status;
      ucp_request_free(op.request);
      op.request = nullptr;
      --pending;
    }
    // Reading the clock costs ~20 ns; every 64 spins keeps the interrupt and deadline checks off the latency path.
    const bool checkpoint = pending > 0 && spins % 64 == 63;
    if (checkpoint && interrupted(impl)) {
      for (auto& op : ops) abandon(impl, op);
      throw Error(ErrorKind::kDisconnected, name() + ": interrupted (the coordinator is rejoining the data plane)");
    }
    if (checkpoint && std::chrono::steady_clock::now() > deadline) {
      int late = -1;
      bool lateRecv = false;
      for (auto& op : ops) {
        if (op.request && (late < 0 || (op.isRecv && !lateRecv))) {
          late = op.peer;
          lateRecv = op.isRecv;
        }
        abandon(impl, op);
      }
      throw Error(ErrorKind::kDisconnected,
                  name() + ": " +
                      (lateRecv ? "no data from " + describePeer(impl, late)
                                : describePeer(impl, late) + " did not take the data") +
                      " within " + seconds(limit) + " (is it alive?)");
    }
  }
  for (const auto& op : ops) {
    if (op.status == UCS_OK) continue;
    if (op.status == UCS_ERR_MESSAGE_TRUNCATED) {
      // Peers in step always agree on lengths; a message of another length is a stale one from a peer that was
      // stopped mid-step and resumed. A peer fault, like a disconnect: the coordinator rejoins everyone and replays.
      throw Error(ErrorKind::kDisconnected, name() + ": the message from " + describePeer(impl, op.peer) +
                                                " does not have the expected " + std::to_string(op.bytes) +
                                                " bytes (the peers are out of step)");
    }
    throw Error(ErrorKind::kDisconnected, name() + " with " + describePeer(impl, op.peer) +
                                              " failed: " + ucs_status_string(op.status));
  }
}

}  // namespace phx
