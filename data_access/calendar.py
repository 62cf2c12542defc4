"""The school calendar: which days are term, exam, vacation or holiday, per school and date.

A school's own rows in ``dim_school_calendar`` decide; a date without a row (a school without a calendar, or a
calendar that does not reach that far) falls back to the default calendar of config.yaml ``calendar``:
``default_holidays`` and ``default_vacations`` (month-day ranges, a range may wrap over New Year), every other
day ``term``.

Weekends keep the day type of their period (a Saturday in term is ``term``), in the school rows and in the
default alike: consumers tell weekends by the weekday. Baselines compare like with like through the *day
class*:

    term_workday      Monday–Friday, day type term or exam
    term_weekend      Saturday/Sunday, day type term or exam
    vacation_workday  Monday–Friday, day type vacation
    vacation_weekend  Saturday/Sunday, day type vacation
    holiday           a public holiday (any weekday)

The same rules exist twice, as SQL expressions (``day_class_sql``, for queries over fact tables joined to the
calendar) and in Python (``day_types``, one row per school and date): tests hold them equal.
"""
from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import sqlalchemy as sa

from .cache import memoize
from .config import get_config
from .engine import read_df
from .period import Period
from .schema import dim_school_calendar
from .scope import Scope
from .sqlfuncs import isodow

logger = logging.getLogger(__name__)

DAY_TYPES = ("term", "exam", "vacation", "holiday")
DAY_CLASSES = ("term_workday", "term_weekend", "vacation_workday", "vacation_weekend", "holiday")
TERM_TYPES = ("term", "exam")
# Day classes that count as "time off" for the holiday ratio (寒暑假 and 法定节假日).
OFF_CLASSES = ("vacation_workday", "vacation_weekend", "holiday")


def _md(text: str) -> int:
    """'MM-DD' as the number MMDD (01-15 → 115)."""
    try:
        month, day = (int(x) for x in str(text).strip().split("-"))
    except ValueError:
        raise ValueError(f"calendar range bounds must be MM-DD, got {text!r}") from None
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise ValueError(f"calendar range bound out of range: {text!r}")
    return month * 100 + day


def default_ranges(kind: str) -> list[tuple[int, int]]:
    """config ``calendar.default_vacations`` / ``default_holidays`` as inclusive (MMDD, MMDD) pairs."""
    key = {"vacation": "default_vacations", "holiday": "default_holidays"}[kind]
    out = []
    for r in get_config().calendar.get(key) or []:
        out.append((_md(r["from"]), _md(r["to"])))
    return out


def _in_ranges(md: int, ranges) -> bool:
    return any((a <= md <= b) if a <= b else (md >= a or md <= b) for a, b in ranges)


def default_day_type(day: dt.date) -> str:
    """The default calendar's day type of a date (holidays first, then vacations, else term)."""
    md = day.month * 100 + day.day
    if _in_ranges(md, default_ranges("holiday")):
        return "holiday"
    if _in_ranges(md, default_ranges("vacation")):
        return "vacation"
    return "term"


def day_class(day_type: str, day: dt.date) -> str:
    """The like-with-like class of a date with a given day type."""
    if day_type == "holiday":
        return "holiday"
    weekend = day.weekday() >= 5
    if day_type == "vacation":
        return "vacation_weekend" if weekend else "vacation_workday"
    return "term_weekend" if weekend else "term_workday"


def is_workday(day_type: str, day: dt.date) -> bool:
    """Monday–Friday, not a holiday, within term (exam weeks included)."""
    return day_class(day_type, day) == "term_workday"


# --- SQL ----------------------------------------------------------------------------------------------------

def _md_sql(day_col):
    return sa.extract("month", day_col) * 100 + sa.extract("day", day_col)


def _ranges_sql(md, ranges):
    conds = []
    for a, b in ranges:
        conds.append(sa.and_(md >= a, md <= b) if a <= b else sa.or_(md >= a, md <= b))
    return sa.or_(*conds) if conds else sa.false()


def default_day_type_sql(day_col):
    """CASE expression: the default calendar's day type of a date column."""
    md = _md_sql(day_col)
    return sa.case(
        (_ranges_sql(md, default_ranges("holiday")), "holiday"),
        (_ranges_sql(md, default_ranges("vacation")), "vacation"),
        else_="term",
    )


def day_type_sql(day_col, cal_day_type_col):
    """The day type: the school's calendar row when there is one (outer-joined), else the default."""
    return sa.func.coalesce(cal_day_type_col, default_day_type_sql(day_col))


def day_class_sql(day_col, cal_day_type_col, codes: bool = False):
    """CASE expression: the day class (see module doc) of a date, given the outer-joined calendar day type;
    with ``codes`` its index in DAY_CLASSES instead of its name (cheaper to partition and sort on)."""
    day_type = day_type_sql(day_col, cal_day_type_col)
    weekend = isodow(day_col) >= 6

    def out(name):
        return DAY_CLASSES.index(name) if codes else name

    return sa.case(
        (day_type == "holiday", out("holiday")),
        (sa.and_(day_type == "vacation", weekend), out("vacation_weekend")),
        (day_type == "vacation", out("vacation_workday")),
        (weekend, out("term_weekend")),
        else_=out("term_workday"),
    )


def join_calendar(from_clause, school_col, day_col, name: str = "cal"):
    """Outer-join the school calendar to a FROM clause; returns (join, calendar alias)."""
    cal = dim_school_calendar.alias(name)
    return from_clause.outerjoin(cal, sa.and_(cal.c.school_id == school_col, cal.c.cal_date == day_col)), cal


# --- Python -------------------------------------------------------------------------------------------------

@memoize()
def day_types(scope: Scope, period: Period) -> pd.DataFrame:
    """One row per school of the scope and date of the period: school_id, day (date), day_type, teaching_week
    (Int64, empty outside term), weekday (1 = Monday … 7), workday (bool), day_class, source ("school" when the
    school's calendar has the date, else "default")."""
    columns = ["school_id", "day", "day_type", "teaching_week", "weekday", "workday", "day_class", "source"]
    if not scope.schools:
        return pd.DataFrame(columns=columns)
    c = dim_school_calendar
    rows = read_df(sa.select(c.c.school_id, c.c.cal_date, c.c.day_type, c.c.teaching_week)
                   .where(c.c.school_id.in_(scope.schools), c.c.cal_date >= period.start,
                          c.c.cal_date <= period.end))
    dates = pd.date_range(period.start, period.end, freq="D")
    grid = pd.DataFrame({
        "school_id": pd.Series(scope.schools, dtype="str").repeat(len(dates)).to_numpy(),
        "day": list(dates.date) * len(scope.schools),
    })
    rows = rows.assign(day=pd.to_datetime(rows["cal_date"]).dt.date).drop(columns=["cal_date"])
    out = grid.merge(rows, on=["school_id", "day"], how="left")
    defaults = {d: default_day_type(d) for d in dates.date}
    has_row = out["day_type"].notna()
    out["source"] = has_row.map({True: "school", False: "default"})
    out["day_type"] = out["day_type"].where(has_row, out["day"].map(defaults)).astype("str")
    out["teaching_week"] = pd.array(out["teaching_week"], dtype="Int64")
    out["weekday"] = out["day"].map(lambda d: d.isoweekday())
    out["day_class"] = [day_class(t, d) for t, d in zip(out["day_type"], out["day"])]
    out["workday"] = out["day_class"] == "term_workday"
    return out[columns]


def spans(frame: pd.DataFrame, classes) -> list[tuple[dt.date, dt.date, str]]:
    """Runs of consecutive dates whose day class is in ``classes`` (one school's rows): (first, last, class
    group), where vacation workdays and weekends form one run."""
    if frame.empty:
        return []
    frame = frame.sort_values("day")
    out: list[list] = []
    for day, cls in zip(frame["day"], frame["day_class"]):
        if cls not in classes:
            continue
        group = "holiday" if cls == "holiday" else "vacation" if cls.startswith("vacation") else "term"
        if out and out[-1][2] == group and (day - out[-1][1]).days == 1:
            out[-1][1] = day
        else:
            out.append([day, day, group])
    return [tuple(s) for s in out]


def default_teaching_weeks(start: dt.date, end: dt.date) -> dict[dt.date, int]:
    """The default calendar's teaching weeks (weekly review, 第 N 教学周) for the dates start..end that have one.

    A term of the default calendar is a run of days outside ``default_vacations``; its teaching weeks are counted
    from the Monday of the week of its first day (week 1), as the schools' own calendars count them; holidays and
    vacation days have none (as in the schools' rows). With no vacations configured there are no terms, so no
    teaching weeks. (Added for the weekly review, data_access/review.py.)"""
    if end < start or not default_ranges("vacation"):
        return {}
    out: dict[dt.date, int] = {}
    first_monday: dt.date | None = None
    day = start - dt.timedelta(days=366)   # far enough back to see the vacation before start's term
    previous = None
    while day <= end:
        kind = default_day_type(day)
        if kind != "vacation" and previous == "vacation":
            first_monday = day - dt.timedelta(days=day.weekday())
        if day >= start and kind == "term" and first_monday is not None:
            out[day] = (day - first_monday).days // 7 + 1
        previous = kind
        day += dt.timedelta(days=1)
    return out
