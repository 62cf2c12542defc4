"""The cockpit's own database (COCKPIT_APP_DB_URL): screen heartbeats, and later notes, accounts and audit.

Never the warehouse, which may be read-only. SQLite by default (a file under data/); any SQLAlchemy URL works.
Tables are created on first use.
"""
from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .config import get_config

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

screen_heartbeat = sa.Table(
    "screen_heartbeat", metadata,
    sa.Column("screen_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("views", sa.String(200), nullable=False),
    sa.Column("view_shown", sa.String(32)),
    sa.Column("refresh_s", sa.Integer, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("last_success", sa.DateTime),
    sa.Column("stale_since", sa.DateTime),
)

# --- accounts, tokens, audit (data_access/accounts.py) -----------------------------------------------------

account = sa.Table(
    "account", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(200)),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("school_id", sa.String(64)),
    sa.Column("region_code", sa.String(32)),
    sa.Column("facility_id", sa.String(64)),
    sa.Column("password_hash", sa.String(300)),          # empty: CAS only
    sa.Column("cas_user", sa.String(200), unique=True),   # the 统一身份认证 id mapped to this account
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(64)),
)

api_token = sa.Table(
    "api_token", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 of the token; the token is shown once
    sa.Column("kind", sa.String(16), nullable=False),          # api | screen
    sa.Column("account", sa.String(64)),                       # api tokens act as their account
    sa.Column("school_id", sa.String(64)),                     # screen tokens: the one scope they may show
    sa.Column("region_code", sa.String(32)),
    sa.Column("facility_id", sa.String(64)),
    sa.Column("label", sa.String(200)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

audit_log = sa.Table(
    "audit_log", metadata,
    # A text id (time-ordered: microsecond stamp + random) works on every engine, DuckDB included (no SERIAL).
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("ts", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("target", sa.String(300)),
    sa.Column("ip", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Index("ix_audit_ts", "ts"),
)

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def app_engine() -> Engine:
    """The engine of the app database for the configured URL (tables created once per URL and process)."""
    url = get_config().app_db_url
    engine = _engines.get(url)
    if engine is not None:
        return engine
    with _lock:
        if url not in _engines:
            kwargs = {}
            if url.startswith("sqlite"):
                # Several threads (and workers) write heartbeats: wait for the lock rather than fail.
                kwargs["connect_args"] = {"timeout": 15, "check_same_thread": False}
            engine = sa.create_engine(url, **kwargs)
            if url.startswith("sqlite"):
                @sa.event.listens_for(engine, "connect")
                def _wal(dbapi_conn, _record):
                    dbapi_conn.execute("PRAGMA journal_mode=WAL")
            metadata.create_all(engine, checkfirst=True)
            _engines[url] = engine
        return _engines[url]


def reset() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
