"""Gateway benchmark driver: Vigil against peer gateways, all in front of the same mock.

Started by scripts/bench-gateway.sh, which installs everything first. For each target
(the mock called directly, Vigil, and each available peer) and each rate, drives
`oha` at a fixed request rate (open loop, latency-corrected) with and without streaming,
then reports latency added over calling the mock directly (p50, p99), CPU time per request
(from /proc, the target's own process tree) and peak resident memory. While one gateway is
measured every other one is stopped (SIGSTOP), and before it starts the driver waits for
the measured gateway and the mock to go idle, so neither is still working off the
previous cell's backlog.

With --governance, a second Vigil of the same build runs with a policy in force: rules, a
kill switch (for other agents) and two budgets every call is admitted against and settled
on (GOVERNANCE below); its admission and settlement times are read from its /metrics.

Usage: gateway_bench.py VIGIL_BIN SCRATCH_DIR --rates 1000,2000,5000 --seconds 10 [--peers tensorzero,litellm,portkey]
       [--repeat N] [--compare OTHER_VIGIL_BIN] [--governance]
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")
# The policy of the governed Vigil: every benchmark call is judged by the rules and
# admitted against both budgets (limits far above what a run spends).
GOVERNANCE = {
    "rules": [
        {"id": "no-o1", "effect": "deny", "match": {"models": ["o1*"]}},
        {"id": "gpt-4o-ok", "effect": "allow", "priority": 5, "match": {"models": ["gpt-4o*"]}},
    ],
    "kill_switches": [{"id": "stop-rogue", "domains": ["model_calls"], "match": {"agents": ["rogue-*"]}}],
    "budgets": [
        {"id": "org", "period": "month", "limit_usd": 1000000},
        {"id": "per-agent", "per": "agent", "period": "day", "limit_usd": 100000, "parent": "org"},
    ],
}
BODY = {"model": "gpt-4o", "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]}


def wait_for_line(proc, pattern, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited: {proc.args}")
            continue
        m = re.search(pattern, line)
        if m:
            return m.group(1)
    raise RuntimeError(f"timed out waiting for {pattern!r} from {proc.args}")


def wait_http(url, headers=None, body=None, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            req = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.5)
    raise RuntimeError(f"{url} never answered")


def tree_pids(pid):
    pids = [pid]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    pids.extend(tree_pids(int(p)))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return pids


def cpu_seconds(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total / TICKS


def peak_rss_mb(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def settle(pids, idle=0.05, window=1.0, limit=60):
    """Waits until the given process trees together use under `idle` of a core (a saturated
    gateway, or the mock behind it, finishes the requests it had accepted after the load
    generator stops). Returns the seconds waited."""
    started = time.time()
    while time.time() - started < limit:
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(window)
        if sum(cpu_seconds(p) for p in pids) - before < idle * window:
            break
    else:
        print(f"warning: still busy after {limit} s; measuring anyway", file=sys.stderr, flush=True)
    return time.time() - started


def signal_trees(pids, sig):
    """Signals every process of each tree. The gateways run in sessions of their own, so a
    stopped one never leaves this driver's process group holding a stopped process (which
    would earn the whole group a SIGHUP if the shell that started it went away)."""
    for root in pids:
        for p in tree_pids(root):
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass


def oha(url, rate, seconds, stream, model, headers):
    body = dict(BODY, model=model)
    if stream:
        body["stream"] = True
    cmd = ["oha", "-z", f"{seconds}s", "-q", str(rate), "-c", "128", "--latency-correction", "--no-tui",
           "--output-format", "json", "-m", "POST", "-T", "application/json", "-d", json.dumps(body)]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    summary = result["summary"]
    pct = result["latencyPercentiles"]
    ok = sum(v for k, v in result.get("statusCodeDistribution", {}).items() if k.startswith("2"))
    total = sum(result.get("statusCodeDistribution", {}).values()) + sum(result.get("errorDistribution", {}).values())
    return {"p50": pct["p50"] * 1000, "p99": pct["p99"] * 1000, "rps": summary["requestsPerSec"], "ok": ok, "total": total}


class Target:
    def __init__(self, name, url, pid, model="gpt-4o", headers=None, proc=None):
        self.name, self.url, self.pid, self.model = name, url, pid, model
        self.headers = headers or {}
        self.proc = proc


def start_mock(vigil):
    proc = subprocess.Popen([vigil, "mock-upstream"], stdout=subprocess.PIPE, text=True)
    url = wait_for_line(proc, r"listening on (http://\S+)")
    return proc, url


def start_vigil(vigil, scratch, mock_url, name="Vigil", policy=None):
    data = tempfile.mkdtemp(dir=scratch)
    with open(os.path.join(data, "vigil.toml"), "w") as f:
        f.write(f'[[gateway.providers]]\nname = "mock"\nkind = "openai"\nbase_url = "{mock_url}"\n')
    env = dict(os.environ, VIGIL_DATA=data, VIGIL_LISTEN="127.0.0.1:0", VIGIL_LOG="warn",
               VIGIL_RATE_LIMIT_ENABLED="false", VIGIL_STORE_DURABILITY="fast")
    proc = subprocess.Popen([vigil, "serve"], stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    url = wait_for_line(proc, r"listening on (http://\S+)")
    if policy is not None:
        req = urllib.request.Request(f"{url}/api/v1/policy", method="PUT", data=json.dumps({"document": policy}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200, r.status
    target = Target(name, f"{url}/v1/chat/completions", proc.pid, proc=proc)
    target.base = url
    return target


def histogram(base, name):
    """A Prometheus histogram of Vigil's /metrics as (upper bound, cumulative count) pairs."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    buckets = []
    for line in text.splitlines():
        m = re.match(rf'{name}_bucket{{le="([^"]+)"}} (\d+)', line)
        if m:
            buckets.append((float(m.group(1)), int(m.group(2))))
    return buckets


def quantile(buckets, q):
    """The upper bound of the bucket holding quantile q (0 when empty)."""
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return 0.0


def start_tensorzero(scratch, mock_url):
    venv = os.path.join(scratch, "venv-tensorzero")
    config = os.path.join(scratch, "tensorzero.toml")
    with open(config, "w") as f:
        f.write('[gateway]\nobservability.enabled = false\n\n[models.gpt-4o]\nrouting = ["mock"]\n\n'
                f'[models.gpt-4o.providers.mock]\ntype = "openai"\nmodel_name = "gpt-4o"\napi_base = "{mock_url}/"\n'
                'api_key_location = "none"\n')
    code = ("import tensorzero, time, sys\n"
            f"g = tensorzero._start_http_gateway(config_file={config!r}, clickhouse_url=None, postgres_url=None, valkey_url=None, async_setup=False)\n"
            "print('BASE', g.base_url, flush=True)\n"
            "time.sleep(10**6)\n")
    proc = subprocess.Popen([os.path.join(venv, "bin", "python"), "-c", code], stdout=subprocess.PIPE, text=True,
                            start_new_session=True,
                            stderr=subprocess.DEVNULL)
    base = wait_for_line(proc, r"BASE (\S+)")
    return Target("TensorZero", f"{base}/chat/completions", proc.pid, model="tensorzero::model_name::gpt-4o", proc=proc)


def start_litellm(scratch, mock_url):
    venv = os.path.join(scratch, "venv-litellm")
    config = os.path.join(scratch, "litellm.yaml")
    with open(config, "w") as f:
        f.write("model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n"
                f"      api_base: {mock_url}\n      api_key: sk-mock\n"
                "general_settings:\n  master_key: sk-bench-master\nlitellm_settings:\n  drop_params: true\n")
    port = free_port()
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    proc = subprocess.Popen([os.path.join(venv, "bin", "litellm"), "--config", config, "--port", str(port), "--num_workers", "1"],
                            start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"Authorization": "Bearer sk-bench-master", "Content-Type": "application/json"}
    wait_http(url, headers, BODY, timeout=180)
    return Target("LiteLLM", url, proc.pid, headers={"Authorization": "Bearer sk-bench-master"}, proc=proc)


def start_portkey(scratch, mock_url):
    root = os.path.join(scratch, "portkey")
    port = free_port()
    entry = os.path.join(root, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
    proc = subprocess.Popen(["node", entry, f"--port={port}", "--headless"], stdout=subprocess.DEVNULL, start_new_session=True,
                            stderr=subprocess.DEVNULL, cwd=root)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"x-portkey-provider": "openai", "x-portkey-custom-host": mock_url, "Authorization": "Bearer sk-mock"}
    wait_http(url, dict(headers, **{"Content-Type": "application/json"}), BODY, timeout=60)
    return Target("Portkey", url, proc.pid, headers=headers, proc=proc)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def median_of(runs):
    """Each measure's median over repeated runs of one cell (counts summed, peak RSS the largest)."""
    out = {k: statistics.median(r[k] for r in runs) for k in ("p50", "p99", "rps", "cpu_us")}
    out["ok"] = sum(r["ok"] for r in runs)
    out["total"] = sum(r["total"] for r in runs)
    out["rss"] = max(r["rss"] for r in runs)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vigil")
    ap.add_argument("scratch")
    ap.add_argument("--rates", default="1000,2000,5000")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--peers", default="tensorzero,litellm,portkey")
    ap.add_argument("--compare", metavar="VIGIL_BIN",
                    help="another Vigil build measured in the same runs, for an A/B of a change")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure each cell this many times, targets in turn, and report the medians "
                         "(the tail on a shared machine moves between runs)")
    ap.add_argument("--governance", action="store_true",
                    help="also measure the same build with a policy, a kill switch and budgets in force")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    mock_proc, mock_url = start_mock(args.vigil)
    targets = [Target("mock (direct)", f"{mock_url}/chat/completions", mock_proc.pid)]
    starters = {"tensorzero": start_tensorzero, "litellm": start_litellm, "portkey": start_portkey}
    try:
        targets.append(start_vigil(args.vigil, args.scratch, mock_url))
        if args.compare:
            targets.append(start_vigil(args.compare, args.scratch, mock_url, name="Vigil (compare)"))
        if args.governance:
            targets.append(start_vigil(args.vigil, args.scratch, mock_url, name="Vigil (governed)", policy=GOVERNANCE))
        for peer in filter(None, args.peers.split(",")):
            try:
                targets.append(starters[peer](args.scratch, mock_url))
            except Exception as e:  # a peer that cannot start is reported, not fatal
                print(f"skipping {peer}: {e}", file=sys.stderr)
        rows = []
        for stream in (False, True):
            for rate in rates:
                runs = {t.name: [] for t in targets}
                for _ in range(args.repeat):
                    for t in targets:
                        # Only the target and the mock run while it is measured: the other
                        # gateways are stopped, since even idle ones wake now and then
                        # (timers, event loops) and take a core from the measured one.
                        others = [x.pid for x in targets if x is not t and x.proc is not None]
                        signal_trees(others, signal.SIGSTOP)
                        try:
                            waited = settle([t.pid, mock_proc.pid])
                            if waited > 3:
                                print(f"(waited {waited:.0f} s for {t.name} to go idle)", file=sys.stderr, flush=True)
                            before = cpu_seconds(t.pid)
                            r = oha(t.url, rate, args.seconds, stream, t.model, t.headers)
                            cpu = cpu_seconds(t.pid) - before
                        finally:
                            signal_trees(others, signal.SIGCONT)
                        r["cpu_us"] = cpu / max(r["total"], 1) * 1e6
                        r["rss"] = peak_rss_mb(t.pid)
                        runs[t.name].append(r)
                        print(f"{t.name:14} stream={stream!s:5} rate={rate:5} rps={r['rps']:8.0f} ok={r['ok']}/{r['total']} "
                              f"p50={r['p50']:.3f}ms p99={r['p99']:.3f}ms cpu/req={r['cpu_us']:.0f}us rss={r['rss']:.0f}MB",
                              file=sys.stderr, flush=True)
                base = None
                for t in targets:
                    r = median_of(runs[t.name])
                    if base is None:
                        base = r
                    rows.append((t.name, stream, rate, r, base))
        print("| target | stream | rate (req/s) | achieved | ok | added p50 (ms) | added p99 (ms) | CPU per request (µs) | peak RSS (MB) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, stream, rate, r, base in rows:
            direct = name == "mock (direct)"
            added50 = "—" if direct else f"{r['p50'] - base['p50']:.3f}"
            added99 = "—" if direct else f"{r['p99'] - base['p99']:.3f}"
            print(f"| {name} | {'yes' if stream else 'no'} | {rate} | {r['rps']:.0f} | {r['ok']}/{r['total']} | "
                  f"{added50} | {added99} | {r['cpu_us']:.0f} | {r['rss']:.0f} |")
        for t in targets:
            if t.name == "Vigil (governed)":
                admission = histogram(t.base, "vigil_budget_admission_seconds")
                settlement = histogram(t.base, "vigil_budget_settlement_seconds")
                print(f"\nVigil (governed), over every call of the run: admission p50 {quantile(admission, 0.5) * 1000:.3f} ms, "
                      f"p99 {quantile(admission, 0.99) * 1000:.3f} ms ({admission[-1][1] if admission else 0} calls); "
                      f"a settlement batch p50 {quantile(settlement, 0.5) * 1000:.3f} ms, p99 {quantile(settlement, 0.99) * 1000:.3f} ms "
                      f"({settlement[-1][1] if settlement else 0} batches) (bucket upper bounds)")
    finally:
        for t in targets:
            if t.proc is not None:
                t.proc.send_signal(signal.SIGTERM)
        mock_proc.send_signal(signal.SIGTERM)
        for t in targets:
            if t.proc is not None:
                try:
                    t.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    t.proc.kill()


if __name__ == "__main__":
    main()
