// A worker's step reply as the coordinator receives it: any bytes as a Cap'n Proto StepOutput, decoded with the
// checks the cluster executor relies on (sizes, ids inside the slice).
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "rpc/control_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<capnp::word> words(size / sizeof(capnp::word) + 1);
  std::memcpy(words.data(), data, size);
  try {
    capnp::FlatArrayMessageReader reader(kj::arrayPtr(words.data(), size / sizeof(capnp::word)));
    phx::StepOutput output;
    phx::decodeStepOutput(reader.getRoot<phx::proto::StepOutput>(), output);
  } catch (const phx::Error&) {
  } catch (const kj::Exception&) {
  }
  return 0;
}
