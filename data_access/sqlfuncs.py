"""Portable SQL expressions whose spelling differs between DuckDB, PostgreSQL, MySQL/MariaDB and SQLite.

Each is a SQLAlchemy construct compiled per dialect, so queries stay in Core and run unchanged everywhere.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement


class seconds_between(FunctionElement):
    """Seconds from the first timestamp to the second (b - a), as a number."""

    type = sa.Double()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between)
def _sb_default(element, compiler, **kw):
    a, b = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(b, **kw)} - {compiler.process(a, **kw)})))"


@compiles(seconds_between, "duckdb")
def _sb_duckdb(element, compiler, **kw):
    a, b = list(element.clauses)
    return f"(epoch({compiler.process(b, **kw)}) - epoch({compiler.process(a, **kw)}))"


@compiles(seconds_between, "mysql")
@compiles(seconds_between, "mariadb")
def _sb_mysql(element, compiler, **kw):
    a, b = list(element.clauses)
    return f"TIMESTAMPDIFF(SECOND, {compiler.process(a, **kw)}, {compiler.process(b, **kw)})"


@compiles(seconds_between, "sqlite")
def _sb_sqlite(element, compiler, **kw):
    a, b = list(element.clauses)
    # julianday() is a float of days: round away its binary noise (a 2 h SLA must compare equal to 7200 s)
    return f"ROUND((julianday({compiler.process(b, **kw)}) - julianday({compiler.process(a, **kw)})) * 86400.0, 3)"


class isodow(FunctionElement):
    """ISO day of week of a date or timestamp: Monday 1 … Sunday 7."""

    type = sa.Integer()
    name = "isodow"
    inherit_cache = True


@compiles(isodow)
def _dow_default(element, compiler, **kw):
    (d,) = list(element.clauses)
    return f"CAST(EXTRACT(ISODOW FROM {compiler.process(d, **kw)}) AS INTEGER)"


@compiles(isodow, "duckdb")
def _dow_duckdb(element, compiler, **kw):
    (d,) = list(element.clauses)
    return f"isodow({compiler.process(d, **kw)})"


@compiles(isodow, "mysql")
@compiles(isodow, "mariadb")
def _dow_mysql(element, compiler, **kw):
    (d,) = list(element.clauses)
    return f"(WEEKDAY({compiler.process(d, **kw)}) + 1)"


@compiles(isodow, "sqlite")
def _dow_sqlite(element, compiler, **kw):
    (d,) = list(element.clauses)
    return f"((CAST(strftime('%w', {compiler.process(d, **kw)}) AS INTEGER) + 6) % 7 + 1)"


class date_of(FunctionElement):
    """The calendar date of a timestamp: CAST(ts AS DATE), and DATE(ts) on SQLite (where the cast yields the
    year)."""

    type = sa.Date()
    name = "date_of"
    inherit_cache = True


@compiles(date_of)
def _date_default(element, compiler, **kw):
    (ts,) = list(element.clauses)
    return f"CAST({compiler.process(ts, **kw)} AS DATE)"


@compiles(date_of, "sqlite")
def _date_sqlite(element, compiler, **kw):
    (ts,) = list(element.clauses)
    return f"DATE({compiler.process(ts, **kw)})"


def hour_of(ts):
    return sa.extract("hour", ts)


def ratio_sum(condition):
    """COALESCE(SUM(CASE WHEN condition THEN 1 ELSE 0 END), 0): a count that adds up across groups (0, not
    NULL, over no rows)."""
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def literal_rows(name: str, column: str, values) -> sa.Subquery:
    """A one-column inline table of literal values (UNION ALL of SELECTs), portable across engines."""
    values = list(values)
    if not values:
        return sa.select(sa.literal("", sa.String(64)).label(column)).where(sa.false()).subquery(name)
    selects = [sa.select(sa.literal(v, sa.String(64)).label(column)) for v in values]
    return (selects[0] if len(selects) == 1 else sa.union_all(*selects)).subquery(name)


# --- percentiles --------------------------------------------------------------------------------------------
# A continuous percentile (linear interpolation between the two nearest ranks: PostgreSQL percentile_cont,
# DuckDB quantile_cont, pandas quantile) that runs unchanged on every engine. PostgreSQL and DuckDB have it as an
# ordered-set aggregate, MariaDB only as a window function (PERCENTILE_CONT … OVER (PARTITION BY …)), MySQL 8
# and SQLite not at all; all of them have ROW_NUMBER() and COUNT() OVER (PARTITION BY …). So it takes two steps:
#   1. an inner select adds ``rank_within(x, groups)``: each row's rank among its group's non-null values (nulls
#      sorted last with an explicit CASE, since engines disagree on where NULLs sort) and the group's count;
#   2. the outer select groups by the same keys and takes ``percentile_from_ranks(x, rn, cnt, q)``: with
#      pos = q·(cnt − 1), the values at ranks ⌊pos⌋+1 and ⌈pos⌉+1 (the max over ranks at or below pos, the min
#      over ranks at or above it; no FLOOR needed) interpolated by pos − ⌊pos⌋.
# A group's percentile is always computed over the group's own rows: child percentiles are never combined.

def rank_within(value, partition_by=()):
    """Window columns for the inner select: (rank of ``value`` among its group's non-null values, 1-based;
    the group's number of non-null values)."""
    groups = list(partition_by) or None
    nulls_last = sa.case((value.is_(None), sa.literal_column("1")), else_=sa.literal_column("0"))
    rn = sa.func.row_number().over(partition_by=groups, order_by=[nulls_last, value])
    cnt = sa.func.count(value).over(partition_by=groups)
    return rn, cnt


def percentile_from_ranks(value, rn, cnt, q: float):
    """Aggregate for the outer select over ranked rows: the continuous ``q``-quantile (0 ≤ q ≤ 1) of ``value``
    in each group; NULL for a group without values."""
    pos = sa.literal(float(q), sa.Double()) * (cnt - 1)
    below = sa.and_(value.is_not(None), rn - 1 <= pos)
    above = sa.and_(value.is_not(None), rn - 1 >= pos)
    lo = sa.func.max(sa.case((below, value)))
    hi = sa.func.min(sa.case((above, value)))
    lo_rank = sa.func.max(sa.case((below, rn - 1)))
    return lo + (hi - lo) * (sa.func.max(pos) - lo_rank)
