#!/usr/bin/env bash
# A multi-host testbed on one machine: each worker in its own network namespace with its own address on a bridge,
# every link shaped with tc tbf (both directions), UCX over TCP between them, the coordinator (`phalanx bench
# --cluster`) outside on the bridge. For each link rate, and first over shared memory on loopback (the same shape,
# workers started by bench itself), it runs `phalanx bench --tp` for each case and writes one JSON line per
# record, with the link, its qdisc as tc shows it, the bytes that crossed the workers' links during the run (sent
# plus received, all links together), and the per-hop round-trip time measured on the link. Root only; traffic
# stays between these namespaces. With --comm it measures the data plane alone instead: `phalanx bench-comm` with
# its ranks in the namespaces (UCX over TCP, MPI_Allreduce over UCX and over ob1's TCP BTL), by message size.
#
#   scripts/netbench.sh --model DIR [--rates 1gbit,10gbit,25gbit] [--tp 2] [--pp 1] [--cases "CASE;CASE"]
#                       [--gen 32] [--reps 3] [--out FILE.jsonl] [--keep]
#   scripts/netbench.sh --comm [--sizes 4KiB..4MiB] [--rates ...] [--tp 2] [--out FILE.jsonl]
#
# --cases: bench arguments per run, `;`-separated (default "--batch 1;--batch 16;--prompt 512"). Workers keep their
# loaded shard between runs (a coordinator re-attaches), so each case costs one load only at the first rate.
# --keep leaves the namespaces and workers up (their addresses are printed) for a look afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
phalanx=${PHALANX:-build/bin/phalanx}

model="" rates="1gbit,10gbit,25gbit" tp=2 pp=1 gen=32 reps=3 out=/dev/stdout keep=0 comm=0 sizes=4KiB..4MiB
cases="--batch 1;--batch 16;--prompt 512"
usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --tp) tp=$2; shift 2 ;;
    --pp) pp=$2; shift 2 ;;
    --cases) cases=$2; shift 2 ;;
    --gen) gen=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --comm) comm=1; shift ;;
    --sizes) sizes=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "netbench.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[ -n "$model" ] || [ "$comm" = 1 ] || { echo "netbench.sh: --model DIR is required" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "netbench.sh: needs root (network namespaces, tc)" >&2; exit 2; }
[ -z "$model" ] || model=$(realpath "$model")
workers=$((tp * pp))

# Names unique to this run, so two runs never meet (scripts/netns_hosts.sh: NAME-i, interfaces NAMEi inside and
# NAMEpi on the bridge, addresses NET.(i+1)); NAME stays under 10 characters.
tag=$(( $$ % 100000 ))
name="pnb$tag"
net="10.$(( 100 + tag % 100 )).$(( tag / 100 % 250 ))"
ns() { echo "$name-$1"; }
innerIf() { echo "$name$1"; }
hostIf() { echo "${name}p$1"; }
address() { echo "$net.$(( $1 + 1 ))"; }
pids=() logs=$(mktemp -d /tmp/phx-netbench-XXXXXX) hostsUp=0

cleanup() {
  if [ "$keep" = 1 ]; then echo "netbench.sh: kept namespaces $(ns 0).., workers up, logs in $logs" >&2; return; fi
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$hostsUp" = 0 ] || scripts/netns_hosts.sh down "$name" "$workers"
  rm -rf "$logs"
}
trap cleanup EXIT

# tbf on both ends of every worker's link: what it sends (in its namespace) and what it receives (the bridge port).
# The bucket holds 10 ms at the rate, so the shaper reaches its rate at this kernel's timer granularity.
shape() {
  local rate=$1 bits burst
  bits=$(numfmt --from=si "$(echo "${rate%bit}" | tr a-z A-Z)")
  burst=$(( bits / 8 / 100 ))
  for ((i = 0; i < workers; ++i)); do
    ip netns exec "$(ns $i)" tc qdisc replace dev "$(innerIf $i)" root tbf rate "$rate" burst "$burst" latency 50ms
    tc qdisc replace dev "$(hostIf $i)" root tbf rate "$rate" burst "$burst" latency 50ms
  done
}

# The median round trip of 20 pings from worker 0 to worker 1 (the per-hop latency the scaling model takes), ms.
hopRtt() {
  ip netns exec "$(ns 0)" ping -c 20 -i 0.05 -q "$(address 1)" | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p'
}

startWorkers() {
  for ((i = 0; i < workers; ++i)); do
    ip netns exec "$(ns $i)" env UCX_TLS=tcp,self UCX_NET_DEVICES="$(innerIf $i)" OMP_WAIT_POLICY=passive \
      taskset -c $(( i % $(nproc) )) "$phalanx" worker --listen "$(address $i):7000" --threads 1 \
      --model-root "$model" >"$logs/worker$i.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < workers; ++i)); do
    for _ in $(seq 100); do grep -qs "listening on" "$logs/worker$i.log" && break; sleep 0.1; done
    grep -qs "listening on" "$logs/worker$i.log" || { cat "$logs/worker$i.log" >&2; exit 1; }
  done
}

linkBytes() {  # bytes sent plus received on every worker's link so far
  local total=0
  for ((i = 0; i < workers; ++i)); do
    total=$(( total + $(cat /sys/class/net/"$(hostIf $i)"/statistics/tx_bytes) \
                    + $(cat /sys/class/net/"$(hostIf $i)"/statistics/rx_bytes) ))
  done
  echo "$total"
}

# bench over the link named $1 (shm: workers started by bench on loopback), each case; JSON lines to $out.
benchLink() {
  local link=$1 rtt=$2 endpoints="" before qdisc=""
  [ "$link" = shm ] || qdisc=$(tc qdisc show dev "$(hostIf 0)" | head -1)
  for ((i = 0; i < workers; ++i)); do endpoints+="${endpoints:+,}$(address $i):7000"; done
  IFS=';' read -ra runs <<<"$cases"
  for run in "${runs[@]}"; do
    # shellcheck disable=SC2086 # each case is a list of bench arguments
    set -- --model "$model" --tp "$tp" --pp "$pp" --gen "$gen" --reps "$reps" --local-threads 0 --json $run
    if [ "$link" = shm ]; then
      UCX_TLS=sm,self OMP_WAIT_POLICY=passive "$phalanx" bench "$@" >"$logs/bench.json" 2>"$logs/bench.log" ||
        { cat "$logs/bench.log" >&2; exit 1; }
      before=0
    else
      before=$(linkBytes)
      "$phalanx" bench "$@" --cluster "$endpoints" >"$logs/bench.json" 2>"$logs/bench.log" ||
        { cat "$logs/bench.log" >&2; exit 1; }
    fi
    local crossed=0
    [ "$link" = shm ] || crossed=$(( $(linkBytes) - before ))
    python3 -c '
import json, sys
link, rtt, crossed, qdisc = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[5]
for line in open(sys.argv[4]):
    record = json.loads(line)
    record.update(link=link, link_rtt_ms=float(rtt) if rtt else None, link_bytes_during_run=crossed,
                  link_qdisc=qdisc or None)
    print(json.dumps(record))' "$link" "$rtt" "$crossed" "$logs/bench.json" "$qdisc" >>"$out"
    echo "netbench.sh: $link, $run: done" >&2
  done
}

# bench-comm over the link named $1 (shm: the ranks share memory on this host), JSON lines to $out.
commLink() {
  local link=$1 rtt=$2 flags
  if [ "$link" = shm ]; then flags=(--transports ucx-sm,mpi-ucx,mpi-ob1); else
    flags=(--transports ucx-tcp,mpi-ucx,mpi-ob1 --netns "$name"); fi
  "$phalanx" bench-comm --ranks "$workers" --sizes "$sizes" --reps 200 --json "$logs/comm.json" "${flags[@]}" \
    >"$logs/comm.log" 2>&1 || { cat "$logs/comm.log" >&2; exit 1; }
  python3 -c '
import json, sys
link, rtt = sys.argv[1], sys.argv[2]
for record in json.load(open(sys.argv[3])):
    record.update(test="allreduce", link=link, link_rtt_ms=float(rtt) if rtt else None)
    print(json.dumps(record))' "$link" "$rtt" "$logs/comm.json" >>"$out"
  echo "netbench.sh: $link, bench-comm: done" >&2
}

[ "$out" = /dev/stdout ] || : >"$out"
if [ "$comm" = 1 ]; then commLink shm ""; else benchLink shm ""; fi
scripts/netns_hosts.sh up "$name" "$workers" "$net"
hostsUp=1
[ "$comm" = 1 ] || startWorkers
IFS=',' read -ra rateList <<<"$rates"
for rate in "${rateList[@]}"; do
  shape "$rate"
  if [ "$comm" = 1 ]; then commLink "$rate" "$(hopRtt)"; else benchLink "$rate" "$(hopRtt)"; fi
done
