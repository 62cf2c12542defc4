"""The physical floor of each callback: the SQL it sends to the warehouse, run directly on the engine.

    python -m bench.floor REQUESTS.json OUT.json [--repeat 5]

Run by bench/run.py in a process configured like the uncached server (same warehouse, no query cache, an API
token in COCKPIT_BENCH_TOKEN). For every recorded callback request it posts the body to the app in-process
(Flask's test client, so no HTTP), records each statement the app sends to the warehouse (SQLAlchemy's
``before_cursor_execute``), then runs those statements again straight on the driver's connection — no
SQLAlchemy, no pandas, no cache, no figure — and fetches their rows. The floor of a callback is the sum over its
statements of the median time of each. App-database statements (accounts, audit, notes) are not counted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
            captured.append((statement, parameters))

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
        floor_s, rows = 0.0, 0
        for statement, parameters in statements:
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
        out[item["key"]] = {"status": r.status_code, "in_process_s": statistics.median(times),
                            "statements": len(statements), "rows": rows, "floor_s": floor_s}
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
