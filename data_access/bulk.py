"""Fast bulk writes into the warehouse, and the ``agg_meter_daily`` rollup.

Used by the demo generator and by the CSV/Excel loader. Each dialect gets its fastest safe path:

- DuckDB: the DataFrame is registered on the raw DuckDB connection and copied with one
  ``INSERT INTO t (cols) SELECT CAST(col AS type) ... FROM df`` (a columnar scan, millions of rows a second);
- PostgreSQL (psycopg 3, or psycopg2): ``COPY t (cols) FROM STDIN (FORMAT csv)`` fed with CSV chunks;
- anything else (MySQL/MariaDB, SQLite): SQLAlchemy Core ``insert()`` executemany in chunks.

Every statement is built from the Table/Column objects of schema.py (identifiers quoted by the dialect's
identifier preparer); values always travel as data, never as SQL text. Writes are plain inserts: replacing rows
whose natural key already exists is the caller's job (the demo builds empty tables; the loader deletes first).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import uuid
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import schema

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
"""Rows per executemany batch on the generic path."""

METER_BATCH = 1_000
"""Meter ids per statement when rebuilding the rollup for a list of meters."""

COPY_CHUNK_ROWS = 100_000
"""Rows per CSV chunk sent to PostgreSQL COPY (bounds the memory of the text buffer)."""

NIGHT_HOURS = (0, 4)   # inclusive: 00:00-05:00, the base-load window of energy.night_ratio
WORK_HOURS = (9, 16)   # inclusive: 09:00-17:00
LEAK_HOURS = (2, 3)    # inclusive: 02:00-04:00, the window of energy.leak_suspect


# --- preparing frames ---------------------------------------------------------------------------------------

def _table(name: str) -> sa.Table:
    try:
        return schema.metadata.tables[name]
    except KeyError:
        raise ValueError(f"unknown warehouse table: {name!r}") from None


def prepare_frame(table: sa.Table, df: pd.DataFrame) -> pd.DataFrame:
    """Columns of ``df`` in the table's order, with dtypes that every write path understands.

    Missing values of any kind (None, NaN, NaT, pd.NA) stay missing and are written as NULL. Integer columns
    become nullable Int64 (a fractional value is an error rather than silently truncated), booleans nullable
    boolean, dates and timestamps datetime64, text pandas strings.
    """
    unknown = [c for c in df.columns if c not in table.c]
    if unknown:
        raise ValueError(f"{table.name}: columns not in the warehouse schema: {unknown}")
    out = {}
    for col in table.columns:
        if col.name not in df.columns:
            continue
        s = df[col.name]
        t = col.type
        if isinstance(t, sa.Boolean):
            if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                s = s.map(_to_bool, na_action="ignore")
            s = s.astype("boolean")
        elif isinstance(t, sa.Integer):
            if pd.api.types.is_bool_dtype(s.dtype):
                s = s.astype("Int64")
            else:
                num = pd.to_numeric(s)
                if pd.api.types.is_float_dtype(num.dtype):
                    frac = num.notna() & (num != np.round(num))
                    if frac.any():
                        raise ValueError(f"{table.name}.{col.name}: non-integer values, e.g. {num[frac].iloc[0]!r}")
                s = num.astype("Int64")
        elif isinstance(t, (sa.Float, sa.Numeric)):
            s = pd.to_numeric(s).astype("float64")
        elif isinstance(t, sa.DateTime):
            s = pd.to_datetime(s)
        elif isinstance(t, sa.Date):
            s = pd.to_datetime(s).dt.normalize()
        else:  # text
            if not pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
                s = s.astype("str")
        out[col.name] = s
    return pd.DataFrame(out, index=df.index)


def _to_bool(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "1", "yes", "y", "是"):
        return True
    if text in ("false", "f", "0", "no", "n", "否"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


# --- writing ------------------------------------------------------------------------------------------------

def write_frames(engine: Engine, frames: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Insert each DataFrame into the existing table of the same name, in one transaction.

    Column names are those of schema.py; a frame may omit nullable columns. Tables are written in the order of
    schema.CONTRACT_TABLES (then any other table). Returns the number of rows written per table.
    """
    order = {name: i for i, name in enumerate(schema.CONTRACT_TABLES + schema.DERIVED_TABLES)}
    names = sorted(frames, key=lambda n: (order.get(n, len(order)), n))
    tables = [_table(n) for n in names]
    written: dict[str, int] = {}
    with engine.begin() as conn:
        dialect = conn.dialect.name
        for table in tables:
            df = frames[table.name]
            if df is None or len(df) == 0:
                written[table.name] = 0
                continue
            prepared = prepare_frame(table, df)
            if dialect == "duckdb":
                _write_duckdb(conn, table, prepared)
            elif dialect == "postgresql" and _copy_capable(conn):
                _write_postgres_copy(conn, table, prepared)
            else:
                _write_executemany(conn, table, prepared)
            written[table.name] = len(prepared)
            logger.debug("wrote %s rows into %s (%s)", len(prepared), table.name, dialect)
    return written


def insert_frame(conn: Connection, table: sa.Table, df: pd.DataFrame) -> int:
    """Insert one DataFrame into ``table`` inside the caller's transaction (the loader's batch), by the
    dialect's fastest path as write_frames does. ``table`` may be any Table (a staging table too)."""
    if df is None or len(df) == 0:
        return 0
    prepared = prepare_frame(table, df)
    if conn.dialect.name == "duckdb":
        _write_duckdb(conn, table, prepared)
    elif conn.dialect.name == "postgresql" and _copy_capable(conn):
        _write_postgres_copy(conn, table, prepared)
    else:
        _write_executemany(conn, table, prepared)
    return len(prepared)


def _write_duckdb(conn: Connection, table: sa.Table, df: pd.DataFrame) -> None:
    raw = conn.connection.driver_connection
    view_name = f"_bulk_{table.name}_{uuid.uuid4().hex[:8]}"
    cols = list(df.columns)
    # The registered DataFrame is a view on the same DuckDB connection that SQLAlchemy's transaction uses, so
    # the INSERT ... SELECT runs inside that transaction.
    view = sa.table(view_name, *[sa.column(c) for c in cols])
    select = sa.select(*[sa.cast(view.c[c], table.c[c].type) for c in cols])
    order = schema.CLUSTER_BY.get(table.name)
    if order in cols:       # written in time order: see schema.CLUSTER_BY
        select = select.order_by(view.c[order])
    stmt = sa.insert(table).from_select(cols, select)
    raw.register(view_name, df)
    try:
        conn.execute(stmt)
    finally:
        # After a failed INSERT the transaction is aborted and unregister fails too ("Current transaction is
        # aborted"): that error must not replace the one that says what went wrong. The view goes with the
        # connection anyway.
        with contextlib.suppress(Exception):
            raw.unregister(view_name)


def _copy_capable(conn: Connection) -> bool:
    """psycopg 3 (cursor.copy) or psycopg2 (cursor.copy_expert); other PostgreSQL drivers use executemany."""
    module = type(conn.connection.driver_connection).__module__.split(".")[0]
    return module in ("psycopg", "psycopg2")


def _write_postgres_copy(conn: Connection, table: sa.Table, df: pd.DataFrame) -> None:
    prep = conn.dialect.identifier_preparer
    cols = ", ".join(prep.format_column(table.c[c]) for c in df.columns)
    # Identifiers only, from schema.py and quoted by the dialect; the values travel as COPY data.
    statement = f"COPY {prep.format_table(table)} ({cols}) FROM STDIN (FORMAT csv)"
    csv_frame = _csv_ready(table, df)
    raw = conn.connection.driver_connection
    cur = raw.cursor()
    try:
        if hasattr(cur, "copy"):  # psycopg 3
            with cur.copy(statement) as copy:
                for chunk in _csv_chunks(csv_frame):
                    copy.write(chunk)
        else:  # psycopg2
            for chunk in _csv_chunks(csv_frame):
                cur.copy_expert(statement, io.StringIO(chunk))
    finally:
        cur.close()


def _csv_ready(table: sa.Table, df: pd.DataFrame) -> pd.DataFrame:
    """Values formatted for PostgreSQL's CSV COPY: an unquoted empty field is NULL."""
    out = {}
    for c in df.columns:
        s = df[c]
        t = table.c[c].type
        if isinstance(t, sa.DateTime):
            s = s.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        elif isinstance(t, sa.Date):
            s = s.dt.strftime("%Y-%m-%d")
        elif isinstance(t, sa.Boolean):
            s = s.map({True: "t", False: "f"}, na_action="ignore")
        out[c] = s
    return pd.DataFrame(out)


def _csv_chunks(df: pd.DataFrame) -> Iterable[str]:
    for start in range(0, len(df), COPY_CHUNK_ROWS):
        # Floats are written in their shortest round-trip form; missing values become empty unquoted fields
        # (NULL). An empty *string* is also written unquoted and so arrives as NULL: the contract treats "" as
        # "empty".
        yield df.iloc[start:start + COPY_CHUNK_ROWS].to_csv(index=False, header=False, lineterminator="\n")


def _python_columns(table: sa.Table, df: pd.DataFrame) -> list[list]:
    """Each column as a list of plain Python values (None for missing), as DB-API drivers expect."""
    cols = []
    for c in df.columns:
        s = df[c]
        t = table.c[c].type
        mask = s.isna().to_numpy()
        if isinstance(t, sa.DateTime):
            values = list(s.dt.to_pydatetime()) if len(s) else []
        elif isinstance(t, sa.Date):
            values = [d.date() if not m else None for d, m in zip(s, mask)]
        else:
            values = s.astype(object).tolist()
            values = [v.item() if isinstance(v, np.generic) else v for v in values]
        if mask.any():
            values = [None if m else v for v, m in zip(values, mask)]
        cols.append(values)
    return cols


def _write_executemany(conn: Connection, table: sa.Table, df: pd.DataFrame) -> None:
    names = list(df.columns)
    stmt = sa.insert(table)
    for start in range(0, len(df), CHUNK_ROWS):
        part = df.iloc[start:start + CHUNK_ROWS]
        columns = _python_columns(table, part)
        rows = [dict(zip(names, r)) for r in zip(*columns)]
        conn.execute(stmt, rows)


# --- the daily meter rollup ---------------------------------------------------------------------------------

def _as_date(value) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


def rebuild_meter_daily(engine: Engine, meter_ids: Iterable[str] | None = None,
                        start: dt.date | str | None = None, end: dt.date | str | None = None) -> int:
    """(Re)compute ``agg_meter_daily`` from ``fact_meter_reading`` in SQL, for some meters and days.

    ``meter_ids`` None means every meter; ``start``/``end`` are inclusive dates (None: unbounded). The affected
    rollup rows are deleted and recomputed with one INSERT ... SELECT in a transaction. Portable Core only
    (CAST(ts AS DATE), EXTRACT(HOUR FROM ts)): DuckDB, PostgreSQL, MariaDB/MySQL (and SQLite, via date()).
    Returns the number of rollup rows present for the scope afterwards. ``engine`` may also be a Connection
    inside a transaction (the loader's batch): the rollup then commits or rolls back with it.
    """
    start, end = _as_date(start), _as_date(end)
    if start and end and end < start:
        raise ValueError(f"end {end} is before start {start}")
    ids = None if meter_ids is None else sorted(set(meter_ids))
    if ids is not None and not ids:
        return 0

    r = schema.fact_meter_reading
    a = schema.agg_meter_daily
    # SQLite has no DATE type (CAST would yield the year as a number): its date() function gives the ISO day.
    day = sa.func.date(r.c.ts) if engine.dialect.name == "sqlite" else sa.cast(r.c.ts, sa.Date)
    hour = sa.extract("hour", r.c.ts)

    def window(lo: int, hi: int):
        return sa.and_(hour >= lo, hour <= hi)

    night, work, leak = window(*NIGHT_HOURS), window(*WORK_HOURS), window(*LEAK_HOURS)
    zero = sa.literal(0.0, sa.Double)
    select = (
        sa.select(
            r.c.meter_id,
            day.label("day"),
            sa.func.sum(r.c.consumption).label("consumption"),
            sa.func.count().label("readings"),
            sa.func.coalesce(sa.func.sum(sa.case((night, r.c.consumption), else_=zero)), zero),
            sa.func.sum(sa.case((night, 1), else_=0)),
            sa.func.coalesce(sa.func.sum(sa.case((work, r.c.consumption), else_=zero)), zero),
            sa.func.sum(sa.case((work, 1), else_=0)),
            sa.func.coalesce(sa.func.sum(sa.case((leak, r.c.consumption), else_=zero)), zero),
            sa.func.sum(sa.case((leak, 1), else_=0)),
        )
        .group_by(r.c.meter_id, day)
    )
    time_filters, agg_time = [], []
    if start is not None:
        # Compare the raw timestamp with a timestamp bound so that an index/zone map on ts can be used.
        time_filters.append(r.c.ts >= dt.datetime.combine(start, dt.time()))
        agg_time.append(a.c.day >= start)
    if end is not None:
        time_filters.append(r.c.ts < dt.datetime.combine(end + dt.timedelta(days=1), dt.time()))
        agg_time.append(a.c.day <= end)
    # Long meter lists go in batches so that no statement carries more bound parameters than a driver allows.
    batches = [None] if ids is None else [ids[i:i + METER_BATCH] for i in range(0, len(ids), METER_BATCH)]
    cols = [c.name for c in a.columns]
    total = 0
    with (engine.begin() if isinstance(engine, Engine) else contextlib.nullcontext(engine)) as conn:
        for batch in batches:
            reading_filters, agg_filters = list(time_filters), list(agg_time)
            if batch is not None:
                reading_filters.append(r.c.meter_id.in_(batch))
                agg_filters.append(a.c.meter_id.in_(batch))
            conn.execute(sa.delete(a).where(*agg_filters) if agg_filters else sa.delete(a))
            rows = select.where(*reading_filters) if reading_filters else select
            if conn.dialect.name == "duckdb":      # in day order: see schema.CLUSTER_BY
                rows = rows.order_by(day)
            conn.execute(sa.insert(a).from_select(cols, rows))
            count = sa.select(sa.func.count()).select_from(a)
            total += int(conn.execute(count.where(*agg_filters) if agg_filters else count).scalar_one())
    return total
