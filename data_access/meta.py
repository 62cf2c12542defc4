"""Lineage and freshness: "data as of", the health check, and the data-governance indicators.

"Data as of" for a tile = the newest ``meta_load.loaded_at`` of the tables it reads, and the newest fact
timestamp in scope (WAREHOUSE.md, Lineage).
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from .cache import memoize
from .engine import read_df
from .period import Period
from .registry import Indicator, register
from .schema import (
    agg_meter_daily,
    dim_facility,
    dim_meter,
    fact_canteen_inspection,
    fact_cold_chain_reading,
    fact_dining_check,
    fact_food_hazard,
    fact_maturity_score,
    fact_meals_served,
    fact_survey_response,
    fact_work_order,
    meta_load,
)
from .scope import Scope, facilities_in_scope

# Fact tables with the column that dates a row, and how rows are scoped (by facility or by school).
FACT_DATES = {
    "fact_dining_check": (fact_dining_check.c.check_date, fact_dining_check.c.facility_id, "facility"),
    "fact_meals_served": (fact_meals_served.c.service_date, fact_meals_served.c.facility_id, "facility"),
    "fact_cold_chain_reading": (fact_cold_chain_reading.c.ts, fact_cold_chain_reading.c.facility_id, "facility"),
    "fact_meter_reading": (agg_meter_daily.c.day, None, "meter"),
    "fact_food_hazard": (fact_food_hazard.c.found_on, fact_food_hazard.c.facility_id, "facility"),
    "fact_canteen_inspection": (fact_canteen_inspection.c.inspected_on, fact_canteen_inspection.c.facility_id,
                                "facility"),
    "fact_survey_response": (fact_survey_response.c.submitted_on, fact_survey_response.c.school_id, "school"),
    "fact_work_order": (fact_work_order.c.created_at, fact_work_order.c.school_id, "school"),
    "fact_maturity_score": (fact_maturity_score.c.assessed_on, fact_maturity_score.c.school_id, "school"),
}
RECENT_DAYS = 35   # where newest_fact looks first

# Tables whose recency says whether a school's daily data flow is alive (for the freshness indicator).
DAILY_FLOWS = ("fact_dining_check", "fact_meals_served", "fact_cold_chain_reading", "fact_meter_reading",
               "fact_survey_response", "fact_work_order")


@memoize()
def loads() -> pd.DataFrame:
    """Newest batch per table: table_name, loaded_at, source systems, batches, rejected rows."""
    m = meta_load
    stmt = sa.select(
        m.c.table_name, sa.func.max(m.c.loaded_at).label("loaded_at"),
        sa.func.count(sa.distinct(m.c.source_system)).label("sources"),
        sa.func.count().label("batches"), sa.func.sum(m.c.rows_rejected).label("rows_rejected"),
    ).group_by(m.c.table_name)
    return read_df(stmt)


def _scoped_max(table: str, scope: Scope, upto: dt.date | None = None, group_school: bool = False):
    col, key, how = FACT_DATES[table]
    stmt = sa.select(sa.func.max(col).label("newest"))
    if how == "meter":
        stmt = stmt.select_from(agg_meter_daily.join(dim_meter, dim_meter.c.meter_id == agg_meter_daily.c.meter_id))
        stmt = stmt.where(dim_meter.c.facility_id.in_(facilities_in_scope(scope)))
        school_col = dim_meter.c.school_id
    elif how == "facility":
        stmt = stmt.select_from(key.table.join(dim_facility, dim_facility.c.facility_id == key))
        stmt = stmt.where(key.in_(facilities_in_scope(scope)))
        school_col = dim_facility.c.school_id
    else:
        stmt = stmt.where(key.in_(scope.schools))
        if (scope.facility or scope.campus) and "facility_id" in key.table.c:
            stmt = stmt.where(key.table.c.facility_id.in_(facilities_in_scope(scope)))
        school_col = key
    if upto is not None:
        stmt = stmt.where(col < upto + dt.timedelta(days=1))
    if group_school:
        stmt = stmt.add_columns(school_col.label("key")).group_by(school_col)
    return stmt


@memoize()
def newest_overall(table: str):
    """The newest fact date of a table, warehouse-wide (engines answer it from their statistics or an index)."""
    col = FACT_DATES[table][0]
    frame = read_df(sa.select(sa.func.max(col).label("newest")).select_from(col.table))
    value = frame.iloc[0, 0] if not frame.empty else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


@memoize()
def newest_fact(scope: Scope, table: str) -> dt.datetime | None:
    """The newest fact timestamp of a table inside the scope."""
    if table not in FACT_DATES:
        return None
    col = FACT_DATES[table][0]
    overall = newest_overall(table)
    if overall is None:
        return None
    # Most scopes have data in the warehouse's last weeks: look there first (a date filter reads only those
    # weeks), and through the whole table only when the scope has gone quiet for longer.
    since = overall - dt.timedelta(days=RECENT_DAYS)
    recent = col >= (since.date() if isinstance(col.type, sa.Date) else since)
    for stmt in (_scoped_max(table, scope).where(recent), _scoped_max(table, scope)):
        frame = read_df(stmt)
        value = frame.iloc[0, 0] if not frame.empty else None
        if value is not None and not pd.isna(value):
            return pd.Timestamp(value).to_pydatetime()
    return None


def as_of(scope: Scope, tables) -> dict:
    """{"loaded_at": newest load of these tables, "fact": newest fact timestamp in scope} (None when unknown)."""
    frame = loads()
    hit = frame.loc[frame.table_name.isin(list(tables)), "loaded_at"]
    loaded = None if hit.empty or pd.isna(hit.max()) else pd.Timestamp(hit.max()).to_pydatetime()
    facts = [t for t in (newest_fact(scope, t) for t in tables) if t is not None]
    return {"loaded_at": loaded, "fact": max(facts) if facts else None}


@memoize()
def freshness(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Per school: fact tables holding data up to the period's last day (or the day before) ÷ fact tables
    holding any data in the period. Rolled up as Σ fresh tables ÷ Σ tables over schools."""
    if by not in (None, "school", "region"):
        return pd.DataFrame(columns=["key", "num", "den"])
    rows = []
    for table in DAILY_FLOWS:
        frame = read_df(_scoped_max(table, scope, upto=period.end, group_school=True)
                        .where(FACT_DATES[table][0] >= period.start))
        for _, r in frame.iterrows():
            if pd.isna(r["newest"]):
                continue
            newest = pd.Timestamp(r["newest"]).date()
            rows.append({"school_id": r["key"], "fresh": int(newest >= period.end - dt.timedelta(days=1))})
    if not rows:
        return pd.DataFrame(columns=(["key"] if by else []) + ["num", "den"])
    per = pd.DataFrame(rows).groupby("school_id").agg(num=("fresh", "sum"), den=("fresh", "count")).reset_index()
    if by is None:
        return pd.DataFrame({"num": [per["num"].sum()], "den": [per["den"].sum()]})
    if by == "region":
        from .dims import org_tree

        regions = org_tree().schools.set_index("school_id")["region_code"]
        per["key"] = per["school_id"].map(regions)
        return per.groupby("key", as_index=False)[["num", "den"]].sum()
    return per.rename(columns={"school_id": "key"})


def one_source(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Tables loaded from exactly one source system ÷ tables loaded (warehouse-wide lineage, the same for
    every school: meta_load does not record schools)."""
    frame = loads()
    num, den = int((frame["sources"] == 1).sum()), int(len(frame))
    if by is None:
        return pd.DataFrame({"num": [num], "den": [den]})
    if by not in ("school", "region"):
        return pd.DataFrame(columns=["key", "num", "den"])
    from .dims import org_tree

    schools = org_tree().schools
    schools = schools.loc[schools.school_id.isin(scope.schools)]
    keys = schools["school_id"] if by == "school" else schools["region_code"].drop_duplicates()
    return pd.DataFrame({"key": list(keys), "num": num, "den": den})


register(Indicator(
    id="meta.freshness", domain="meta", name_zh="数据及时率", name_en="Data freshness", unit="%",
    direction="higher", measure=freshness, levels=("association", "region", "school"),
    tables=DAILY_FLOWS, formula_zh="数据更新到期末（或前一天）的事实表 ÷ 期内有数据的事实表",
    formula_en="fact tables with data up to the period's last day (or the day before) ÷ fact tables with data",
))
register(Indicator(
    id="meta.one_source", domain="meta", name_zh="一数一源", name_en="One source per datum", unit="%",
    direction="higher", measure=one_source, levels=("association", "region", "school"), tables=("meta_load",),
    formula_zh="只有一个来源系统的表 ÷ 已加载的表", formula_en="tables loaded from one source system ÷ tables loaded",
))


def health() -> dict:
    """Warehouse reachability and data freshness for /api/v1/health (no scope: no figures, only dates)."""
    from .engine import ping

    ok, message = ping()
    out = {"warehouse": {"reachable": ok, "message": message}, "tables": []}
    if not ok:
        return out
    try:
        frame = loads()
    except Exception as exc:  # the lineage table may be missing in a hand-built warehouse
        out["warehouse"]["message"] = f"meta_load unreadable: {exc}"
        return out
    for _, r in frame.sort_values("table_name").iterrows():
        out["tables"].append({
            "table": r["table_name"],
            "loaded_at": None if pd.isna(r["loaded_at"]) else pd.Timestamp(r["loaded_at"]).isoformat(),
            "batches": int(r["batches"]),
            "sources": int(r["sources"]),
            "rows_rejected": int(r["rows_rejected"] or 0),
        })
    return out
