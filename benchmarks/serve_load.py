"""`edgefin-run serve` under load, driven by wrk (an established HTTP load generator).

    apt-get install wrk            # Debian/Ubuntu (brew install wrk on macOS); this script installs nothing
    uv run --no-sync python benchmarks/serve_load.py --bundle runs/demo/bundles/tflite-int8.efb \
        --other runs/demo/bundles/tflite-fp32.efb --out benchmarks/results/serve

Why wrk: it is written in C, event-driven, and one thread keeps 64 connections busy with a few percent
of a core, which matters on a 2-core branch box where the generator competes with the service; its Lua
hooks send POST bodies, mix request kinds and check every response body. (locust is Python and spends
hundreds of microseconds per request in the client; oha/hey lack per-response checks.)

The server runs pinned to --server-cpu, wrk to --client-cpu (taskset), loopback, keep-alive.
What is measured, in one run:
  latency     requests/s, p50, p99 at 1, 8, 64 connections, for one-record bodies and 64-record batches,
              and the same work in-process (Predictor.score / score_batch, pinned to the server's CPU):
              the service overhead is HTTP p50 minus in-process p50
  swaps       a sustained run while --swaps hot swaps (alternating two bundles, POST /v1/admin/reload)
              happen: every response must be 200 and exactly the scores of the model it names
  malformed   10% of requests are malformed JSON: they must get 400, every good one its exact 200
  overload    1 worker, queue of 4, 64 connections of 1,024-record batches: 503s, no timeouts,
              RSS sampled every 0.25 s must not grow
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"

LUA_COMMON = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function summary_json(summary, latency, extra)
  local e = summary.errors
  local parts = {
    string.format('"requests": %d', summary.requests),
    string.format('"duration_us": %d', summary.duration),
    string.format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
                  e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f',
                  latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max),
  }
  if extra then table.insert(parts, extra) end
  io.write("WRKJSON " .. "{" .. table.concat(parts, ", ") .. "}\n")
end
"""

LUA_PLAIN = (
    LUA_COMMON
    + r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[BODY]==]
function done(summary, latency, requests) summary_json(summary, latency, nil) end
"""
)

#: per-response checks: counts by outcome, summed over threads in done()
LUA_CHECKED = (
    LUA_COMMON
    + r"""
EXPECTED = {EXPECTED}
GOOD = [==[GOOD]==]
BAD = [==[BAD]==]
BAD_EVERY = BADEVERY
function init(args)
  n = 0; sent_bad = 0; ok = 0; mismatch = 0; bad400 = 0; s503 = 0; other = 0; ids = ""
  seen = {}
  local h = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer TOKEN"}
  good_req = wrk.format("POST", "/v1/score", h, GOOD)
  bad_req = wrk.format("POST", "/v1/score", h, BAD)
end
function request()
  n = n + 1
  if BAD_EVERY > 0 and n % BAD_EVERY == 0 then sent_bad = sent_bad + 1; return bad_req end
  return good_req
end
function response(status, headers, body)
  if status == 503 then s503 = s503 + 1; return end
  if status == 400 and body:find('"MalformedJSON"', 1, true) then bad400 = bad400 + 1; return end
  if status ~= 200 then other = other + 1; return end
  local id = body:match('"id":"(%x+)"')
  local norm = body:gsub('"generation":%d+', '"generation":0')
  if id and EXPECTED[id] == nil and CHECK then mismatch = mismatch + 1; return end
  if CHECK and EXPECTED[id] ~= norm then mismatch = mismatch + 1; return end
  ok = ok + 1
  if id and not seen[id] then seen[id] = true; ids = ids .. id:sub(1, 12) .. " " end
end
function done(summary, latency, requests)
  local t = {ok = 0, mismatch = 0, bad400 = 0, s503 = 0, other = 0, sent_bad = 0}
  local models = {}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
    for id in string.gmatch(th:get("ids"), "%S+") do models[id] = true end
  end
  local names = {}
  for id, _ in pairs(models) do table.insert(names, '"' .. id .. '"') end
  summary_json(summary, latency, string.format(
    '"ok": %d, "mismatch": %d, "malformed_sent": %d, "malformed_400": %d, "overloaded_503": %d, ' ..
    '"other_status": %d, "models": [%s]',
    t.ok, t.mismatch, t.sent_bad, t.bad400, t.s503, t.other, table.concat(names, ", ")))
end
"""
)


def lua_str(text: str) -> str:
    assert "]==]" not in text
    return text


def sample_records(bundle: str, n: int) -> list[dict[str, Any]]:
    import edgefin_runtime

    p = edgefin_runtime.load(bundle)
    recs = (
        [dict(r) for r in p.info.acceptance.records] if p.info.acceptance else [dict(g.record) for g in p.info.golden]
    )
    return (recs * (n // len(recs) + 1))[:n]


class Server:
    """`edgefin-run serve` in a child process pinned to one CPU; port from its 'listening' event."""

    #: set by main(): another interpreter for the server (e.g. a venv with uvicorn[standard]) and extra options
    python = sys.executable
    extra_args: tuple[str, ...] = ()

    def __init__(self, bundle: str, cpu: int, *extra: str) -> None:
        self.err = tempfile.NamedTemporaryFile("w+", suffix=".serve.log", delete=False)  # noqa: SIM115
        cmd = [self.python, "-m", "edgefin_runtime.cli", "serve", bundle, "--port", "0", "--access-log", "off"]
        env = {**os.environ, "PYTHONPATH": str(REPO / "runtime")}
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *cmd, *extra, *self.extra_args],
            stderr=self.err,
            stdout=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
        )
        deadline = time.monotonic() + 120
        while True:
            text = Path(self.err.name).read_text()
            started = [json.loads(x) for x in text.splitlines() if '"event": "listening"' in x]
            if started:
                self.port = started[0]["port"]
                self.http = started[0].get("http", "")
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start:\n{text[-2000:]}")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """user + system CPU time of the server process, all threads (robust to other jobs' load)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(60)
        self.err.close()
        os.unlink(self.err.name)
        return code


def wrk(
    url: str,
    script: str,
    connections: int,
    seconds: float,
    cpu: int,
    timeout: float = 10.0,
    until: threading.Event | None = None,
    path: str = "/v1/score",
) -> dict[str, Any]:
    """One wrk run; with ``until``, it runs until that event is set and is then stopped with SIGINT
    (wrk prints its summary and runs done() on SIGINT)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        duration = 3600 if until is not None else max(1, round(seconds))
        cmd = [
            "taskset",
            "-c",
            str(cpu),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            f"--timeout={max(1, round(timeout))}s",
        ]
        proc = subprocess.Popen(
            [*cmd, "-s", fh.name, url + path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if until is not None:
            until.wait()
            proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate()
        if proc.returncode not in (0, -signal.SIGINT):
            raise SystemExit(f"wrk failed ({proc.returncode}): {stdout[-2000:]} {stderr[-2000:]}")
    finally:
        os.unlink(fh.name)
    line = next(x for x in stdout.splitlines() if x.startswith("WRKJSON "))
    res: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


def in_process(bundle: str, records: list[dict[str, Any]], batch: list[dict[str, Any]], cpu: int) -> dict[str, Any]:
    """Predictor.score / score_batch latency in this process, pinned to the server's CPU."""
    import edgefin_runtime

    os.sched_setaffinity(0, {cpu})
    p = edgefin_runtime.load(bundle)
    out = {}
    for name, fn, n in (
        ("single", lambda i: p.score(records[i % len(records)]), 20000),
        ("batch64", lambda i: p.score_batch(batch), 2000),
    ):
        for i in range(n // 10):
            fn(i)
        t = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            fn(i)
            t.append(time.perf_counter_ns() - t0)
        c0 = time.process_time()
        for i in range(n):
            fn(i)
        cpu = (time.process_time() - c0) * 1e6 / n
        t.sort()
        out[name] = {
            "cpu_us_per_call": cpu,
            "p50_us": t[len(t) // 2] / 1000,
            "p99_us": t[int(len(t) * 0.99)] / 1000,
            "calls_per_s": 1e9 / statistics.mean(t),
        }
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return out


def expected_bodies(bundles: list[str], body: bytes) -> dict[str, str]:
    """The exact response each model gives to ``body`` (generation normalised to 0), rendered in-process."""
    from edgefin_runtime.serve.app import score_body
    from edgefin_runtime.serve.reload import open_holder

    out = {}
    for b in bundles:
        holder = open_holder(b)
        out[holder.model.sha256] = score_body(holder, body, 100000).body.decode()
    return out


def lua_table(d: dict[str, str]) -> str:
    return "{" + ", ".join(f'["{k}"] = [==[{lua_str(v)}]==]' for k, v in d.items()) + "}"


def checked_script(expected: dict[str, str], good: str, bad: str, bad_every: int, check: bool) -> str:
    script = (
        LUA_CHECKED.replace("BADEVERY", str(bad_every))
        .replace("TOKEN", TOKEN)
        .replace("CHECK", "true" if check else "false")
    )  # the fixed words first: a body must not be rewritten
    return (
        script.replace("GOOD]==]", lua_str(good) + "]==]", 1)
        .replace("BAD]==]", lua_str(bad) + "]==]", 1)
        .replace("{EXPECTED}", lua_table(expected), 1)
    )


def sample_rss(server: Server, stop: threading.Event, into: list[int]) -> None:
    while not stop.is_set():
        into.append(server.rss_kib())
        stop.wait(0.25)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk")
    single = sample_records(args.bundle, 256)
    batch = single[:64]
    one_body = json.dumps(single[0])
    batch_body = json.dumps(batch)
    results: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_before": os.getloadavg(),
        },
        "bundle": args.bundle,
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "seconds_per_cell": args.duration,
    }
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    token = work / "token"
    token.write_text(TOKEN)

    # 1. latency/throughput grid against in-process scoring
    results["in_process"] = in_process(args.bundle, single, batch, args.server_cpu)
    srv = Server(args.bundle, args.server_cpu, "--workers", "2", "--queue-depth", "64")
    grid = []
    floor = LUA_COMMON + "\nfunction done(summary, latency, requests) summary_json(summary, latency, nil) end\n"
    try:
        for conns in (1, 8):  # the HTTP floor: uvicorn + Starlette + this machine's scheduling, no scoring
            c0 = srv.cpu_seconds()
            r = wrk(srv.url, floor, conns, args.duration, args.client_cpu, path="/healthz")
            r.update(
                kind="healthz", connections=conns, cpu_us_per_request=(srv.cpu_seconds() - c0) * 1e6 / r["requests"]
            )
            grid.append(r)
        for kind, body in (("single", one_body), ("batch64", batch_body)):
            for conns in (1, 8, 64):
                c0 = srv.cpu_seconds()
                script = LUA_PLAIN.replace("BODY]==]", lua_str(body) + "]==]")
                r = wrk(srv.url, script, conns, args.duration, args.client_cpu)
                cpu = (srv.cpu_seconds() - c0) * 1e6 / max(1, r["requests"])
                r.update(kind=kind, connections=conns, cpu_us_per_request=cpu)
                grid.append(r)
                print(
                    f"{kind:8} c={conns:<3} {r['rps']:9.0f} req/s p50 {r['p50_us']:8.0f} us p99 {r['p99_us']:8.0f} us "
                    f"errors {r['errors']}",
                    file=sys.stderr,
                )
        results["http"] = srv.http
    finally:
        results["grid_exit"] = srv.stop()
    results["grid"] = grid
    if args.grid_only:
        results["machine"]["loadavg_after"] = os.getloadavg()
        return results

    # 2. hot swaps under sustained load
    current = work / "current.efb"
    shutil.copyfile(args.bundle, current)
    a, b = work / "a.efb", work / "b.efb"
    shutil.copyfile(args.bundle, a)
    shutil.copyfile(args.other, b)
    swap_body = json.dumps(single[:16])
    expected = expected_bodies([str(a), str(b)], swap_body.encode())
    srv = Server(str(current), args.server_cpu, "--token-file", str(token), "--workers", "2")
    rss: list[int] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(srv, stop, rss))
    sampler.start()
    swap_log: list[tuple[int, float]] = []

    def swapper(finished: threading.Event) -> None:
        try:
            _swaps()
        finally:
            finished.set()

    def _swaps() -> None:
        import httpx

        time.sleep(1.0)  # load first, then swap
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
            for i in range(args.swaps):
                src = b if i % 2 == 0 else a
                tmp = work / "next.efb"
                shutil.copyfile(src, tmp)
                os.replace(tmp, current)
                t0 = time.perf_counter()
                r = c.post("/v1/admin/reload")
                swap_log.append((r.status_code, time.perf_counter() - t0))
                time.sleep(args.swap_interval)
        time.sleep(1.0)  # and load after the last swap

    done = threading.Event()
    sw = threading.Thread(target=swapper, args=(done,))
    sw.start()
    try:
        res = wrk(srv.url, checked_script(expected, swap_body, "{", 0, True), 8, 0, args.client_cpu, until=done)
        sw.join()
        import httpx

        metrics = httpx.get(srv.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    finally:
        stop.set()
        sampler.join()
        code = srv.stop()
    gen = next(float(x.split()[1]) for x in metrics.splitlines() if x.startswith("edgefin_model_generation "))
    res.update(
        swaps_requested=args.swaps,
        swaps_ok=sum(1 for s, _ in swap_log if s == 200),
        swap_seconds_median=statistics.median(t for _, t in swap_log) if swap_log else None,
        generation_after=gen,
        rss_kib={"first": rss[0], "max": max(rss), "last": rss[-1], "samples": len(rss)},
        exit_code=code,
    )
    results["swaps"] = res
    print(f"swaps: {res}", file=sys.stderr)

    # 3. 10% malformed requests mixed in
    good = json.dumps(single[0])
    expected = expected_bodies([args.bundle], good.encode())
    srv = Server(args.bundle, args.server_cpu, "--workers", "2")
    try:
        res = wrk(
            srv.url, checked_script(expected, good, '{"Seniority": 1, ', 10, True), 8, args.duration, args.client_cpu
        )
        clean = wrk(srv.url, LUA_PLAIN.replace("BODY]==]", lua_str(good) + "]==]"), 8, args.duration, args.client_cpu)
    finally:
        res["exit_code"] = srv.stop()
    res["clean_same_run"] = {k: clean[k] for k in ("rps", "p50_us", "p99_us", "errors")}
    results["malformed"] = res
    print(f"malformed: {res}", file=sys.stderr)

    # 4. overload: 1 worker, queue 4, 64 connections of 1,024-record batches
    big = json.dumps(sample_records(args.bundle, 1024))
    srv = Server(args.bundle, args.server_cpu, "--workers", "1", "--queue-depth", "4", "--max-body-bytes", str(4 << 20))
    rss = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(srv, stop, rss))
    sampler.start()
    try:
        res = wrk(
            srv.url, checked_script({}, big, "{", 0, False), 64, max(args.duration, 20), args.client_cpu, timeout=10
        )
    finally:
        stop.set()
        sampler.join()
        res["exit_code"] = srv.stop()
    third = max(1, len(rss) // 3)
    res["rss_kib"] = {
        "first": rss[0],
        "max": max(rss),
        "last": rss[-1],
        "median_first_third": statistics.median(rss[:third]),
        "median_last_third": statistics.median(rss[-third:]),
        "samples": len(rss),
    }
    results["overload"] = res
    print(f"overload: {res}", file=sys.stderr)
    results["machine"]["loadavg_after"] = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    return results


def markdown(r: dict[str, Any]) -> str:
    ip = r["in_process"]
    m = r["machine"]
    lines = [
        "# `edgefin-run serve` under load (benchmarks/serve_load.py, wrk)",
        "",
        f"Bundle `{r['bundle']}`; server ({r.get('http', '')}) pinned to CPU {r['server_cpu']} (2 scoring workers), "
        f"wrk (1 thread) "
        f"to CPU {r['client_cpu']}; loopback, keep-alive; {r['seconds_per_cell']} s per cell; Python {m['python']}, "
        f"{m['cpus']} CPUs; load average {m['loadavg_before'][0]:.1f} before, {m['loadavg_after'][0]:.1f} after "
        "(the machine was shared with other jobs: latencies are mostly scheduling delay; the server's CPU "
        "time per request, from /proc, is the figure that holds under load).",
        "",
        "| body | clients | requests/s | p50 | p99 | errors | server CPU per request | in-process p50 (CPU per call) "
        "| HTTP overhead: CPU per request - in-process CPU per call |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"healthz": "GET /healthz (no scoring)", "single": "1 record", "batch64": "64 records"}
    for g in r["grid"]:
        errs = sum(g["errors"].values())
        base = ip.get(g["kind"])
        cpu = g["cpu_us_per_request"]
        lines.append(
            f"| {names[g['kind']]} | {g['connections']} | {g['rps']:,.0f} | "
            f"{g['p50_us']:,.0f} us | {g['p99_us']:,.0f} us | {errs} | {cpu:,.0f} us | "
            + (
                f"{base['p50_us']:,.1f} us ({base['cpu_us_per_call']:,.1f} us) | "
                f"{cpu - base['cpu_us_per_call']:,.0f} us |"
                if base is not None
                else "- | - |"
            )
        )
    s, mal, ov = r["swaps"], r["malformed"], r["overload"]
    lines += [
        "",
        f"In-process, same CPU: `score` p50 {ip['single']['p50_us']:.1f} us / p99 {ip['single']['p99_us']:.1f} us; "
        f"`score_batch` of 64 p50 {ip['batch64']['p50_us']:.0f} us / p99 {ip['batch64']['p99_us']:.0f} us.",
        "",
        "## Under load",
        "",
        f"* **Hot swaps**: {s['swaps_ok']} of {s['swaps_requested']} swaps succeeded (median "
        f"{s['swap_seconds_median'] * 1000:.0f} ms each, generation {s['generation_after']:.0f} at the end) during "
        f"{s['requests']:,} requests of 16 records from 8 clients: {s['ok']:,} answered 200 with exactly the scores of "
        f"the model they name, {s['mismatch']} mixed or wrong, {s['other_status']} other statuses, socket errors "
        f"{s['errors']}; models seen {len(s['models'])}; RSS {s['rss_kib']['first'] / 1024:.0f} -> max "
        f"{s['rss_kib']['max'] / 1024:.0f} -> {s['rss_kib']['last'] / 1024:.0f} MiB; exit {s['exit_code']}.",
        f"* **10% malformed**: {mal['requests']:,} requests from 8 clients, {mal['malformed_sent']:,} malformed sent, "
        f"{mal['malformed_400']:,} answered 400 MalformedJSON (the difference: in flight when wrk stopped), "
        f"{mal['ok']:,} good ones 200 with the exact expected body, {mal['mismatch']} disturbed, "
        f"{mal['other_status']} other statuses; p50 {mal['p50_us']:.0f} us / p99 {mal['p99_us']:.0f} us against "
        f"{mal['clean_same_run']['p50_us']:.0f} / {mal['clean_same_run']['p99_us']:.0f} us for all-good requests "
        "right after.",
        f"* **Overload** (1 worker, queue 4, 64 clients of 1,024-record batches): {ov['requests']:,} requests, "
        f"{ov['ok']:,} answered 200, {ov['overloaded_503']:,} 503 with Retry-After, {ov['other_status']} other, "
        f"timeouts {ov['errors']['timeout']}, p50 {ov['p50_us'] / 1000:.1f} ms, p99 {ov['p99_us'] / 1000:.1f} ms; RSS "
        f"median {ov['rss_kib']['median_first_third'] / 1024:.0f} MiB in the first third, "
        f"{ov['rss_kib']['median_last_third'] / 1024:.0f} MiB in the last, max {ov['rss_kib']['max'] / 1024:.0f} MiB "
        f"({ov['rss_kib']['samples']} samples); exit {ov['exit_code']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default="runs/demo/bundles/tflite-int8.efb")
    ap.add_argument("--other", default="runs/demo/bundles/tflite-fp32.efb", help="second bundle for the swaps")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk cell")
    ap.add_argument("--swaps", type=int, default=100)
    ap.add_argument("--swap-interval", type=float, default=0.05)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs the server")
    ap.add_argument("--server-args", default="", help="extra serve options, e.g. '--http h11 --loop asyncio'")
    ap.add_argument("--grid-only", action="store_true", help="only the latency/throughput grid")
    args = ap.parse_args()
    Server.python = args.python
    Server.extra_args = tuple(args.server_args.split())
    res = run(args)
    if args.grid_only:
        print(json.dumps(res, indent=1))
        if args.out:
            Path(args.out + ".json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        return 0
    text = markdown(res)
    print(text)
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        Path(args.out + ".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
