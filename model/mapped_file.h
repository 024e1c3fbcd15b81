// A read-only file opened once and read at offsets from any thread. Reads go through pread: the bytes land in the
// caller's buffer and no file page stays mapped in the process afterwards, so a worker that packs its weights keeps
// an RSS of about the packed size. mapRange() is for a caller that wants to read a large range in place; the
// mapping is dropped (and its pages released from the process) when the MappedRange is destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>

namespace phx {

// A mapping of part of a file, unmapped on destruction. Move-only.
class MappedRange {
 public:
  MappedRange() = default;
  MappedRange(MappedRange&& other) noexcept;
  MappedRange& operator=(MappedRange&& other) noexcept;
  MappedRange(const MappedRange&) = delete;
  MappedRange& operator=(const MappedRange&) = delete;
  ~MappedRange();

  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  friend class MappedFile;
  void release();

  void* base_ = nullptr;  // page-aligned start of the mapping
  size_t mappedSize_ = 0;
  const std::byte* data_ = nullptr;  // the requested offset inside the mapping
  size_t size_ = 0;
};

class MappedFile {
 public:
  // Throws phx::Error kInvalidCheckpoint naming the file when it is missing or not a regular file, kIo when the
  // operating system refuses to open it.
  static MappedFile open(const std::filesystem::path& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::filesystem::path& path() const { return path_; }
  uint64_t size() const { return size_; }

  // Fills `out` from [offset, offset + out.size()). Throws kInvalidCheckpoint naming the file when the range runs
  // past the end (the file shrank after it was opened), kIo when a read fails. Safe to call from several threads.
  void read(uint64_t offset, std::span<std::byte> out) const;

  // Maps [offset, offset + length) read-only. Same range errors as read().
  MappedRange mapRange(uint64_t offset, uint64_t length) const;

 private:
  MappedFile(std::filesystem::path path, int fd, uint64_t size);
  void checkRange(uint64_t offset, uint64_t length) const;

  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace phx
