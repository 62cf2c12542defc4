"""Wall screens (大屏): snapshots of the rotated views, kept warm by one job in the server, and heartbeats.

A screen never queries the warehouse itself. It asks for the snapshot of its target (scope, views, period
length); snapshots live in the shared cache (Redis across workers when configured). One warm-up job per server
recomputes every target that a screen asked for recently, once per refresh interval, electing a single worker
through an atomic cache ``add`` — so two hundred screens cost the warehouse what one does. When the warehouse is
down the job keeps the last good snapshot and marks it stale; it recovers by itself on the next good refresh.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from . import appdb, meta, overview, registry
from .cache import ensure_cache, store_add, store_delete, store_get, store_set
from .config import get_config
from .engine import WarehouseUnavailable, ping
from .errors import InputError
from .period import Period
from .request import access_for_request, resolve_audited
from .scope import Access, Scope, resolve_scope

logger = logging.getLogger(__name__)

# What each rotated view shows. The overview view takes the first two overview tiles of each domain.
VIEWS: dict[str, tuple[str, ...]] = {
    "dining": ("dining.sample_retention", "dining.morning_check", "dining.tableware_disinfection",
               "dining.cold_chain", "dining.hazards_overdue", "dining.certificates_expiring"),
    "energy": ("energy.total_kgce", "energy.electricity_kwh", "energy.water_m3", "energy.co2_t",
               "energy.yoy", "energy.per_area"),
    "service": ("service.csi", "service.satisfied_rate", "service.response_on_time",
                "service.completion_on_time", "service.first_time_fix", "service.callback_rate"),
    "maturity": ("maturity.score", "maturity.level", "energy.meter_coverage", "dining.cold_chain_online",
                 "energy.data_completeness", "service.callback_rate"),
}
ALL_VIEWS = ("overview",) + tuple(VIEWS)
DEFAULT_VIEWS = ("overview", "dining", "energy", "service")
SNAPSHOT_TTL_S = 7 * 24 * 3600     # snapshots outlive outages: a screen shows the last good one, marked stale
TARGET_TTL_S = 3600                # a target nobody asked for in an hour is no longer warmed


@dataclass(frozen=True)
class Target:
    """What a screen shows: a scope (as URL params), its views, the period length in days, and the access of
    whoever asked (schools or None for all, and a facility for a canteen's screen). The access is part of the
    target — and of its cache key — because the warm-up job computes outside any request."""

    params: tuple[tuple[str, str], ...]
    views: tuple[str, ...]
    days: int
    schools: tuple[str, ...] | None = None
    facility: str | None = None

    @property
    def key(self) -> str:
        return json.dumps([list(map(list, self.params)), list(self.views), self.days,
                           None if self.schools is None else list(self.schools), self.facility],
                          separators=(",", ":"))

    @classmethod
    def from_key(cls, key: str) -> "Target":
        params, views, days, schools, facility = json.loads(key)
        return cls(tuple(tuple(p) for p in params), tuple(views), int(days),
                   None if schools is None else tuple(schools), facility)

    @property
    def access(self) -> Access:
        return Access(None if self.schools is None else frozenset(self.schools), self.facility, "screen")


def parse_target(params: dict, access: Access | None = None) -> Target:
    """Validate a screen URL's scope, views and period length against the caller's access (InputError on
    anything unknown, ScopeDenied outside the access)."""
    access = access if access is not None else access_for_request()
    scope_params = {k: str(params[k]) for k in ("region", "school", "campus", "facility") if params.get(k)}
    resolve_audited(scope_params, access)   # a refusal is audited (a screen token tried on another place)
    raw_views = [v.strip() for v in str(params.get("views") or ",".join(DEFAULT_VIEWS)).split(",") if v.strip()]
    unknown = [v for v in raw_views if v not in ALL_VIEWS]
    if unknown or not raw_views:
        raise InputError(f"未知的视图：{', '.join(unknown)[:80]}（可用：{', '.join(ALL_VIEWS)}）",
                         f"unknown views: {', '.join(unknown)[:80]} (available: {', '.join(ALL_VIEWS)})")
    days = _int(params.get("days"), get_config().default_period_days, 1, 366, "days")
    return Target(tuple(sorted(scope_params.items())), tuple(dict.fromkeys(raw_views)), days,
                  None if access.schools is None else tuple(sorted(access.schools)), access.facility)


def _int(value, default: int, low: int, high: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(str(value))
    except ValueError:
        raise InputError(f"参数 {name} 应为整数：{str(value)[:20]}", f"parameter {name} must be an integer: {str(value)[:20]}") from None
    if not low <= number <= high:
        raise InputError(f"参数 {name} 应在 {low}–{high} 之间", f"parameter {name} must be between {low} and {high}")
    return number


def screen_settings(params: dict) -> dict:
    """Dwell, refresh and reload intervals and the theme from a screen URL, within sane bounds."""
    return {
        "dwell": _int(params.get("dwell"), 30, 3, 3600, "dwell"),
        "refresh": _int(params.get("refresh"), 60, 5, 3600, "refresh"),
        "reload_h": _int(params.get("reload"), 6, 1, 168, "reload"),
        "theme": "light" if params.get("theme") == "light" else "dark",
    }


# --- snapshots ----------------------------------------------------------------------------------------------

def _tile_json(ind_id: str, scope: Scope, period: Period) -> dict:
    tile = registry.tile(ind_id, scope, period)
    as_of = meta.as_of(scope, tile.indicator.tables)
    cur = tile.current
    return {
        "id": ind_id, "value": cur.value, "status": cur.status, "n": cur.n, "change": tile.change,
        "not_applicable": bool(cur.extra.get("not_applicable")),
        "extra": {k: v for k, v in cur.extra.items() if isinstance(v, (int, float, str)) or v is None},
        "as_of": (as_of.get("fact") or as_of.get("loaded_at")).isoformat()
        if (as_of.get("fact") or as_of.get("loaded_at")) else None,
    }


def compute(target: Target) -> dict:
    """Query everything a target shows (this is the only place screens reach the warehouse)."""
    scope = resolve_scope(dict(target.params), target.access)
    today = get_config().today()
    end = today - dt.timedelta(days=1)
    period = Period(end - dt.timedelta(days=target.days - 1), end)
    views: dict[str, dict] = {}
    for view in target.views:
        if view == "overview":
            ids = [i for d in overview.DOMAINS for i in get_config().overview.get(d, ())[:2]]
        else:
            ids = list(VIEWS[view])
        data = {"tiles": [_tile_json(i, scope, period) for i in ids]}
        trend_id = overview.TREND.get(view)
        if trend_id:
            points = registry.series(trend_id, scope, period, "W" if view == "service" else "D")
            data["trend"] = {"id": trend_id, "x": [p.key for p in points], "y": [p.value for p in points]}
        views[view] = data
    alerts = [
        {"indicator": a.indicator_id, "domain": a.domain, "where": a.name, "value": a.result.value,
         "status": a.result.status}
        for a in overview.alerts(scope, period)
    ]
    return {"scope": {"level": scope.level, **scope.params()}, "from": period.start.isoformat(),
            "to": period.end.isoformat(), "views": views, "alerts": alerts}


def _snap_key(target: Target) -> str:
    return "screen:snap:" + target.key


def _targets_key() -> str:
    return "screen:targets"


def read_snapshot(target: Target) -> dict | None:
    ensure_cache()
    return store_get(_snap_key(target))


def refresh(target: Target) -> dict:
    """Recompute a target's snapshot and store it; on failure keep the last good one and mark it stale."""
    ensure_cache()
    now = time.time()
    previous = store_get(_snap_key(target))
    reachable, reason = ping()
    try:
        if not reachable:
            raise WarehouseUnavailable(reason)
        data = compute(target)
        snap = {"data": data, "computed_at": now, "stale_since": None, "error": None}
    except Exception as exc:  # the warehouse down or slow: keep what we had
        logger.warning("screen refresh failed for %s: %s", target.key, exc)
        if previous and previous.get("data"):
            snap = dict(previous, stale_since=previous.get("stale_since") or now, error=str(exc)[:200])
        else:
            snap = {"data": None, "computed_at": None, "stale_since": now, "error": str(exc)[:200]}
    store_set(_snap_key(target), snap, timeout=SNAPSHOT_TTL_S)
    return snap


_flight = threading.Lock()


def snapshot_for_screen(target: Target, refresh_s: int) -> dict:
    """What a screen shows: the cached snapshot. Registers the target for the warm-up job. Only a target
    nobody has computed yet is computed here, once (single flight across threads, and across workers through
    an atomic cache add), while other screens wait briefly."""
    ensure_cache()
    ensure_warmer()
    register_target(target, refresh_s)
    snap = store_get(_snap_key(target))
    if snap is not None:
        return snap
    with _flight:
        snap = store_get(_snap_key(target))
        if snap is not None:
            return snap
        if store_add("screen:computing:" + target.key, 1, timeout=60):
            try:
                return refresh(target)
            finally:
                store_delete("screen:computing:" + target.key)
    for _ in range(50):  # another worker computes it
        time.sleep(0.2)
        snap = store_get(_snap_key(target))
        if snap is not None:
            return snap
    return {"data": None, "computed_at": None, "stale_since": None, "error": None}


def register_target(target: Target, refresh_s: int) -> None:
    """Tell the warm-up job that a screen wants this target (written at most every 30 s per target; the
    shortest refresh interval asked for wins)."""
    targets = store_get(_targets_key()) or {}
    entry = targets.get(target.key)
    now = time.time()
    if entry is None or now - entry["seen"] > 30 or refresh_s < entry["refresh"]:
        fastest = min(refresh_s, entry["refresh"]) if entry and now - entry["seen"] < TARGET_TTL_S else refresh_s
        targets[target.key] = {"seen": now, "refresh": fastest}
        store_set(_targets_key(), targets, timeout=TARGET_TTL_S * 2)


def warm_once(now: float | None = None) -> int:
    """Refresh every registered target whose interval has passed. One worker per target and interval (atomic
    cache add). Returns the number of targets refreshed."""
    ensure_cache()
    now = time.time() if now is None else now
    targets = store_get(_targets_key()) or {}
    done = 0
    for key, entry in list(targets.items()):
        if now - entry["seen"] > TARGET_TTL_S:
            continue
        target = Target.from_key(key)
        snap = store_get(_snap_key(target))
        age = now - (snap.get("computed_at") or 0) if snap else None
        if snap is not None and snap.get("stale_since") is None and age is not None and age < entry["refresh"] * 0.9:
            continue
        slot = int(now // max(entry["refresh"], 1))
        if not store_add(f"screen:warm:{key}:{slot}", 1, timeout=entry["refresh"] * 2):
            continue  # another worker has this interval
        refresh(target)
        done += 1
    return done


class Warmer:
    """The server's warm-up thread (one per process; the cache lock elects one worker per target/interval)."""

    def __init__(self, tick_s: float = 5.0):
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Warmer":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="screen-warmer", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                warm_once()
            except Exception:  # keep warming after any failure
                logger.exception("screen warm-up failed")

    def stop(self) -> None:
        self._stop.set()


# --- heartbeats ---------------------------------------------------------------------------------------------

def heartbeat(screen_id: str, name: str, url: str, views, view_shown: str | None, refresh_s: int,
              snapshot: dict | None) -> None:
    """Record that a screen is alive, what it shows and when its data last refreshed successfully."""
    hb = appdb.screen_heartbeat
    now = dt.datetime.now().replace(microsecond=0)
    computed = snapshot.get("computed_at") if snapshot else None
    stale = snapshot.get("stale_since") if snapshot else None
    values = {
        "name": name[:200], "url": url[:2000], "views": ",".join(views)[:200], "view_shown": view_shown,
        "refresh_s": refresh_s, "last_seen": now,
        "last_success": dt.datetime.fromtimestamp(computed).replace(microsecond=0) if computed else None,
        "stale_since": dt.datetime.fromtimestamp(stale).replace(microsecond=0) if stale else None,
    }
    engine = appdb.app_engine()
    with engine.begin() as conn:
        updated = conn.execute(sa.update(hb).where(hb.c.screen_id == screen_id).values(**values)).rowcount
        if not updated:
            conn.execute(sa.insert(hb).values(screen_id=screen_id, **values))


def _screen_visible(url: str, access: Access) -> bool:
    """Whether a screen (by its URL's scope) lies wholly inside what the caller may see."""
    if access.schools is None and access.facility is None:
        return True
    import urllib.parse

    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    try:
        scope = resolve_scope({k: params[k] for k in ("region", "school", "campus", "facility") if params.get(k)},
                              Access.everything())
    except InputError:
        return False
    if access.facility is not None:
        return scope.facility == access.facility
    return bool(scope.schools) and set(scope.schools) <= set(access.schools or ())


def screens(now: dt.datetime | None = None, access: Access | None = None) -> list[dict]:
    """Every screen that reported and lies inside the caller's access, with its health: ok, stale (data not
    refreshed for 3 intervals or marked stale) or silent (no heartbeat for 3 intervals)."""
    now = now or dt.datetime.now()
    access = access if access is not None else access_for_request()
    with appdb.app_engine().connect() as conn:
        rows = conn.execute(sa.select(appdb.screen_heartbeat).order_by(appdb.screen_heartbeat.c.name)).mappings().all()
    out = []
    for r in rows:
        if not _screen_visible(r["url"], access):
            continue
        limit = dt.timedelta(seconds=3 * r["refresh_s"])
        if now - r["last_seen"] > limit:
            health, since = "silent", r["last_seen"]
        elif r["stale_since"] is not None or r["last_success"] is None or now - r["last_success"] > limit:
            health, since = "stale", r["last_success"] or r["stale_since"]
        else:
            health, since = "ok", r["last_success"]
        out.append({**dict(r), "health": health, "since": since})
    return out


_warmer: Warmer | None = None
_warmer_lock = threading.Lock()
AUTO_START = True   # tests that drive warm_once() themselves turn the thread off


def ensure_warmer() -> Warmer | None:
    """Start this process's warm-up thread on the first screen request (not at import: CLIs and tests that
    never serve a screen run no thread)."""
    global _warmer
    if _warmer is None and AUTO_START:
        with _warmer_lock:
            if _warmer is None:
                _warmer = Warmer().start()
    return _warmer


def stop_warmer() -> None:
    global _warmer
    with _warmer_lock:
        if _warmer is not None:
            _warmer.stop()
            _warmer = None
