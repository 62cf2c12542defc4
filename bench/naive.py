"""THE BASELINE, not the cockpit: the approach most Dash tutorials teach, at the benchmark's scale.

    python -m bench.naive --url duckdb:///bench/work/big.duckdb --end YYYY-MM-DD OUT.json [--repeat 3]

At start the whole tables are read into pandas DataFrames held in memory (here with DuckDB's ``.df()``, which is
far faster than the tutorials' ``pd.read_sql``: generous to the baseline), and each "callback" filters and
aggregates them with pandas for the requested scope and period — no SQL aggregation, no rollup, no cache. The
views compute the headline figures of the cockpit's pages with the same formulas (INDICATORS.md), simplified
where the cockpit's rules are long (the baseline ignores no-service days, the school calendar and the
anomaly rules), so the baseline does *less* work than the cockpit:

- overview: sample-retention rate, cold-chain compliance, kgce and CO2 of top-level meters, CSI, satisfied rate,
  on-time response;
- dining: the eight check rates, cold-chain compliance by zone rule, open/overdue hazards, expired certificates,
  meals served per day;
- energy: use by type, kgce, CO2, the daily curve, the top 10 buildings, the hourly profile;
- service: CSI, satisfied rate and NPS per service line, on-time response and completion, P50/P90 response time.

Writes load time, resident memory and per view × scope timings (median of --repeat) to OUT.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["dim_school", "dim_facility", "dim_meter", "fact_school_year", "fact_meter_reading", "fact_dining_check",
          "fact_meals_served", "fact_cold_chain_reading", "fact_food_hazard", "fact_staff_certificate",
          "fact_survey_response", "fact_work_order"]
KGCE = {"electricity": 0.1229, "gas": 1.2143, "heat": 34.12}
CO2 = {"electricity": 0.5366, "gas": 2.16, "heat": 110.0}
SLA = {"urgent": (2, 24), "normal": (24, 72)}
CATEGORY_COLUMNS = ("_id", "_type", "zone", "meal", "service_line", "kind", "priority", "source", "severity",
                    "category", "_ref")


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def load(url: str) -> dict[str, pd.DataFrame]:
    import duckdb
    import sqlalchemy as sa

    from pandas.api.types import union_categoricals

    path = url.split("duckdb:///", 1)[1]
    con = duckdb.connect(path, read_only=True)
    frames = {}
    for table in TABLES:
        # in chunks, ids as categories: what a careful tutorial does to fit 100 M rows in memory at all
        result = con.execute(str(sa.select(sa.text("*")).select_from(sa.table(table))))
        chunks = []
        while True:
            chunk = result.fetch_df_chunk(50)
            if chunk.empty:
                break
            for col in chunk.columns:
                if not pd.api.types.is_numeric_dtype(chunk[col]) and \
                        not pd.api.types.is_datetime64_any_dtype(chunk[col]) and col.endswith(CATEGORY_COLUMNS):
                    chunk[col] = chunk[col].astype("category")
            chunks.append(chunk)
        if not chunks:
            frames[table] = result.df()
            continue
        cats = [c for c in chunks[0].columns if isinstance(chunks[0][c].dtype, pd.CategoricalDtype)]
        merged = {c: union_categoricals([ch[c] for ch in chunks]) for c in cats}
        frame = pd.concat([ch.drop(columns=cats) for ch in chunks], ignore_index=True)
        for c in cats:
            frame[c] = pd.Categorical(merged[c])
        frames[table] = frame[chunks[0].columns]
        del chunks
    con.close()
    return frames


class Views:
    def __init__(self, t: dict[str, pd.DataFrame]):
        self.t = t

    # --- scope helpers: the filtering every callback of the tutorial app repeats ---------------------------------
    def schools(self, scope):
        s = self.t["dim_school"]
        if scope.get("school"):
            return s[s.school_id == scope["school"]].school_id.astype(str).tolist()
        if scope.get("facility"):
            f = self.t["dim_facility"]
            return f[f.facility_id == scope["facility"]].school_id.astype(str).tolist()
        return s.school_id.astype(str).tolist()

    def facility_filter(self, frame, scope):
        if scope.get("facility"):
            return frame[frame.facility_id == scope["facility"]]
        if scope.get("school"):
            f = self.t["dim_facility"]
            return frame[frame.facility_id.isin(f[f.school_id == scope["school"]].facility_id)]
        return frame

    def meters(self, scope, top_only=True):
        m = self.t["dim_meter"]
        if top_only:
            m = m[m.parent_meter_id.isna()]
        if scope.get("facility"):
            return m[m.facility_id == scope["facility"]]
        if scope.get("school"):
            return m[m.school_id == scope["school"]]
        return m

    @staticmethod
    def between(frame, col, start, end):
        values = frame[col]
        return frame[(values >= pd.Timestamp(start)) & (values < pd.Timestamp(end + dt.timedelta(days=1)))]

    # --- the views ---------------------------------------------------------------------------------------------------
    def check_rates(self, scope, start, end, types=None):
        c = self.facility_filter(self.t["fact_dining_check"], scope)
        c = self.between(c, "check_date", start, end)
        if types:
            c = c[c.check_type.isin(types)]
        g = c.groupby("check_type", observed=True)[["items_ok", "items_due"]].sum()
        return (g.items_ok / g.items_due * 100).to_dict()

    def cold_chain(self, scope, start, end):
        r = self.facility_filter(self.t["fact_cold_chain_reading"], scope)
        r = self.between(r, "ts", start, end)
        zone = r.zone.astype(str)
        ok = np.where(zone == "chilled", (r.temp_c >= 0) & (r.temp_c <= 8),
                      np.where(zone == "frozen", r.temp_c <= -12, r.temp_c >= 60))
        return float(ok.mean() * 100) if len(r) else None

    def energy_totals(self, scope, start, end):
        meters = self.meters(scope)
        r = self.t["fact_meter_reading"]
        r = self.between(r[r.meter_id.isin(meters.meter_id)], "ts", start, end)
        r = r.merge(meters[["meter_id", "energy_type", "facility_id"]], on="meter_id")
        by_type = r.groupby("energy_type", observed=True).consumption.sum()
        kgce = sum(by_type.get(k, 0.0) * f for k, f in KGCE.items())
        co2 = sum(by_type.get(k, 0.0) * f for k, f in CO2.items()) / 1000
        return r, by_type.to_dict(), kgce, co2

    def service_figures(self, scope, start, end):
        sv = self.t["fact_survey_response"]
        sv = sv[sv.school_id.isin(self.schools(scope))]
        if scope.get("facility"):
            sv = sv[sv.facility_id == scope["facility"]]
        sv = self.between(sv, "submitted_on", start, end)
        csi = ((sv.score - 1) / 4 * 100).mean()
        satisfied = (sv.score >= 4).mean() * 100
        wo = self.t["fact_work_order"]
        wo = wo[wo.school_id.isin(self.schools(scope))]
        if scope.get("facility"):
            wo = wo[wo.facility_id == scope["facility"]]
        wo = self.between(wo, "created_at", start, end)
        resp_h = (wo.responded_at - wo.created_at).dt.total_seconds() / 3600
        limit = wo.priority.astype(str).map({k: v[0] for k, v in SLA.items()})
        on_time = (resp_h <= limit).mean() * 100
        done_h = (wo.completed_at - wo.created_at).dt.total_seconds() / 3600
        climit = wo.priority.astype(str).map({k: v[1] for k, v in SLA.items()})
        completed_on_time = (done_h <= climit).mean() * 100
        return sv, wo, csi, satisfied, on_time, completed_on_time, resp_h

    def overview(self, scope, start, end):
        rates = self.check_rates(scope, start, end, ["sample_retention"])
        _, by_type, kgce, co2 = self.energy_totals(scope, start, end)
        _, _, csi, satisfied, on_time, _, _ = self.service_figures(scope, start, end)
        return [rates, self.cold_chain(scope, start, end), kgce, co2, csi, satisfied, on_time]

    def dining(self, scope, start, end):
        rates = self.check_rates(scope, start, end)
        cold = self.cold_chain(scope, start, end)
        hz = self.facility_filter(self.t["fact_food_hazard"], scope)
        open_h = hz[hz.closed_on.isna() | (hz.closed_on > pd.Timestamp(end))]
        overdue = open_h[open_h.due_on < pd.Timestamp(end)]
        certs = self.facility_filter(self.t["fact_staff_certificate"], scope)
        expired = int((certs.valid_until < pd.Timestamp(end)).sum())
        meals = self.between(self.facility_filter(self.t["fact_meals_served"], scope), "service_date", start, end)
        covers = meals.groupby("service_date").covers.sum()
        return [rates, cold, len(open_h), len(overdue), expired, covers.to_dict()]

    def energy(self, scope, start, end):
        r, by_type, kgce, co2 = self.energy_totals(scope, start, end)
        daily = r.groupby([r.ts.dt.date, "energy_type"], observed=True).consumption.sum()
        buildings = r.groupby("facility_id", observed=True).consumption.sum().nlargest(10)
        profile = r.groupby(r.ts.dt.hour).consumption.mean()
        return [by_type, kgce, co2, len(daily), buildings.to_dict(), profile.to_dict()]

    def service(self, scope, start, end):
        sv, wo, csi, satisfied, on_time, completed_on_time, resp_h = self.service_figures(scope, start, end)
        lines = sv.groupby("service_line", observed=True).agg(
            csi=("score", lambda s: ((s - 1) / 4 * 100).mean()), n=("score", "size"))
        nps = sv.dropna(subset=["nps"]).groupby("service_line", observed=True).nps.agg(
            lambda s: ((s >= 9).mean() - (s <= 6).mean()) * 100)
        return [csi, satisfied, on_time, completed_on_time, resp_h.quantile(0.5), resp_h.quantile(0.9),
                lines.to_dict(), nps.to_dict()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive")
    parser.add_argument("--url", required=True)
    parser.add_argument("--end", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scopes", required=True, help="JSON: {level: {param: value}}")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    tables = load(args.url)
    gc.collect()
    load_s = time.perf_counter() - t0
    rss, _ = rss_mb()
    views = Views(tables)
    start = args.end - dt.timedelta(days=args.days - 1)
    results = {}
    for level, scope in json.loads(args.scopes).items():
        for name in ("overview", "dining", "energy", "service"):
            times = []
            for _ in range(args.repeat):
                t1 = time.perf_counter()
                getattr(views, name)(scope, start, args.end)
                times.append(time.perf_counter() - t1)
            results[f"{name}|{level}"] = statistics.median(times)
    _, peak = rss_mb()
    rows = {k: len(v) for k, v in tables.items()}
    Path(args.out).write_text(json.dumps({"load_s": load_s, "rss_mb_after_load": rss, "peak_rss_mb": peak,
                                          "rows": rows, "views": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
