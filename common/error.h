// Errors by kind (STYLE.md, habit 7). Bad input throws phx::Error naming the file, tensor, field or peer and what
// was expected; main() is the one boundary that catches, prints and sets the exit code.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace phx {

enum class ErrorKind {
  kInvalidArgument,    // a flag, request field or option is wrong: fix the call
  kInvalidCheckpoint,  // a model directory is malformed or inconsistent: fix or regenerate the checkpoint
  kUnsupported,        // valid input this build does not handle (e.g. LongRoPE): refuse rather than compute wrongly
  kIo,                 // the operating system refused a read, write or map
  kDisconnected,       // a peer went away: fail its requests, reconnect
  kOverloaded,         // no room now: back off and retry
  kInternal,           // a bug in Phalanx
  kPermissionDenied,   // the caller lacks the credential (cluster secret), was fenced, or named a path it may not
};

std::string_view errorKindName(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Shorthands for the common kinds, so call sites read as a sentence.
[[noreturn]] void throwInvalidArgument(const std::string& message);
[[noreturn]] void throwInvalidCheckpoint(const std::string& message);
[[noreturn]] void throwUnsupported(const std::string& message);
// Appends strerror(errno) to the message.
[[noreturn]] void throwIoError(const std::string& message);

}  // namespace phx
