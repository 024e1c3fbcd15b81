// Free TCP ports on 127.0.0.1 for tests that start processes on fixed ports (`up`, MPI workers on base + rank).
#pragma once

#include <netinet/in.h>

#include <vector>

namespace phx::testing {

// 127.0.0.1:port as a socket address.
sockaddr_in loopbackAddress(int port);

// A base port with `count` free ports from it, none of them in `taken` (the kernel's pick for the first, checked
// for the rest). Another process could take one before the caller binds it; the caller's wait then reports it.
// Throws std::runtime_error when no such run turns up.
int freePortRun(int count, const std::vector<int>& taken = {});

}  // namespace phx::testing
