"""Shared fixtures: one small demo warehouse per test session, a fixed "today", and Chromium for dash_duo.

The environment is set before any project module is imported, so app.py reads the test configuration.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import pytest

END = dt.date(2026, 11, 15)          # the small warehouse's last day of data
TODAY = END + dt.timedelta(days=1)   # COCKPIT_TODAY in tests
SCHOOLS = 5
DAYS = 400
SEED = 11

_WORK = Path(tempfile.mkdtemp(prefix="cockpit-tests-"))
WAREHOUSE = _WORK / "warehouse.duckdb"   # always built: the `raw` reads and the DuckDB-file tests use it

# The engine the session's warehouse lives on: duckdb (default), postgres or mysql (MariaDB/MySQL), the latter
# two on a fresh database created on the server of COCKPIT_TEST_PG_URL / COCKPIT_TEST_MYSQL_URL and dropped after.
ENGINE = os.environ.get("COCKPIT_TEST_ENGINE", "duckdb")
SERVER_URLS = {"postgres": os.environ.get("COCKPIT_TEST_PG_URL"), "mysql": os.environ.get("COCKPIT_TEST_MYSQL_URL")}
if ENGINE != "duckdb" and not SERVER_URLS.get(ENGINE):
    raise SystemExit(f"COCKPIT_TEST_ENGINE={ENGINE} needs COCKPIT_TEST_{'PG' if ENGINE == 'postgres' else 'MYSQL'}_URL")
_DB_NAME = f"cockpit_test_{os.getpid()}_{int(dt.datetime.now().timestamp())}"


def _server_url(engine: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(SERVER_URLS[engine]).set(database=_DB_NAME).render_as_string(hide_password=False)


WAREHOUSE_URL = f"duckdb:///{WAREHOUSE}" if ENGINE == "duckdb" else _server_url(ENGINE)
os.environ["COCKPIT_TODAY"] = TODAY.isoformat()
os.environ["COCKPIT_WAREHOUSE_URL"] = WAREHOUSE_URL
os.environ["COCKPIT_APP_DB_URL"] = f"sqlite:///{_WORK / 'app.db'}"
os.environ.pop("COCKPIT_CACHE_REDIS_URL", None)
os.environ.setdefault("COCKPIT_SECRET_KEY", "test-secret")

SCREENSHOTS = Path(__file__).parent / "screenshots"
# Accounts every test session has (in the session's own app database). Browser tests log in as the assessor
# unless they ask for another (tests/browser.py start(..., as_user=...)).
PASSWORD = "test-password-123"
USERS = {
    "t-assessor": ("assessor", {}),
    "t-region": ("region_officer", {"region": "310000"}),
    "t-leader": ("school_leader", {"school": "SH-U01"}),
    "t-director": ("logistics_director", {"school": "SH-U01"}),
    "t-canteen": ("canteen_manager", {"facility": "SH-U01-C1-CAN1"}),
    "t-admin": ("admin", {}),
}


def pytest_sessionstart(session):
    # Built once, before any test imports the app; a prebuilt copy can be reused with COCKPIT_TEST_WAREHOUSE_CACHE.
    from data_access import demo

    cached = os.environ.get("COCKPIT_TEST_WAREHOUSE_CACHE")
    # A cache older than the demo generator is stale (the servers of test_cross_engine would get other data).
    writer = max(Path(demo.__file__).with_name(f).stat().st_mtime for f in ("demo.py", "bulk.py", "schema.py"))
    if cached and Path(cached).exists() and Path(cached).stat().st_mtime >= writer:
        shutil.copy(cached, WAREHOUSE)
    else:
        demo.build(f"duckdb:///{WAREHOUSE}", schools=SCHOOLS, days=DAYS, seed=SEED, end=END, quiet=True)
        if cached:   # written aside and renamed: other sessions may be copying the cache right now
            shutil.copy(WAREHOUSE, f"{cached}.{os.getpid()}.tmp")
            os.replace(f"{cached}.{os.getpid()}.tmp", cached)
    if ENGINE != "duckdb":
        _server_database("create")
        demo.build(WAREHOUSE_URL, schools=SCHOOLS, days=DAYS, seed=SEED, end=END, quiet=True)
    from data_access import accounts

    for name, (role, scope) in USERS.items():
        accounts.add(name, role, password=PASSWORD, actor="tests", **scope)


@pytest.fixture(autouse=True)
def _act_as_association():
    """Code called directly by tests (not through a web request) acts with the association's access; the
    security tests state narrower access themselves."""
    from data_access.request import acting_as
    from data_access.scope import Access

    with acting_as(Access.everything(), "tests"):
        yield


def _server_database(action: str) -> None:
    """Create (or drop) the session's database on the PostgreSQL/MariaDB server."""
    import sqlalchemy as sa

    admin = sa.create_engine(SERVER_URLS[ENGINE], isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote_identifier(_DB_NAME)
    statement = f"CREATE DATABASE {quoted}" if action == "create" else f"DROP DATABASE IF EXISTS {quoted}"
    if action == "create" and ENGINE == "mysql":
        statement += " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    with admin.connect() as conn:
        if action == "drop" and ENGINE == "postgres":
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": _DB_NAME})
        conn.execute(sa.text(statement))
    admin.dispose()


def pytest_sessionfinish(session, exitstatus):
    if ENGINE != "duckdb":
        from data_access.engine import reset_engine

        reset_engine()
        try:
            _server_database("drop")
        except Exception as exc:  # leave the run's result alone; say what stayed behind
            print(f"could not drop test database {_DB_NAME}: {exc}")
    shutil.rmtree(_WORK, ignore_errors=True)


@pytest.fixture(scope="session")
def warehouse_url() -> str:
    return WAREHOUSE_URL


@pytest.fixture(scope="session")
def raw(warehouse_url):
    """Independent access to the test warehouse's tables as DataFrames (read with duckdb directly, not through
    the code under test), for computing expected values in the tests."""
    import duckdb

    # A copy: DuckDB refuses a second connection to one file with another configuration in the same process.
    copy = _WORK / "raw-copy.duckdb"
    shutil.copy(WAREHOUSE, copy)

    class Raw:
        def __init__(self):
            self.con = duckdb.connect(str(copy), read_only=True)
            self._cache = {}

        def __call__(self, table: str):
            if table not in self._cache:
                self._cache[table] = self.con.execute(f'SELECT * FROM "{table}"').df()
            return self._cache[table].copy()

    r = Raw()
    yield r
    r.con.close()


# --- browser tests ------------------------------------------------------------------------------------------

def pytest_setup_options():
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--no-first-run", "--disable-component-update",
                "--disable-sync", "--window-size=1600,1000", f"--user-data-dir={tempfile.mkdtemp(prefix='chrome-')}"):
        options.add_argument(arg)
    return options


def pytest_collection_modifyitems(config, items):
    if ENGINE != "duckdb":
        only = pytest.mark.skip(reason=f"works on the DuckDB file itself; this run's warehouse is {ENGINE}")
        for item in items:
            if "duckdb_only" in item.keywords:
                item.add_marker(only)
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    skip = pytest.mark.skip(reason="chromium / chromedriver not installed (bin/test installs them as root)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
