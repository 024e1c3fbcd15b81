#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, so test ranks talk across real interfaces as on two hosts:
#   netns.sh up NAME     creates namespaces NAME-a (10.77.0.1/24 on NAMEa) and NAME-b (10.77.0.2/24 on NAMEb)
#   netns.sh down NAME   deletes both (and with them the veth pair); safe to run when they do not exist
# NAME must be at most 14 characters (interface names are limited to 15). Needs root (CAP_NET_ADMIN and
# CAP_SYS_ADMIN); the subnet can repeat across concurrent runs because each pair lives in its own namespaces.
set -euo pipefail
action=${1:?usage: netns.sh up|down NAME}
name=${2:?usage: netns.sh up|down NAME}

down() {
  ip netns del "$name-a" 2>/dev/null || true
  ip netns del "$name-b" 2>/dev/null || true
  ip link del "${name}a" 2>/dev/null || true
}

case "$action" in
  up)
    down
    trap 'down' ERR
    ip netns add "$name-a"
    ip netns add "$name-b"
    ip link add "${name}a" type veth peer name "${name}b"
    ip link set "${name}a" netns "$name-a"
    ip link set "${name}b" netns "$name-b"
    ip -n "$name-a" addr add 10.77.0.1/24 dev "${name}a"
    ip -n "$name-b" addr add 10.77.0.2/24 dev "${name}b"
    for side in a b; do
      ip -n "$name-$side" link set lo up
      ip -n "$name-$side" link set "${name}$side" up
    done
    ;;
  down) down ;;
  *) echo "netns.sh: unknown action '$action' (up or down)" >&2; exit 2 ;;
esac
