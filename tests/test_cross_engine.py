"""Cross-engine equality: the session's demo warehouse (tests/conftest.py: SCHOOLS, DAYS, SEED, END), built again
on PostgreSQL (COCKPIT_TEST_PG_URL) and on MariaDB/MySQL (COCKPIT_TEST_MYSQL_URL), answers /api/v1/indicators with
every indicator's value, status and n equal to DuckDB's — for one place of every level and two periods.

Each server gets a fresh database (created here on the URL's server, dropped afterwards); both are built at once.
In a COCKPIT_TEST_ENGINE run the session's own server database already holds the same demo and is compared
directly; the other server is skipped there. .ci/run compares each server in its own engine run (and leaves this
test out of its DuckDB run, which would only build the same databases again); bin/test with both URLs set and no
COCKPIT_TEST_ENGINE compares both from DuckDB.
"""
from __future__ import annotations

import datetime as dt
import math
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from data_access import demo, registry

from .conftest import DAYS, END, ENGINE, SCHOOLS, SEED, WAREHOUSE, WAREHOUSE_URL
from .helpers import bearer, use_warehouse

ENGINES = {"postgres": "COCKPIT_TEST_PG_URL", "mysql": "COCKPIT_TEST_MYSQL_URL"}

# One place per level; the region has four schools of three types, the school three campuses (one in Beijing:
# heating), the campus several buildings, the facility is a canteen (dining, cold chain, its own meters).
PLACES = {
    "association": {},
    "region": {"region": "310000"},
    "school": {"school": "BJ-U01"},
    "campus": {"campus": "SH-U01-C2"},
    "facility": {"facility": "SH-U01-C1-CAN1"},
}
LONG_FROM = END - dt.timedelta(days=119)          # 2026-07-19 … 2026-11-15: 120 days, across the summer vacation
PERIODS = {
    "default": {},                                 # the default 30 days ending yesterday (END; today = END + 1)
    "120d": {"from": LONG_FROM.isoformat(), "to": END.isoformat()},
}
TOLERANCE = {"rel": 1e-9, "abs": 1e-9}


def _query(place: dict, period: dict) -> str:
    params = "&".join(f"{k}={v}" for k, v in {**place, **period}.items())
    return "/api/v1/indicators" + (f"?{params}" if params else "")


def _answers(client, headers) -> tuple[dict, float]:
    """Every (place, period) → the API body, read through the web tier with the current warehouse; and the
    seconds it took (a cold cache: use_warehouse clears it)."""
    t0 = time.perf_counter()
    out = {}
    for place_name, place in PLACES.items():
        for period_name, period in PERIODS.items():
            r = client.get(_query(place, period), headers=headers)
            assert r.status_code == 200, (place_name, period_name, r.get_data(as_text=True)[:500])
            out[(place_name, period_name)] = r.get_json()
    return out, time.perf_counter() - t0


def _same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return b == pytest.approx(a, **TOLERANCE)
    return a == b


def differences(expected: dict, got: dict) -> list[str]:
    """Every indicator (of every place and period) whose value, status or n differ, one line each."""
    out = []
    for key, want in expected.items():
        have = got[key]
        if (have["from"], have["to"], have["scope"]) != (want["from"], want["to"], want["scope"]):
            out.append(f"{key}: scope/period {have['scope']} {have['from']}…{have['to']} "
                       f"≠ {want['scope']} {want['from']}…{want['to']}")
        mine = {i["id"]: i for i in have["indicators"]}
        if set(mine) != {i["id"] for i in want["indicators"]}:
            out.append(f"{key}: indicator ids differ")
        for w in want["indicators"]:
            h = mine.get(w["id"])
            if h is None:
                continue
            if not _same_value(w["value"], h["value"]):
                out.append(f"{key} {w['id']}: value {h['value']!r} ≠ DuckDB {w['value']!r}")
            for field in ("status", "n", "not_applicable"):
                if w.get(field) != h.get(field):
                    out.append(f"{key} {w['id']}: {field} {h.get(field)!r} ≠ DuckDB {w.get(field)!r}")
    return out


def test_differences_are_found():
    """The comparison itself notices a value beyond the tolerance, a status, an n and a missing indicator."""
    base = {"scope": {"level": "association"}, "from": "2026-10-17", "to": "2026-11-15", "indicators": [
        {"id": "a", "value": 0.5, "status": "green", "n": 20}, {"id": "b", "value": None, "status": "nodata", "n": 0}]}
    same = {("p", "d"): base}
    close = {("p", "d"): {**base, "indicators": [{**base["indicators"][0], "value": 0.5 + 1e-12},
                                                 base["indicators"][1]]}}
    assert differences(same, close) == []
    for changed in ({"value": 0.5001}, {"status": "amber"}, {"n": 19}, {"value": None}):
        other = {("p", "d"): {**base, "indicators": [{**base["indicators"][0], **changed}, base["indicators"][1]]}}
        assert len(differences(same, other)) == 1, changed
    missing = {("p", "d"): {**base, "indicators": base["indicators"][:1]}}
    assert differences(same, missing) == [f"{('p', 'd')}: indicator ids differ"]


# --- the warehouses --------------------------------------------------------------------------------------------

def fingerprint(url: str) -> dict[str, tuple]:
    """Per table of the schema: the row count and the sum of every numeric column — read with SQLAlchemy directly,
    not through the cockpit, to tell "the engines hold different data" from "they compute differently"."""
    from data_access import schema
    from data_access.engine import make_engine

    eng = make_engine(url, read_only=True)    # DuckDB: read-only like the app's own connection to the same file
    out = {}
    try:
        with eng.connect() as conn:
            for table in schema.metadata.sorted_tables:
                numeric = [c for c in table.columns if isinstance(c.type, (sa.Integer, sa.Float))]
                row = conn.execute(sa.select(sa.func.count(), *[sa.func.sum(c) for c in numeric])
                                   .select_from(table)).one()
                out[table.name] = tuple(None if v is None else float(v) for v in row)
    finally:
        eng.dispose()
    return out


def _admin(server_url: str) -> sa.Engine:
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT")


def _create_database(server_url: str, name: str) -> str:
    admin = _admin(server_url)
    try:
        statement = f"CREATE DATABASE {name}"
        if admin.dialect.name == "mysql":     # as the session's server database (tests/conftest.py)
            statement += " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        with admin.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(server_url: str, name: str) -> None:
    admin = _admin(server_url)
    try:
        with admin.connect() as conn:
            if admin.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": name})
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def server_warehouses():
    """engine → URL of a server database holding the session's demo. Fresh databases are built in parallel
    (generation is ~2 s; the writes are the servers' work) and dropped at the end of the module."""
    urls: dict[str, str] = {}
    created: list[tuple[str, str]] = []
    build: dict[str, str] = {}
    try:
        for engine, var in ENGINES.items():
            server = os.environ.get(var)
            if not server:
                continue
            if engine == ENGINE:
                urls[engine] = WAREHOUSE_URL        # built by tests/conftest.py from the same demo
            elif ENGINE == "duckdb":
                name = f"cockpit_xe_{os.getpid()}_{uuid.uuid4().hex[:8]}"
                build[engine] = _create_database(server, name)
                created.append((server, name))

        def one(item):
            engine, url = item
            t0 = time.perf_counter()
            demo.build(url, schools=SCHOOLS, days=DAYS, seed=SEED, end=END, quiet=True)
            return engine, time.perf_counter() - t0

        if build:
            with ThreadPoolExecutor(len(build)) as pool:
                for engine, seconds in pool.map(one, build.items()):
                    print(f"\ncross-engine: demo built on {engine} in {seconds:.0f} s")
            urls.update(build)
        yield urls
    finally:
        from data_access.engine import reset_engine

        reset_engine()
        for server, name in created:
            try:
                _drop_database(server, name)
            except Exception as exc:  # noqa: BLE001 - say what stayed behind, keep the test's own result
                print(f"could not drop cross-engine database {name}: {exc}")


@pytest.fixture(scope="module")
def client():
    from app import server

    return server.test_client()


@pytest.fixture(scope="module")
def duckdb_answers(client):
    with use_warehouse(f"duckdb:///{WAREHOUSE}"):
        answers, seconds = _answers(client, bearer())
    print(f"\ncross-engine: DuckDB answered {len(answers)} requests in {seconds:.1f} s")
    # The reference is worth comparing: the periods are the ones meant, and most indicators have a value.
    default = answers[("association", "default")]
    assert (default["from"], default["to"]) == ((END - dt.timedelta(days=29)).isoformat(), END.isoformat())
    assert answers[("association", "120d")]["from"] == "2026-07-19"
    assert {i["id"] for i in default["indicators"]} == {i.id for i in registry.all_indicators()}
    for key, body in answers.items():
        assert body["scope"]["level"] == key[0]
        valued = [i for i in body["indicators"] if i["value"] is not None]
        assert len(valued) >= len(body["indicators"]) // 3, (key, len(valued))
    assert len([i for i in default["indicators"] if i["value"] is not None]) >= 0.8 * len(default["indicators"])
    return answers


@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_indicator_is_the_same_on_every_engine(engine, request):
    if not os.environ.get(ENGINES[engine]):
        pytest.skip(f"{ENGINES[engine]} not set (a PostgreSQL/MariaDB server URL; a fresh database is created on it)")
    if ENGINE not in ("duckdb", engine):
        pytest.skip(f"this run's warehouse is on {ENGINE}; {engine} is compared in the DuckDB run")
    urls = request.getfixturevalue("server_warehouses")
    expected = request.getfixturevalue("duckdb_answers")
    client = request.getfixturevalue("client")
    here, there = fingerprint(f"duckdb:///{WAREHOUSE}"), fingerprint(urls[engine])
    unequal = [t for t in here if len(here[t]) != len(there[t])
               or not all(_same_value(a, b) for a, b in zip(here[t], there[t]))]
    assert not unequal, (f"the DuckDB warehouse and {engine} hold different data (rows: DuckDB vs {engine}) in "
                         + ", ".join(f"{t} ({here[t][0]:.0f} vs {there[t][0]:.0f})" for t in unequal)
                         + " — a COCKPIT_TEST_WAREHOUSE_CACHE from an older demo generator? delete it")
    with use_warehouse(urls[engine]):
        got, seconds = _answers(client, bearer())
    print(f"\ncross-engine: {engine} answered {len(got)} requests in {seconds:.1f} s")
    found = differences(expected, got)
    assert not found, f"{len(found)} differences on {engine}:\n" + "\n".join(found[:60])
