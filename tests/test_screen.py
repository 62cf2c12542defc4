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

    def __call__(self, conn, cursor, statement, *args, **kwargs):
        # the data-version probe (engine.data_version, on server databases every few seconds) is bookkeeping,
        # not a query for a screen
        if "max(meta_load.batch_id)" not in statement:
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


def test_a_snapshot_nobody_refreshed_for_three_intervals_shows_as_stale():
    """If the warm-up stopped (a dead thread, a worker gone), old figures must not pass for current ones."""
    import app  # noqa: F401
    from data_access.cache import store_set
    from pages.screen import _render

    params = {"school": "SH-U01", "views": "dining", "refresh": "60"}
    target = screen.parse_target(params)
    snap = screen.refresh(target)
    head, _panels, _ticker = _render(params, {"index": 0})
    assert "更新于" in str(head) and "数据未刷新" not in str(head)
    store_set(screen._snap_key(target), dict(snap, computed_at=time.time() - 181), timeout=600)
    head, _panels, _ticker = _render(params, {"index": 0})
    assert "数据未刷新 3 分钟" in str(head)


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


# --- layout arithmetic --------------------------------------------------------------------------------------

def test_a_long_value_is_drawn_smaller_to_fit_its_tile():
    from components import screen as sc
    from data_access import registry

    # "1,268.7" + "t" in the overview's four columns: 5 digits × 0.72 + 2 marks × 0.38 = 4.36 em; the unit takes
    # 0.72 em × 1.6 vw + 0.4 vw = 1.552 vw of the 19 vw of a tile, so 17.448 / 4.36 = 4.00 vw (below 4.6)
    assert sc.value_size("1,268.7", "t", 4) == pytest.approx(4.0, abs=0.01)
    assert sc.value_size("1,268.7", "t", 4) * sc.text_em("1,268.7") + 1.552 <= sc.TILE_CONTENT_VW[4]
    # a short value keeps the full size; three columns leave room for the same value
    assert sc.value_size("99.9", "%", 4) == sc.NUMBER_VW
    assert sc.value_size("1,268.7", "t", 3) == sc.NUMBER_VW
    # the tile carries the size; the grid of eight tiles is four columns wide
    ind = registry.get("energy.co2_t")
    tile = {"id": ind.id, "value": 1268.7, "status": "none", "n": None, "change": None, "as_of": None}
    panel = str(sc.view_panel("overview", [(ind, tile)] * 8, None, None, "zh", True, True))
    assert "screen-grid-8" in panel and "'fontSize': '4.0vw'" in panel


# --- a refresh that fails keeps the screen ---------------------------------------------------------------------

def _screen_page():
    import app  # noqa: F401  (pages register with the app)
    from pages import screen as page

    return page


def test_a_heartbeat_failure_only_logs_a_warning(monkeypatch, caplog):
    page = _screen_page()

    def locked(*args, **kwargs):
        raise sa.exc.OperationalError("INSERT INTO screen_heartbeat", {}, Exception("database is locked"))

    monkeypatch.setattr(page, "heartbeat", locked)
    params = {"school": "SH-U01", "views": "dining", "id": "wall-locked", "name": "食堂大屏9"}
    good = screen.refresh(screen.parse_target(params))
    head, panels, _ticker = page.refresh(1, 1.0, params, {"index": 0})
    assert "更新于" in str(head) and "internal-error" not in str(panels)
    assert repr(good["data"]["views"]["dining"]["tiles"][0]["value"]) in str(panels)   # the tiles are there
    assert "heartbeat not recorded" in caplog.text and "database is locked" in caplog.text


def test_an_unexpected_error_keeps_the_last_render(monkeypatch):
    from dash.exceptions import PreventUpdate

    page = _screen_page()
    params = {"school": "SH-U01", "views": "dining"}
    screen.refresh(screen.parse_target(params))
    assert isinstance(page.refresh(1, 1.0, params, {"index": 0}), tuple)     # a good render first

    def boom(*args, **kwargs):
        raise RuntimeError("something unexpected")

    # inside the render (guarded: it becomes an internal-error message, which must not replace the tiles) …
    monkeypatch.setattr(page.sc, "view_panel", boom)
    with pytest.raises(PreventUpdate):
        page.refresh(2, 1.0, params, {"index": 0})
    # … the warehouse gone for the snapshot itself …
    monkeypatch.setattr(page, "snapshot_for_screen", lambda *a, **k: (_ for _ in ()).throw(
        engine.WarehouseUnavailable("connection refused")))
    with pytest.raises(PreventUpdate):
        page.refresh(3, 1.0, params, {"index": 0})
    # … and outside it (a garbled size from the browser)
    with pytest.raises(PreventUpdate):
        page.refresh(4, "wide", params, {"index": 0})
    # a wrong URL does not fix itself: that one says so
    _head, body, _ticker = page.refresh(5, 1.0, {"views": "overview,casino"}, {})
    assert "input-error" in str(body) and "casino" in str(body)


# --- warehouse timeouts -------------------------------------------------------------------------------------

def _connect_params(eng) -> dict:
    """The keyword arguments the engine hands the driver's connect(), caught before any connection is made."""
    seen = {}

    def capture(dialect, conn_rec, cargs, cparams):
        seen.update(cparams)
        raise ConnectionAbortedError("captured")

    sa.event.listen(eng, "do_connect", capture)
    with pytest.raises(Exception):
        eng.connect()
    return seen


def test_server_warehouses_get_connect_and_statement_timeouts():
    from data_access import config

    before = config.get_config()
    config.override(warehouse_connect_timeout_s=7, warehouse_statement_timeout_s=45)
    try:
        pg = "postgresql+psycopg://reader@127.0.0.1:1/warehouse"
        my = "mysql+pymysql://reader@127.0.0.1:1/warehouse"
        with use_warehouse(pg):                      # the cockpit's read engine: both timeouts from config
            got = _connect_params(engine.warehouse_engine())
        assert got["connect_timeout"] == 7 and got["options"] == "-c statement_timeout=45000"   # 45 s in ms
        assert got["keepalives"] == 1
        with use_warehouse(my):
            got = _connect_params(engine.warehouse_engine())
        assert (got["connect_timeout"], got["read_timeout"], got["write_timeout"]) == (7, 45, 45)
        # a loader's engine is not cut short; a setting in the URL wins; DuckDB has none of these
        got = _connect_params(engine.make_engine(pg, read_only=False))
        assert got["connect_timeout"] == 7 and "options" not in got
        assert engine.timeout_args(pg + "?connect_timeout=3", 7, 45)["options"] == "-c statement_timeout=45000"
        assert "connect_timeout" not in engine.timeout_args(pg + "?connect_timeout=3", 7, 45)
        assert engine.timeout_args("duckdb:///x.duckdb", 7, 45) == {}
        assert engine.timeout_args(pg, 0, 0) == {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                                                 "keepalives_count": 3}
    finally:
        config.set_config(before)
        engine.reset_engine()


def test_config_reads_the_timeouts(tmp_path):
    from data_access import config

    path = tmp_path / "c.yaml"
    path.write_text("warehouse:\n  url: duckdb:///x.duckdb\n  connect_timeout_s: 3\n  statement_timeout_s: 0\n",
                    encoding="utf-8")
    cfg = config.load_config(path, env={"COCKPIT_SECRET_KEY": "k" * 32})
    assert (cfg.warehouse_connect_timeout_s, cfg.warehouse_statement_timeout_s) == (3, 0)
    path.write_text("warehouse:\n  url: duckdb:///x.duckdb\n  statement_timeout_s: soon\n", encoding="utf-8")
    with pytest.raises(config.ConfigError, match="statement_timeout_s"):
        config.load_config(path, env={"COCKPIT_SECRET_KEY": "k" * 32})


@pytest.mark.parametrize("env, sleep", [("COCKPIT_TEST_PG_URL", "SELECT pg_sleep(5)"),
                                        ("COCKPIT_TEST_MYSQL_URL", "SELECT SLEEP(5)")])
def test_a_hung_statement_becomes_warehouse_unavailable(env, sleep):
    """A real server: a statement longer than the timeout is cancelled (PostgreSQL) or its socket read times out
    (MySQL/MariaDB) and the caller gets WarehouseUnavailable, well before the statement would have ended."""
    import os

    from data_access import config

    url = os.environ.get(env)
    if not url:
        pytest.skip(f"set {env} to run against a server")
    with use_warehouse(url):
        config.override(warehouse_statement_timeout_s=1)
        engine.reset_engine()
        started = time.monotonic()
        with pytest.raises(engine.WarehouseUnavailable):
            engine.read_df(sa.text(sleep))
        assert time.monotonic() - started < 4
