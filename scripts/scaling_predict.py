#!/usr/bin/env python3
"""Predicted Phi-4 decode throughput on clusters this machine cannot hold, from the scaling model of docs/scaling.md.

A decode step of a TP group of N nodes (one rank a node) takes

    step = max(bytes_read / (N * bandwidth), flops / (N * cores * core_flops)) + 81 * t_ar + rpc + coordinator

with t_ar the all-reduce of scaling_model.allreduce_seconds (direct up to 256 KiB sent a rank, ring above) at the
link's bandwidth and a per-message latency. The parameters and where each comes from:

- bytes_read: the weights (BF16 29.3 GB, INT8 15.2 GB: `phalanx plan` on Phi-4's config) plus the KV cache read at
  a 1024-token context (batch x 1024 x 40 layers x 2 x 10 heads x 128 x 2 bytes);
- bandwidth: the node's achievable read bandwidth, an assumption per node kind (stated in the table), times 0.95,
  the share of the probed read bandwidth decode reached here (bench --tp roofline_fraction 0.98-1.0);
- core_flops: 200 GFLOP/s, this machine's BF16 dot peak a core (469 GFLOP/s on 2 vCPUs, docs/engine.md) at the
  85% prefill reached; the same for INT8 (VNNI at about twice the ops, less the dequantize);
- all-reduces: 81 a step (two a layer and the embedding's) of batch x 5120 x 4 bytes;
- latency per all-reduce message: TCP 22 us, the small all-reduce measured over the testbed's veth links
  (docs/netbench-comm.jsonl, no wire), plus 10 us assumed for a real NIC and switch; RDMA 3 us, from published
  ib_send_lat figures of 0.8 us (32 B) to 2.3 us (4 KB) one way on RC queue pairs
  (https://git.dennispotter.eu/Dennis/masters-thesis, tables/mtu_performance.tex) plus UCX's software;
- rpc + coordinator: one control-plane round trip (2 x latency) and 0.5 ms a step (the coordinator's share measured
  on phi4-L4: 0.7% of a 66 ms step).

usage: scaling_predict.py [--json]
"""
import argparse
import json
import sys

from scaling_model import allreduce_seconds

LAYERS, HIDDEN, KV_HEADS, HEAD_DIM = 40, 5120, 10, 128
PARAMS = 14.66e9
WEIGHT_BYTES = {"bf16": 29.3e9, "int8": 15.2e9}
CORE_FLOPS = 200e9
DECODE_SHARE_OF_BANDWIDTH = 0.95
CONTEXT = 1024
COORDINATOR_SECONDS = 0.5e-3
NODES = {"32 cores, 150 GB/s": (32, 150e9), "64 cores, 300 GB/s": (64, 300e9)}
NETWORKS = {"25 Gbit/s TCP": (25e9, 32e-6), "100 Gbit/s TCP": (100e9, 32e-6),
            "100 Gbit/s RDMA": (100e9, 3e-6), "400 Gbit/s RDMA": (400e9, 3e-6)}


def step_seconds(nodes, node, network, dtype, batch):
    cores, bandwidth = NODES[node]
    bits, latency = NETWORKS[network]
    kv_bytes = batch * CONTEXT * LAYERS * 2 * KV_HEADS * HEAD_DIM * 2
    memory = (WEIGHT_BYTES[dtype] + kv_bytes) / (nodes * bandwidth * DECODE_SHARE_OF_BANDWIDTH)
    compute = 2 * PARAMS * batch / (nodes * cores * CORE_FLOPS)
    comm = 0.0
    if nodes > 1:
        comm = (2 * LAYERS + 1) * allreduce_seconds(batch * HIDDEN * 4, nodes, 0.0, latency, bits / 8)
    return max(memory, compute) + comm + 2 * latency + COORDINATOR_SECONDS, comm


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for batch in (1, 16):
        if not args.json:
            print(f"\ndecode tok/s at batch {batch} (in brackets: the share of a step in communication)\n")
            print("| network | node | dtype | 1 node | 2 nodes | 4 nodes | 8 nodes |")
            print("|---|---|---|---|---|---|---|")
        for network in NETWORKS:
            for node in NODES:
                for dtype in WEIGHT_BYTES:
                    cells = []
                    for nodes in (1, 2, 4, 8):
                        step, comm = step_seconds(nodes, node, network, dtype, batch)
                        if args.json:
                            print(json.dumps({"batch": batch, "network": network, "node": node, "dtype": dtype,
                                              "nodes": nodes, "tokens_per_second": batch / step,
                                              "comm_share": comm / step}))
                        cells.append(f"{batch / step:.1f} ({100 * comm / step:.0f}%)")
                    if not args.json:
                        print(f"| {network} | {node} | {dtype} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
