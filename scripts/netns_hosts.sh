#!/usr/bin/env bash
# Hosts on one machine: N network namespaces on one bridge, each with its own address, as N machines on a LAN
# (tests/cluster/cluster_netns_test.cc, scripts/netbench.sh).
#   netns_hosts.sh up NAME N [NET]    bridge NAMEbr (NET.254/24) here; namespace NAME-i with interface NAMEi
#                                     (NET.(i+1)/24), its veth peer NAMEpi enslaved to the bridge; NET: 10.78.0
#   netns_hosts.sh down NAME N        deletes them all; safe when they do not exist
# NAME at most 10 characters (interface names are limited to 15); two sets up at once need different NETs. Root.
set -euo pipefail
usage="usage: netns_hosts.sh up|down NAME N [NET]"
action=${1:?$usage}
name=${2:?$usage}
count=${3:?$usage}
net=${4:-10.78.0}

down() {
  for ((i = 0; i < count; ++i)); do
    ip netns del "$name-$i" 2>/dev/null || true
    ip link del "${name}p$i" 2>/dev/null || true
  done
  ip link del "${name}br" 2>/dev/null || true
}

case "$action" in
  up)
    down
    trap 'down' ERR
    ip link add "${name}br" type bridge
    ip addr add "$net.254/24" dev "${name}br"
    ip link set "${name}br" up
    # Frames between namespaces cross the bridge; a host firewall (e.g. Docker's FORWARD DROP) must not see them.
    sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
    for ((i = 0; i < count; ++i)); do
      ip netns add "$name-$i"
      ip link add "${name}p$i" type veth peer name "$name$i"
      ip link set "$name$i" netns "$name-$i"
      ip link set "${name}p$i" master "${name}br"
      ip link set "${name}p$i" up
      ip -n "$name-$i" addr add "$net.$((i + 1))/24" dev "$name$i"
      ip -n "$name-$i" link set lo up
      ip -n "$name-$i" link set "$name$i" up
    done
    ;;
  down) down ;;
  *) echo "netns_hosts.sh: unknown action '$action' (up or down)" >&2; exit 2 ;;
esac
