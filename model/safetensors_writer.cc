#include "model/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace phx {
namespace {

void writeAll(int fd, const char* data, size_t bytes, const std::filesystem::path& path) {
  while (bytes > 0) {
    const ssize_t n = ::write(fd, data, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throwIoError(path.string() + ": write failed");
    data += n;
    bytes -= size_t(n);
  }
}

}  // namespace

uint64_t SafetensorsEntry::byteSize() const {
  uint64_t elements = 1;
  for (int64_t dim : shape) elements *= uint64_t(dim);
  return elements * uint64_t(dtypeBytes(dtype));
}

std::string safetensorsHeader(const std::vector<SafetensorsEntry>& entries,
                              const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps insertion order: "__metadata__" first, tensors by offset, keys as the Rust struct orders them.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsEntry& entry : entries) {
    const uint64_t end = offset + entry.byteSize();
    header[entry.name] = {{"dtype", dtypeName(entry.dtype)}, {"shape", entry.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = char((uint64_t(json.size()) >> (8 * i)) & 0xFF);
  return bytes + json;
}

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path, std::vector<SafetensorsEntry> entries,
                                     const std::map<std::string, std::string>& metadata)
    : path_(std::move(path)), entries_(std::move(entries)) {
  for (const SafetensorsEntry& entry : entries_) payloadBytes_ += entry.byteSize();
  const std::string header = safetensorsHeader(entries_, metadata);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throwIoError(path_.string() + ": cannot create");
  writeAll(fd_, header.data(), header.size(), path_);
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsWriter::append(const void* data, size_t bytes) {
  if (written_ + bytes > payloadBytes_) {
    throwInvalidArgument(path_.string() + ": " + std::to_string(written_ + bytes) +
                         " tensor bytes appended, but the header declares " + std::to_string(payloadBytes_));
  }
  writeAll(fd_, static_cast<const char*>(data), bytes, path_);
  written_ += bytes;
}

void SafetensorsWriter::finish() {
  if (written_ != payloadBytes_) {
    throwInvalidArgument(path_.string() + ": only " + std::to_string(written_) + " of " +
                         std::to_string(payloadBytes_) + " tensor bytes were written");
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throwIoError(path_.string() + ": close failed");
}

}  // namespace phx
