"""The school calendar (data_access/calendar.py): a school's own rows decide, other dates follow config.yaml's
default calendar; weekends keep their period's day type and are told apart by the weekday; the SQL and the
Python versions of the rules agree, on a hand-built warehouse and on the demo."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from data_access import calendar as cal
from data_access.config import get_config, set_config
from data_access.engine import read_df
from data_access.period import Period

from .helpers import org_frames, scope, use_warehouse, write_warehouse

D = dt.date


@pytest.fixture
def default_calendar():
    """A known default calendar: a vacation that wraps over New Year, another in summer, two holidays."""
    before = get_config()
    set_config(dataclasses.replace(before, calendar={
        "default_vacations": [{"from": "12-28", "to": "01-03"}, {"from": "07-10", "to": "08-31"}],
        "default_holidays": [{"from": "01-01", "to": "01-01"}, {"from": "10-01", "to": "10-07"}],
    }))
    yield
    set_config(before)


@pytest.mark.parametrize("day, day_type, day_class", [
    (D(2026, 12, 31), "vacation", "vacation_workday"),   # Thursday inside the wrapping vacation
    (D(2027, 1, 2), "vacation", "vacation_weekend"),     # Saturday, same vacation, after New Year
    (D(2027, 1, 1), "holiday", "holiday"),               # holidays win over vacations
    (D(2027, 1, 4), "term", "term_workday"),             # Monday after the vacation
    (D(2026, 12, 27), "term", "term_weekend"),           # Sunday before it: weekends keep the term type
    (D(2026, 10, 5), "holiday", "holiday"),              # Monday in the National Day week
    (D(2026, 10, 8), "term", "term_workday"),
    (D(2026, 7, 10), "vacation", "vacation_workday"),    # first day of the summer range (inclusive)
    (D(2026, 8, 31), "vacation", "vacation_workday"),    # last day (inclusive)
    (D(2026, 9, 1), "term", "term_workday"),
])
def test_default_calendar_rules(default_calendar, day, day_type, day_class):
    assert cal.default_day_type(day) == day_type
    assert cal.day_class(day_type, day) == day_class
    assert cal.is_workday(day_type, day) == (day_class == "term_workday")


def test_exam_days_are_term_workdays_and_weekends_are_not():
    assert cal.day_class("exam", D(2026, 1, 5)) == "term_workday"     # Monday
    assert cal.day_class("exam", D(2026, 1, 10)) == "term_weekend"    # Saturday
    assert cal.day_class("holiday", D(2026, 1, 10)) == "holiday"


def test_config_file_default_calendar_is_used_by_default():
    ranges = cal.default_ranges("vacation")
    assert (115, 225) in ranges and (710, 831) in ranges
    assert cal.default_day_type(D(2026, 10, 3)) == "holiday"       # National Day in config.yaml
    assert cal.default_day_type(D(2026, 2, 1)) == "vacation"
    assert cal.default_day_type(D(2026, 3, 2)) == "term"


@pytest.fixture
def calendar_wh(tmp_path, default_calendar):
    """S1 has its own calendar rows for 2026-09-28 … 2026-10-11 only; S2 has none."""
    frames = org_frames(schools=(("S1", "k12", "310000"), ("S2", "k12", "310000")))
    rows = []
    for d in pd.date_range("2026-09-28", "2026-10-11").date:
        if D(2026, 10, 1) <= d <= D(2026, 10, 3):
            day_type = "holiday"
        elif d >= D(2026, 10, 9):
            day_type = "vacation"     # an (unusual) school break, to tell the school's rows from the default
        else:
            day_type = "term"
        rows.append({"school_id": "S1", "cal_date": d, "day_type": day_type, "teaching_week": 5 if day_type == "term" else None})
    frames["dim_school_calendar"] = pd.DataFrame(rows)
    url = write_warehouse(tmp_path / "cal.duckdb", frames)
    with use_warehouse(url, today=D(2026, 11, 16)):
        yield


EXPECTED = {
    # date: (S1 type, S1 class, S1 source, S2 type, S2 class)
    D(2026, 9, 27): ("term", "term_weekend", "default", "term", "term_weekend"),
    D(2026, 9, 28): ("term", "term_workday", "school", "term", "term_workday"),
    D(2026, 10, 1): ("holiday", "holiday", "school", "holiday", "holiday"),
    D(2026, 10, 4): ("term", "term_weekend", "school", "holiday", "holiday"),     # S1's own row says term
    D(2026, 10, 5): ("term", "term_workday", "school", "holiday", "holiday"),
    D(2026, 10, 9): ("vacation", "vacation_workday", "school", "term", "term_workday"),
    D(2026, 10, 10): ("vacation", "vacation_weekend", "school", "term", "term_weekend"),
    D(2026, 10, 12): ("term", "term_workday", "default", "term", "term_workday"),
}


def test_school_rows_decide_and_other_dates_fall_back_to_the_default(calendar_wh):
    frame = cal.day_types(scope(), Period(D(2026, 9, 27), D(2026, 10, 12)))
    assert len(frame) == 2 * 16
    got = frame.set_index(["school_id", "day"])
    for day, (t1, c1, src, t2, c2) in EXPECTED.items():
        assert tuple(got.loc[("S1", day), ["day_type", "day_class", "source"]]) == (t1, c1, src), day
        assert tuple(got.loc[("S2", day), ["day_type", "day_class", "source"]]) == (t2, c2, "default"), day
    assert got.loc[("S1", D(2026, 9, 28)), "teaching_week"] == 5
    assert pd.isna(got.loc[("S2", D(2026, 9, 28)), "teaching_week"])
    assert bool(got.loc[("S1", D(2026, 10, 5)), "workday"]) and not bool(got.loc[("S2", D(2026, 10, 5)), "workday"])
    assert got.loc[("S1", D(2026, 10, 4)), "weekday"] == 7


def _sql_classes(days, schools) -> pd.DataFrame:
    """The SQL rules over an inline table of (school, day) rows outer-joined to the calendar."""
    selects = [sa.select(sa.literal(s, sa.String(64)).label("school_id"), sa.literal(d, sa.Date).label("day"))
               for s in schools for d in days]
    grid = sa.union_all(*selects).subquery("grid")
    j, c = cal.join_calendar(grid, grid.c.school_id, grid.c.day)
    stmt = sa.select(grid.c.school_id, grid.c.day, cal.day_type_sql(grid.c.day, c.c.day_type).label("day_type"),
                     cal.day_class_sql(grid.c.day, c.c.day_type).label("day_class"),
                     cal.day_class_sql(grid.c.day, c.c.day_type, codes=True).label("code")).select_from(j)
    frame = read_df(stmt)
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def test_sql_rules_agree_with_python(calendar_wh):
    days = list(pd.date_range("2026-09-20", "2026-10-20").date) + [D(2026, 12, 31), D(2027, 1, 1), D(2027, 1, 2)]
    sql = _sql_classes(days, ["S1", "S2"]).set_index(["school_id", "day"]).sort_index()
    py = pd.concat([cal.day_types(scope(), Period(days[0], days[30])),
                    cal.day_types(scope(), Period(D(2026, 12, 31), D(2027, 1, 2)))]).set_index(["school_id", "day"])
    py = py.sort_index()
    assert list(sql.index) == list(py.index)
    assert list(sql["day_type"]) == list(py["day_type"])
    assert list(sql["day_class"]) == list(py["day_class"])
    assert [cal.DAY_CLASSES[int(c)] for c in sql["code"]] == list(py["day_class"])


def test_demo_calendar_sql_agrees_with_python_and_the_rows():
    """On the session demo: SH-U01 has calendar rows, SH-V02 none (INCIDENTS no_canteen_no_calendar)."""
    period = Period(D(2026, 7, 1), D(2026, 10, 15))
    days = list(pd.date_range(period.start, period.end).date)
    sql = _sql_classes(days, ["SH-U01", "SH-V02"]).set_index(["school_id", "day"]).sort_index()
    py = cal.day_types(scope(), period)
    py = py.loc[py.school_id.isin(["SH-U01", "SH-V02"])].set_index(["school_id", "day"]).sort_index()
    assert list(sql["day_class"]) == list(py["day_class"])
    assert set(py.loc["SH-U01", "source"]) == {"school"} and set(py.loc["SH-V02", "source"]) == {"default"}
    assert py.loc[("SH-U01", D(2026, 10, 2)), "day_class"] == "holiday"
    assert py.loc[("SH-U01", D(2026, 8, 3)), "day_class"] == "vacation_workday"
    assert py.loc[("SH-U01", D(2026, 9, 12)), "day_class"] == "term_weekend"    # a Saturday in term
    assert py.loc[("SH-V02", D(2026, 9, 12)), "day_class"] == "term_weekend"    # the default agrees
    assert py.loc[("SH-V02", D(2026, 10, 2)), "day_class"] == "holiday"         # config default_holidays


def test_spans_merge_runs_of_off_days():
    frame = pd.DataFrame({"day": pd.date_range("2026-07-08", "2026-07-14").date,
                          "day_class": ["term_workday", "term_workday", "vacation_workday", "vacation_weekend",
                                        "vacation_weekend", "holiday", "vacation_workday"]})
    assert cal.spans(frame, cal.OFF_CLASSES) == [(D(2026, 7, 10), D(2026, 7, 12), "vacation"),
                                                 (D(2026, 7, 13), D(2026, 7, 13), "holiday"),
                                                 (D(2026, 7, 14), D(2026, 7, 14), "vacation")]
