#include "common/network_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/error.h"

namespace phx {

void enterNetworkNamespace(const std::string& name) {
  const std::string path = "/var/run/netns/" + name;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    const std::string reason = std::strerror(errno);
    if (fd >= 0) close(fd);
    throwIoError("cannot enter network namespace " + path + ": " + reason);
  }
  close(fd);
  if (unshare(CLONE_NEWNS) != 0 || mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0 ||
      umount2("/sys", MNT_DETACH) != 0 || mount(name.c_str(), "/sys", "sysfs", 0, nullptr) != 0) {
    throwIoError("cannot mount the /sys of network namespace " + path + ": " + std::strerror(errno));
  }
}

}  // namespace phx
