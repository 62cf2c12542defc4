"""The benchmark's small run (`python -m bench --quick`), so that the harness never rots: two pages at school
level on a copy of the test warehouse, through every phase (gunicorn servers, Chromium, replay, SQL floor, naive
baseline, results files). The full run at association scale is a command (README), not a test."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import WAREHOUSE

ROOT = Path(__file__).resolve().parent.parent
DATA_ACCESS_MODULES = {p.stem for p in (ROOT / "data_access").glob("*.py")}

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_quick_benchmark_measures_every_phase(tmp_path):
    warehouse = tmp_path / "bench.duckdb"
    shutil.copy(WAREHOUSE, warehouse)
    out, work = tmp_path / "results", tmp_path / "work"
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--url", f"duckdb:///{warehouse}",
                          "--pages", "overview,dining", "--levels", "school", "--out", str(out), "--work", str(work)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((out / "quick.json").read_text())

    assert result["warehouse"]["rows"]["fact_meter_reading"] > 0
    pages = {(p["page"], p["level"]): p for p in result["pages"]}
    assert set(pages) == {("overview", "school"), ("dining", "school")}
    for page in pages.values():
        assert page["render_first_s"] is not None and page["render_warm_s"] is not None, page
        assert page["figures"] >= 1 and page["largest_figure_bytes"] > 0
        assert page["console_errors"] == []
        assert page["naive_s"] > 0

    calls = result["callbacks"]
    contents = [c for c in calls if c["outputs"] in ("overview-content.children", "dining-content.children")]
    assert len(contents) == 2
    for call in calls:
        assert call["warm_status"] == 200 and call["uncached_status"] == 200, call
        assert 0 < call["warm_p50"] <= call["warm_p95"]
    for call in contents:
        # the page's content queries the warehouse: the floor saw its statements, and an uncached answer costs
        # more than a cached one
        assert call["statements"] > 0 and call["floor_s"] > 0
        assert call["uncached_p50"] > call["warm_p50"]
        assert call["bytes"] > 1000
        # the profile: the floor split by the data_access function sending the SQL adds up to the floor, and the
        # cProfile'd request spent time in the driver and in the cockpit's own code
        origins = call["sql_by_origin"]
        assert origins and all(o["origin"].split(".")[0] in DATA_ACCESS_MODULES for o in origins), origins
        assert sum(o["statements"] for o in origins) == call["statements"]
        assert sum(o["s"] for o in origins) == pytest.approx(call["floor_s"])
        assert call["areas"].get("driver", 0) > 0 and call["areas"].get("cockpit", 0) > 0, call["areas"]

    checks = result["checks"]
    for name in ("warm_p50", "warm_p95", "uncached_p50", "floor_ratio", "figure_kb", "render_first", "render_warm",
                 "naive_speedup_uncached", "rss", "console_errors"):
        assert isinstance(checks[name]["met"], bool), name
    assert all(m > 0 for m in result["rss_mb"]["warm"] + result["rss_mb"]["uncached"])
    text = (out / "quick.md").read_text(encoding="utf-8")
    assert "## Targets" in text and "overview · school" in text and "naive baseline" in text
    if any(c.get("uncached_p50", 0) > 0.3 for c in calls):
        assert "## Where the uncached time goes" in text
    assert len(list((work / "screenshots").glob("*.png"))) == 2
