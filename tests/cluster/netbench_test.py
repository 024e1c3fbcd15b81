#!/usr/bin/env python3
"""scripts/netbench.sh's plumbing, on the tiny model: two workers in their own network namespaces behind links
shaped to 1 Gbit/s, bench through them, and the same cases over shared memory first. Checks that every case has a
record per link, that the shaped links carry a tbf at the asked rate with a measured round trip, and that at least
the all-reduce payload the plan names crossed the links (each timed step's bytes, counted once: the links saw them
sent and received, and more besides: the warm-up, the control plane). Then --comm: bench-comm's all-reduce by size
over shared memory and across the shaped link, for UCX over TCP and MPI_Allreduce (UCX and ob1): a record per
transport and size, and a megabyte taking at least half its wire time at 1 Gbit/s (what shared memory never does).
Root only, as CI runs.

usage: netbench_test.py REPO MODEL"""
import json
import math
import subprocess
import sys
import tempfile

repo, model = sys.argv[1], sys.argv[2]
gen, reps, prompt, ubatch = 4, 1, 24, 512
with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
    subprocess.run([f"{repo}/scripts/netbench.sh", "--model", model, "--rates", "1gbit", "--gen", str(gen),
                    "--reps", str(reps), "--cases", f"--batch 1,2;--prompt {prompt}", "--out", out.name],
                   cwd=repo, check=True, timeout=600)
    records = [json.loads(line) for line in open(out.name)]

failures = []
def check(condition, what):
    if not condition:
        failures.append(what)

by_link = {}
for r in records:
    by_link.setdefault(r["link"], []).append(r)
check(sorted(by_link) == ["1gbit", "shm"], f"links {sorted(by_link)}")
for link, rs in by_link.items():
    cases = [(r["test"], r["batch"]) for r in rs]
    check(cases == [(f"tg{gen}", 1), (f"tg{gen}", 2), (f"pp{prompt}", 1)], f"{link}: cases {cases}")
    for r in rs:
        check(r["cluster_tokens_per_second"] > 0, f"{link} {r['test']}: no rate")
        check(r["tp"] == 2, f"{link}: tp {r['tp']}")
shaped = by_link.get("1gbit", [])
for r in shaped:
    check(r["link_qdisc"] and "tbf" in r["link_qdisc"] and "rate 1Gbit" in r["link_qdisc"],
          f"qdisc {r['link_qdisc']}")
    check(r["link_rtt_ms"] is not None and 0 < r["link_rtt_ms"] < 50, f"round trip {r['link_rtt_ms']} ms")
# One bench run per case list entry: the decode run's records share its bytes, the prefill run has its own.
if len(shaped) == 3:
    decode_payload = sum(r["allreduce_bytes_per_step"] * gen * reps for r in shaped[:2])
    prefill = shaped[2]
    prefill_payload = prefill["allreduce_bytes_per_step"] * math.ceil(prompt / ubatch) * reps
    check(shaped[0]["link_bytes_during_run"] >= decode_payload,
          f"decode run: {shaped[0]['link_bytes_during_run']} bytes crossed, payload {decode_payload}")
    check(prefill["link_bytes_during_run"] >= prefill_payload,
          f"prefill run: {prefill['link_bytes_during_run']} bytes crossed, payload {prefill_payload}")
for r in by_link.get("shm", []):
    check(r["link_bytes_during_run"] == 0 and r["link_qdisc"] is None, "shared memory crossed no link")
with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
    subprocess.run([f"{repo}/scripts/netbench.sh", "--comm", "--rates", "1gbit", "--sizes", "4KiB..1MiB",
                    "--out", out.name], cwd=repo, check=True, timeout=600)
    comm = [json.loads(line) for line in open(out.name)]
sizes = [4096, 10240, 16384, 65536, 262144, 1048576]
expected = {"shm": ["ucx-sm", "mpi-ucx", "mpi-ob1"], "1gbit": ["ucx-tcp", "mpi-ucx", "mpi-ob1"]}
for link, transports in expected.items():
    for transport in transports:
        rs = [r for r in comm if r["link"] == link and r["transport"] == transport]
        check([r["bytes"] for r in rs] == sizes, f"comm {link} {transport}: sizes {[r['bytes'] for r in rs]}")
        check(all(r["latency_us_median"] > 0 and r["ranks"] == 2 for r in rs), f"comm {link} {transport}: values")
        megabyte = [r["latency_us_median"] for r in rs if r["bytes"] == 1048576]
        wire_us = 1048576 * 8 / 1e9 * 1e6
        if link == "1gbit":
            check(megabyte and megabyte[0] >= wire_us / 2,
                  f"comm 1gbit {transport}: 1 MiB in {megabyte} us, the wire alone takes {wire_us:.0f} us")
for failure in failures:
    print("FAILED:", failure)
print(json.dumps({"records": len(records), "comm_records": len(comm), "failures": len(failures)}))
sys.exit(1 if failures else 0)
