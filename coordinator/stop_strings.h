// Stop strings for streamed text: generation ends before the first occurrence of any stop string, and text that
// might be the start of one is held back until it is known not to be, so a client never sees part of a stop
// string.
#pragma once

#include <string>
#include <vector>

namespace phx {

class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stopStrings);

  // Appends newly decoded text; returns the text now safe to show. After a stop string is seen, stopped() is
  // true and nothing more is returned.
  std::string push(const std::string& text);
  // The held-back text, at the end of generation.
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace phx
