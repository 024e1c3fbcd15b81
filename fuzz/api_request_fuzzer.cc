// The HTTP API's request bodies: the first byte picks /v1/completions or /v1/chat/completions, the rest is the body.
#include <cstdint>
#include <string>

#include "coordinator/openai_protocol.h"
#include "model/tokenizer_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const phx::Tokenizer tokenizer = phx::phi4Tokenizer();
  if (size < 1) return 0;
  const auto endpoint = data[0] & 1 ? phx::ApiEndpoint::kChatCompletions : phx::ApiEndpoint::kCompletions;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  phx::ApiLimits limits;
  limits.modelName = "phi-4";
  limits.maxContext = 16384;
  try {
    phx::parseApiRequest(body, endpoint, tokenizer, limits);
  } catch (const phx::ApiError&) {
  }
  return 0;
}
