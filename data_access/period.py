"""Reporting periods: an inclusive date range with its comparison periods."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .config import get_config
from .errors import InputError


@dataclass(frozen=True, order=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive

    def __post_init__(self):
        if self.end < self.start:
            raise InputError(
                f"结束日期 {self.end} 早于开始日期 {self.start}",
                f"end date {self.end} is before start date {self.start}",
            )

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def end_exclusive(self) -> dt.date:
        return self.end + dt.timedelta(days=1)

    def previous(self) -> "Period":
        """The period of the same length immediately before this one."""
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def same_last_year(self) -> "Period":
        """The same calendar dates one year earlier (29 February maps to 28 February)."""
        return Period(_minus_year(self.start), _minus_year(self.end))

    def state_date(self, today: dt.date) -> dt.date:
        """The date a state indicator (open hazards, valid certificates) is read at: the day after the period,
        or today when the period reaches today."""
        return min(today, self.end_exclusive)

    def iso(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()

    def __repr__(self) -> str:  # stable, short: part of cache keys
        return f"Period({self.start.isoformat()},{self.end.isoformat()})"


def _minus_year(d: dt.date) -> dt.date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


def parse_date(value: str, name: str) -> dt.date:
    value = (value or "").strip()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"参数 {name} 不是有效日期（应为 YYYY-MM-DD）：{value[:40]!r}",
            f"parameter {name} is not a valid date (expected YYYY-MM-DD): {value[:40]!r}",
        ) from None


# Dates accepted from URLs and API parameters. Nothing in a warehouse predates 2000, and a period may reach at most
# one year past today (plans, quotas); beyond these bounds the comparison periods (previous, same dates last year)
# and the day after the period would leave the calendar, so such dates are refused with a message instead.
MIN_DATE = dt.date(2000, 1, 1)


def max_date(today: dt.date | None = None) -> dt.date:
    """The latest date a request may name: today plus one year (29 February maps to 28 February)."""
    today = today or get_config().today()
    try:
        return today.replace(year=today.year + 1)
    except ValueError:
        return today.replace(year=today.year + 1, day=28)


def check_date_bounds(value: dt.date, name: str, today: dt.date | None = None) -> dt.date:
    """``value`` when it lies within [MIN_DATE, max_date(today)]; otherwise an InputError naming the bounds."""
    latest = max_date(today)
    if not MIN_DATE <= value <= latest:
        raise InputError(
            f"参数 {name} 超出可查询范围：{value.isoformat()}（应在 {MIN_DATE.isoformat()} 至 {latest.isoformat()} 之间）",
            f"parameter {name} is out of range: {value.isoformat()} "
            f"(expected between {MIN_DATE.isoformat()} and {latest.isoformat()})",
        )
    return value


def default_period(today: dt.date | None = None) -> Period:
    cfg = get_config()
    today = today or cfg.today()
    end = today - dt.timedelta(days=1)
    return Period(end - dt.timedelta(days=cfg.default_period_days - 1), end)


def period_from_params(start: str | None, end: str | None) -> Period:
    """Build a period from URL/API parameters ``from`` and ``to``; either may be omitted."""
    cfg = get_config()
    base = default_period()
    if not start and not end:
        return base
    today = cfg.today()
    e = check_date_bounds(parse_date(end, "to"), "to", today) if end else base.end
    s = (check_date_bounds(parse_date(start, "from"), "from", today) if start
         else e - dt.timedelta(days=cfg.default_period_days - 1))
    period = Period(s, e)
    if period.days > cfg.max_period_days:
        raise InputError(
            f"时间范围过长（{period.days} 天，上限 {cfg.max_period_days} 天）",
            f"period too long ({period.days} days, at most {cfg.max_period_days})",
        )
    return period
