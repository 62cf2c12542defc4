"""Loader benchmark: a 5-million-row meter CSV into a DuckDB demo warehouse, rows/s and peak memory.

    .venv/bin/python bench/bench_load.py [--rows 5000000] [--schools 12] [--work bench/work] [--url URL]

Builds the demo warehouse (if missing: a DuckDB file in the work folder, or with ``--url`` the demo in an empty
PostgreSQL/MariaDB database), writes ``fact_meter_reading.csv`` for the demo's meters (hourly rows
from 2024-01-01: partly replacing existing readings, partly new), then runs the loader as a subprocess twice
(the second run replaces every row it loaded: the idempotent re-load) and samples its resident memory.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import sqlalchemy as sa

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def write_csv(path: Path, meters: list[str], rows: int) -> None:
    hours = -(-rows // len(meters))
    ts = pd.date_range("2024-01-01", periods=hours, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    rng = np.random.default_rng(1)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("meter_id,ts,consumption\n")
        written = 0
        for m in meters:
            n = min(hours, rows - written)
            if n <= 0:
                break
            pd.DataFrame({"meter_id": m, "ts": ts[:n], "consumption": np.round(rng.uniform(0, 80, n), 3)}).to_csv(
                fh, index=False, header=False)
            written += n


def run_loader(url: str, path: Path, work: Path) -> tuple[float, float, str]:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "data_access.load", "--url", url, str(path), "--quiet", "--lang",
                             "en", "--rejects", str(work / "bench.rejects.csv")], cwd=PROJECT,
                            stdout=subprocess.PIPE, text=True)
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(f"loader failed ({proc.returncode}):\n{out}")
    return time.perf_counter() - started, peak / 1e6, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--schools", type=int, default=12)
    parser.add_argument("--work", default=str(PROJECT / "bench" / "work"))
    parser.add_argument("--url", help="a PostgreSQL/MariaDB database to load into (the demo is built there when "
                                      "it has none); default: a DuckDB file in the work folder")
    args = parser.parse_args()
    from data_access.engine import make_engine

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    wh = work / f"load-bench-{args.schools}.duckdb"
    url = args.url or f"duckdb:///{wh}"
    subprocess.run([sys.executable, "-m", "data_access.demo", "--url", url, "--schools", str(args.schools),
                    "--days", "400", "--end", "2026-11-15", "--if-missing", "--quiet"], cwd=PROJECT, check=True,
                   env={**os.environ, "COCKPIT_TODAY": "2026-11-16"})
    engine = make_engine(url, read_only=True)
    with engine.connect() as con:
        meters = [r[0] for r in con.execute(sa.text("SELECT meter_id FROM dim_meter ORDER BY 1")).fetchall()]
        existing = con.execute(sa.text("SELECT count(*) FROM fact_meter_reading")).scalar()
    engine.dispose()
    where = engine.dialect.name if args.url else f"{wh.stat().st_size / 1e6:,.0f} MB"
    csv_path = work / "in" / "fact_meter_reading.csv"
    csv_path.parent.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    write_csv(csv_path, meters, args.rows)
    print(f"{args.rows:,} rows for {len(meters)} meters, {csv_path.stat().st_size / 1e6:,.0f} MB "
          f"(written in {time.perf_counter() - t0:.1f} s); warehouse {where}, {existing:,} readings")
    for label in ("first load", "same file again"):
        seconds, peak, out = run_loader(url, csv_path, work)
        print(f"{label}: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s, peak RSS {peak:,.0f} MB")
        print("  " + out.strip().splitlines()[-2])


if __name__ == "__main__":
    main()
