// One sequence's generated tokens turned into the text a client sees: ids decoded incrementally (whole UTF-8
// characters only), stop token ids ending the sequence unshown, stop strings held back until known not to match
// and cut at the first match. The one place these rules live: the batching scheduler applies them to each of its
// sequences and the single-sequence generate loop (coordinator/generation.h) to its one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/stop_strings.h"
#include "model/tokenizer.h"

namespace phx {

class TokenStream {
 public:
  // `tokenizer` must outlive the stream.
  TokenStream(const Tokenizer& tokenizer, std::vector<int32_t> stopTokenIds, std::vector<std::string> stopStrings);

  // Takes the next generated id; returns the text now safe to show. stopped() turns true on a stop id or string.
  std::string push(int32_t id);
  // At the end of generation: the text held back (nothing once stopped).
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  IncrementalDecoder decoder_;
  StopStringFilter stopStrings_;
  std::vector<int32_t> stopTokenIds_;
  bool stopped_ = false;
};

}  // namespace phx
