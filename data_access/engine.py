"""The one warehouse engine of the process, and the single function that runs a query into a DataFrame.

DuckDB files are opened read-only so that several workers can share them. A loader replaces a DuckDB file
atomically (writes a new file, then renames it over the old one); the engine notices the new file (inode and
mtime) and reconnects, so pages show new data without a restart. The read engine attaches the file to a database
instance of its own (see ``_DuckDBInstance``): DuckDB's Python package would otherwise hand a new engine the
instance still open on the replaced file.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from .config import get_config

logger = logging.getLogger(__name__)


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be reached or read; the message is safe to show to a user."""


@dataclass
class _Held:
    url: str
    engine: Engine
    file_id: tuple | None
    checked: float


_lock = threading.Lock()
_held: _Held | None = None
_CHECK_EVERY_S = 2.0


def duckdb_path(url: str) -> str | None:
    """The file path of a DuckDB URL, or None for other engines and in-memory DuckDB."""
    u = make_url(url)
    if u.get_backend_name() != "duckdb" or not u.database or u.database == ":memory:":
        return None
    return u.database


def _file_id(path: str | None) -> tuple | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def timeout_args(url: str, connect_s: int | None, statement_s: int | None) -> dict:
    """Driver connect arguments that bound how long connecting and one statement may take on a server database
    (none for DuckDB and SQLite, nor for drivers not known here); a setting given in the URL's query wins.

    PostgreSQL (psycopg, psycopg2): libpq ``connect_timeout``, ``statement_timeout`` through ``options`` and TCP
    keepalives (a peer that vanished is noticed in about a minute). MySQL/MariaDB (pymysql, mysqlclient):
    ``connect_timeout`` and the socket's ``read_timeout`` / ``write_timeout``."""
    u = make_url(url)
    backend, driver = u.get_backend_name(), u.get_driver_name()
    args: dict = {}
    if backend == "postgresql" and driver in ("psycopg", "psycopg2"):
        if connect_s:
            args["connect_timeout"] = int(connect_s)
        if statement_s:
            args["options"] = f"-c statement_timeout={int(statement_s) * 1000}"
        args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
    elif backend == "mysql" and driver in ("pymysql", "mysqldb"):
        if connect_s:
            args["connect_timeout"] = int(connect_s)
        if statement_s:
            args["read_timeout"] = int(statement_s)
            args["write_timeout"] = int(statement_s)
    return {k: v for k, v in args.items() if k not in u.query}


class _DuckDBInstance:
    """One DuckDB database instance of the engine's own, with the warehouse file attached (read-only) under the
    catalog name ``warehouse``; every connection the engine hands out is a cursor of it, so they share one
    buffer pool.

    Why not ``duckdb.connect(path)``: the Python package caches instances by path, and a connect while any
    connection to that path is still open returns the open instance, even when a loader has meanwhile renamed a
    new file over the path. A request in flight on the old engine at the moment of a load would then pin the new
    engine to the old data. A fresh in-memory instance that ATTACHes the path opens whatever file is there now.

    The engine does not pool (a cursor costs ~0.07 ms), so the instance knows how many connections are open:
    once the engine is disposed (``retire``), the instance closes as soon as the last of them does — an old
    engine's in-flight query finishes on the old file, and then the replaced file's space is freed, without
    waiting for the garbage collector."""

    CATALOG = "warehouse"

    def __init__(self, path: str):
        self._path = path
        self._base = None
        self._open = 0
        self._retired = False
        self._lock = threading.Lock()

    def connect(self):
        import duckdb

        with self._lock:   # cursor() registers the new connection with its parent: not thread-safe
            if self._base is None:   # attached on first use, so a bad file fails the query, not the engine
                base = duckdb.connect(":memory:")
                try:
                    base.execute(f"ATTACH '{_sql_literal(self._path)}' AS {self.CATALOG} (READ_ONLY)")
                except Exception:
                    base.close()
                    raise
                self._base = base
            cursor = self._base.cursor()
            self._open += 1
        try:
            cursor.execute(f"USE {self.CATALOG}")
        except Exception:
            cursor.close()
            self._release()
            raise
        return _connection_class()(cursor, self)

    def _release(self) -> None:
        with self._lock:
            self._open -= 1
            if self._retired and self._open == 0:
                self._close_base()

    def retire(self) -> None:
        """The engine was disposed: close the instance now, or when its last open connection closes."""
        with self._lock:
            self._retired = True
            if self._open == 0:
                self._close_base()

    def _close_base(self) -> None:
        # A disposed engine used again (a request that took it just before a load) attaches the path afresh in
        # connect(), and, still retired, closes that instance too once idle.
        if self._base is not None:
            self._base.close()
            self._base = None


@functools.cache
def _connection_class():
    from duckdb_engine import ConnectionWrapper   # imported on first use: server deployments may never need it

    class InstanceConnection(ConnectionWrapper):
        """duckdb_engine's DBAPI wrapper around one cursor of a ``_DuckDBInstance``, which it tells on close."""

        def __init__(self, cursor, instance: _DuckDBInstance):
            super().__init__(cursor)
            self._instance = instance

        def close(self) -> None:
            if self.closed:
                return
            try:
                super().close()
            finally:
                self._instance._release()

    return InstanceConnection


def _sql_literal(text: str) -> str:
    return text.replace("'", "''")


def make_engine(url: str, *, read_only: bool, statement_timeout_s: int | None = None) -> Engine:
    """Create an engine with the options each backend needs. On a server database connecting gives up after
    ``warehouse.connect_timeout_s``; ``statement_timeout_s`` (the cockpit's read engine passes the configured
    one; loaders and builders none) cancels a longer statement."""
    u = make_url(url)
    backend = u.get_backend_name()
    kwargs: dict = {"pool_pre_ping": backend not in ("duckdb", "sqlite")}
    instance = None
    if backend == "duckdb":
        path = duckdb_path(url)
        if read_only and path is not None:
            if not os.path.exists(path):
                raise WarehouseUnavailable(f"DuckDB warehouse file not found: {path}")
            instance = _DuckDBInstance(path)
            kwargs.update(creator=instance.connect, poolclass=NullPool)
    elif backend == "mysql":
        kwargs["pool_recycle"] = 3600
    timeouts = timeout_args(url, get_config().warehouse_connect_timeout_s, statement_timeout_s)
    if timeouts:
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), **timeouts}
    engine = sa.create_engine(url, **kwargs)
    if instance is not None:
        sa.event.listen(engine, "engine_disposed", lambda _engine: instance.retire())
    return engine


def warehouse_engine() -> Engine:
    """The shared read engine of the configured warehouse (recreated when the URL or the DuckDB file changes)."""
    global _held
    cfg = get_config()
    now = time.monotonic()
    held = _held
    if held is not None and held.url == cfg.warehouse_url and now - held.checked < _CHECK_EVERY_S:
        return held.engine
    with _lock:
        held = _held
        path = duckdb_path(cfg.warehouse_url)
        file_id = _file_id(path)
        if held is not None and held.url == cfg.warehouse_url and held.file_id == file_id:
            held.checked = now
            return held.engine
        if held is not None:
            logger.info("warehouse changed (%s), reconnecting", "new file" if held.url == cfg.warehouse_url else "new url")
            held.engine.dispose()
        engine = make_engine(cfg.warehouse_url, read_only=cfg.warehouse_read_only,
                             statement_timeout_s=cfg.warehouse_statement_timeout_s)
        _held = _Held(cfg.warehouse_url, engine, file_id, now)
        return engine


_version: tuple[str, str, float] | None = None   # (url, version, checked) for server databases


def data_version() -> str:
    """A token that changes whenever a load has completed; every query-cache key carries it (cache.memoize).

    DuckDB: the identity of the file (inode, mtime), which the loader and the demo builder replace atomically.
    Other databases: the count and newest batch of ``meta_load``, which every loaded batch writes in its own
    transaction. Re-read at most every few seconds, like the file check of ``warehouse_engine``.
    """
    global _version
    try:
        engine = warehouse_engine()
    except Exception:   # the query that follows reports the failure
        return "unavailable"
    held = _held
    if held is not None and held.file_id is not None:
        return f"file-{held.file_id[0]}-{held.file_id[1]}"
    now = time.monotonic()
    cached = _version
    url = get_config().warehouse_url
    if cached is not None and cached[0] == url and now - cached[2] < _CHECK_EVERY_S:
        return cached[1]
    from .schema import meta_load

    try:
        with engine.connect() as conn:
            count, newest, last = conn.execute(sa.select(
                sa.func.count(), sa.func.max(meta_load.c.loaded_at), sa.func.max(meta_load.c.batch_id))).one()
        value = f"batches-{count}-{newest}-{last}"
    except Exception:   # no meta_load (a hand-built warehouse): data change only with the URL
        value = "static"
    _version = (url, value, now)
    return value


def reset_engine() -> None:
    """Drop the shared engine (tests, and before a process writes the same DuckDB file)."""
    global _held
    with _lock:
        if _held is not None:
            _held.engine.dispose()
        _held = None


def read_df(stmt, params: dict | None = None) -> pd.DataFrame:
    """Run one SELECT on the warehouse and return its rows. Errors become WarehouseUnavailable."""
    try:
        engine = warehouse_engine()
        with engine.connect() as conn:
            return pd.read_sql_query(stmt, conn, params=params)
    except WarehouseUnavailable:
        raise
    except (DBAPIError, SQLAlchemyError, OSError) as exc:
        logger.warning("warehouse query failed: %s", exc)
        raise WarehouseUnavailable(_describe(exc)) from exc
    except Exception as exc:  # drivers raise their own types (duckdb.IOException, ...)
        if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "psycopg", "pymysql"):
            logger.warning("warehouse query failed: %s", exc)
            raise WarehouseUnavailable(_describe(exc)) from exc
        raise


def _describe(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def ping() -> tuple[bool, str]:
    """Whether the warehouse answers a trivial query, and a short message."""
    try:
        with warehouse_engine().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True, "ok"
    except Exception as exc:  # any failure means "unreachable" to the health check
        return False, _describe(exc) if not isinstance(exc, WarehouseUnavailable) else str(exc)
