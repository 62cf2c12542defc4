"""The physical floor of each callback: the SQL it sends to the warehouse, run directly on the engine.

    python -m bench.floor REQUESTS.json OUT.json [--repeat 5]

Run by bench/run.py in a process configured like the uncached server (same warehouse, no query cache, an API
token in COCKPIT_BENCH_TOKEN). For every recorded callback request it posts the body to the app in-process
(Flask's test client, so no HTTP), records each statement the app sends to the warehouse (SQLAlchemy's
``before_cursor_execute``), then runs those statements again straight on the driver's connection — no
SQLAlchemy, no pandas, no cache, no figure — and fetches their rows. The floor of a callback is the sum over its
statements of the median time of each. App-database statements (accounts, audit, notes) are not counted.

It also profiles each callback, to explain the gap to the targets:
- ``sql_by_origin``: the floor split by the data_access function that sent the statements (the innermost frame in
  data_access/ outside the engine and cache helpers), largest first;
- ``areas``: one more in-process request under cProfile, its own time (tottime) summed by where the code lives —
  the warehouse driver, pandas/numpy, plotly, Dash/Flask/JSON, the cockpit's own code, everything else.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_ACCESS = ROOT / "data_access"
HELPERS = {"engine.py", "cache.py", "sqlfuncs.py", "request.py"}
AREAS = (("driver", ("duckdb", "duckdb_engine", "psycopg", "pymysql", "sqlalchemy")), ("pandas", ("pandas", "numpy", "pyarrow")),
         ("plotly", ("plotly",)), ("dash", ("dash", "flask", "werkzeug", "json", "orjson")))


def origin() -> str:
    """The data_access function behind the statement being sent."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename)
        if path.parent == DATA_ACCESS and path.name not in HELPERS:
            return f"{path.stem}.{frame.name}"
    return "other"


def area(filename: str, function: str) -> str:
    """Where a profiled function lives: a third-party package, the cockpit, or other."""
    where = f"{filename} {function}".lower()
    if filename.startswith(str(ROOT)) and "/.venv/" not in filename:
        return "cockpit"
    for name, packages in AREAS:
        if any(f"/{pkg}/" in where or f"'{pkg}" in where or f"_{pkg}." in where or f" {pkg}." in where
               for pkg in packages):
            return name
    return "other"


def profile_areas(profiler: cProfile.Profile) -> tuple[dict[str, float], list[dict]]:
    """Own time by area, and the five functions with the most own time."""
    import pstats

    stats = pstats.Stats(profiler)
    totals: dict[str, float] = {}
    functions = []
    for (filename, line, function), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        key = area(filename, function)
        totals[key] = totals.get(key, 0.0) + tottime
        where = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        functions.append({"function": function if where == "~" else f"{where}:{line} {function}", "area": key,
                          "s": tottime})
    functions.sort(key=lambda f: -f["s"])
    return dict(sorted(totals.items(), key=lambda kv: -kv[1])), functions[:5]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("requests")
    parser.add_argument("out")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    import logging

    import sqlalchemy as sa

    import app as cockpit
    from data_access.config import get_config
    from data_access.engine import warehouse_engine

    logging.getLogger().setLevel(logging.WARNING)
    cfg = get_config()
    assert not cfg.cache_enabled, "the floor process must run without the query cache"
    engine = warehouse_engine()
    warehouse_url = str(engine.url)
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if str(conn.engine.url) == warehouse_url:
            captured.append((statement, parameters, origin()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", capture)
    client = cockpit.server.test_client()
    headers = {"Authorization": f"Bearer {os.environ['COCKPIT_BENCH_TOKEN']}", "Content-Type": "application/json"}
    items = json.loads(Path(args.requests).read_text())
    out = {}
    for item in items:
        captured.clear()
        times = []
        for i in range(max(1, args.repeat // 2)):
            if i:
                captured.clear()
            t0 = time.perf_counter()
            r = client.post(item.get("path") or "/_dash-update-component", data=item["body"], headers=headers)
            times.append(time.perf_counter() - t0)
        statements = list(captured)
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", capture)
        profiler = cProfile.Profile()
        profiler.enable()
        client.post(item.get("path") or "/_dash-update-component", data=item["body"], headers=headers)
        profiler.disable()
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", capture)
        areas, top = profile_areas(profiler)
        floor_s, rows = 0.0, 0
        by_origin: dict[str, list] = {}
        for statement, parameters, where in statements:
            runs = []
            for _ in range(args.repeat):
                raw = warehouse_engine().raw_connection()
                try:
                    cursor = raw.cursor()
                    t0 = time.perf_counter()
                    cursor.execute(statement, parameters)
                    fetched = cursor.fetchall()
                    runs.append(time.perf_counter() - t0)
                    cursor.close()
                finally:
                    raw.close()
            rows += len(fetched)
            floor_s += statistics.median(runs)
            slot = by_origin.setdefault(where, [0.0, 0])
            slot[0] += statistics.median(runs)
            slot[1] += 1
        out[item["key"]] = {"status": r.status_code, "in_process_s": statistics.median(times),
                            "statements": len(statements), "rows": rows, "floor_s": floor_s,
                            "sql_by_origin": [{"origin": k, "s": v[0], "statements": v[1]}
                                              for k, v in sorted(by_origin.items(), key=lambda kv: -kv[1][0])],
                            "areas": areas, "top_functions": top}
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
