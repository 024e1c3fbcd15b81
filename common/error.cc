#include "common/error.h"

#include <cerrno>
#include <cstring>

namespace phx {

std::string_view errorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kInvalidCheckpoint: return "invalid checkpoint";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kIo: return "i/o error";
    case ErrorKind::kDisconnected: return "disconnected";
    case ErrorKind::kOverloaded: return "overloaded";
    case ErrorKind::kInternal: return "internal error";
    case ErrorKind::kPermissionDenied: return "permission denied";
  }
  return "error";
}

void throwInvalidArgument(const std::string& message) { throw Error(ErrorKind::kInvalidArgument, message); }
void throwInvalidCheckpoint(const std::string& message) { throw Error(ErrorKind::kInvalidCheckpoint, message); }
void throwUnsupported(const std::string& message) { throw Error(ErrorKind::kUnsupported, message); }

void throwIoError(const std::string& message) {
  const int savedErrno = errno;
  throw Error(ErrorKind::kIo, message + ": " + std::strerror(savedErrno));
}

}  // namespace phx
