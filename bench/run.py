"""The cockpit benchmark at association scale: one command, a results file.

    .venv/bin/python -m bench                    # 100 schools x 3 years (builds bench/work/big.duckdb once)
    .venv/bin/python -m bench --quick --url duckdb:///path/small.duckdb --out /tmp/bench   # seconds (the test)

What it does, in order:
1. builds the warehouse when missing (``data_access.demo``: 100 schools, 1 095 days of hourly meters and the
   dining, service and maturity data that go with them), and a private app database with a benchmark account;
2. starts the app twice with gunicorn, as ``bin/serve`` would: the *warm* server (its workers sharing a Redis
   query cache when Redis answers on 127.0.0.1:6379, else one worker with the in-process cache) and the
   *uncached* server (``cache.enabled: false``: every callback queries the warehouse);
3. opens every page at association, school and facility level in headless Chromium (the system Chromium, via
   Playwright): the time to a fully rendered page (first visit, then again with a warm cache), JSON bytes per
   callback, per figure and per page, console errors; and records every callback request the page made;
4. replays those requests — the bodies the browser sent, to the Dash endpoint the browser calls — against the
   warm server (p50/p95 of cache hits) and the uncached server (p50/p95 of full computations);
5. runs the SQL each callback sends straight on the engine (``bench.floor``): the physical floor, and the ratio
   of the uncached callback to it;
6. runs the naive baseline (``bench.naive``: tables in pandas, filtered in callbacks) for the ratio;
7. reads the peak resident memory of every gunicorn worker, and writes ``bench/results/<name>.json`` and ``.md``
   with every figure and the targets of issue 12 (met or not).

The machine is shared and has 2 cores: the run reports the load average at its start and end.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
SCHOOL = "SH-U01"
FACILITY = "SH-U01-C1-CAN1"
PAGES = {"overview": "/", "dining": "/dining", "energy": "/energy", "service": "/service",
         "maturity": "/maturity", "review": "/review", "data": "/data", "screen": "/screen"}
LEVELS = {"association": {}, "school": {"school": SCHOOL}, "facility": {"facility": FACILITY}}
SCREEN_QUERY = "views=overview,dining,energy,service&refresh=900&dwell=600&id=bench-screen&name=bench"
NAIVE_PAGES = ("overview", "dining", "energy", "service")
USER, PASSWORD = "bench-assessor", "bench-password-123"
TARGETS = {"warm_p50_ms": 50, "warm_p95_ms": 150, "uncached_p50_ms": 300, "floor_ratio": 1.5,
           "figure_kb": 150, "render_s": 2.0, "naive_speedup": 10, "rss_mb": 1024}


# --- helpers ----------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def say(*args) -> None:
    print(*args, flush=True)


def redis_url() -> str | None:
    try:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/8", socket_connect_timeout=1)
        client.ping()
        client.flushdb()
        return "redis://127.0.0.1:6379/8"
    except Exception:  # noqa: BLE001 - no Redis: one worker with its own cache
        return None


def hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


class Server:
    """gunicorn serving app:server, as bin/serve does."""

    def __init__(self, name: str, env: dict, workers: int, log_dir: Path):
        self.name, self.port = name, free_port()
        self.log = log_dir / f"{name}.log"
        env = dict(env, COCKPIT_PORT=str(self.port), COCKPIT_HOST="127.0.0.1", HOME=str(log_dir))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
             "--timeout", "600", "--log-level", "warning", "app:server"],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(self.url("/api/v1/health"), timeout=5).status_code in (200, 503):
                    return
            except requests.RequestException:
                time.sleep(0.3)
        self.stop()
        raise SystemExit(f"{name} server did not start:\n" + self.log.read_text()[-3000:])

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def worker_hwm(self) -> list[float]:
        return [m for m in (hwm_mb(p) for p in children(self.proc.pid)) if m is not None]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def timed_posts(url: str, body: str, headers: dict, n: int, session: requests.Session) -> tuple[list[float], int]:
    times, status = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.post(url, data=body.encode(), headers=headers, timeout=600)
        _ = r.content
        times.append(time.perf_counter() - t0)
        status = r.status_code
    return times, status


# --- the run ------------------------------------------------------------------------------------------------------

def prepare(args) -> tuple[str, dt.date, dict]:
    """The warehouse (built when missing), its last day, and the environment every process of the run gets."""
    url = args.url or f"duckdb:///{WORK / 'big.duckdb'}"
    sys.path.insert(0, str(ROOT))
    from data_access.demo import data_end
    from data_access.engine import duckdb_path

    path = duckdb_path(url)
    if path is not None and not Path(path).exists():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        say(f"building {url}: {args.schools} schools x {args.days} days (several minutes) ...")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "data_access.demo", "--url", url, "--schools", str(args.schools),
                        "--days", str(args.days)], cwd=ROOT, check=True)
        say(f"  built in {time.perf_counter() - t0:.0f} s")
    end = data_end(url)
    if end is None:
        raise SystemExit(f"cannot read the warehouse at {url}")
    args.work.mkdir(parents=True, exist_ok=True)
    app_db = args.work / "bench-app.db"
    for leftover in (app_db, Path(f"{app_db}-wal"), Path(f"{app_db}-shm"), Path(f"{app_db}-journal")):
        leftover.unlink(missing_ok=True)
    env = dict(os.environ, COCKPIT_WAREHOUSE_URL=url, COCKPIT_APP_DB_URL=f"sqlite:///{app_db}",
               COCKPIT_TODAY=(end + dt.timedelta(days=1)).isoformat(), COCKPIT_SECRET_KEY="bench-secret",
               COCKPIT_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    env.pop("COCKPIT_CACHE_REDIS_URL", None)
    env.pop("COCKPIT_CONFIG", None)
    subprocess.run([sys.executable, "-m", "data_access.accounts", "add", USER, "--role", "assessor",
                    "--password-stdin"], input=PASSWORD + "\n", text=True, env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run([sys.executable, "-m", "data_access.accounts", "token", USER], env=env, cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    env["COCKPIT_BENCH_TOKEN"] = out.strip().rsplit(" ", 1)[-1]
    return url, end, env


def uncached_config(work: Path) -> Path:
    import yaml

    raw = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    raw.setdefault("cache", {})["enabled"] = False
    path = work / "config-uncached.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def scenarios(pages: list[str], levels: list[str]) -> list[tuple[str, str, str]]:
    import urllib.parse

    out = []
    for page in pages:
        for level in levels:
            params = dict(LEVELS[level])
            query = urllib.parse.urlencode(params)
            if page == "screen":
                query = "&".join(q for q in (query, SCREEN_QUERY) if q)
            out.append((page, level, PAGES[page] + (f"?{query}" if query else "")))
    return out


def browse(base: str, runs: list[tuple[str, str, str]], shots: Path | None) -> dict:
    from bench.browse import Browser

    browser = Browser(base, USER, PASSWORD)
    visits = {}
    try:
        for page, level, url in runs:
            first = browser.visit(url)
            warm = browser.visit(url, screenshot=str(shots / f"{page}-{level}.png") if shots else None)
            visits[(page, level)] = (first, warm)
            say(f"  {page:9} {level:12} rendered {fmt_s(first.render_s)} first, {fmt_s(warm.render_s)} warm; "
                f"{len(first.requests)} callbacks, {sum(r['bytes'] for r in first.requests) / 1024:.0f} KB, "
                f"{first.graphs} graphs" + (f", {len(first.console_errors)} console errors"
                                             if first.console_errors else ""))
    finally:
        browser.close()
    return visits


def fmt_s(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="warehouse URL (default: bench/work/big.duckdb, built when missing)")
    parser.add_argument("--schools", type=int, default=100)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated: " + ",".join(PAGES))
    parser.add_argument("--levels", default=",".join(LEVELS))
    parser.add_argument("--warm-repeat", type=int, default=30)
    parser.add_argument("--uncached-repeat", type=int, default=5)
    parser.add_argument("--floor-repeat", type=int, default=5)
    parser.add_argument("--naive-repeat", type=int, default=3)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--quick", action="store_true", help="few repeats (the test suite's run)")
    parser.add_argument("--name", help="results file name (default: <schools>-schools-<days>-days, or quick)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--work", type=Path, default=WORK, help="scratch directory (app db, logs, screenshots)")
    parser.add_argument("--note", default="", help="a line recorded with the results (what changed since the last run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.warm_repeat, args.uncached_repeat, args.floor_repeat, args.naive_repeat = 3, 1, 1, 1
    pages = [p for p in args.pages.split(",") if p]
    levels = [lv for lv in args.levels.split(",") if lv]
    unknown = [p for p in pages if p not in PAGES] + [lv for lv in levels if lv not in LEVELS]
    if unknown:
        parser.error(f"unknown page or level: {', '.join(unknown)}")

    started = time.time()
    load_start = os.getloadavg()[0]
    url, end, env = prepare(args)
    rows = warehouse_rows(url)
    name = args.name or ("quick" if args.quick else f"{args.schools}-schools-{args.days}-days")
    say(f"warehouse {url}: data to {end}, {rows.get('fact_meter_reading', 0):,} meter readings; "
        f"load average {load_start:.1f}")

    shots = args.work / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    redis = redis_url()
    warm_env = dict(env, **({"COCKPIT_CACHE_REDIS_URL": redis} if redis else {}))
    uncached_env = dict(env, COCKPIT_CONFIG=str(uncached_config(args.work)))
    warm = Server("warm", warm_env, 2 if redis else 1, args.work)
    uncached = None
    try:
        uncached = Server("uncached", uncached_env, 1, args.work)
        runs = scenarios(pages, levels)
        say(f"browser: {len(runs)} page views, each opened twice (first visit, then warm) ...")
        visits = browse(warm.url(), runs, shots)

        # every distinct server callback of every page view, as the browser sent it
        calls = []
        for (page, level), (first, _) in visits.items():
            seen = set()
            for req in first.requests:
                if req["body"] in seen or req["status"] != 200:
                    continue
                seen.add(req["body"])
                calls.append({"key": f"{page}|{level}|{len(seen)}", "page": page, "level": level, "path": req["path"],
                              "outputs": req["outputs"], "body": req["body"], "bytes": req["bytes"],
                              "figures": req["figures"]})
        headers = {"Authorization": f"Bearer {env['COCKPIT_BENCH_TOKEN']}", "Content-Type": "application/json"}
        say(f"replaying {len(calls)} callbacks: warm x{args.warm_repeat}, uncached x{args.uncached_repeat} ...")
        session_w, session_u = requests.Session(), requests.Session()
        for call in calls:
            timed_posts(warm.url(call["path"]), call["body"], headers, 1, session_w)   # fill cache
            times, status = timed_posts(warm.url(call["path"]), call["body"], headers,
                                        args.warm_repeat, session_w)
            call.update(warm_p50=pct(times, .5), warm_p95=pct(times, .95), warm_status=status)
            if call["page"] == "screen":
                # a screen never queries: it reads the snapshot the warm-up job keeps in the shared cache
                call.update(uncached_p50=None, uncached_p95=None)
                continue
            times, status = timed_posts(uncached.url(call["path"]), call["body"], headers,
                                        args.uncached_repeat, session_u)
            call.update(uncached_p50=pct(times, .5), uncached_p95=pct(times, .95), uncached_status=status)
        rss = {"warm": warm.worker_hwm(), "uncached": uncached.worker_hwm()}
    finally:
        warm.stop()
        if uncached is not None:
            uncached.stop()

    say("physical floor: the callbacks' SQL straight on the engine ...")
    floor_in = args.work / "floor-requests.json"
    floor_out = args.work / "floor.json"
    floor_in.write_text(json.dumps([{"key": c["key"], "body": c["body"], "path": c["path"]} for c in calls if c["page"] != "screen"]))
    subprocess.run([sys.executable, "-m", "bench.floor", str(floor_in), str(floor_out),
                    "--repeat", str(args.floor_repeat)], cwd=ROOT, env=uncached_env, check=True)
    floor = json.loads(floor_out.read_text())
    for call in calls:
        f = floor.get(call["key"])
        if f:
            call.update(floor_s=f["floor_s"], statements=f["statements"], in_process_s=f["in_process_s"],
                        sql_by_origin=f.get("sql_by_origin", []), areas=f.get("areas", {}),
                        top_functions=f.get("top_functions", []))

    naive = None
    naive_pages = [p for p in pages if p in NAIVE_PAGES]
    if not args.no_naive and naive_pages and url.startswith("duckdb:///"):
        say("naive baseline: the tables in pandas ...")
        naive_out = args.work / "naive.json"
        scopes = {lv: LEVELS[lv] for lv in levels}
        subprocess.run([sys.executable, "-m", "bench.naive", "--url", url, "--end", end.isoformat(),
                        "--repeat", str(args.naive_repeat), "--scopes", json.dumps(scopes), str(naive_out)],
                       cwd=ROOT, env=env, check=True)
        naive = json.loads(naive_out.read_text())

    result = assemble(args, name, url, end, rows, visits, calls, rss, naive, bool(redis), load_start, started)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    (args.out / f"{name}.md").write_text(markdown(result), encoding="utf-8")
    say(f"results: {args.out / (name + '.md')} ({time.time() - started:.0f} s)")
    return 0


def warehouse_rows(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    from data_access import schema
    from data_access.engine import make_engine

    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.select(sa.func.count()).select_from(schema.metadata.tables[t])).scalar()
                    for t in ("dim_school", "dim_meter", "fact_meter_reading", "agg_meter_daily",
                              "fact_cold_chain_reading", "fact_dining_check", "fact_survey_response",
                              "fact_work_order", "fact_maturity_score")}
    finally:
        engine.dispose()


# --- results ------------------------------------------------------------------------------------------------------

def assemble(args, name, url, end, rows, visits, calls, rss, naive, shared_cache, load_start, started) -> dict:
    pages = []
    for (page, level), (first, warm) in visits.items():
        mine = [c for c in calls if c["page"] == page and c["level"] == level]
        figures = [f for c in mine for f in c["figures"]]
        entry = {"page": page, "level": level, "url": first.url, "render_first_s": first.render_s,
                 "render_warm_s": warm.render_s, "callbacks": len(mine), "bytes": sum(c["bytes"] for c in mine),
                 "figures": len(figures), "largest_figure_bytes": max(figures, default=0),
                 "graphs": first.graphs, "console_errors": first.console_errors + warm.console_errors,
                 "warm_sum_s": sum(c["warm_p50"] for c in mine)}
        if all(c.get("uncached_p50") is not None for c in mine) and mine:
            entry["uncached_sum_s"] = sum(c["uncached_p50"] for c in mine)
        if naive and f"{page}|{level}" in naive["views"]:
            entry["naive_s"] = naive["views"][f"{page}|{level}"]
        pages.append(entry)
    for call in calls:
        call.pop("body", None)
    checks = targets(pages, calls, rss, naive)
    return {"name": name, "when": dt.datetime.now().isoformat(timespec="seconds"), "note": args.note,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_start": load_start, "load_average_end": os.getloadavg()[0],
                        "platform": platform.platform()},
            "warehouse": {"url": url.split("///")[-1] if url.startswith("duckdb") else url.split("@")[-1],
                          "data_end": end.isoformat(), "rows": rows},
            "settings": {"warm_repeat": args.warm_repeat, "uncached_repeat": args.uncached_repeat,
                         "floor_repeat": args.floor_repeat, "shared_redis_cache": shared_cache,
                         "period": "the default period: 30 days ending the day before COCKPIT_TODAY"},
            "targets": TARGETS, "checks": checks, "pages": pages, "callbacks": calls,
            "rss_mb": rss, "naive": naive, "duration_s": time.time() - started}


def targets(pages, calls, rss, naive) -> dict:
    """Each target of issue 12: met or not, with the worst case."""
    def worst(items, key):
        items = [i for i in items if i.get(key) is not None]
        return max(items, key=lambda i: i[key]) if items else None

    out = {}
    w50 = worst(calls, "warm_p50")
    w95 = worst(calls, "warm_p95")
    u50 = worst(calls, "uncached_p50")
    out["warm_p50"] = {"met": w50 is None or w50["warm_p50"] * 1000 <= TARGETS["warm_p50_ms"],
                       "worst_ms": w50 and w50["warm_p50"] * 1000, "where": w50 and w50["key"]}
    out["warm_p95"] = {"met": w95 is None or w95["warm_p95"] * 1000 <= TARGETS["warm_p95_ms"],
                       "worst_ms": w95 and w95["warm_p95"] * 1000, "where": w95 and w95["key"]}
    out["uncached_p50"] = {
        "met": u50 is None or u50["uncached_p50"] * 1000 <= TARGETS["uncached_p50_ms"],
        "worst_ms": u50 and u50["uncached_p50"] * 1000, "where": u50 and u50["key"],
        "over": sum(1 for c in calls if (c.get("uncached_p50") or 0) * 1000 > TARGETS["uncached_p50_ms"]),
        "of": sum(1 for c in calls if c.get("uncached_p50") is not None)}
    # the floor ratio: callbacks whose SQL takes at least 5 ms (below that, the ratio measures Dash, not data)
    ratios = [dict(c, ratio=c["uncached_p50"] / c["floor_s"]) for c in calls
              if c.get("floor_s") and c.get("uncached_p50") and c["floor_s"] >= 0.005]
    for c in calls:
        if c.get("floor_s") and c.get("uncached_p50"):
            c["floor_ratio"] = c["uncached_p50"] / c["floor_s"]
    r = worst(ratios, "ratio")
    total_u = sum(c["uncached_p50"] for c in ratios)
    total_f = sum(c["floor_s"] for c in ratios)
    out["floor_ratio"] = {"met": r is None or r["ratio"] <= TARGETS["floor_ratio"],
                          "worst": r and r["ratio"], "where": r and r["key"],
                          "overall": total_f and total_u / total_f, "callbacks": len(ratios)}
    fig = max(((f, c["key"]) for c in calls for f in (c["figures"] or [0])), default=(0, None))
    out["figure_kb"] = {"met": fig[0] / 1024 <= TARGETS["figure_kb"], "worst_kb": fig[0] / 1024, "where": fig[1]}
    renders = [(p["render_first_s"] or 1e9, f"{p['page']}|{p['level']}") for p in pages]
    warm_renders = [(p["render_warm_s"] or 1e9, f"{p['page']}|{p['level']}") for p in pages]
    out["render_first"] = {"met": max(renders)[0] <= TARGETS["render_s"], "worst_s": max(renders)[0],
                           "where": max(renders)[1]}
    out["render_warm"] = {"met": max(warm_renders)[0] <= TARGETS["render_s"], "worst_s": max(warm_renders)[0],
                          "where": max(warm_renders)[1]}
    speedups = []
    for p in pages:
        if p.get("naive_s") and p.get("uncached_sum_s"):
            speedups.append((p["naive_s"] / p["uncached_sum_s"], p["naive_s"] / p["warm_sum_s"],
                             f"{p['page']}|{p['level']}"))
    if speedups:
        low = min(speedups)
        out["naive_speedup_uncached"] = {"met": low[0] >= TARGETS["naive_speedup"], "lowest": low[0],
                                         "where": low[2]}
        low_w = min(speedups, key=lambda s: s[1])
        out["naive_speedup_warm"] = {"met": low_w[1] >= TARGETS["naive_speedup"], "lowest": low_w[1],
                                     "where": low_w[2]}
    peak = max(rss["warm"] + rss["uncached"], default=0)
    out["rss"] = {"met": peak <= TARGETS["rss_mb"], "peak_mb": peak}
    out["console_errors"] = {"met": not any(p["console_errors"] for p in pages),
                             "pages": [f"{p['page']}|{p['level']}" for p in pages if p["console_errors"]]}
    return out


def ms(value) -> str:
    return "—" if value is None else f"{value * 1000:.0f}" if value >= 0.1 else f"{value * 1000:.1f}"


def markdown(r: dict) -> str:
    c = r["checks"]
    yes = {True: "met", False: "**missed**"}
    rows = r["warehouse"]["rows"]
    lines = [f"# Benchmark: {r['name']}", "",
             f"Run {r['when']}, {r['duration_s'] / 60:.0f} min, on {r['machine']['cpus']} cores (load average "
             f"{r['machine']['load_average_start']:.1f} at the start, {r['machine']['load_average_end']:.1f} at the "
             f"end), Python {r['machine']['python']}. Warehouse: DuckDB, data to {r['warehouse']['data_end']}, "
             f"{rows.get('dim_school', 0)} schools, {rows.get('dim_meter', 0):,} meters, "
             f"{rows.get('fact_meter_reading', 0):,} hourly meter readings, "
             f"{rows.get('fact_cold_chain_reading', 0):,} cold-chain readings, "
             f"{rows.get('fact_dining_check', 0):,} dining checks, {rows.get('fact_survey_response', 0):,} survey "
             f"responses, {rows.get('fact_work_order', 0):,} work orders. Period: {r['settings']['period']}. "
             f"Warm server: gunicorn, "
             + ("2 workers sharing a Redis cache" if r["settings"]["shared_redis_cache"] else "1 worker, in-process cache")
             + "; uncached server: 1 worker, `cache.enabled: false`.", ""]
    if r.get("note"):
        lines += [r["note"], ""]
    lines += ["## Targets", "", "| target | goal | result | |", "|---|---|---|---|",
              f"| warm callback p50 | ≤ {TARGETS['warm_p50_ms']} ms | worst {c['warm_p50']['worst_ms']:.1f} ms "
              f"({c['warm_p50']['where']}) | {yes[c['warm_p50']['met']]} |",
              f"| warm callback p95 | ≤ {TARGETS['warm_p95_ms']} ms | worst {c['warm_p95']['worst_ms']:.1f} ms "
              f"({c['warm_p95']['where']}) | {yes[c['warm_p95']['met']]} |"]
    if c["uncached_p50"]["worst_ms"] is not None:
        lines.append(f"| uncached callback p50 | ≤ {TARGETS['uncached_p50_ms']} ms | worst "
                     f"{c['uncached_p50']['worst_ms']:.0f} ms ({c['uncached_p50']['where']}); "
                     f"{c['uncached_p50']['over']} of {c['uncached_p50']['of']} over | "
                     f"{yes[c['uncached_p50']['met']]} |")
    if c["floor_ratio"]["worst"] is not None:
        lines.append(f"| uncached ÷ raw SQL (callbacks with ≥ 5 ms of SQL) | ≤ {TARGETS['floor_ratio']}× | worst "
                     f"{c['floor_ratio']['worst']:.1f}× ({c['floor_ratio']['where']}), overall "
                     f"{c['floor_ratio']['overall']:.1f}× over {c['floor_ratio']['callbacks']} callbacks | "
                     f"{yes[c['floor_ratio']['met']]} |")
    lines += [f"| JSON per figure | ≤ {TARGETS['figure_kb']} KB | largest {c['figure_kb']['worst_kb']:.0f} KB "
              f"({c['figure_kb']['where']}) | {yes[c['figure_kb']['met']]} |",
              f"| page rendered, first visit | ≤ {TARGETS['render_s']} s | worst {c['render_first']['worst_s']:.2f} s "
              f"({c['render_first']['where']}) | {yes[c['render_first']['met']]} |",
              f"| page rendered, warm | ≤ {TARGETS['render_s']} s | worst {c['render_warm']['worst_s']:.2f} s "
              f"({c['render_warm']['where']}) | {yes[c['render_warm']['met']]} |"]
    if "naive_speedup_uncached" in c:
        lines += [f"| faster than the naive baseline (uncached) | ≥ {TARGETS['naive_speedup']}× | lowest "
                  f"{c['naive_speedup_uncached']['lowest']:.1f}× ({c['naive_speedup_uncached']['where']}) | "
                  f"{yes[c['naive_speedup_uncached']['met']]} |",
                  f"| faster than the naive baseline (warm) | ≥ {TARGETS['naive_speedup']}× | lowest "
                  f"{c['naive_speedup_warm']['lowest']:.1f}× ({c['naive_speedup_warm']['where']}) | "
                  f"{yes[c['naive_speedup_warm']['met']]} |"]
    lines += [f"| peak RSS per worker | ≤ {TARGETS['rss_mb']} MB | {c['rss']['peak_mb']:.0f} MB | "
              f"{yes[c['rss']['met']]} |",
              f"| browser console errors | none | {', '.join(c['console_errors']['pages']) or 'none'} | "
              f"{yes[c['console_errors']['met']]} |", ""]

    lines += ["## Pages", "",
              "Render: from navigation to the page fully drawn (no callback in flight, nothing loading, every graph "
              "drawn), in headless Chromium at 1600×1000. Sums are of the callbacks' p50 (the browser runs "
              "independent callbacks in parallel, so a page waits less than the sum).", "",
              "| page | level | render first | render warm | callbacks | JSON KB | figures | largest figure KB "
              "| Σ warm ms | Σ uncached ms | naive ms |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in r["pages"]:
        lines.append(f"| {p['page']} | {p['level']} | {fmt_s(p['render_first_s'])} | {fmt_s(p['render_warm_s'])} | "
                     f"{p['callbacks']} | {p['bytes'] / 1024:.0f} | {p['figures']} | "
                     f"{p['largest_figure_bytes'] / 1024:.0f} | {ms(p['warm_sum_s'])} | "
                     f"{ms(p.get('uncached_sum_s'))} | {ms(p.get('naive_s'))} |")
    lines += ["", "## Callbacks", "",
              "Each distinct request the page's first visit sent to `/_dash-update-component`, replayed over HTTP with "
              "an API token: warm = the shared query cache holds the results; uncached = the server has no query "
              "cache; SQL floor = the statements the callback sends, run on the engine's own connection (median "
              "each, summed).", "",
              "| callback | outputs | warm p50 | warm p95 | uncached p50 | uncached p95 | SQL floor | statements | "
              "÷ floor | KB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c_ in r["callbacks"]:
        ratio = f"{c_['floor_ratio']:.1f}×" if c_.get("floor_ratio") else "—"
        lines.append(f"| {c_['page']} · {c_['level']} | `{c_['outputs'][:60]}` | {ms(c_['warm_p50'])} | "
                     f"{ms(c_['warm_p95'])} | {ms(c_.get('uncached_p50'))} | {ms(c_.get('uncached_p95'))} | "
                     f"{ms(c_.get('floor_s'))} | {c_.get('statements', '—')} | {ratio} | {c_['bytes'] / 1024:.1f} |")
    slow = sorted((c_ for c_ in r["callbacks"] if c_.get("uncached_p50") and c_.get("areas")
                   and c_["uncached_p50"] > TARGETS["uncached_p50_ms"] / 1000), key=lambda c_: -c_["uncached_p50"])
    if slow:
        lines += ["", "## Where the uncached time goes", "",
                  f"Every callback over the uncached target ({TARGETS['uncached_p50_ms']} ms), profiled by "
                  "`bench.floor` in one process without the query cache: the SQL floor split by the data_access "
                  "function that sends it (the three largest), and one request under cProfile with its own time "
                  "summed by where the code lives (driver = the warehouse driver and SQLAlchemy, waiting on the "
                  "engine included; pandas = pandas/numpy/pyarrow; dash = Dash, Flask and JSON; cockpit = this "
                  "repository's code).", "",
                  "| callback | uncached p50 | SQL floor | largest SQL (data_access function: ms, statements) | "
                  "profile: own time by area, ms |", "|---|---|---|---|---|"]
        for c_ in slow:
            top = "; ".join(f"{o['origin']}: {o['s'] * 1000:.0f} ({o['statements']})" for o in c_["sql_by_origin"][:3])
            areas = ", ".join(f"{k} {v * 1000:.0f}" for k, v in c_["areas"].items() if v >= 0.005)
            lines.append(f"| {c_['page']} · {c_['level']} `{c_['outputs'][:28]}` | {ms(c_['uncached_p50'])} | "
                         f"{ms(c_.get('floor_s'))} | {top or '—'} | {areas or '—'} |")
    n = r.get("naive")
    if n:
        lines += ["", "## The naive baseline (not the cockpit)", "",
                  "`bench/naive.py`: every table read into pandas at start, each view filtered and aggregated in "
                  f"pandas per request. Loading took {n['load_s']:.0f} s and {n['rss_mb_after_load']:,.0f} MB of "
                  f"memory (peak {n['peak_rss_mb']:,.0f} MB) — per worker. Per view (median):", "",
                  "| view | naive ms |", "|---|---|"]
        for key, value in n["views"].items():
            lines.append(f"| {key.replace('|', ' · ')} | {ms(value)} |")
    lines += ["", "## Memory", "", f"Peak RSS (VmHWM) per gunicorn worker, MB: warm server "
              f"{', '.join(f'{m:.0f}' for m in r['rss_mb']['warm'])}; uncached server "
              f"{', '.join(f'{m:.0f}' for m in r['rss_mb']['uncached'])}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
