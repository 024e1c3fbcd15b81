#!/usr/bin/env python3
"""The clients and the chaos of scripts/soak.sh (not part of CI).

Runs CLIENTS streaming greedy completions against a Phalanx cluster for DURATION seconds while a chaos loop kills
(SIGKILL) or stops (SIGSTOP, then SIGCONT after 5-15 s) a random worker every 30-60 s. Each request's tokens are
compared with the fault-free tokens of the same prompt, taken before the chaos starts. Prints one JSON report.
Usage: soak_clients.py URL DURATION CLIENTS UP_PID
"""
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.request

url, duration, clients, up_pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
PROMPTS = [(f"Soak prompt number {i}: tell a story about", 24 + (i % 4) * 16) for i in range(32)]


def complete(prompt, max_tokens, timeout=600):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
                       "stream": True, "return_token_ids": True}).encode()
    request = urllib.request.Request(url + "/v1/completions", body, {"Content-Type": "application/json"})
    ids, error = [], None
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        for raw in reply:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                error = chunk["error"].get("message", "error")
            for choice in chunk.get("choices", []):
                ids.extend(choice.get("token_ids") or [])
    return ids, error


def metric(name):
    text = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def children(parent):
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
            if ppid == parent:
                found[int(pid)] = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        except OSError:
            pass
    return found


def rss(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def processes():
    found = {"coordinator": None, "workers": []}
    for pid, cmd in children(up_pid).items():
        if " coordinator " in cmd:
            found["coordinator"] = pid
        elif " worker " in cmd:
            found["workers"].append(pid)
    return found


def fault_free():
    """Every prompt's tokens before any fault, all at once."""
    found = {}
    def one(prompt, n):
        found[prompt] = complete(prompt, n)[0]
    workers = [threading.Thread(target=one, args=pair) for pair in PROMPTS]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return found


reference = fault_free()
start_rss = {pid: rss(pid) for pid in [processes()["coordinator"], *processes()["workers"]]}
replays_before = metric("phalanx_request_replays_total")
stats = {"sent": 0, "completed": 0, "failed": 0, "wrong": 0, "faults": [], "failures": {}}
lock = threading.Lock()
deadline = time.time() + duration


def client(index):
    rng = random.Random(index)
    while time.time() < deadline:
        prompt, n = rng.choice(PROMPTS)
        with lock:
            stats["sent"] += 1
        try:
            ids, error = complete(prompt, n)
        except Exception as e:  # an HTTP error or a cut stream: a failed request
            ids, error = [], str(e)
        with lock:
            if error:
                stats["failed"] += 1
                stats["failures"][error[:120]] = stats["failures"].get(error[:120], 0) + 1
            elif ids != reference[prompt]:
                stats["wrong"] += 1
            else:
                stats["completed"] += 1


def chaos():
    rng = random.Random(7)
    time.sleep(rng.uniform(30, 60))
    while time.time() < deadline - 20:
        workers = processes()["workers"]
        if workers:
            victim = rng.choice(workers)
            if rng.random() < 0.5:
                os.kill(victim, signal.SIGKILL)
                stats["faults"].append(["SIGKILL", victim, round(time.time() - (deadline - duration), 1)])
            else:
                os.kill(victim, signal.SIGSTOP)
                pause = rng.uniform(5, 15)
                stats["faults"].append(["SIGSTOP", victim, round(time.time() - (deadline - duration), 1),
                                        round(pause, 1)])
                time.sleep(pause)
                os.kill(victim, signal.SIGCONT)
        time.sleep(rng.uniform(30, 60))


threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
threads.append(threading.Thread(target=chaos))
for t in threads:
    t.start()
for t in threads:
    t.join()
time.sleep(2)
now = processes()
stats["replayed"] = metric("phalanx_request_replays_total") - replays_before
stats["rss_start_bytes"] = {str(pid): value for pid, value in start_rss.items()}
stats["rss_end_bytes"] = {str(pid): rss(pid) for pid in [now["coordinator"], *now["workers"]]}
# Growth of the processes that lived through the whole soak (killed workers were replaced by new ones).
stats["rss_growth_of_survivors"] = {str(pid): round(rss(pid) / start - 1, 4)
                                    for pid, start in start_rss.items() if start and rss(pid)}
stats["duration_s"] = duration
stats["clients"] = clients
print(json.dumps(stats))
