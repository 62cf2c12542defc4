"""The data page's figures (数据管理): per warehouse table, what is loaded, from where, how fresh and how complete.

Row counts, newest facts and completeness are read inside the caller's scope; lineage (batches, source systems,
rejects) comes from ``meta_load``, which records tables, not schools, so it is the same in every scope (as
meta.one_source). Plain data out; the page renders it with components/data.py.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa

from . import meta, registry, schema
from .cache import memoize
from .engine import read_df
from .period import Period
from .registry import GREEN, NODATA, RED, Result
from .scope import Scope, facilities_in_scope
from .validate import LOADABLE_TABLES

# Completeness per table, where the contract defines what "expected" means: an indicator of the registry.
COMPLETENESS = {
    "fact_meter_reading": "energy.data_completeness",        # hourly readings present ÷ expected per meter
    "fact_cold_chain_reading": "dining.cold_chain_online",   # devices that kept reporting ÷ devices
}
# Tables dated by something other than a fact timestamp (shown as "data up to" a date or a year).
HORIZON = {
    "dim_school_calendar": schema.dim_school_calendar.c.cal_date,
    "fact_school_year": schema.fact_school_year.c.year,
    "fact_energy_quota": schema.fact_energy_quota.c.year,
}


@dataclass
class TableInfo:
    table: str
    rows: int
    newest: dt.datetime | int | None = None       # newest fact timestamp (or year, for yearly tables)
    fresh: str | None = None                      # green | red for daily flows, None for the others
    completeness: Result | None = None
    completeness_id: str | None = None
    completeness_decimals: int = 1
    last: dict | None = None                      # the newest batch: batch_id, loaded_at, source_system, rows_in,
                                                  # rows_rejected, status
    sources: list[str] = field(default_factory=list)
    batches: int = 0
    rejected_total: int = 0


def _scoped_count(name: str, scope: Scope):
    """SELECT count(*) of a table inside the scope (meter readings: from the daily rollup, Σ readings)."""
    t = schema.metadata.tables[name]
    facilities = facilities_in_scope(scope)
    if name == "fact_meter_reading":
        a, m = schema.agg_meter_daily, schema.dim_meter
        meters = sa.select(m.c.meter_id).where(m.c.facility_id.in_(facilities))
        return sa.select(sa.func.coalesce(sa.func.sum(a.c.readings), 0)).where(a.c.meter_id.in_(meters))
    stmt = sa.select(sa.func.count()).select_from(t)
    if name == "dim_school":
        return stmt.where(t.c.school_id.in_(scope.schools))
    if name == "dim_campus":
        stmt = stmt.where(t.c.school_id.in_(scope.schools))
        return stmt.where(t.c.campus_id == scope.campus) if scope.campus else stmt
    if "facility_id" in t.c and not t.c.facility_id.nullable:
        return stmt.where(t.c.facility_id.in_(facilities))
    stmt = stmt.where(t.c.school_id.in_(scope.schools))
    if "facility_id" in t.c and (scope.campus or scope.facility):
        stmt = stmt.where(t.c.facility_id.in_(facilities))
    return stmt


@memoize()
def row_counts(scope: Scope) -> dict[str, int]:
    out = {}
    for name in LOADABLE_TABLES:
        frame = read_df(_scoped_count(name, scope))
        out[name] = int(frame.iloc[0, 0] or 0) if not frame.empty else 0
    return out


@memoize()
def horizons(scope: Scope) -> dict[str, object]:
    """The last calendar day and the last year of the yearly tables, inside the scope's schools."""
    out = {}
    for name, col in HORIZON.items():
        frame = read_df(sa.select(sa.func.max(col)).where(col.table.c.school_id.in_(scope.schools)))
        value = frame.iloc[0, 0] if not frame.empty else None
        out[name] = None if value is None or pd.isna(value) else value
    return out


@memoize()
def lineage() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per table and source system: batches, newest load, rows rejected; the newest batches of each table)."""
    m = schema.meta_load
    per_source = read_df(sa.select(
        m.c.table_name, m.c.source_system, sa.func.count().label("batches"),
        sa.func.max(m.c.loaded_at).label("loaded_at"),
        sa.func.coalesce(sa.func.sum(m.c.rows_rejected), 0).label("rows_rejected"),
    ).group_by(m.c.table_name, m.c.source_system))
    newest = sa.select(m.c.table_name, sa.func.max(m.c.loaded_at).label("loaded_at")).group_by(m.c.table_name).subquery()
    last = read_df(sa.select(m).join(newest, sa.and_(newest.c.table_name == m.c.table_name,
                                                     newest.c.loaded_at == m.c.loaded_at)))
    return per_source, last


@memoize()
def recent_batches(limit: int = 20) -> pd.DataFrame:
    """The newest batches of every table, newest first."""
    m = schema.meta_load
    return read_df(sa.select(m).order_by(m.c.loaded_at.desc(), m.c.batch_id.desc()).limit(limit))


def tables(scope: Scope, period: Period) -> list[TableInfo]:
    """One TableInfo per loadable table, in dependency order."""
    counts = row_counts(scope)
    years = horizons(scope)
    per_source, last = lineage()
    out = []
    for name in LOADABLE_TABLES:
        info = TableInfo(name, counts.get(name, 0))
        if name in meta.FACT_DATES:
            info.newest = meta.newest_fact(scope, name)
        elif name in years and years[name] is not None:
            value = years[name]
            info.newest = int(value) if name != "dim_school_calendar" else pd.Timestamp(value).to_pydatetime()
        if name in meta.DAILY_FLOWS:
            # The rule of meta.freshness: data up to the period's last day, or the day before.
            if info.newest is None:
                info.fresh = NODATA
            else:
                info.fresh = GREEN if info.newest.date() >= period.end - dt.timedelta(days=1) else RED
        if name in COMPLETENESS:
            info.completeness_id = COMPLETENESS[name]
            info.completeness = registry.evaluate(COMPLETENESS[name], scope, period)
            info.completeness_decimals = registry.get(COMPLETENESS[name]).decimals
        mine = per_source.loc[per_source.table_name == name]
        if not mine.empty:
            info.sources = sorted(str(s) for s in mine.source_system)
            info.batches = int(mine.batches.sum())
            info.rejected_total = int(mine.rows_rejected.sum())
        rows = last.loc[last.table_name == name].sort_values("batch_id")   # ties in loaded_at: the later id
        if not rows.empty:
            r = rows.iloc[-1]
            info.last = {"batch_id": str(r.batch_id), "loaded_at": pd.Timestamp(r.loaded_at).to_pydatetime(),
                         "source_system": str(r.source_system), "rows_in": int(r.rows_in),
                         "rows_rejected": int(r.rows_rejected), "status": str(r.status)}
        out.append(info)
    return out
