#include "model/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "common/error.h"

namespace phx {

MappedRange::MappedRange(MappedRange&& other) noexcept { *this = std::move(other); }

MappedRange& MappedRange::operator=(MappedRange&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    mappedSize_ = std::exchange(other.mappedSize_, 0);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedRange::~MappedRange() { release(); }

void MappedRange::release() {
  if (base_) munmap(base_, mappedSize_);
  base_ = nullptr;
  mappedSize_ = 0;
  data_ = nullptr;
  size_ = 0;
}

MappedFile::MappedFile(std::filesystem::path path, int fd, uint64_t size)
    : path_(std::move(path)), fd_(fd), size_(size) {}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (fd_ >= 0) ::close(fd_);
}

MappedFile MappedFile::open(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throwInvalidCheckpoint(path.string() + ": file is missing");
  if (!std::filesystem::is_regular_file(status)) {
    throwInvalidCheckpoint(path.string() + ": not a regular file (cannot be read as one)");
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throwIoError(path.string() + ": cannot open for reading");
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int savedErrno = errno;
    ::close(fd);
    errno = savedErrno;
    throwIoError(path.string() + ": cannot stat");
  }
  return MappedFile(path, fd, uint64_t(info.st_size));
}

void MappedFile::checkRange(uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    throwInvalidCheckpoint(path_.string() + ": bytes [" + std::to_string(offset) + ", " +
                           std::to_string(offset + length) + ") lie past the end of the file (" +
                           std::to_string(size_) + " bytes)");
  }
}

void MappedFile::read(uint64_t offset, std::span<std::byte> out) const {
  checkRange(offset, out.size());
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t got = ::pread(fd_, out.data() + done, out.size() - done, off_t(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throwIoError(path_.string() + ": read of " + std::to_string(out.size()) + " bytes at offset " +
                   std::to_string(offset) + " failed");
    }
    if (got == 0) {
      throwInvalidCheckpoint(path_.string() + ": unexpected end of file at offset " +
                             std::to_string(offset + done) + " (the file shrank after it was opened?)");
    }
    done += size_t(got);
  }
}

MappedRange MappedFile::mapRange(uint64_t offset, uint64_t length) const {
  checkRange(offset, length);
  MappedRange range;
  if (length == 0) return range;
  const uint64_t pageSize = uint64_t(sysconf(_SC_PAGESIZE));
  const uint64_t alignedOffset = offset / pageSize * pageSize;
  const size_t mappedSize = size_t(length + (offset - alignedOffset));
  void* base = mmap(nullptr, mappedSize, PROT_READ, MAP_PRIVATE, fd_, off_t(alignedOffset));
  if (base == MAP_FAILED) {
    throwIoError(path_.string() + ": cannot map " + std::to_string(length) + " bytes at offset " +
                 std::to_string(offset));
  }
  range.base_ = base;
  range.mappedSize_ = mappedSize;
  range.data_ = static_cast<const std::byte*>(base) + (offset - alignedOffset);
  range.size_ = size_t(length);
  return range;
}

}  // namespace phx
