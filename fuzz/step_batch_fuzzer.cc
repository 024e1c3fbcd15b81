// A step as a worker receives it: any bytes as a Cap'n Proto StepBatch message (the RPC system's own limits on
// traversal and nesting), decoded and laid out exactly as WorkerCore::step and ModelRunner::run do before computing.
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "rpc/control_codec.h"
#include "worker/step_layout.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<capnp::word> words(size / sizeof(capnp::word) + 1);
  std::memcpy(words.data(), data, size);
  try {
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), size / sizeof(capnp::word)));
    const phx::StepBatch batch = phx::decodeStepBatch(reader.getRoot<phx::proto::StepBatch>());
    phx::layoutStep(
        batch, {.vocabSize = 100352, .blockSize = 16, .numBlocks = 256, .maxPositions = 16384, .maxStepTokens = 512});
  } catch (const phx::Error&) {
  } catch (const kj::Exception&) {  // a malformed message: what the RPC layer turns into a failed call
  }
  return 0;
}
