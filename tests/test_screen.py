"""Wall-screen data path without a browser: URL validation, snapshots from the shared cache, the warm-up job's
query economy, staleness and recovery, heartbeats."""
from __future__ import annotations

import contextlib
import datetime as dt
import time

import pytest
import sqlalchemy as sa

from data_access import cache, engine, screen
from data_access.errors import InputError

from .conftest import WAREHOUSE
from .helpers import use_warehouse


@contextlib.contextmanager
def warehouse_down():
    """Make the real warehouse unreachable (its file moved away) without touching the cache."""
    hidden = WAREHOUSE.with_suffix(".hidden")
    engine.reset_engine()
    WAREHOUSE.rename(hidden)
    try:
        yield
    finally:
        hidden.rename(WAREHOUSE)
        engine.reset_engine()


@pytest.fixture(autouse=True)
def no_thread():
    screen.stop_warmer()
    screen.AUTO_START = False
    cache.clear()
    yield
    screen.AUTO_START = True
    cache.clear()


class QueryCounter:
    """Counts statements sent to the warehouse engine."""

    def __init__(self):
        self.count = 0

    def __call__(self, *args, **kwargs):
        self.count += 1

    def __enter__(self):
        self.engine = engine.warehouse_engine()
        sa.event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self)


def test_url_validation():
    target = screen.parse_target({"school": "SH-U01", "views": "overview,dining", "days": "7"})
    assert target.views == ("overview", "dining") and target.days == 7
    assert dict(target.params) == {"school": "SH-U01"}
    for bad in ({"views": "overview,casino"}, {"school": "NOPE"}, {"days": "x"}, {"days": "0"}):
        with pytest.raises(InputError):
            screen.parse_target(bad)
    assert screen.screen_settings({"dwell": "15", "theme": "light"})["dwell"] == 15
    with pytest.raises(InputError):
        screen.screen_settings({"refresh": "1"})


def test_many_screens_cost_the_warehouse_one_refresh():
    target = screen.parse_target({"school": "SH-U01", "views": "overview,dining,energy"})
    with QueryCounter() as first:
        snap = screen.snapshot_for_screen(target, 60)
    assert snap["data"]["views"]["dining"]["tiles"] and first.count > 0
    # 200 screens showing it: served from the snapshot, not one query
    with QueryCounter() as screens:
        for _ in range(200):
            assert screen.snapshot_for_screen(target, 60)["computed_at"] == snap["computed_at"]
    assert screens.count == 0
    # the warm-up job: nothing to do within the interval
    with QueryCounter() as idle:
        assert screen.warm_once(now=time.time() + 5) == 0
    assert idle.count == 0
    # after the interval: one refresh whether one or two hundred screens asked (memoized results dropped first,
    # so the refresh really reaches the warehouse)
    counts = []
    for n_screens in (1, 200):
        cache.clear()
        for _ in range(n_screens):
            screen.register_target(target, 60)
        with QueryCounter() as warm:
            later = time.time() + 120
            assert screen.warm_once(now=later) == 1
            assert screen.warm_once(now=later) == 0   # same interval: another worker skips it
        counts.append(warm.count)
    assert counts[0] == counts[1] > 0


@pytest.mark.duckdb_only
def test_stale_when_warehouse_down_then_recovers():
    target = screen.parse_target({"school": "SH-U01", "views": "dining"})
    good = screen.refresh(target)
    assert good["stale_since"] is None and good["data"]
    with warehouse_down():
        down = screen.refresh(target)
    assert down["data"] == good["data"]                  # last good values kept
    assert down["stale_since"] is not None and down["error"]
    assert down["computed_at"] == good["computed_at"]    # age counts from the last success
    back = screen.refresh(target)
    assert back["stale_since"] is None and back["computed_at"] > good["computed_at"]


@pytest.mark.duckdb_only
def test_screen_page_renders_the_stale_snapshot_while_the_warehouse_is_down():
    """The page callback itself must not need the warehouse: scope check and names come from the last
    organisation tree read, the figures from the last good snapshot."""
    import app  # noqa: F401  (pages register with the app)
    from pages.screen import _render

    params = {"school": "SH-U01", "views": "dining", "refresh": "5"}
    target = screen.parse_target(params)
    good = screen.refresh(target)
    with warehouse_down():
        screen.refresh(target)
        head, panels, _ticker = _render(params, {"index": 0})
    text = str(head)
    assert "数据未刷新" in text and "沪澜大学" in text
    first = good["data"]["views"]["dining"]["tiles"][0]["value"]
    assert repr(first) in str(panels)


def test_first_screen_with_warehouse_down_is_not_blank(tmp_path):
    target = screen.parse_target({"school": "SH-K01", "views": "dining"})
    with use_warehouse(f"duckdb:///{tmp_path / 'gone.duckdb'}"):
        snap = screen.snapshot_for_screen(target, 60)
    assert snap["data"] is None and snap["error"]


def test_heartbeats_and_stale_flag():
    target = screen.parse_target({"school": "SH-U01", "views": "overview"})
    snap = screen.refresh(target)
    screen.heartbeat("wall-1", "食堂大屏 1", "/screen?school=SH-U01", target.views, "overview", 60, snap)
    screen.heartbeat("wall-2", "食堂大屏 3", "/screen?school=SH-U01", target.views, "overview", 60,
                     dict(snap, stale_since=time.time() - 7200, computed_at=time.time() - 7200))
    later = dt.datetime.now() + dt.timedelta(seconds=30)
    health = {s["screen_id"]: s["health"] for s in screen.screens(later)}
    assert health["wall-1"] == "ok" and health["wall-2"] == "stale"
    much_later = dt.datetime.now() + dt.timedelta(hours=1)
    assert {s["screen_id"]: s["health"] for s in screen.screens(much_later)}["wall-1"] == "silent"
