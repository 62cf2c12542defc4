"""The weekly review (周例会): ISO weeks and teaching weeks, every key indicator this week against last week, the
same ISO week last year and the same teaching week of the previous term; what changed; the alerts opened and
closed during the week. Plain data out; pages/review.py renders it, the exports print it.

Weeks
- An ISO week (``2026-W46``) runs Monday to Sunday. "Last week" is the previous ISO week (week 1's is the last
  week of the previous ISO year: W52 or W53). "The same week last year" is the week with the same number in the
  previous ISO year; a week 53 whose previous year has only 52 compares with that year's week 52.
- Teaching weeks (第 N 教学周) come from each school's calendar (``dim_school_calendar.teaching_week``), else from
  the default calendar of config.yaml (``calendar.default_teaching_weeks``). The teaching week of an ISO week is
  the number most of its labelled days carry (a holiday inside a week leaves the other days labelled); teaching
  week N of a term is reviewed as the ISO week of the first day labelled N. A new term starts where the numbering
  starts again (a labelled day with a smaller number than the one before).
- Several schools (a region, the association) may number differently: the scope's teaching week is the one most
  of its schools have, and says how many do.

Every figure is ``registry.evaluate`` over a Monday–Sunday ``Period``: the same numbers as tiles, API and panels.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from . import calendar, meta, overview, registry
from .cache import memoize
from .config import get_config
from .errors import InputError
from .period import Period
from .registry import RED, Indicator, Result
from .scope import Scope

logger = logging.getLogger(__name__)

COMPARISONS = ("last_week", "last_year", "last_term")
"""The periods each key indicator is compared with, in display order (``this`` is the reviewed week)."""

DEFAULT_INDICATORS = {d: tuple(ids) for d, ids in {
    "dining": ["dining.sample_retention", "dining.cold_chain", "dining.hazards_overdue",
               "dining.certificates_expiring"],
    "energy": ["energy.total_kgce", "energy.co2_t", "energy.anomalies"],
    "service": ["service.csi", "service.response_on_time", "service.completion_on_time"],
    "maturity": ["maturity.score", "maturity.level"],
}.items()}
CALENDAR_LOOKBACK_DAYS = 420
"""How far before a week the calendar is read: the previous term's teaching week lies at most ~11 months back."""

_WEEK_RE = re.compile(r"^\s*(\d{4})\s*-?\s*[Ww]\s*(\d{1,2})\s*$")


# --- ISO weeks ----------------------------------------------------------------------------------------------

def weeks_in_year(year: int) -> int:
    """52 or 53: the ISO week of 28 December is always the year's last."""
    return dt.date(year, 12, 28).isocalendar()[1]


@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    def __post_init__(self):
        if not (1 <= self.year <= 9998) or not (1 <= self.week <= weeks_in_year(self.year)):
            raise InputError(
                f"{self.year} 年没有第 {self.week} 周",
                f"{self.year} has no ISO week {self.week}",
            )

    @classmethod
    def parse(cls, text: str) -> "IsoWeek":
        """``2026-W46`` (also ``2026W46``, ``2026-w46``)."""
        m = _WEEK_RE.match(str(text or ""))
        if not m:
            raise InputError(f"参数 week 不是有效的 ISO 周（应为 2026-W46）：{str(text)[:40]!r}",
                             f"parameter week is not an ISO week (expected 2026-W46): {str(text)[:40]!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: dt.date) -> "IsoWeek":
        year, week, _ = day.isocalendar()
        return cls(year, week)

    @property
    def start(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.week, 1)

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=6)

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)

    def previous(self) -> "IsoWeek":
        return IsoWeek.of(self.start - dt.timedelta(days=7))

    def next(self) -> "IsoWeek":
        return IsoWeek.of(self.start + dt.timedelta(days=7))

    def same_week_last_year(self) -> "IsoWeek":
        return IsoWeek(self.year - 1, min(self.week, weeks_in_year(self.year - 1)))

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    def __repr__(self) -> str:  # stable: part of cache keys
        return f"IsoWeek({self})"


def last_complete_week(today: dt.date) -> IsoWeek:
    """The latest ISO week that ended before today (on a Monday: the week that ended yesterday)."""
    return IsoWeek.of(today - dt.timedelta(days=today.isoweekday()))


# --- teaching weeks -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TermWeek:
    """The teaching week of a reviewed week for a scope."""
    number: int
    term_start: dt.date                 # the first labelled day of its term (most schools')
    schools: int                        # schools of the scope whose calendar gives this number
    of: int                             # schools in the scope
    last_term: IsoWeek | None           # the ISO week of the same teaching week in the previous term
    last_term_start: dt.date | None


def term_name(term_start: dt.date, lang: str = "zh") -> str:
    """'2026年秋季学期' / 'Autumn term 2026' from a term's first day (Feb–Jul: spring, else autumn)."""
    spring = 2 <= term_start.month <= 7
    year = term_start.year if term_start.month >= 2 else term_start.year - 1
    if lang == "en":
        return f"{'Spring' if spring else 'Autumn'} term {year}"
    return f"{year}年{'春季' if spring else '秋季'}学期"


def teaching_days(scope: Scope, start: dt.date, end: dt.date) -> pd.DataFrame:
    """One row per school and labelled day (school_id, day, teaching_week, term): every date of start..end that a
    school's calendar (or the default calendar) gives a teaching week. ``term`` numbers the school's terms in
    date order, starting where the numbering starts again."""
    columns = ["school_id", "day", "teaching_week", "term"]
    if not scope.schools:
        return pd.DataFrame(columns=columns)
    days = calendar.day_types(scope, Period(start, end))
    if days.empty:
        return pd.DataFrame(columns=columns)
    days = days[["school_id", "day", "day_type", "teaching_week", "source"]].copy()
    defaults = calendar.default_teaching_weeks(start, end)
    from_default = days["source"] == "default"
    if from_default.any():
        filled = days.loc[from_default, "day"].map(defaults)
        days.loc[from_default, "teaching_week"] = pd.array(filled, dtype="Int64")
    days = days[days["teaching_week"].notna()].sort_values(["school_id", "day"])
    if days.empty:
        return pd.DataFrame(columns=columns)
    days["teaching_week"] = days["teaching_week"].astype(int)
    restart = days.groupby("school_id")["teaching_week"].diff().fillna(-1) < 0
    days["term"] = restart.astype(int).groupby(days["school_id"]).cumsum()
    return days[columns].reset_index(drop=True)


def _school_weeks(days: pd.DataFrame) -> pd.DataFrame:
    """Per school, term and teaching week: the ISO week it is reviewed as (of its first labelled day)."""
    first = days.groupby(["school_id", "term", "teaching_week"], as_index=False)["day"].min()
    first["iso"] = [IsoWeek.of(d) for d in first["day"]]
    return first


def _label_of_week(days: pd.DataFrame, week: IsoWeek) -> pd.DataFrame:
    """Per school: the teaching week (number, term) most of the ISO week's labelled days carry."""
    inside = days[(days["day"] >= week.start) & (days["day"] <= week.end)]
    rows = []
    for school, grp in inside.groupby("school_id"):
        counts = Counter(zip(grp["teaching_week"], grp["term"]))
        (number, term), _ = max(counts.items(), key=lambda kv: (kv[1], -kv[0][0]))
        rows.append({"school_id": school, "teaching_week": int(number), "term": int(term)})
    return pd.DataFrame(rows, columns=["school_id", "teaching_week", "term"])


@memoize()
def term_week(scope: Scope, week: IsoWeek) -> TermWeek | None:
    """The scope's teaching week for an ISO week, with the same teaching week of the previous term; None when
    the week is no teaching week for any school of the scope (a vacation)."""
    days = teaching_days(scope, week.start - dt.timedelta(days=CALENDAR_LOOKBACK_DAYS), week.end)
    if days.empty:
        return None
    labels = _label_of_week(days, week)
    if labels.empty:
        return None
    number, count = Counter(labels["teaching_week"]).most_common(1)[0]
    agreeing = labels[labels["teaching_week"] == number]
    firsts = _school_weeks(days)
    starts, previous = [], []
    for row in agreeing.itertuples():
        mine = firsts[firsts["school_id"] == row.school_id]
        term_days = days[(days["school_id"] == row.school_id) & (days["term"] == row.term)]
        starts.append(term_days["day"].min())
        prev_term = days[(days["school_id"] == row.school_id) & (days["term"] == row.term - 1)]
        hit = mine[(mine["term"] == row.term - 1) & (mine["teaching_week"] == number)]
        # the previous term must be seen from its start, or its numbering is unknown
        if not hit.empty and not prev_term.empty and prev_term["teaching_week"].min() == 1:
            previous.append((hit.iloc[0]["iso"], prev_term["day"].min()))
        else:
            previous.append((None, None))
    term_start = Counter(starts).most_common(1)[0][0]
    last_iso, last_start = Counter(previous).most_common(1)[0][0]
    return TermWeek(int(number), term_start, int(count), len(scope.schools), last_iso, last_start)


def resolve_teaching_week(scope: Scope, number: int, today: dt.date) -> IsoWeek:
    """The ISO week of the latest teaching week ``number`` that began before today (most schools' calendars)."""
    if number < 1 or number > 60:
        raise InputError(f"教学周应在 1–60 之间：{number}", f"teaching week must be 1–60: {number}")
    found = [iso for n, iso in _begun_weeks(scope, today) if n == number]
    if not found:
        raise InputError(f"校历中没有已开始的第 {number} 教学周",
                         f"no teaching week {number} has begun in the calendar")
    return max(found)


def teaching_week_options(scope: Scope, today: dt.date) -> list[tuple[int, IsoWeek]]:
    """(teaching week, ISO week) of the teaching weeks begun before today in the last two terms, latest first:
    the week picker's choices (one number per ISO week: the one most schools of the scope give it)."""
    weeks = _begun_weeks(scope, today)
    return sorted(weeks, key=lambda x: x[1], reverse=True)


@memoize()
def _begun_weeks(scope: Scope, today: dt.date) -> list[tuple[int, IsoWeek]]:
    # memoized: the week picker asks on every visit, and labelling 100 schools' calendars costs ~100 ms
    yesterday = today - dt.timedelta(days=1)
    days = teaching_days(scope, yesterday - dt.timedelta(days=CALENDAR_LOOKBACK_DAYS), yesterday)
    if days.empty:
        return []
    firsts = _school_weeks(days)
    latest = firsts.groupby("school_id")["term"].transform("max")
    recent = firsts[firsts["term"] >= latest - 1]
    votes: dict[IsoWeek, Counter] = {}
    for row in recent.itertuples():
        votes.setdefault(row.iso, Counter())[int(row.teaching_week)] += 1
    return [(c.most_common(1)[0][0], iso) for iso, c in votes.items()]


# --- the review ---------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One key indicator with its value in each period and its change against each comparison."""
    indicator: Indicator
    results: dict[str, Result | None]
    changes: dict[str, float | None]


@dataclass
class Movement:
    indicator: Indicator
    before: Result
    after: Result
    change: float | None
    score: float               # the size used for ranking (see config review.relative_band_pct)
    worse: bool | None         # None: the indicator has no better direction
    new_red: bool


@dataclass
class AlertChange:
    state: str                 # opened | closed | continuing
    alert: overview.Alert      # this week's alert (opened, continuing) or last week's (closed)
    now: Result | None         # this week's figure at that place
    before: Result | None      # last week's figure at that place


@dataclass
class Review:
    scope: Scope
    week: IsoWeek
    periods: dict[str, Period | None]        # this, last_week, last_year, last_term
    weeks: dict[str, IsoWeek | None]
    term: TermWeek | None
    rows: dict[str, list[Row]]               # per domain, in config order
    movements: list[Movement]
    new_red: list[Movement]
    alerts: list[AlertChange]
    as_of: dict
    in_progress: bool                        # the week has not ended yet
    trends: dict[str, tuple[Indicator, list[Result]]] = field(default_factory=dict)
    days: int = 7                            # days compared: 7, or the days of a week in progress that have passed


def review_indicators() -> dict[str, tuple[str, ...]]:
    configured = get_config().review.get("indicators") or {}
    out = {}
    for domain in overview.DOMAINS:
        ids = tuple(configured.get(domain) or DEFAULT_INDICATORS.get(domain, ()))
        out[domain] = tuple(i for i in ids if i in {ind.id for ind in registry.all_indicators()})
    return out


def change(ind: Indicator, cur: Result | None, prev: Result | None) -> float | None:
    """The change of ``cur`` against ``prev``, read the way the tiles read it (registry.tile): percentage points
    or units for ``abs`` indicators, percent for ``rel`` ones; None when either side has no value."""
    if cur is None or prev is None or cur.value is None or prev.value is None:
        return None
    if ind.change == "rel":
        return None if prev.value == 0 else 100.0 * (cur.value / prev.value - 1.0)
    return cur.value - prev.value


def movement_score(ind: Indicator, before: Result, after: Result) -> float:
    """How big a movement is: |change| in amber bands (|green − amber|), or, for indicators without a band, the
    relative change in units of ``review.relative_band_pct`` percent."""
    if before.value is None or after.value is None:
        return 0.0
    t = get_config().threshold(ind.id)
    if t is not None and abs(t.green - t.amber) > 1e-12:
        return abs(after.value - before.value) / abs(t.green - t.amber)
    band = float(get_config().review.get("relative_band_pct", 10)) / 100.0
    if before.value == 0:
        return 0.0 if after.value == 0 else math.inf
    return abs(after.value / before.value - 1.0) / band


def periods_for(scope: Scope, week: IsoWeek) -> tuple[dict[str, IsoWeek | None], TermWeek | None]:
    term = term_week(scope, week)
    weeks = {"this": week, "last_week": week.previous(), "last_year": week.same_week_last_year(),
             "last_term": term.last_term if term else None}
    return weeks, term


def days_passed(week: IsoWeek, today: dt.date) -> int:
    """How many of the week's days have passed before ``today`` (data reach yesterday): 7 once the week ended."""
    return max(0, min(7, (today - week.start).days))


def first_days(week: IsoWeek | None, days: int) -> Period | None:
    """The first ``days`` days of a week (Monday first): a week in progress is compared like for like, its days
    that have passed against the same weekdays of every other week."""
    if week is None:
        return None
    return Period(week.start, week.start + dt.timedelta(days=days - 1))


def _applies(ind: Indicator, scope: Scope) -> bool:
    return scope.level in ind.levels


def build(scope: Scope, week: IsoWeek, today: dt.date | None = None, lang: str = "zh",
          with_alerts: bool = True, with_trends: bool = True) -> Review:
    """The whole review of a scope for an ISO week. A week in progress is compared like for like: its days that
    have passed (Monday to yesterday) against the same weekdays of last week, last year and last term — the
    movements and alerts too (``Review.days`` < 7, ``in_progress``) — never a part of a week against whole ones."""
    today = today or get_config().today()
    if week.start >= today:
        raise InputError(f"{week} 尚未开始，无法回顾", f"{week} has not begun yet")
    weeks, term = periods_for(scope, week)
    days = days_passed(week, today)
    periods = {k: first_days(w, days) for k, w in weeks.items()}

    def evaluate(ind_id: str, key: str) -> Result | None:
        p = periods.get(key)
        return None if p is None else registry.evaluate(ind_id, scope, p)

    rows: dict[str, list[Row]] = {}
    tables: set[str] = set()
    for domain, ids in review_indicators().items():
        rows[domain] = []
        for ind_id in ids:
            ind = registry.get(ind_id)
            if not _applies(ind, scope):
                continue
            tables.update(ind.tables)
            results = {k: evaluate(ind_id, k) for k in ("this", *COMPARISONS)}
            rows[domain].append(Row(ind, results, {k: change(ind, results["this"], results[k]) for k in COMPARISONS}))

    movements, new_red = _movements(scope, periods)
    alerts = _alert_changes(scope, periods, lang) if with_alerts else []
    trends = _trends(scope, week) if with_trends else {}
    return Review(scope, week, periods, weeks, term, rows, movements, new_red, alerts,
                  meta.as_of(scope, sorted(tables)), week.end >= today, trends, days)


def _movements(scope: Scope, periods: dict[str, Period | None]) -> tuple[list[Movement], list[Movement]]:
    """Week-on-week movements of every indicator of the four domains, largest first, and the new red ones."""
    top = int(get_config().review.get("top_movements", 10))
    found: list[Movement] = []
    for ind in registry.all_indicators():
        if ind.domain not in overview.DOMAINS or not _applies(ind, scope):
            continue
        after = registry.evaluate(ind.id, scope, periods["this"])
        before = registry.evaluate(ind.id, scope, periods["last_week"])
        delta = change(ind, after, before)
        new_red = after.status == RED and before.status != RED
        worse = None if ind.direction == "none" or not delta else (delta > 0) != (ind.direction == "higher")
        found.append(Movement(ind, before, after, delta, movement_score(ind, before, after), worse, new_red))
    moved = [m for m in found if m.change not in (None, 0) and m.score > 0]
    moved.sort(key=lambda m: (-m.score, m.indicator.id))
    return moved[:top], [m for m in found if m.new_red]


def _place_result(alert: overview.Alert, scope: Scope, period: Period) -> Result | None:
    """The figure of an alert's indicator at its place in another period (evaluated the way alerts are)."""
    if alert.key is None or alert.level == scope.level:
        return registry.evaluate(alert.indicator_id, scope, period)
    for res in registry.breakdown(alert.indicator_id, scope, period, alert.level):
        if str(res.key) == alert.key:
            return res
    return None


def _alert_changes(scope: Scope, periods: dict[str, Period | None], lang: str) -> list[AlertChange]:
    """Alerts of this week against last week's: opened (red now, not red last week), closed (red last week, not
    now) and continuing. An alert is a red indicator at its place (overview.alerts), judged over each week."""
    now = {(a.indicator_id, a.level, a.key): a for a in overview.alerts(scope, periods["this"], lang)}
    before = {(a.indicator_id, a.level, a.key): a for a in overview.alerts(scope, periods["last_week"], lang)}
    out: list[AlertChange] = []
    for key, a in now.items():
        if key in before:
            out.append(AlertChange("continuing", a, a.result, before[key].result))
        else:
            out.append(AlertChange("opened", a, a.result, _place_result(a, scope, periods["last_week"])))
    for key, a in before.items():
        if key not in now:
            out.append(AlertChange("closed", a, _place_result(a, scope, periods["this"]), a.result))
    order = {"opened": 0, "closed": 1, "continuing": 2}
    domains = {d: i for i, d in enumerate(overview.DOMAINS)}
    out.sort(key=lambda c: (order[c.state], domains.get(c.alert.domain, 9), c.alert.indicator_id, c.alert.name))
    return out


def _trends(scope: Scope, week: IsoWeek) -> dict[str, tuple[Indicator, list[Result]]]:
    """Each domain's trend indicator (overview.TREND) per ISO week over the last ``review.trend_weeks`` weeks."""
    n = max(2, int(get_config().review.get("trend_weeks", 13)))
    period = Period(week.start - dt.timedelta(days=7 * (n - 1)), week.end)
    out = {}
    for domain, ind_id in overview.TREND.items():
        ind = registry.get(ind_id)
        if not _applies(ind, scope):
            continue
        out[domain] = (ind, registry.series(ind_id, scope, period, "W"))
    return out


def week_from_params(scope: Scope, params: dict, today: dt.date | None = None) -> IsoWeek:
    """The reviewed week from URL parameters: ``week=2026-W46``, else ``tw=12`` (the latest teaching week 12 that
    has begun), else the last complete week."""
    today = today or get_config().today()

    def first(name):
        v = params.get(name)
        if isinstance(v, (list, tuple)):
            v = v[0] if v else None
        return None if v in (None, "") else str(v)

    if first("week"):
        return IsoWeek.parse(first("week"))
    if first("tw"):
        try:
            number = int(first("tw"))
        except ValueError:
            raise InputError(f"参数 tw 应为教学周序号：{first('tw')[:20]!r}",
                             f"parameter tw must be a teaching week number: {first('tw')[:20]!r}") from None
        return resolve_teaching_week(scope, number, today)
    return last_complete_week(today)

