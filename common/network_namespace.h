// Moving this process into a named network namespace (one made by `ip netns add`), as `ip netns exec` does: the
// tools that measure the data plane across namespaces (bench-comm --netns, the namespace tests) call it in a child
// before UCX or MPI start, so those see only that namespace's interfaces.
#pragma once

#include <string>

namespace phx {

// Enters /var/run/netns/NAME and remounts /sys in a mount namespace of this process's own (UCX finds its devices in
// /sys/class/net, which shows the namespace that mounted sysfs). Root. Throws phx::Error naming the namespace and
// the system's reason.
void enterNetworkNamespace(const std::string& name);

}  // namespace phx
