"""Typed configuration: config.yaml read once, environment variables override.

No other module reads os.environ: they call ``get_config()``. Secrets (the session key, database passwords in
URLs) come from the environment only.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which setting and why."""


@dataclass(frozen=True)
class Thresholds:
    green: float
    amber: float


@dataclass(frozen=True)
class Config:
    title_zh: str
    title_en: str
    host: str
    port: int
    default_language: str
    default_period_days: int
    max_period_days: int
    debug: bool
    log_level: str
    workers: int
    warehouse_url: str
    warehouse_read_only: bool
    demo: bool
    app_db_url: str
    cache_redis_url: str | None
    cache_timeout_s: int
    cache_key_prefix: str
    secret_key: str
    timezone: str
    today_override: dt.date | None
    min_group_size: int
    overview: Mapping[str, tuple[str, ...]]
    thresholds: Mapping[str, Thresholds]
    dining: Mapping[str, Any]
    energy: Mapping[str, Any]
    service: Mapping[str, Any]
    maturity_framework: Path
    calendar: Mapping[str, Any]
    auth: Mapping[str, Any] = field(default_factory=dict)
    source: Path = field(default=PROJECT_DIR / "config.yaml")
    review: Mapping[str, Any] = field(default_factory=dict)   # weekly review (data_access/review.py)
    cache_enabled: bool = True                                 # false: no query cache (benchmarks, debugging)
    export: Mapping[str, Any] = field(default_factory=dict)   # exports and the PDF printer (export.py)
    warehouse_connect_timeout_s: int = 10       # PostgreSQL/MySQL: give up connecting after this (0: never)
    warehouse_statement_timeout_s: int = 120    # PostgreSQL/MySQL: cancel a read running longer (0: never)

    def today(self) -> dt.date:
        """The cockpit's "today": COCKPIT_TODAY when set, else the date in the schools' timezone."""
        if self.today_override is not None:
            return self.today_override
        try:
            from zoneinfo import ZoneInfo

            return dt.datetime.now(ZoneInfo(self.timezone)).date()
        except Exception:  # unknown zone on a minimal system: local date is the best we have
            return dt.date.today()

    def threshold(self, indicator_id: str) -> Thresholds | None:
        return self.thresholds.get(indicator_id)


def _resolve_url(url: str) -> str:
    """Make sqlite/duckdb file URLs relative to the project directory, so the app runs from any cwd."""
    for prefix in ("duckdb:///", "sqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix):]
            if rest and not rest.startswith("/") and not rest.startswith(":memory:"):
                return prefix + str(PROJECT_DIR / rest)
    return url


def _parse_date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from exc


def _section(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"config section {name!r} must be a mapping")
    return value


# The embedded demo warehouse (bin/run builds it). Demo mode — password-free demo accounts on the login page —
# exists on this file only: `demo: true` left in config.yaml next to a real warehouse URL does not turn it on.
DEMO_WAREHOUSE_URL = "duckdb:///data/demo.duckdb"


def _is_demo_warehouse(url: str) -> bool:
    """Whether a warehouse URL (as configured) resolves to the embedded demo file data/demo.duckdb."""
    resolved = _resolve_url(url.strip())
    if not resolved.startswith("duckdb:///"):
        return False
    path = resolved[len("duckdb:///"):].split("?", 1)[0]
    demo_path = _resolve_url(DEMO_WAREHOUSE_URL)[len("duckdb:///"):]
    try:
        return Path(path).resolve() == Path(demo_path).resolve()
    except (OSError, ValueError):
        return False


AUTH_DEFAULTS = {"max_failures": 5, "lockout_minutes": 15, "session_idle_minutes": 60, "session_max_hours": 12,
                 "failed_logins_per_ip": 20, "proxy_hops": 0, "cookie_secure": False, "cas": {}}


def _local_secret() -> str:
    """Without COCKPIT_SECRET_KEY: a random key kept in data/.secret_key (mode 600), so that sessions survive
    restarts and every worker of one installation signs alike."""
    path = PROJECT_DIR / "data" / ".secret_key"
    try:
        value = path.read_text().strip()
        if len(value) >= 32:
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
    except FileExistsError:   # another worker wrote it first: use theirs
        return path.read_text().strip()
    except OSError:
        logger.warning("cannot keep a session key in %s; set COCKPIT_SECRET_KEY", path)
    return value


def load_config(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file and apply environment overrides. Raises ConfigError with a clear message."""
    env = os.environ if env is None else env
    source = Path(path or env.get("COCKPIT_CONFIG") or PROJECT_DIR / "config.yaml")
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {source}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {source} is not valid YAML: {exc}") from exc

    app = _section(raw, "app")
    wh = _section(raw, "warehouse")
    cache = _section(raw, "cache")
    thresholds = {}
    for key, value in _section(raw, "thresholds").items():
        try:
            thresholds[key] = Thresholds(float(value["green"]), float(value["amber"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"thresholds.{key} needs numeric green and amber") from exc

    today = env.get("COCKPIT_TODAY") or raw.get("today")
    port = env.get("COCKPIT_PORT") or app.get("port", 8050)
    try:
        port = int(port)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"port must be an integer, got {port!r}") from exc

    secret = env.get("COCKPIT_SECRET_KEY") or _local_secret()

    framework = Path(_section(raw, "maturity").get("framework", "data_access/frameworks/maturity-default-v1.yaml"))
    if not framework.is_absolute():
        framework = PROJECT_DIR / framework

    return Config(
        title_zh=str(app.get("title_zh", "学校后勤决策驾驶舱")),
        title_en=str(app.get("title_en", "School Logistics Decision Cockpit")),
        host=env.get("COCKPIT_HOST") or str(app.get("host", "127.0.0.1")),
        port=port,
        default_language=str(app.get("default_language", "zh")),
        default_period_days=int(app.get("default_period_days", 30)),
        max_period_days=int(app.get("max_period_days", 1100)),
        debug=bool(app.get("debug", False)),
        workers=int(env.get("COCKPIT_WORKERS") or app.get("workers", 2)),
        log_level=str(env.get("COCKPIT_LOG_LEVEL") or app.get("log_level", "INFO")).upper(),
        warehouse_url=_resolve_url(env.get("COCKPIT_WAREHOUSE_URL") or str(wh.get("url"))),
        warehouse_read_only=bool(wh.get("read_only", True)),
        demo=bool(wh.get("demo", False)) and _is_demo_warehouse(env.get("COCKPIT_WAREHOUSE_URL") or str(wh.get("url"))),
        app_db_url=_resolve_url(env.get("COCKPIT_APP_DB_URL") or str(_section(raw, "app_db").get("url"))),
        cache_redis_url=env.get("COCKPIT_CACHE_REDIS_URL") or cache.get("redis_url") or None,
        cache_timeout_s=int(cache.get("default_timeout_s", 300)),
        cache_key_prefix=str(cache.get("key_prefix", "cockpit_")),
        secret_key=secret,
        timezone=str(raw.get("timezone", "Asia/Shanghai")),
        today_override=_parse_date(str(today), "COCKPIT_TODAY") if today else None,
        min_group_size=int(_section(raw, "privacy").get("min_group_size", 10)),
        overview={k: tuple(v) for k, v in _section(raw, "overview").items()},
        thresholds=thresholds,
        dining=dict(_section(raw, "dining")),
        energy=dict(_section(raw, "energy")),
        service=dict(_section(raw, "service")),
        maturity_framework=framework,
        calendar=dict(_section(raw, "calendar")),
        auth={**AUTH_DEFAULTS, **_section(raw, "auth")},
        source=source,
        review=dict(_section(raw, "review")),
        export=dict(_section(raw, "export")),
        cache_enabled=bool(cache.get("enabled", True)),
        warehouse_connect_timeout_s=_seconds(wh, "connect_timeout_s", 10),
        warehouse_statement_timeout_s=_seconds(wh, "statement_timeout_s", 120),
    )


def _seconds(section: Mapping[str, Any], key: str, default: int) -> int:
    """A whole number of seconds ≥ 0 from a config section (0 or null: no limit)."""
    value = section.get(key, default)
    try:
        number = int(value or 0)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} must be a whole number of seconds, got {value!r}") from exc
    if number < 0:
        raise ConfigError(f"{key} must not be negative, got {number}")
    return number


_current: Config | None = None


def get_config() -> Config:
    """The process configuration, read on first use."""
    global _current
    if _current is None:
        _current = load_config()
    return _current


def set_config(cfg: Config | None) -> None:
    """Replace the process configuration (tests and CLIs); None re-reads the file on next use."""
    global _current
    _current = cfg


def override(**changes: Any) -> Config:
    """Set a copy of the current configuration with some fields changed, and return it."""
    cfg = dataclasses.replace(get_config(), **changes)
    set_config(cfg)
    return cfg
