#include "rpc/ucx_communicator.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "common/elapsed.h"
#include "common/error.h"
#include "rpc/ucx_impl.h"
#include "rpc/ucx_wait.h"

namespace phx {
namespace {

[[noreturn]] void throwUcx(const char* call, ucs_status_t status) {
  throw Error(ErrorKind::kDisconnected,
              std::string("UCX data plane unavailable: ") + call + " failed: " + ucs_status_string(status));
}

// FNV-1a over every address: the same table gives the same generation on every worker, a restarted worker (new
// address) gives a new one. Never 0, so the first connect differs from "not connected".
std::uint64_t generationOf(const std::vector<std::vector<std::byte>>& addresses) {
  std::uint64_t hash = 1469598103934665603ull;
  for (const auto& address : addresses) {
    for (std::byte b : address) hash = (hash ^ static_cast<std::uint64_t>(b)) * 1099511628211ull;
    hash = (hash ^ 0xff) * 1099511628211ull;
  }
  std::uint64_t generation = (hash ^ (hash >> 12) ^ (hash >> 24) ^ (hash >> 36) ^ (hash >> 48)) & 0xfff;
  return generation == 0 ? 1 : generation;
}

}  // namespace

std::string describePeer(const UcxCommunicator::Impl& impl, int peer) {
  std::string text = "worker " + std::to_string(peer);
  auto it = std::find(impl.group.begin(), impl.group.end(), peer);
  if (it != impl.group.end()) text += " (rank " + std::to_string(it - impl.group.begin()) + ")";
  return text;
}

UcxCommunicator::Impl::~Impl() {
  closeEndpoints();
  if (worker) ucp_worker_destroy(worker);
  if (context) ucp_cleanup(context);
}

void UcxCommunicator::Impl::closeEndpoints() {
  // UCP_EP_CLOSE_FLAG_FORCE needs error-handling mode PEER (which disables shared memory), so endpoints close by
  // flushing; a dead peer may never acknowledge, so each close gets a short bounded wait and is then abandoned.
  for (auto& ep : endpoints) {
    if (!ep) continue;
    ucp_request_param_t param{};
    ucs_status_ptr_t request = ucp_ep_close_nbx(ep, &param);
    ep = nullptr;
    if (!UCS_PTR_IS_PTR(request)) continue;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (ucp_request_check_status(request) == UCS_INPROGRESS && std::chrono::steady_clock::now() < deadline) {
      ucp_worker_progress(worker);
    }
    ucp_request_free(request);
  }
}

void UcxCommunicator::Impl::drainGeneration(std::uint64_t oldGeneration) {
  // Messages of the previous generation that nobody will receive (a step abandoned on a timeout) would otherwise
  // sit in the unexpected queue; receive and drop them.
  const std::uint64_t tag = (oldGeneration & 0xfff) << 40;
  std::vector<std::byte> sink;
  ucp_worker_progress(worker);
  for (;;) {
    ucp_tag_recv_info_t info{};
    ucp_tag_message_h message = ucp_tag_probe_nb(worker, tag, kGenerationMask, 1, &info);
    if (!message) break;
    sink.resize(std::max<std::size_t>(info.length, 1));
    ucp_request_param_t param{};
    ucs_status_ptr_t request = ucp_tag_msg_recv_nbx(worker, sink.data(), info.length, message, &param);
    if (UCS_PTR_IS_PTR(request)) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      while (ucp_request_check_status(request) == UCS_INPROGRESS && std::chrono::steady_clock::now() < deadline) {
        ucp_worker_progress(worker);
      }
      if (ucp_request_check_status(request) == UCS_INPROGRESS) ucp_request_cancel(worker, request);
      ucp_request_free(request);
    }
  }
}

ucp_ep_h UcxCommunicator::Impl::endpointFor(int peer, const char* operation) {
  if (peer < 0 || peer >= static_cast<int>(endpoints.size()) || !endpoints[peer]) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string("UCX ") + operation + ": no endpoint to worker " + std::to_string(peer) + " (worker " +
                    std::to_string(self) + " knows " + std::to_string(endpoints.size()) +
                    " workers; connect() must be given its address, and a worker does not send to itself)");
  }
  return endpoints[peer];
}

UcxCommunicator::UcxCommunicator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UcxCommunicator::~UcxCommunicator() = default;

std::unique_ptr<UcxCommunicator> UcxCommunicator::create() {
  auto impl = std::make_unique<Impl>();
  ucp_config_t* config = nullptr;
  if (ucs_status_t status = ucp_config_read(nullptr, nullptr, &config); status != UCS_OK) {
    throwUcx("ucp_config_read", status);
  }
  // Rendezvous (a zero-copy CMA read after a handshake) costs a round trip: measured with bench-comm over shared
  // memory, eager messages up to 512 KiB halve a 10 KiB all-reduce (6.2 -> 2.7 us) and 256 KiB (68 -> 36 us).
  // UCX_RNDV_THRESH still wins when set.
  if (!std::getenv("UCX_RNDV_THRESH")) ucp_config_modify(config, "RNDV_THRESH", "512k");
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG;
  params.mt_workers_shared = 0;
  ucs_status_t status = ucp_init(&params, config, &impl->context);
  ucp_config_release(config);
  if (status != UCS_OK) throwUcx("ucp_init", status);

  // SINGLE: one thread drives the communicator at a time (the step loop), so UCX takes no locks.
  ucp_worker_params_t workerParams{};
  workerParams.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  workerParams.thread_mode = UCS_THREAD_MODE_SINGLE;
  if (status = ucp_worker_create(impl->context, &workerParams, &impl->worker); status != UCS_OK) {
    throwUcx("ucp_worker_create", status);
  }
  ucp_address_t* address = nullptr;
  std::size_t length = 0;
  if (status = ucp_worker_get_address(impl->worker, &address, &length); status != UCS_OK) {
    throwUcx("ucp_worker_get_address", status);
  }
  const auto* bytes = reinterpret_cast<const std::byte*>(address);
  impl->address.assign(bytes, bytes + length);
  ucp_worker_release_address(impl->worker, address);
  return std::unique_ptr<UcxCommunicator>(new UcxCommunicator(std::move(impl)));
}

std::vector<std::byte> UcxCommunicator::address() const { return impl_->address; }

void UcxCommunicator::connect(const std::vector<std::vector<std::byte>>& addresses, int self,
                              const std::vector<int>& group) {
  const int workers = static_cast<int>(addresses.size());
  if (workers > kMaxUcxWorkers) {
    throwInvalidArgument("UCX connect: " + std::to_string(workers) + " workers, at most " +
                         std::to_string(kMaxUcxWorkers) + " are supported");
  }
  if (self < 0 || self >= workers) {
    throwInvalidArgument("UCX connect: self " + std::to_string(self) + " is not a worker index below " +
                         std::to_string(workers));
  }
  if (group.empty() || static_cast<int>(group.size()) * 2 - 2 >= kMaxCollectiveSteps) {
    throwInvalidArgument("UCX connect: a tensor-parallel group needs 1 to 128 ranks, got " +
                         std::to_string(group.size()));
  }
  std::vector<bool> seen(workers, false);
  for (int member : group) {
    if (member < 0 || member >= workers || seen[member] || (member != self && addresses[member].empty())) {
      throwInvalidArgument("UCX connect: group member " + std::to_string(member) +
                           " is out of range, repeated or has no address (" + std::to_string(workers) + " workers)");
    }
    seen[member] = true;
  }
  if (!seen[self]) throwInvalidArgument("UCX connect: worker " + std::to_string(self) + " is not in its own group");

  Impl& impl = *impl_;
  impl.closeEndpoints();
  const std::uint64_t oldGeneration = impl.generation;
  impl.generation = generationOf(addresses);
  if (oldGeneration != 0 && oldGeneration != impl.generation) impl.drainGeneration(oldGeneration);

  impl.self = self;
  impl.group = group;
  impl.rank = static_cast<int>(std::find(group.begin(), group.end(), self) - group.begin());
  impl.allReduceSeq = 0;
  impl.directMaxBytesSent = kDirectAllReduceMaxBytes;  // a new group: tuned again, or not at all
  impl.sendSeq.assign(workers, 0);
  impl.recvSeq.assign(workers, 0);
  impl.endpoints.assign(workers, nullptr);
  for (int peer = 0; peer < workers; ++peer) {
    if (peer == self || addresses[peer].empty()) continue;
    ucp_ep_params_t params{};
    params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    params.address = reinterpret_cast<const ucp_address_t*>(addresses[peer].data());
    // NONE, not PEER: with PEER, UCX 1.13 silently drops shared memory for tcp (PLATFORM.md). Dead peers are
    // caught by the deadline on every wait instead.
    params.err_mode = UCP_ERR_HANDLING_MODE_NONE;
    if (ucs_status_t status = ucp_ep_create(impl.worker, &params, &impl.endpoints[peer]); status != UCS_OK) {
      impl.endpoints[peer] = nullptr;
      throw Error(ErrorKind::kDisconnected, "UCX connect: ucp_ep_create to worker " + std::to_string(peer) +
                                                " failed: " + ucs_status_string(status));
    }
  }
  impl.connected = true;
}

void UcxCommunicator::setTimeout(std::chrono::milliseconds timeout) { impl_->timeout = timeout; }
void UcxCommunicator::setStageTimeout(std::chrono::milliseconds timeout) { impl_->stageTimeout = timeout; }
void UcxCommunicator::setInterrupt(const std::atomic<bool>* flag) { impl_->interrupt = flag; }
int UcxCommunicator::rank() const { return impl_->rank; }
int UcxCommunicator::size() const { return impl_->connected ? static_cast<int>(impl_->group.size()) : 1; }
CommunicatorStats UcxCommunicator::stats() const { return impl_->stats; }

void UcxCommunicator::send(int peer, std::span<const std::byte> data) {
  Impl& impl = *impl_;
  const auto start = std::chrono::steady_clock::now();
  impl.endpointFor(peer, "send");  // throws, naming the peer, if there is no endpoint
  const std::uint64_t seq = impl.sendSeq[peer]++;
  UcxOp op = postSend(impl, peer, data.data(), data.size(),
                      makeTag(TagKind::kPointToPoint, impl.self, impl.generation, 0, seq));
  waitAll(impl, std::span(&op, 1), "UCX send", -1, impl.stageTimeout);
  ++impl.stats.sends;
  impl.stats.sendBytes += data.size();
  impl.stats.sendRecvSeconds += secondsSince(start);
}

void UcxCommunicator::recv(int peer, std::span<std::byte> data) {
  Impl& impl = *impl_;
  const auto start = std::chrono::steady_clock::now();
  if (peer < 0 || peer >= static_cast<int>(impl.recvSeq.size()) || peer == impl.self) {
    throwInvalidArgument("UCX recv: worker " + std::to_string(peer) + " is not a peer of worker " +
                         std::to_string(impl.self) + " (" + std::to_string(impl.recvSeq.size()) + " workers)");
  }
  const std::uint64_t seq = impl.recvSeq[peer]++;
  UcxOp op = postRecv(impl, peer, data.data(), data.size(),
                      makeTag(TagKind::kPointToPoint, peer, impl.generation, 0, seq));
  waitAll(impl, std::span(&op, 1), "UCX recv", -1, impl.stageTimeout);
  ++impl.stats.recvs;
  impl.stats.recvBytes += data.size();
  impl.stats.sendRecvSeconds += secondsSince(start);
}

void UcxCommunicator::setPayload(AllReducePayload payload) { impl_->payload = payload; }

void UcxCommunicator::allReduceSum(std::span<float> data) {
  Impl& impl = *impl_;
  if (size() == 1 || data.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  const std::uint64_t seq = impl.allReduceSeq++;
  // Small vectors (a decode token's 20 KiB): one round where every rank sends its whole vector to every other and
  // sums them all in rank order: latency is one message. Large vectors: ring reduce-scatter + all-gather moves
  // 2 (n-1)/n of the data per rank instead of (n-1) times it.
  const bool bf16 = impl.payload == AllReducePayload::kBf16;
  const std::size_t wireBytes = bf16 ? data.size() * sizeof(std::uint16_t) : data.size_bytes();
  if (wireBytes * (impl.group.size() - 1) <= (bf16 ? kDirectAllReduceMaxBytes : impl.directMaxBytesSent)) {
    bf16 ? impl.allReduceDirectBf16(data, seq) : impl.allReduceDirect(data, seq);
  } else {
    bf16 ? impl.allReduceRingBf16(data, seq) : impl.allReduceRing(data, seq);
  }
  ++impl.stats.allReduces;
  impl.stats.allReduceBytes += wireBytes;
  impl.stats.allReduceSeconds += secondsSince(start);
}

}  // namespace phx
