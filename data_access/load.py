"""Loading real data: CSV and Excel files into the warehouse, validated, with lineage, never half a batch.

Run as::

    python -m data_access.load [--url URL] [--on-error reject-batch|skip-rows] [--source SYSTEM]
                               [--rejects FILE] [--lang zh|en] [--quiet] PATH...
    python -m data_access.load --templates DIR

Each PATH is a file named after its table (``dim_school.csv``, ``fact_meter_reading.xlsx``), a workbook with one
sheet per table, or a folder of them (data_access/sources.py has the naming and reading rules, validate.py
the validation rules). Tables load in dependency order. Every file (or sheet) is one *batch*:

- validated row by row against the contract, its good rows staged in a temporary table of the batch's
  transaction; then duplicates within the batch and references between meters are checked on the whole batch;
- ``--on-error reject-batch`` (default): a batch with any bad row loads nothing; ``skip-rows``: its good rows
  load, the bad ones are listed;
- rows whose natural key exists replace the old rows (delete + insert in the same transaction), so loading a
  file twice changes nothing; the daily meter rollup is recomputed for the meters and days loaded;
- one ``meta_load`` row per batch, rejected ones included, written in the batch's transaction.

Atomicity. A batch is one database transaction: a crash, a kill or a lost connection rolls it back. A DuckDB
warehouse (one file, one writer, and the cockpit holds it open read-only) is never written in place: the
loader takes a lock file, copies the warehouse next to itself, loads every batch into the copy, checkpoints
and closes it, then renames it over the warehouse (``os.replace``, atomic). Until that rename the cockpit
keeps reading the old file; after it, the cockpit's engine notices the new file (engine.warehouse_engine) and
its query cache keys change with it (engine.data_version), so the new data show without a restart. A loader
killed at any moment leaves the warehouse exactly as it was (its half-written copy is removed by the next
run). Other databases (PostgreSQL, MariaDB/MySQL) are written in place, one transaction per batch.

Exit codes: 0 every batch loaded without a rejected row; 1 a row or a file was rejected; 2 bad arguments;
3 the load was aborted (warehouse unreachable or locked, write failure): nothing of the unfinished batch (for
DuckDB: of the run) was written.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import fcntl
import logging
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from . import bulk, schema
from .config import get_config
from .engine import duckdb_path
from .sources import (
    Discovery,
    FileProblem,
    Source,
    discover,
    file_digest,
    read_csv,
    read_xlsx,
    sniff_csv,
)
from .validate import (
    REJECT_COLUMNS,
    SPECS,
    Lookups,
    TableSpec,
    display,
    key_hashes,
    reason,
    validate_chunk,
)

logger = logging.getLogger(__name__)

ON_ERROR = ("reject-batch", "skip-rows")
CHUNK_ROWS = 100_000
"""Rows validated and staged at a time: bounds the loader's memory whatever the file's size."""
FETCH_BATCH = 1_000
"""Row numbers per statement when re-reading or removing staged rows."""
LOCK_WAIT_S = 600
DUCKDB_CONFIG = {"memory_limit": "256MB"}
REJECTS_HEADER = ["file", "sheet"] + REJECT_COLUMNS


class LoadAborted(RuntimeError):
    """The run could not go on (warehouse unreachable or locked, a write failed); the message says why."""


# --- results ------------------------------------------------------------------------------------------------

@dataclass
class BatchResult:
    label: str
    table: str | None
    batch_id: str | None = None
    rows_in: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    status: str = "ok"                  # ok | rejected | not_written (committed, but the run was aborted before
                                        # its DuckDB copy was published: nothing of it reached the warehouse)
    problem: tuple[str, dict] | None = None   # a file-level reason (code, params) for the summary


@dataclass
class RunResult:
    url: str
    on_error: str
    batches: list[BatchResult] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    rejects_path: Path | None = None
    reject_lines: int = 0
    seconds: float = 0.0
    aborted: str | None = None

    @property
    def ok(self) -> bool:
        return self.aborted is None and all(b.status == "ok" and b.rows_rejected == 0 for b in self.batches)

    @property
    def exit_code(self) -> int:
        return 3 if self.aborted else 0 if self.ok else 1


# --- the rejects file ---------------------------------------------------------------------------------------

class RejectsFile:
    """CSV, UTF-8 with BOM (Excel opens it as Unicode), one line per problem; created on the first reject."""

    def __init__(self, path: Path):
        self.path = path
        self.lines = 0
        self._fh = None
        self._writer = None

    def write(self, src: Source, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._fh)
            self._writer.writerow(REJECTS_HEADER)
        file_name, sheet = str(src.path), src.sheet or ""
        for r in frame.itertuples(index=False):
            self._writer.writerow([file_name, sheet, "" if r.row is None or r.row < 0 else int(r.row), r.column,
                                   r.value, r.code, r.reason, r.reason_en])
        self.lines += len(frame)

    def problem(self, src: Source, problem: FileProblem) -> None:
        rows = [{"row": -1 if p.row is None else p.row, "column": p.column, "value": p.value, "code": p.code,
                 "reason": reason(p.code, "zh", **p.params), "reason_en": reason(p.code, "en", **p.params)}
                for p in problem.all]
        self.write(src, pd.DataFrame(rows, columns=REJECT_COLUMNS))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


# --- targets: where batches are written ---------------------------------------------------------------------

class _ServerTarget:
    """PostgreSQL, MariaDB/MySQL, SQLite: batches are transactions on the live database."""

    published = True   # a committed batch is in the warehouse, whatever happens to the run later

    def __init__(self, url: str):
        self.url = url
        self.engine: Engine | None = None

    def __enter__(self):
        # NullPool: every batch gets a fresh session, so its temporary staging table ends with it.
        self.engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            raise LoadAborted(f"warehouse unreachable: {_short(exc)}") from exc
        schema.create_all(self.engine)
        return self

    def publish(self, progress) -> None:
        pass

    def __exit__(self, *exc):
        if self.engine is not None:
            self.engine.dispose()
        return False


class _DuckDBTarget:
    """A DuckDB file: load into a copy next to it, then rename the copy over it (see the module docstring)."""

    def __init__(self, path: str, wait_s: float, progress):
        self.target = Path(path).resolve()
        self.wait_s = wait_s
        self.progress = progress
        self.work: Path | None = None
        self.engine: Engine | None = None
        self._lock = None
        self.published = False   # committed batches are in the copy only, until publish() renames it

    @property
    def prefix(self) -> str:
        # ".name.tmp-…" matches .gitignore's data/*.tmp* and never looks like a warehouse.
        return f".{self.target.name}.tmp-load-"

    def __enter__(self):
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.target.with_name(f".{self.target.name}.tmp-loadlock"), "a+")
        deadline = time.monotonic() + self.wait_s
        told = False
        while True:
            try:
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._lock.close()
                    raise LoadAborted(f"another load of {self.target} is running (waited {self.wait_s:.0f} s)")
                if not told:
                    self.progress(f"waiting for another load of {self.target.name} to finish …")
                    told = True
                time.sleep(0.5)
        try:
            # Whatever a killed run left behind: no other loader is running now (we hold the lock).
            for stale in self.target.parent.glob(f"{self.prefix}*"):
                _remove(stale)
            self.work = self.target.with_name(f"{self.prefix}{os.getpid()}-{uuid.uuid4().hex[:6]}")
            if self.target.exists():
                self.progress(f"copying {self.target.name} ({self.target.stat().st_size / 1e6:,.0f} MB) …")
                shutil.copyfile(self.target, self.work)
                shutil.copymode(self.target, self.work)
                wal = Path(f"{self.target}.wal")
                if wal.exists():   # changes not yet checkpointed: the copy replays them when opened
                    shutil.copyfile(wal, Path(f"{self.work}.wal"))
            # The loader's own DuckDB settings: a memory cap (DuckDB spills to the temp directory beyond it), so
            # that a file of any size loads in bounded memory.
            self.engine = sa.create_engine(f"duckdb:///{self.work}", connect_args={"config": dict(DUCKDB_CONFIG)})
            schema.create_all(self.engine)
        except BaseException:
            self._cleanup()
            raise
        return self

    def publish(self, progress) -> None:
        assert self.engine is not None and self.work is not None
        with self.engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        self.engine.dispose()   # closes the file: complete and unlocked
        self.engine = None
        with open(self.work, "rb+") as fh:
            os.fsync(fh.fileno())
        # A WAL next to the old file would be replayed onto the new one: its changes are in the copy already.
        Path(f"{self.target}.wal").unlink(missing_ok=True)
        os.replace(self.work, self.target)
        self.work = None
        self.published = True
        dir_fd = os.open(self.target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        progress(f"published {self.target}")

    def _cleanup(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None
        if self.work is not None:
            for p in (self.work, Path(f"{self.work}.wal"), Path(f"{self.work}.tmp")):
                _remove(p)
            self.work = None
        if self._lock is not None:
            self._lock.close()   # releases the flock
            self._lock = None

    def __exit__(self, *exc):
        self._cleanup()
        return False


def _remove(path: Path) -> None:
    """A file, or DuckDB's spill directory (<file>.tmp)."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _target(url: str, wait_s: float, progress):
    path = duckdb_path(url)
    return _DuckDBTarget(path, wait_s, progress) if path else _ServerTarget(url)


# --- one batch ----------------------------------------------------------------------------------------------

@dataclass
class _Context:
    engine: Engine
    on_error: str
    source_system: str
    chunk_rows: int
    rejects: RejectsFile
    progress: Callable[[str], None]
    seq: int = 0


def _now() -> dt.datetime:
    """Local time of the schools (config timezone), without zone. Microseconds are kept so that batches loaded
    within one second still sort (MySQL's DATETIME drops them)."""
    try:
        from zoneinfo import ZoneInfo

        return dt.datetime.now(ZoneInfo(get_config().timezone)).replace(tzinfo=None)
    except Exception:  # unknown zone on a minimal system
        return dt.datetime.now()


def _batch_id(table: str, digest: str, seq: int) -> str:
    # Time to the microsecond first (ids sort like loads, also where the database's timestamps keep whole
    # seconds only), the run's sequence, the file's digest (the same file loaded twice is recognisable), a random
    # part (two runs never collide), the table.
    return f"{_now():%Y%m%d%H%M%S%f}-{seq:03d}-{digest[:6]}{uuid.uuid4().hex[:4]}-{table}"[:64]


def _lookups(conn: Connection, spec: TableSpec) -> Lookups:
    from .validate import FOREIGN_KEYS

    needed = {ref for _, ref in FOREIGN_KEYS.get(spec.name, [])}
    if spec.name == "dim_meter":
        needed.add("dim_meter")   # parents
    out = Lookups()
    owner_col = {"dim_school": None, "dim_campus": "school_id", "dim_facility": "school_id", "dim_meter": "school_id"}
    for ref in needed:
        t = schema.metadata.tables[ref]
        key = t.primary_key.columns.values()[0]
        if owner_col[ref] is None:
            out.owners[ref] = {str(r[0]): None for r in conn.execute(sa.select(key))}
        else:
            out.owners[ref] = {str(r[0]): str(r[1]) for r in conn.execute(sa.select(key, t.c[owner_col[ref]]))}
    if spec.name == "fact_maturity_score":
        from .maturity import framework

        out.indicators = frozenset(i.id for i in framework().indicators)
    return out


def _stage_table(spec: TableSpec, dialect: str) -> sa.Table:
    """The batch's staging table: temporary on a server (it ends with the session); on DuckDB an ordinary table
    of the private working copy (dropped before commit), because DuckDB writes a large uncommitted ordinary table
    to disk as it grows, where a temporary one stays in memory."""
    table = schema.metadata.tables[spec.name]
    cols = [sa.Column(c.name, c.type, nullable=True) for c in table.columns]
    return sa.Table(f"_load_stage_{uuid.uuid4().hex[:10]}", sa.MetaData(), *cols, sa.Column("_row", sa.BigInteger),
                    prefixes=[] if dialect == "duckdb" else ["TEMPORARY"])


def _chunks(src: Source, spec: TableSpec, ctx: _Context):
    if src.kind == "xlsx":
        return read_xlsx(spec, src.path, src.sheet, ctx.chunk_rows)
    return read_csv(spec, src.path, src.encoding, ctx.chunk_rows)


def _meta_row(conn: Connection, result: BatchResult, source_system: str) -> None:
    conn.execute(sa.insert(schema.meta_load).values(
        batch_id=result.batch_id, table_name=result.table, source_system=source_system[:200], loaded_at=_now(),
        rows_in=int(result.rows_in), rows_rejected=int(result.rows_rejected), status=result.status))


def load_source(ctx: _Context, src: Source) -> BatchResult:
    """Load one batch (a file or a sheet). Never raises for bad data; LoadAborted when writing fails."""
    ctx.seq += 1
    result = BatchResult(src.label, src.table)
    if src.problem is not None:
        return _reject_file(ctx, src, result, src.problem, digest="0" * 8)
    spec = SPECS[src.table]
    try:
        if src.kind == "csv":
            src.encoding, digest = sniff_csv(src.path)
        else:
            digest = file_digest(src.path)
    except FileProblem as problem:
        return _reject_file(ctx, src, result, problem, digest="0" * 8)
    except OSError as exc:
        return _reject_file(ctx, src, result, FileProblem("unreadable", detail=_short(exc)), digest="0" * 8)
    result.batch_id = _batch_id(spec.name, digest, ctx.seq)

    try:
        with ctx.engine.connect() as conn:
            with conn.begin() as trans:
                committed = _run_batch(ctx, conn, src, spec, result)
                if not committed:
                    trans.rollback()
            if not committed:
                with conn.begin():
                    _meta_row(conn, result, ctx.source_system)
    except FileProblem as problem:
        # A header or structure problem met while reading: the batch's transaction was rolled back.
        result.rows_loaded = 0
        return _reject_file(ctx, src, result, problem, digest=digest)
    except Exception as exc:
        if not _is_write_error(exc):
            raise
        # A database or disk error: the batch was rolled back. Record it, or stop when even that fails.
        logger.warning("batch %s failed: %s", src.label, exc, exc_info=True)
        problem = FileProblem("batch_failed", detail=_short(exc))
        try:
            return _reject_file(ctx, src, result, problem, digest=digest)
        except Exception as exc2:
            raise LoadAborted(f"{src.label}: {_short(exc)}; lineage not written either: {_short(exc2)}") from exc2
    return result


def _is_write_error(exc: Exception) -> bool:
    """Errors of the database or the disk (drivers raise their own types), as opposed to bugs."""
    if isinstance(exc, (sa.exc.SQLAlchemyError, OSError)):
        return True
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "psycopg", "psycopg2", "pymysql", "sqlite3")


def _reject_file(ctx: _Context, src: Source, result: BatchResult, problem: FileProblem, digest: str) -> BatchResult:
    ctx.rejects.problem(src, problem)
    result.status = "rejected"
    result.rows_loaded = 0
    result.problem = (problem.code, problem.params)
    ctx.progress(f"{src.label}: {reason(problem.code, 'en', **problem.params)}")
    if src.table in SPECS:   # a batch of a known table: lineage records it
        result.batch_id = result.batch_id or _batch_id(src.table, digest, ctx.seq)
        with ctx.engine.begin() as conn:
            _meta_row(conn, result, ctx.source_system)
    return result


def _run_batch(ctx: _Context, conn: Connection, src: Source, spec: TableSpec, result: BatchResult) -> bool:
    """Stage, check and (when the policy allows) write one batch inside the open transaction. Returns whether
    the transaction should be committed."""
    table = schema.metadata.tables[spec.name]
    lookups = _lookups(conn, spec)
    stage = _stage_table(spec, conn.dialect.name)
    stage.create(conn)
    hashes, rownums = [], []
    meters: set[str] = set()
    ts_min = ts_max = None
    staged = 0
    started = time.perf_counter()
    for chunk in _chunks(src, spec, ctx):
        good, rejects = validate_chunk(spec, chunk.raw, chunk.rows, lookups)
        result.rows_in += chunk.read
        if not rejects.empty:
            result.rows_rejected += int(rejects["row"].nunique())
            ctx.rejects.write(src, rejects)
        if len(good):
            bulk.insert_frame(conn, stage, good)
            staged += len(good)
            hashes.append(key_hashes(spec, good))
            rownums.append(good["_row"].to_numpy(dtype=np.int32))
            if spec.name == "fact_meter_reading":
                meters.update(good["meter_id"].unique().tolist())
                lo, hi = good["ts"].min(), good["ts"].max()
                ts_min = lo if ts_min is None else min(ts_min, lo)
                ts_max = hi if ts_max is None else max(ts_max, hi)
        rate = result.rows_in / max(time.perf_counter() - started, 1e-6)
        ctx.progress(f"{src.label}: {result.rows_in:,} rows read, {staged:,} staged ({rate:,.0f} rows/s)")

    removed = _batch_checks(ctx, conn, src, spec, stage, hashes, rownums, lookups)
    result.rows_rejected += removed
    loaded = staged - removed
    if (result.rows_rejected and ctx.on_error == "reject-batch") or (loaded == 0 and result.rows_in > 0):
        result.status, result.rows_loaded = "rejected", 0
        ctx.progress(f"{src.label}: rejected, nothing loaded")
        return False

    if loaded:
        ctx.progress(f"{src.label}: writing {loaded:,} rows into {spec.name} …")
        keys = [table.c[k] == stage.c[k] for k in spec.key]
        if conn.dialect.name == "sqlite":   # no DELETE … USING
            conn.execute(sa.delete(table).where(sa.exists().where(*keys)))
        else:
            conn.execute(sa.delete(table).where(*keys))
        cols = [c.name for c in table.columns]
        conn.execute(sa.insert(table).from_select(cols, sa.select(*[stage.c[c] for c in cols])))
        if spec.name == "fact_meter_reading" and meters:
            ctx.progress(f"{src.label}: daily rollup for {len(meters):,} meters, {ts_min:%Y-%m-%d} … {ts_max:%Y-%m-%d}")
            bulk.rebuild_meter_daily(conn, sorted(meters), pd.Timestamp(ts_min).date(), pd.Timestamp(ts_max).date())
    result.rows_loaded = loaded
    result.status = "ok"
    _meta_row(conn, result, ctx.source_system)
    if conn.dialect.name != "mysql":   # MySQL's DROP TABLE would commit; its temporary table ends with the session
        stage.drop(conn)
    return True


def _batch_checks(ctx, conn, src, spec, stage, hashes, rownums, lookups) -> int:
    """Checks over the whole batch: duplicate natural keys, then meters' parents. Returns the number of staged
    rows rejected (and, with skip-rows, removed from the stage)."""
    removed_rows: list[int] = []
    if hashes:
        h = np.concatenate(hashes)
        hashes.clear()   # the chunks' arrays: memory matters with millions of rows
        hs = np.sort(h)
        repeated = np.unique(hs[1:][hs[1:] == hs[:-1]])
        del hs
        if len(repeated):
            # Rows whose key hash repeats; the real keys decide (a 64-bit hash collision is no duplicate).
            candidates = np.concatenate(rownums)[np.isin(h, repeated)]
            removed_rows += _duplicates(ctx, src, spec, _fetch(conn, stage, candidates))
    if spec.name == "dim_meter":
        frame = _fetch_all(conn, stage, ["_row", "meter_id", "parent_meter_id"])
        frame = frame.loc[~frame["_row"].isin(removed_rows)]
        removed_rows += _parents(ctx, src, frame, set(lookups.owners.get("dim_meter", {})))
    if removed_rows and ctx.on_error == "skip-rows":
        ids = sorted({int(x) for x in removed_rows})
        for i in range(0, len(ids), FETCH_BATCH):
            conn.execute(sa.delete(stage).where(stage.c["_row"].in_(ids[i:i + FETCH_BATCH])))
    return len(set(removed_rows))


def _fetch(conn, stage, rows: np.ndarray) -> pd.DataFrame:
    parts = []
    ids = sorted({int(x) for x in rows})
    for i in range(0, len(ids), FETCH_BATCH):
        res = conn.execute(sa.select(stage).where(stage.c["_row"].in_(ids[i:i + FETCH_BATCH])))
        parts.append(pd.DataFrame(res.fetchall(), columns=list(res.keys())))
    return pd.concat(parts, ignore_index=True)


def _fetch_all(conn, stage, columns) -> pd.DataFrame:
    res = conn.execute(sa.select(*[stage.c[c] for c in columns]))
    return pd.DataFrame(res.fetchall(), columns=columns)


def _duplicates(ctx, src, spec, frame: pd.DataFrame) -> list[int]:
    key = list(spec.key)
    label = "+".join(key)
    texts = frame[key].map(display)
    frame = frame.assign(_key=texts.agg(" | ".join, axis=1))
    counts = frame["_key"].value_counts()
    dup = frame.loc[frame["_key"].map(counts) > 1].sort_values("_row")
    if dup.empty:
        return []
    rows = dup["_row"].astype(np.int64).tolist()
    rejects = pd.DataFrame({"row": rows, "column": label, "value": dup["_key"].tolist(), "code": "duplicate_key",
                            "reason": reason("duplicate_key", "zh", key=label),
                            "reason_en": reason("duplicate_key", "en", key=label)})
    ctx.rejects.write(src, rejects)
    return rows


def _parents(ctx, src, frame: pd.DataFrame, warehouse: set[str]) -> list[int]:
    """Sub-meters whose parent is neither in the warehouse nor a (not rejected) meter of the batch."""
    valid = warehouse | set(frame["meter_id"])
    rejected: list[int] = []
    pending = frame.loc[frame["parent_meter_id"].notna()]
    while True:
        missing = pending.loc[~pending["parent_meter_id"].isin(valid)]
        if missing.empty:
            break
        rejected += missing["_row"].astype(np.int64).tolist()
        # A rejected meter cannot be a parent either (unless the warehouse has it already).
        valid -= set(missing["meter_id"]) - warehouse
        pending = pending.loc[~pending["_row"].isin(missing["_row"])]
    if rejected:
        bad = frame.loc[frame["_row"].isin(rejected)].sort_values("_row")
        ctx.rejects.write(src, pd.DataFrame({
            "row": bad["_row"].astype(np.int64), "column": "parent_meter_id", "value": bad["parent_meter_id"],
            "code": "fk_missing", "reason": reason("fk_missing", "zh", ref="dim_meter"),
            "reason_en": reason("fk_missing", "en", ref="dim_meter")}))
    return rejected


# --- the run ------------------------------------------------------------------------------------------------

def run(url: str, paths: list[str | Path], *, on_error: str = "reject-batch", source_system: str = "file",
        rejects_path: str | Path | None = None, chunk_rows: int = CHUNK_ROWS, wait_s: float = LOCK_WAIT_S,
        progress: Callable[[str], None] | None = None) -> RunResult:
    """Load the files at ``paths`` into the warehouse at ``url``. See the module docstring."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}")
    progress = progress or (lambda message: None)
    started = time.perf_counter()
    rejects_path = Path(rejects_path) if rejects_path else Path.cwd() / f"load-{_now():%Y%m%d-%H%M%S}.rejects.csv"
    result = RunResult(make_url(url).render_as_string(hide_password=True), on_error)
    found: Discovery = discover(list(paths))
    result.ignored = found.ignored
    rejects = RejectsFile(rejects_path)
    target = None
    try:
        target = _target(url, wait_s, progress)
        with target:
            ctx = _Context(target.engine, on_error, source_system, chunk_rows, rejects, progress)
            for src in found.sources:
                result.batches.append(load_source(ctx, src))
            if result.batches:
                target.publish(progress)
    except LoadAborted as exc:
        result.aborted = str(exc)
    except Exception as exc:   # the warehouse went away, the disk filled up …: nothing unfinished was written
        logger.exception("load aborted")
        result.aborted = _short(exc)
    finally:
        rejects.close()
    if result.aborted and not (target is not None and target.published):
        # DuckDB: the batches committed into the working copy went with it; the summary must not call them loaded.
        for b in result.batches:
            if b.status == "ok":
                b.status, b.rows_loaded = "not_written", 0
    result.rejects_path = rejects_path if rejects.lines else None
    result.reject_lines = rejects.lines
    result.seconds = time.perf_counter() - started
    return result


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# --- the summary --------------------------------------------------------------------------------------------

_WORDS = {
    "zh": {"title": "导入 {url}（出错策略：{policy}）", "line": "{label} → {table}：读入 {rows_in:,} 行，入库 {loaded:,} 行，"
           "拒绝 {rejected:,} 行 [{status}]", "nothing": "，整个文件未入库",
           "unwritten": "{label} → {table}：读入 {rows_in:,} 行，拒绝 {rejected:,} 行，导入中止，未写入仓库 [{status}]",
           "total": "合计：{batches} 个批次，读入 {rows_in:,} 行，"
           "入库 {loaded:,} 行，拒绝 {rejected:,} 行；用时 {seconds:.1f} 秒（{rate:,.0f} 行/秒）",
           "rejects": "拒绝明细：{path}（{lines:,} 条）", "ignored": "已忽略：{what}", "aborted": "导入中止：{why}（未完成的批次未写入）",
           "none": "没有找到可导入的文件", "ok": "全部导入成功"},
    "en": {"title": "load into {url} (on error: {policy})", "line": "{label} → {table}: {rows_in:,} rows read, "
           "{loaded:,} loaded, {rejected:,} rejected [{status}]", "nothing": ", nothing of the file was loaded",
           "unwritten": "{label} → {table}: {rows_in:,} rows read, {rejected:,} rejected; the load was aborted, "
           "nothing was written [{status}]",
           "total": "total: {batches} batches, {rows_in:,} rows read, {loaded:,} loaded, {rejected:,} rejected; "
           "{seconds:.1f} s ({rate:,.0f} rows/s)", "rejects": "rejected rows: {path} ({lines:,} lines)",
           "ignored": "ignored: {what}", "aborted": "load aborted: {why} (unfinished batches were not written)",
           "none": "no file to load was found", "ok": "everything loaded"},
}


def summary(result: RunResult, lang: str = "zh") -> str:
    w = _WORDS["en" if lang == "en" else "zh"]
    lines = [w["title"].format(url=result.url, policy=result.on_error)]
    for b in result.batches:
        if b.problem is not None:
            code, params = b.problem
            lines.append(f"  {b.label}{' → ' + b.table if b.table else ''}: {reason(code, lang, **params)} [{b.status}]")
            continue
        text = w["unwritten" if b.status == "not_written" else "line"].format(
            label=b.label, table=b.table, rows_in=b.rows_in, loaded=b.rows_loaded, rejected=b.rows_rejected,
            status=b.status)
        if b.status == "rejected":
            text = text[:-len(f" [{b.status}]")] + w["nothing"] + f" [{b.status}]"
        lines.append("  " + text)
    for what in result.ignored:
        lines.append("  " + w["ignored"].format(what=what))
    if not result.batches and not result.aborted:
        lines.append(w["none"])
    rows_in = sum(b.rows_in for b in result.batches)
    lines.append(w["total"].format(batches=len(result.batches), rows_in=rows_in,
                                   loaded=sum(b.rows_loaded for b in result.batches),
                                   rejected=sum(b.rows_rejected for b in result.batches), seconds=result.seconds,
                                   rate=rows_in / max(result.seconds, 1e-6)))
    if result.rejects_path:
        lines.append(w["rejects"].format(path=result.rejects_path, lines=result.reject_lines))
    if result.aborted:
        lines.append(w["aborted"].format(why=result.aborted))
    elif result.ok and result.batches:
        lines.append(w["ok"])
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_access.load",
        description="Load CSV/Excel files named after warehouse tables (or folders of them) into the warehouse.")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="<table>.csv, <table>.xlsx, a workbook or a folder")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL of the warehouse (default: config warehouse.url)")
    parser.add_argument("--on-error", choices=ON_ERROR, default="reject-batch",
                        help="reject-batch: a file with any bad row loads nothing (default); "
                             "skip-rows: good rows load, bad rows go to the rejects file")
    parser.add_argument("--source", default="file", help="source system recorded in meta_load (default: file)")
    parser.add_argument("--rejects", default=None, help="rejects file (default: ./load-<time>.rejects.csv)")
    parser.add_argument("--templates", metavar="DIR", default=None,
                        help="write an empty CSV and XLSX template per table into DIR, then exit")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help=argparse.SUPPRESS)
    parser.add_argument("--wait", type=float, default=LOCK_WAIT_S,
                        help="seconds to wait for another load of the same DuckDB file (default: 600)")
    parser.add_argument("--lang", choices=("zh", "en"), default=None, help="language of the summary")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lang = args.lang or get_config().default_language
    if args.templates:
        from .templates import write_templates

        written = write_templates(args.templates)
        print(("wrote {n} templates into {d}" if lang == "en" else "已写入 {n} 个模板：{d}").format(
            n=len(written), d=args.templates))
        return 0
    if not args.paths:
        parser.error("give at least one PATH (or --templates DIR)")
    if args.chunk_rows < 1:
        parser.error("--chunk-rows must be positive")

    # SIGTERM unwinds like Ctrl-C: the half-written copy is removed and the lock released on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def progress(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    url = args.url or get_config().warehouse_url
    with contextlib.suppress(AttributeError):
        sys.stdout.reconfigure(encoding="utf-8")
    result = run(url, args.paths, on_error=args.on_error, source_system=args.source, rejects_path=args.rejects,
                 chunk_rows=args.chunk_rows, wait_s=args.wait, progress=progress)
    print(summary(result, lang), flush=True)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
