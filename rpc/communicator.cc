#include "rpc/communicator.h"

#include <string>

#include "common/error.h"

namespace phx {

const char* allReducePayloadName(AllReducePayload payload) {
  return payload == AllReducePayload::kBf16 ? "bf16" : "f32";
}

AllReducePayload parseAllReducePayload(const std::string& name) {
  if (name == "f32") return AllReducePayload::kF32;
  if (name == "bf16") return AllReducePayload::kBf16;
  throwInvalidArgument("--allreduce-dtype: expected f32 or bf16, got '" + name + "'");
}

void SingleRankCommunicator::send(int peer, std::span<const std::byte> data) {
  throwInvalidArgument("single-rank communicator: cannot send " + std::to_string(data.size()) + " bytes to peer " +
                       std::to_string(peer) + ": there are no peers");
}

void SingleRankCommunicator::recv(int peer, std::span<std::byte> data) {
  throwInvalidArgument("single-rank communicator: cannot receive " + std::to_string(data.size()) +
                       " bytes from peer " + std::to_string(peer) + ": there are no peers");
}

}  // namespace phx
