#!/usr/bin/env python3
"""The scaling model of docs/scaling.md, checked against scripts/netbench.sh's measurements.

A step of a TP group is what it computes, plus its communication, plus what the coordinator adds:

    step = rest + comm,    comm = skew + n_ar * t_ar,
    t_ar = rounds * (alpha + rtt / 2) + bytes_sent / link_bytes_per_second

rest (compute, the coordinator's RPC) is each measured point's own step minus its communication, so that the
host's memory bandwidth, which swings from minute to minute, cancels out of the check; skew, the time one rank
waits in an all-reduce for the other to arrive, is the communication the same case spends over shared memory;
n_ar all-reduces a step (two per layer plus the embedding's), each of S bytes a rank (allreduce_bytes_per_step /
n_ar). UCX's all-reduce (rpc/ucx_allreduce.cc) sends up to 256 KiB a rank in one round (every rank its whole vector
to every other: (n - 1) S sent), larger in a ring (2 (n - 1) rounds, 2 (n - 1) / n S sent). rtt is the link's
measured round trip; alpha, the software cost of one message over UCX's TCP transport, is the one fitted
parameter, fitted on one point (--calibrate) and checked on every other.

usage: scaling_model.py NETBENCH.jsonl CONFIG.json [--calibrate LINK/TEST/BATCH] [--json]
"""
import argparse
import json
import sys

EAGER_LIMIT = 256 * 1024  # bytes a rank sends in the one-round all-reduce (rpc/ucx_allreduce.cc)


def link_bits_per_second(link):
    units = {"k": 1e3, "m": 1e6, "g": 1e9}
    number = link.lower().removesuffix("bit")
    return float(number[:-1]) * units[number[-1]]


def allreduce_seconds(message_bytes, ranks, alpha, one_way, bytes_per_second):
    """One all-reduce of message_bytes a rank over ranks ranks on links of bytes_per_second each way."""
    if message_bytes <= EAGER_LIMIT:
        rounds, sent = 1, (ranks - 1) * message_bytes
    else:
        rounds, sent = 2 * (ranks - 1), 2 * (ranks - 1) / ranks * message_bytes
    return rounds * (alpha + one_way) + sent / bytes_per_second


def case_key(record):
    return f"{record['link']}/{record['test']}/{record['batch']}"


def shape(record, hidden):
    """(all-reduces a step, bytes each sends a rank) from the record's plan figures."""
    per_token = hidden * 4
    n_ar = round(record["allreduce_bytes_per_step"] / (record["tokens_per_step"] * per_token))
    return n_ar, record["allreduce_bytes_per_step"] / n_ar


def seconds(record):
    """(step, communication) of a record, in seconds."""
    step = record["step_ms"] / 1e3
    return step, step * record["comm_share"]


def predicted_comm(record, base, alpha, hidden):
    """Seconds of communication a step of `record`'s case spends over its link; `base`: the same over shared memory."""
    n_ar, message = shape(record, hidden)
    bytes_per_second = link_bits_per_second(record["link"]) / 8
    one_way = record["link_rtt_ms"] / 2e3
    return seconds(base)[1] + n_ar * allreduce_seconds(message, record["tp"], alpha, one_way, bytes_per_second)


def fit_alpha(record, base, hidden):
    """alpha such that the model gives `record`'s measured communication exactly."""
    n_ar, message = shape(record, hidden)
    network = seconds(record)[1] - seconds(base)[1]
    rounds = 1 if message <= EAGER_LIMIT else 2 * (record["tp"] - 1)
    sent_seconds = allreduce_seconds(message, record["tp"], 0, 0, link_bits_per_second(record["link"]) / 8)
    return (network / n_ar - sent_seconds) / rounds - record["link_rtt_ms"] / 2e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("measurements")
    parser.add_argument("config")
    parser.add_argument("--calibrate", default="10gbit/tg32/1", help="the point alpha is fitted on")
    parser.add_argument("--json", action="store_true", help="one JSON object per checked point")
    args = parser.parse_args()
    hidden = json.load(open(args.config))["hidden_size"]
    records = {case_key(r): r for r in map(json.loads, open(args.measurements))}
    base_of = lambda r: records[f"shm/{r['test']}/{r['batch']}"]
    calibration = records[args.calibrate]
    alpha = max(0.0, fit_alpha(calibration, base_of(calibration), hidden))
    print(f"alpha (one message's software cost over UCX TCP), fitted on {args.calibrate}: {alpha * 1e6:.1f} us"
          " (clamped at 0)")
    print("| link | case | measured tok/s | comm ms a step: measured | model | model tok/s | error | of shm, same rest |")
    print("|---|---|---|---|---|---|---|---|")
    errors = []
    for key, record in records.items():
        if record["link"] == "shm":
            continue
        step, comm = seconds(record)
        model_comm = predicted_comm(record, base_of(record), alpha, hidden)
        measured = record["cluster_tokens_per_second"]
        # The measured rate with the modelled communication in place of the measured one.
        model = measured * step / (step - comm + model_comm)
        error = model / measured - 1
        if key != args.calibrate:
            errors.append(abs(error))
        # What the link costs against shared memory with the host's speed of this very point: the same step with
        # the shared-memory case's communication in place of the link's.
        of_shm = (step - comm + seconds(base_of(record))[1]) / step
        if args.json:
            print(json.dumps({"point": key, "measured": measured, "model": model, "error": error,
                              "comm_seconds": comm, "model_comm_seconds": model_comm, "of_shm_same_rest": of_shm}))
        else:
            print(f"| {record['link']} | {record['test']} b{record['batch']} | {measured:.2f} | {1e3 * comm:.1f} | "
                  f"{1e3 * model_comm:.1f} | {model:.2f} | {100 * error:+.1f}% | {100 * of_shm:.1f}% |")
    print(f"largest error off the calibration point: {100 * max(errors, default=0):.1f}% over {len(errors)} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
