"""The indicator registry: every indicator of ../shared/INDICATORS.md declared once.

An indicator names a *measure*: a (memoized) query function ``measure(scope, period, by)`` returning a small
DataFrame, one row per group (``by`` = a child level, ``"day"``, or None for the whole scope) with columns

    key   the group (absent when by is None)
    num   numerator (or the value itself for sums and custom indicators)
    den   denominator (ratios only)
    n     people / records the figure rests on (privacy rule), optional
    + any extra columns a status rule or a panel needs.

Because measures return numerators and denominators, every roll-up is Σnum ÷ Σden, never a mean of child
rates. The overview tiles, the panels, the wall screen, the review, the exports and the API all call
``evaluate`` here, so they show the same numbers.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from .config import get_config
from .period import Period
from .scope import LEVELS, Scope

logger = logging.getLogger(__name__)

GREEN, AMBER, RED, NONE, NODATA, SUPPRESSED = "green", "amber", "red", "none", "nodata", "suppressed"


@dataclass(frozen=True)
class Indicator:
    id: str
    domain: str                 # dining | energy | service | maturity | meta
    name_zh: str
    name_en: str
    unit: str                   # display unit: "%", "kgce", "t", "kWh", "m³", "GJ", "个", "分", "级", ""
    direction: str              # higher | lower | none (which way is better)
    measure: Callable[[Scope, Period, str | None], pd.DataFrame]
    kind: str = "ratio"         # ratio: value = scale·Σnum/Σden · sum: value = Σnum · custom: measure's "value"
    scale: float = 100.0
    tables: tuple[str, ...] = ()          # warehouse tables read (for "data as of")
    privacy: bool = False                 # suppress when n < privacy.min_group_size
    status_rule: Callable | None = None   # (value, row, scope, period) -> status; default: thresholds
    change: str = "abs"                   # how the change vs the previous period reads: abs (pp / units) | rel (%)
    levels: tuple[str, ...] = LEVELS      # levels where the indicator is meaningful
    alert_grain: str | None = None        # where a red value is located in the alert list (None: no alerts)
    formula_zh: str = ""
    formula_en: str = ""
    decimals: int = 1

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def formula(self, lang: str) -> str:
        return self.formula_en if lang == "en" else self.formula_zh


@dataclass
class Result:
    id: str
    value: float | None
    status: str
    n: int | None = None
    num: float | None = None
    den: float | None = None
    key: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def suppressed(self) -> bool:
        return self.status == SUPPRESSED


REGISTRY: dict[str, Indicator] = {}


def register(ind: Indicator) -> Indicator:
    if ind.id in REGISTRY:
        raise ValueError(f"indicator {ind.id} declared twice")
    REGISTRY[ind.id] = ind
    return ind


def get(indicator_id: str) -> Indicator:
    _load_domains()
    return REGISTRY[indicator_id]


def all_indicators() -> list[Indicator]:
    _load_domains()
    return list(REGISTRY.values())


def _load_domains() -> None:
    # Domain modules register their indicators on import; importing here keeps callers to one entry point.
    from . import dining, energy, service, maturity, meta  # noqa: F401  (this order is the display order)


# --- status -------------------------------------------------------------------------------------------------

def threshold_status(ind: Indicator, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NODATA
    t = get_config().threshold(ind.id)
    if t is None or ind.direction == "none":
        return NONE
    if ind.direction == "higher":
        return GREEN if value >= t.green - 1e-9 else AMBER if value >= t.amber - 1e-9 else RED
    return GREEN if value <= t.green + 1e-9 else AMBER if value <= t.amber + 1e-9 else RED


def _finish(ind: Indicator, row: pd.Series | dict, scope: Scope, period: Period, key=None) -> Result:
    get_ = row.get if isinstance(row, dict) else (lambda k, d=None: row[k] if k in row.index else d)
    num = _num(get_("num"))
    den = _num(get_("den"))
    n = get_("n")
    n = None if n is None or (isinstance(n, float) and math.isnan(n)) else int(n)
    if ind.kind == "ratio":
        value = None if not den else ind.scale * num / den
    elif ind.kind == "sum":
        value = num
    else:
        value = _num(get_("value"))
    extra = {}
    if not isinstance(row, dict):
        extra = {k: _plain(v) for k, v in row.items() if k not in ("key", "num", "den", "n", "value")}
    if ind.privacy:
        # Figures on fewer than min_group_size people are withheld, with the group size kept for the message.
        if not n:
            return Result(ind.id, None, NODATA, 0, None, None, key, {})
        if n < get_config().min_group_size:
            return Result(ind.id, None, SUPPRESSED, n, None, None, key, {})
    status = (ind.status_rule(value, extra, scope, period) if ind.status_rule else threshold_status(ind, value))
    if value is None and status not in (NODATA, SUPPRESSED):
        status = NODATA
    return Result(ind.id, value, status, n, num, den, key, extra)


def _num(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _plain(v):
    if hasattr(v, "item"):
        try:
            return v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# --- evaluation ---------------------------------------------------------------------------------------------

def evaluate(indicator_id: str, scope: Scope, period: Period) -> Result:
    """The indicator over the whole scope and period."""
    ind = get(indicator_id)
    if scope.level not in ind.levels:
        return Result(ind.id, None, NODATA, extra={"not_applicable": True})
    frame = ind.measure(scope, period, None)
    if frame is None or frame.empty:
        return _finish(ind, {}, scope, period)
    return _finish(ind, frame.iloc[0], scope, period)


def breakdown(indicator_id: str, scope: Scope, period: Period, by: str) -> list[Result]:
    """The indicator per group inside the scope: a child level, or "day" for a daily series."""
    ind = get(indicator_id)
    if by in LEVELS and by not in ind.levels:
        return []
    frame = ind.measure(scope, period, by)
    if frame is None or frame.empty:
        return []
    return [_finish(ind, row, scope, period, key=_plain(row["key"])) for _, row in frame.iterrows()]


def series(indicator_id: str, scope: Scope, period: Period, freq: str = "D") -> list[Result]:
    """A time series: daily measures re-aggregated to ``freq`` (D, W, M) by summing numerators and denominators."""
    ind = get(indicator_id)
    frame = ind.measure(scope, period, "day")
    if frame is None or frame.empty:
        return []
    frame = frame.copy()
    frame["key"] = pd.to_datetime(frame["key"])
    frame = frame.sort_values("key")
    if freq != "D":
        if ind.kind == "custom":
            raise ValueError(f"{indicator_id} cannot be re-aggregated over time")
        cols = [c for c in ("num", "den", "n") if c in frame.columns]
        frame = frame.set_index("key")[cols].resample("W-MON" if freq == "W" else "MS", label="left",
                                                      closed="left").sum(min_count=1).reset_index()
    return [_finish(ind, row, scope, period, key=row["key"].date().isoformat()) for _, row in frame.iterrows()]


def results(indicator_id: str, frame: pd.DataFrame, scope: Scope, period: Period) -> list[Result]:
    """Results for the rows of a measure frame that a panel grouped its own way (two keys, one service line's
    weeks): the same privacy and status rules as ``breakdown``."""
    ind = get(indicator_id)
    if frame is None or frame.empty:
        return []
    return [_finish(ind, row, scope, period, key=_plain(row["key"]) if "key" in row.index else None)
            for _, row in frame.iterrows()]


@dataclass
class Tile:
    indicator: Indicator
    current: Result
    previous: Result
    change: float | None


def tile(indicator_id: str, scope: Scope, period: Period) -> Tile:
    """Value, status and change against the previous period of the same length."""
    ind = get(indicator_id)
    cur = evaluate(indicator_id, scope, period)
    prev = evaluate(indicator_id, scope, period.previous())
    change = None
    if cur.value is not None and prev.value is not None:
        if ind.change == "rel":
            change = None if prev.value == 0 else 100.0 * (cur.value / prev.value - 1.0)
        else:
            change = cur.value - prev.value
    return Tile(ind, cur, prev, change)
