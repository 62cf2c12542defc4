"""The portable SQL constructs, compiled and run on DuckDB and SQLite here (PostgreSQL and MariaDB run them in
the cross-engine tests)."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from data_access.sqlfuncs import date_of, isodow, ratio_sum, seconds_between

pytestmark = pytest.mark.engine_free   # no warehouse at all: one run of CI is enough


@pytest.mark.parametrize("url", ["duckdb:///:memory:", "sqlite:///:memory:"])
def test_constructs(url):
    engine = sa.create_engine(url)
    a = sa.literal(dt.datetime(2026, 3, 1, 22, 0), sa.DateTime())      # a Sunday
    b = sa.literal(dt.datetime(2026, 3, 2, 0, 30, 15), sa.DateTime())
    with engine.connect() as conn:
        secs, day, dow = conn.execute(sa.select(seconds_between(a, b), date_of(b), isodow(a))).one()
        nothing = conn.execute(sa.select(ratio_sum(sa.literal(1) == 1)).where(sa.false())).scalar()
    assert float(secs) == 2.5 * 3600 + 15
    assert str(day)[:10] == "2026-03-02"
    assert int(dow) == 7
    assert nothing == 0
    engine.dispose()
