#include "rpc/communicator.h"

#include <string>

#include "common/error.h"

namespace phx {

void SingleRankCommunicator::send(int peer, std::span<const std::byte> data) {
  throwInvalidArgument("single-rank communicator: cannot send " + std::to_string(data.size()) + " bytes to peer " +
                       std::to_string(peer) + ": there are no peers");
}

void SingleRankCommunicator::recv(int peer, std::span<std::byte> data) {
  throwInvalidArgument("single-rank communicator: cannot receive " + std::to_string(data.size()) +
                       " bytes from peer " + std::to_string(peer) + ": there are no peers");
}

}  // namespace phx
