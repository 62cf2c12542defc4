"""Timings of the energy panel's callbacks (pages/energy.py) on a large warehouse.

    .venv/bin/python -m bench.energy_panel [--url duckdb:///bench/work/big.duckdb] [--repeat 7] [--build]

Builds the warehouse when it is missing (``python -m data_access.demo --schools 100 --days 1100``: 100 schools,
3 years of hourly readings, about 100 M rows, 2 minutes), brings its ``agg_meter_daily`` rollup up to the current
schema (rebuilt in SQL when a column is missing), then calls every callback of the page as a function for a few
scopes and periods and prints, per callback:

    first   the first call (empty query cache, DuckDB file maybe not in the OS cache yet)
    cold    p50 of calls with the query cache cleared before each (warm database, every query runs)
    warm    p50 of repeated calls (the query cache holds the results: what a second user of the view gets)

bench/work/ is git-ignored. The machine is shared: run it when nothing else is busy, and read p50s, not means.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = f"duckdb:///{ROOT / 'bench' / 'work' / 'big.duckdb'}"


def ensure_warehouse(url: str, schools: int, days: int, build: bool) -> None:
    sys.path.insert(0, str(ROOT))
    import sqlalchemy as sa

    from data_access import bulk, schema
    from data_access.engine import duckdb_path, make_engine

    path = duckdb_path(url)
    if path is not None and not Path(path).exists():
        if not build:
            raise SystemExit(f"{path} does not exist: run with --build (about 2 minutes, 1.5 GB)")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        print(f"building {url}: {schools} schools x {days} days ...", flush=True)
        subprocess.run([sys.executable, "-m", "data_access.demo", "--url", url, "--schools", str(schools),
                        "--days", str(days), "--quiet"], cwd=ROOT, check=True)
    engine = make_engine(url, read_only=False)
    try:
        have = {c["name"] for c in sa.inspect(engine).get_columns("agg_meter_daily")}
        missing = [c for c in schema.agg_meter_daily.columns if c.name not in have]
        if missing:
            print(f"agg_meter_daily lacks {[c.name for c in missing]}: adding and rebuilding the rollup ...", flush=True)
            t0 = time.perf_counter()
            with engine.begin() as conn:
                for col in missing:
                    conn.execute(sa.text(f"ALTER TABLE agg_meter_daily ADD COLUMN {col.name} "
                                         f"{col.type.compile(engine.dialect)}"))
            bulk.rebuild_meter_daily(engine)
            if engine.dialect.name == "duckdb":
                with engine.connect() as conn:
                    conn.exec_driver_sql("CHECKPOINT")
            print(f"  rollup rebuilt in {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        engine.dispose()


def scenarios(end: dt.date) -> list[tuple[str, dict]]:
    def period(days):
        return {"from": (end - dt.timedelta(days=days - 1)).isoformat(), "to": end.isoformat()}

    return [
        ("association · 30 d", {}),
        ("association · 365 d · kgce", {**period(365), "etype": "kgce"}),
        ("region 110000 · 90 d", {"region": "110000", **period(90)}),
        ("school SH-U01 · 30 d", {"school": "SH-U01"}),
        ("school SH-U01 · 365 d · water", {"school": "SH-U01", **period(365), "etype": "water"}),
        ("facility SH-U01-C1-TEA1 · 30 d", {"facility": "SH-U01-C1-TEA1"}),
    ]


def p50(values: list[float]) -> float:
    return statistics.median(values) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.energy_panel", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--schools", type=int, default=100)
    parser.add_argument("--days", type=int, default=1100)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--build", action="store_true", help="build the warehouse when it is missing")
    args = parser.parse_args(argv)

    ensure_warehouse(args.url, args.schools, args.days, args.build)

    # The app reads its configuration on first use: set the warehouse and "today" before importing it.
    from data_access.demo import data_end

    end = data_end(args.url)
    if end is None:
        raise SystemExit(f"cannot read the warehouse at {args.url}")
    os.environ["COCKPIT_WAREHOUSE_URL"] = args.url
    os.environ["COCKPIT_TODAY"] = (end + dt.timedelta(days=1)).isoformat()
    import logging

    import app  # noqa: F401  (registers the pages, binds the cache)
    from data_access import cache
    from data_access.request import acting_as
    from data_access.scope import Access
    from pages import energy as page

    with acting_as(Access.everything(), "bench"):   # outside a web request: the association's access
        return _run(page, cache, args, end)


def _run(page, cache, args, end) -> int:
    import logging

    logging.getLogger().setLevel(logging.WARNING)
    callbacks = [page.render_header, page.render_curves, page.render_building, page.render_breakdown,
                 page.render_quota, page.render_intensity, page.render_anomalies]
    print(f"warehouse {args.url}, data to {end}, load average {os.getloadavg()[0]:.1f}; times in ms")
    width = max(len(c.__name__) for c in callbacks)
    summary = {c.__name__: ([], []) for c in callbacks}
    for label, params in scenarios(end):
        print(f"\n{label}  {params}")
        print(f"  {'callback':<{width}}  {'first':>8} {'cold p50':>9} {'warm p50':>9}")
        for fn in callbacks:
            cache.clear()
            t0 = time.perf_counter()
            out = fn(dict(params))
            first = time.perf_counter() - t0
            text = str(out)
            if "section-failed" in text or "internal-error" in text or "input-error" in text or out is None:
                print(f"  {fn.__name__}: FAILED (see the log)")
            cold = []
            for _ in range(max(3, args.repeat // 2)):
                cache.clear()
                t0 = time.perf_counter()
                fn(dict(params))
                cold.append(time.perf_counter() - t0)
            warm = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                fn(dict(params))
                warm.append(time.perf_counter() - t0)
            summary[fn.__name__][0].append(p50(cold))
            summary[fn.__name__][1].append(p50(warm))
            print(f"  {fn.__name__:<{width}}  {first * 1000:>8.0f} {p50(cold):>9.0f} {p50(warm):>9.1f}")
    print(f"\nworst p50 over the scenarios\n  {'callback':<{width}}  {'cold':>9} {'warm':>9}")
    for name, (cold, warm) in summary.items():
        print(f"  {name:<{width}}  {max(cold):>9.0f} {max(warm):>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
