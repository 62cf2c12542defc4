"""Test helpers: hand-built warehouses for edge cases, switched in as the process warehouse."""
from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import sqlalchemy as sa

from data_access import cache, config, engine, schema
from data_access.scope import Access, resolve_scope


def org_frames(schools=(("S1", "k12", "310000"),), canteens_per_school=1, extra_facilities=()):
    """A minimal organisation: each school one campus, ``canteens_per_school`` canteens, plus extra facilities
    given as (facility_id, school_id, type, area)."""
    s_rows, c_rows, f_rows = [], [], []
    for sid, stype, region in schools:
        s_rows.append({"school_id": sid, "school_name": f"学校{sid}", "school_name_en": f"School {sid}",
                       "region_code": region, "region_name": "上海市" if region == "310000" else "北京市",
                       "school_type": stype, "boarding": False})
        c_rows.append({"campus_id": f"{sid}-C1", "school_id": sid, "campus_name": f"{sid} 主校区"})
        for i in range(canteens_per_school):
            f_rows.append({"facility_id": f"{sid}-CAN{i + 1}", "campus_id": f"{sid}-C1", "school_id": sid,
                           "facility_name": f"{sid} 食堂{i + 1}", "facility_type": "canteen",
                           "floor_area_m2": 1000.0, "capacity": 300})
    for fid, sid, ftype, area in extra_facilities:
        f_rows.append({"facility_id": fid, "campus_id": f"{sid}-C1", "school_id": sid, "facility_name": fid,
                       "facility_type": ftype, "floor_area_m2": area, "capacity": None})
    return {"dim_school": pd.DataFrame(s_rows), "dim_campus": pd.DataFrame(c_rows),
            "dim_facility": pd.DataFrame(f_rows)}


def write_warehouse(path: Path, frames: dict[str, pd.DataFrame]) -> str:
    """Create every table and insert the frames with DuckDB directly (independent of data_access.bulk)."""
    url = f"duckdb:///{path}"
    eng = sa.create_engine(url)
    schema.create_all(eng)
    eng.dispose()
    con = duckdb.connect(str(path))
    for table, frame in frames.items():
        cols = ", ".join(f'"{c}"' for c in frame.columns)
        con.register("incoming", frame)
        con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM incoming')
        con.unregister("incoming")
    con.close()
    return url


@contextlib.contextmanager
def use_warehouse(url: str, today: dt.date | None = None):
    """Make ``url`` the process warehouse (and optionally fix today) for the duration of the block."""
    before = config.get_config()
    changes = {"warehouse_url": url}
    if today is not None:
        changes["today_override"] = today
    config.override(**changes)
    engine.reset_engine()
    cache.clear()
    try:
        yield
    finally:
        engine.reset_engine()
        config.set_config(before)
        cache.clear()


def scope(**params):
    return resolve_scope(params, Access.everything())


# --- identities for requests that go through the web tier -----------------------------------------------------

def logged_in(client, name: str = "t-assessor"):
    """A Flask test client with a fresh session of an account that exists (tests/conftest.py USERS)."""
    import time

    with client.session_transaction() as session:
        now = time.time()
        session.update(user=name, login_at=now, seen_at=now, csrf="test-csrf")
    return client


def bearer(name: str = "t-assessor") -> dict:
    """Headers with an API token of an account of the session's app database (for servers in subprocesses
    that share it, and for requests that do not keep a session)."""
    from data_access import accounts

    return {"Authorization": f"Bearer {accounts.issue_token(name, actor='tests')}"}
