"""Soak: a release Vigil under a steady mixed load for a long time, its memory sampled.

Started by scripts/bench-soak.sh. Runs `vigil serve` (local mode, its own data folder) in
front of `vigil mock-upstream`, then for --minutes drives, at once:
  - model calls through the gateway (--gateway-rps, a fixed set of agents, some streamed),
  - ingest batches of 100 vitals every second,
  - a small CSV uploaded (new content each time) and run every --run-every seconds,
  - the list endpoints (vitals, agents, runs, audit, gateway stats) every two seconds,
and samples the server's resident memory (VmRSS, /proc) every --sample seconds. Prints a
Markdown table of RSS over time and the growth over the second half; exits 1 if a request
kind failed more than it succeeded (the load must be real for the memory to mean anything).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

AGENTS = [f"soak-agent-{i}" for i in range(20)]


def start(args, env=None):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"(http://[0-9.:]+)", line or "")
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            raise RuntimeError(f"{args} exited")
    raise RuntimeError(f"{args} did not start")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.failed = {}

    def add(self, kind, ok):
        with self.lock:
            table = self.ok if ok else self.failed
            table[kind] = table.get(kind, 0) + 1


def call(method, url, body=None, headers=None, timeout=30):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def gateway_worker(base, stop, counts, interval, n):
    i = n
    while not stop.is_set():
        began = time.time()
        stream = i % 4 == 0
        body = {"model": "gpt-4o", "stream": stream,
                "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": f"hello {i}"}]}
        headers = {"content-type": "application/json", "x-agent-id": AGENTS[i % len(AGENTS)]}
        status, _ = call("POST", f"{base}/v1/chat/completions", body, headers)
        counts.add("gateway", status == 200)
        i += 1
        time.sleep(max(0.0, interval - (time.time() - began)))


def ingest_worker(base, stop, counts):
    n = 0
    while not stop.is_set():
        vitals = [{"agent_id": AGENTS[(n + k) % len(AGENTS)], "latency_ms": 100 + k, "input_tokens": 50 + k,
                   "output_tokens": 20, "model": "gpt-4o-mini"} for k in range(100)]
        status, _ = call("POST", f"{base}/api/v1/ingest", {"vitals": vitals}, {"content-type": "application/json"})
        counts.add("ingest", status == 200)
        n += 1
        stop.wait(1.0)


def runs_worker(base, stop, counts, every):
    n = 0
    while not stop.is_set():
        rows = "".join(f"{i},{(i * 37 + n) % 1000},item-{i % 17}\n" for i in range(2000))
        csv = f"id,amount,item\n{rows}# soak {n}\n".encode()
        status, body = call("POST", f"{base}/api/v1/uploads?name=soak-{n}.csv", csv,
                            {"content-type": "text/csv"})
        ok = status == 201
        if ok:
            upload = json.loads(body)["data"]["upload"]["id"]
            status, _ = call("POST", f"{base}/api/v1/runs", {"upload_id": upload}, {"content-type": "application/json"})
            ok = status == 201
        counts.add("run", ok)
        n += 1
        stop.wait(every)


def lists_worker(base, stop, counts):
    paths = ["/api/v1/vitals?limit=100", "/api/v1/agents?limit=100", "/api/v1/runs?limit=50",
             "/api/v1/audit?limit=100", "/api/v1/gateway/stats", "/api/v1/immune/agents?limit=100"]
    while not stop.is_set():
        for path in paths:
            status, _ = call("GET", f"{base}{path}")
            counts.add("lists", status == 200)
        stop.wait(2.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vigil")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--gateway-rps", type=float, default=100)
    ap.add_argument("--run-every", type=float, default=10)
    ap.add_argument("--sample", type=float, default=10)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="vigil-soak-")
    mock, mock_url = start([args.vigil, "mock-upstream", "--listen", "127.0.0.1:0"])
    with open(os.path.join(work, "vigil.toml"), "w") as f:
        f.write(f'[[gateway.providers]]\nname = "mock"\nkind = "openai"\nbase_url = "{mock_url}/v1"\n'
                '[rate_limit]\nenabled = false\n')
    env = dict(os.environ, VIGIL_DATA=work, VIGIL_LISTEN="127.0.0.1:0", VIGIL_LOG="warn")
    server, base = start([args.vigil, "serve"], env)
    stop = threading.Event()
    counts = Counts()
    workers = 4
    threads = [threading.Thread(target=gateway_worker, args=(base, stop, counts, workers / args.gateway_rps, n))
               for n in range(workers)]
    threads += [threading.Thread(target=ingest_worker, args=(base, stop, counts)),
                threading.Thread(target=runs_worker, args=(base, stop, counts, args.run_every)),
                threading.Thread(target=lists_worker, args=(base, stop, counts))]
    samples = [(0.0, rss_mb(server.pid))]
    began = time.time()
    for t in threads:
        t.start()
    try:
        while time.time() - began < args.minutes * 60:
            time.sleep(args.sample)
            samples.append((time.time() - began, rss_mb(server.pid)))
            print(f"{samples[-1][0]:6.0f} s  rss {samples[-1][1]:7.1f} MB  ok {counts.ok}  failed {counts.failed}",
                  file=sys.stderr, flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        server.terminate()
        mock.terminate()
        server.wait(timeout=30)
        mock.wait(timeout=30)

    print("| elapsed | RSS (MB) |")
    print("|---|---|")
    marks = sorted({0, 1, 2, 5} | {int(args.minutes * m) for m in (0.5, 0.75, 1.0)})
    for minute in marks:
        t = minute * 60
        nearest = min(samples, key=lambda s: abs(s[0] - t))
        print(f"| {nearest[0] / 60:.1f} min | {nearest[1]:.1f} |")
    half = [s for s in samples if s[0] >= args.minutes * 30]
    peak = max(s[1] for s in samples)
    growth = half[-1][1] - half[0][1] if len(half) > 1 else 0.0
    print(f"\npeak {peak:.1f} MB; second half: {half[0][1]:.1f} -> {half[-1][1]:.1f} MB ({growth:+.1f} MB)")
    print(f"requests ok {counts.ok}, failed {counts.failed}")
    bad = [k for k in counts.failed if counts.failed[k] > counts.ok.get(k, 0)]
    if bad:
        print(f"the load failed more than it succeeded for {bad}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
