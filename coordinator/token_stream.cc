#include "coordinator/token_stream.h"

#include <algorithm>

namespace phx {

TokenStream::TokenStream(const Tokenizer& tokenizer, std::vector<int32_t> stopTokenIds,
                         std::vector<std::string> stopStrings)
    : decoder_(tokenizer), stopStrings_(std::move(stopStrings)), stopTokenIds_(std::move(stopTokenIds)) {}

std::string TokenStream::push(int32_t id) {
  if (stopped_) return {};
  if (std::find(stopTokenIds_.begin(), stopTokenIds_.end(), id) != stopTokenIds_.end()) {
    stopped_ = true;
    // Text held back as a possible stop string start is shown after all: it turned out not to be one.
    return stopStrings_.push(decoder_.finish()) + stopStrings_.finish();
  }
  std::string text = stopStrings_.push(decoder_.push(id));
  stopped_ = stopStrings_.stopped();
  return text;
}

std::string TokenStream::finish() {
  if (stopped_) return {};
  std::string text = stopStrings_.push(decoder_.finish());
  if (!stopStrings_.stopped()) text += stopStrings_.finish();
  stopped_ = true;
  return text;
}

}  // namespace phx
