#!/usr/bin/env bash
# Hosts for a cluster test: N network namespaces on one bridge, each with its own address, as N machines on a LAN.
#   netns_cluster.sh up NAME N    bridge NAMEbr (10.78.0.254/24) here; namespace NAME-i with interface NAMEi
#                                 (10.78.0.(i+1)/24), its veth peer NAMEpi enslaved to the bridge
#   netns_cluster.sh down NAME N  deletes them all; safe when they do not exist
# NAME at most 10 characters (interface names are limited to 15). Needs root.
set -euo pipefail
action=${1:?usage: netns_cluster.sh up|down NAME N}
name=${2:?usage: netns_cluster.sh up|down NAME N}
count=${3:?usage: netns_cluster.sh up|down NAME N}

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
    ip addr add 10.78.0.254/24 dev "${name}br"
    ip link set "${name}br" up
    # Frames between namespaces cross the bridge; a host firewall (e.g. Docker's FORWARD DROP) must not see them.
    sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
    for ((i = 0; i < count; ++i)); do
      ip netns add "$name-$i"
      ip link add "${name}p$i" type veth peer name "$name$i"
      ip link set "$name$i" netns "$name-$i"
      ip link set "${name}p$i" master "${name}br"
      ip link set "${name}p$i" up
      ip -n "$name-$i" addr add "10.78.0.$((i + 1))/24" dev "$name$i"
      ip -n "$name-$i" link set lo up
      ip -n "$name-$i" link set "$name$i" up
    done
    ;;
  down) down ;;
  *) echo "netns_cluster.sh: unknown action '$action' (up or down)" >&2; exit 2 ;;
esac
