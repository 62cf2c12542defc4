"""Digital maturity (后勤数字化成熟度): the framework, school scores and levels, peer benchmarks, the gap to the
next level and the evidence pack.

The framework is a versioned YAML file (config ``maturity.framework``), validated on load. Assessed indicators
come from ``fact_maturity_score``: of each school's assessment rounds (periods) whose year is not after the year of
the selected period's end, the one assessed last by that date (latest ``assessed_on``; equal dates: the greater
period), with its scores assessed by then — a round assessed after the as-of date did not exist yet. Derived
ones are computed from the warehouse through the indicator registry and scaled linearly to 0–100, so part of
the score follows from daily data rather than self-report.

Which data a derived indicator reads: the **assessment window**, the 12 months (framework
``derived_window_days``, per indicator ``window_days``) ending on the last day of the selected period, clipped
to the first day of data in the warehouse. A maturity score is an annual judgement: a 30-day window would make
rates resting on few events (hazards closed on time, callbacks) swing a school's level from month to month,
while the sliding 12-month window still follows the daily data. The period's length therefore does not matter,
only its end ("as of"); the page says which window was used.

A derived indicator that does not apply to a school (no canteen, so no cold chain) is left out and its
dimension re-weighted over the indicators that apply — but a school *with* a canteen where no cold-chain device
reported in the window scores 0 there (``CANTEEN_INDICATORS``: a school must not gain from having no sensors).
One resting on fewer people than the privacy threshold is left out the same way (scoring it would reveal the
suppressed figure); an assessed indicator without a score counts 0 (not assessed is not achieved).
Score = Σ weight × indicator score ÷ 100. The score and the dimension scores are official to one decimal
(``round_score``: half up, 59.96 → 60.0) and the levels are banded on those one-decimal figures, so that what
every view and the evidence pack print is what decided the level. Levels by score band, capped by the floor
rule: a school reaches a level only if every dimension scores at least the lower bound of the level below it
(DCMM, GB/T 36073-2018).

Every school's figures are computed once for the whole warehouse (a school's score must not depend on who looks
at it) and then filtered. Functions that return **rows** (``school_scores``, ``indicator_scores``,
``peer_percentiles``, ``year_on_year``) return only the schools of the caller's scope; peer benchmarks, which
look at other schools, return **distribution figures only** (``peer_benchmark``: size, median, P75, best,
percentile), never another school's row, and nothing at all for groups smaller than the framework's
``benchmarks.min_group`` (5).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Mapping

import pandas as pd
import sqlalchemy as sa
import yaml

from .cache import memoize
from .config import get_config
from .engine import read_df
from .errors import InputError
from .period import Period
from .registry import Indicator, register
from .schema import agg_meter_daily, fact_maturity_score
from .scope import Scope

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 365
DEFAULT_MIN_GROUP = 5
# Tables whose first day says when the warehouse's daily data starts (the assessment window is clipped to it).
_DAILY_STARTS = ("fact_dining_check", "fact_meals_served", "fact_cold_chain_reading", "fact_meter_reading",
                 "fact_survey_response", "fact_work_order")

SCORED, NOT_ASSESSED, NOT_APPLICABLE, SUPPRESSED = "scored", "not_assessed", "not_applicable", "suppressed"
NO_DATA = "no_data"   # applies (the school has a canteen) but nothing reported in the window: scores 0

# Registry indicators measured on a school's canteens that every school with a canteen has: there a missing figure
# means nothing reported in the window (no cold-chain device reporting), which scores 0. Only a school without a
# canteen is "not applicable" — otherwise a school with no sensors would score better than one with an offline one.
CANTEEN_INDICATORS = frozenset({"dining.cold_chain_online"})
# "…-v1.yaml": a framework file name may carry the (major) version its content must agree with.
_FILE_VERSION = re.compile(r"-v(\d+(?:\.\d+)*)$")


class FrameworkError(ValueError):
    """The framework file is not usable; the message names the problem."""


# --- the framework --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FwIndicator:
    id: str
    name_zh: str
    name_en: str
    weight: float
    source: str          # assessed | derived
    dimension: str
    derived_from: str | None = None
    zero_at: float = 0.0
    full_at: float = 100.0
    window_days: int | None = None   # derived only: overrides the framework's derived_window_days

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh

    def scale(self, value: float) -> float:
        if self.full_at == self.zero_at:
            return 100.0 if value >= self.full_at else 0.0
        return max(0.0, min(100.0, 100.0 * (value - self.zero_at) / (self.full_at - self.zero_at)))

    def unscale(self, score: float) -> float:
        """The underlying value that scales to ``score`` (the lowest such value)."""
        if self.full_at == self.zero_at:
            return self.full_at
        return self.zero_at + score / 100.0 * (self.full_at - self.zero_at)


@dataclass(frozen=True)
class Dimension:
    id: str
    name_zh: str
    name_en: str
    indicators: tuple[FwIndicator, ...]

    @property
    def weight(self) -> float:
        return sum(i.weight for i in self.indicators)

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True)
class Framework:
    id: str
    version: str
    title_zh: str
    title_en: str
    levels: tuple[tuple[str, float], ...]   # (name, lower bound), ascending
    dimensions: tuple[Dimension, ...]
    derived_window_days: int = DEFAULT_WINDOW_DAYS
    min_group: int = DEFAULT_MIN_GROUP      # no distribution for peer groups / scopes with fewer schools
    source: str = ""                        # the file it was read from
    token: str = ""                         # identifies this version of the file in cache keys

    @property
    def indicators(self) -> list[FwIndicator]:
        return [i for d in self.dimensions for i in d.indicators]

    def indicator(self, indicator_id: str) -> FwIndicator:
        for i in self.indicators:
            if i.id == indicator_id:
                return i
        raise KeyError(indicator_id)

    def dimension(self, dimension_id: str) -> Dimension:
        for d in self.dimensions:
            if d.id == dimension_id:
                return d
        raise KeyError(dimension_id)

    def title(self, lang: str) -> str:
        return (self.title_en if lang == "en" else self.title_zh) or self.id

    def level_name(self, level: int) -> str:
        """Name of a 1-based level (as stored in the score frames)."""
        return self.levels[level - 1][0]

    def level_by_score(self, score: float) -> int:
        """Index into ``levels`` of the band containing the score."""
        idx = 0
        for i, (_, low) in enumerate(self.levels):
            if score >= low - 1e-9:
                idx = i
        return idx

    def level(self, score: float, dimension_scores: dict[str, float]) -> tuple[int, int, str | None]:
        """(level by score, level after the floor rule, the dimension that caps it or None)."""
        by_score = self.level_by_score(score)
        lowest_dim = min(dimension_scores, key=dimension_scores.get) if dimension_scores else None
        level = by_score
        while level > 0:
            floor = self.levels[level - 1][1]
            if all(v >= floor - 1e-9 for v in dimension_scores.values()):
                break
            level -= 1
        return by_score, level, (lowest_dim if level < by_score else None)


def round_score(value: float) -> float:
    """A score as officially stated: one decimal, rounded half up on its decimal value (59.95 → 60.0, 39.94 → 39.9;
    float noise below 1e-9 ignored). Levels are banded on these figures, so the printed score decides the level."""
    return float(Decimal(f"{float(value):.9f}").quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _finite(value) -> float:
    """A finite number (not a bool, NaN or infinity), else ValueError."""
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _positive_int(value, where: str, problems: list) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append(f"{where} must be a positive whole number of days")
        return None
    return value


def parse_framework(raw: dict, source: str = "framework") -> Framework:
    """Validate a framework mapping: weights sum to 100 (and match declared dimension weights), unique ids,
    ordered bands from 0, known sources, derived indicators with ``from`` and a usable scale, positive windows."""
    if not isinstance(raw, dict):
        raise FrameworkError(f"{source}: the file must hold a mapping")
    problems = []
    fw_id = raw.get("id")
    if not isinstance(fw_id, str) or not fw_id.strip():
        problems.append("'id' must be a non-empty text naming the framework")
    version = raw.get("version")
    if isinstance(version, float):
        problems.append(f"'version' must be quoted text (version: \"{version}\"): an unquoted {version} is read as a "
                        "number, and 1.10 would become 1.1")
    elif isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version).strip():
        problems.append("'version' must be a non-empty text (evidence packs record it)")
    levels_raw = raw.get("levels") or []
    levels = []
    for i, lv in enumerate(levels_raw if isinstance(levels_raw, list) else []):
        try:
            levels.append((str(lv["level"]), _finite(lv["min"])))
        except (KeyError, TypeError, ValueError):
            problems.append(f"levels[{i}] needs a name 'level' and a finite numeric 'min'")
    if len(levels) < 2:
        problems.append("at least two levels are needed")
    if any(b[1] <= a[1] for a, b in zip(levels, levels[1:])):
        problems.append("level bands must be in ascending order of 'min'")
    if levels and levels[0][1] != 0:
        problems.append("the first level must start at 0")
    if any(not 0 <= low < 100 for _, low in levels):
        problems.append("level bands must lie between 0 and 100")
    names = [n for n, _ in levels]
    if len(set(names)) != len(names):
        problems.append("level names must be unique")
    window = _positive_int(raw.get("derived_window_days", DEFAULT_WINDOW_DAYS), "derived_window_days", problems)
    bench = raw.get("benchmarks") or {}
    min_group = bench.get("min_group", DEFAULT_MIN_GROUP) if isinstance(bench, dict) else None
    if isinstance(min_group, bool) or not isinstance(min_group, int) or min_group < 2:
        problems.append("benchmarks.min_group must be a whole number of schools, at least 2")
        min_group = DEFAULT_MIN_GROUP
    dims, seen = [], set()
    dims_raw = raw.get("dimensions") or []
    for di, d in enumerate(dims_raw if isinstance(dims_raw, list) else []):
        if not isinstance(d, dict):
            problems.append(f"dimensions[{di}] must be a mapping")
            continue
        did = str(d.get("id", "")).strip()
        if not did:
            problems.append(f"dimensions[{di}] has no id")
        if did in seen:
            problems.append(f"duplicate id {did!r}")
        seen.add(did)
        inds = []
        for ii, ind in enumerate(d.get("indicators") or []):
            if not isinstance(ind, dict):
                problems.append(f"{did}.indicators[{ii}] must be a mapping")
                continue
            iid = str(ind.get("id", "")).strip()
            where = f"indicator {iid or f'{did}[{ii}]'}"
            if not iid:
                problems.append(f"{where} has no id")
            if iid in seen:
                problems.append(f"duplicate id {iid!r}")
            seen.add(iid)
            source_kind = ind.get("source")
            if source_kind not in ("assessed", "derived"):
                problems.append(f"{where}: source must be 'assessed' or 'derived'")
            try:
                weight = _finite(ind.get("weight"))
                if not weight > 0:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(f"{where}: weight must be a positive number")
                weight = 0.0
            scale = ind.get("scale") or {}
            zero_at, full_at = 0.0, 100.0
            try:
                zero_at, full_at = _finite(scale.get("zero_at", 0)), _finite(scale.get("full_at", 100))
            except (TypeError, ValueError, AttributeError):
                problems.append(f"{where}: scale needs finite numeric zero_at and full_at (no NaN or infinity)")
            if source_kind == "derived" and not ind.get("from"):
                problems.append(f"{where}: a derived indicator needs 'from' (a registry indicator id)")
            if source_kind == "assessed" and (ind.get("from") or ind.get("window_days")):
                problems.append(f"{where}: 'from' and 'window_days' apply to derived indicators only")
            ind_window = _positive_int(ind.get("window_days"), f"{where}: window_days", problems)
            inds.append(FwIndicator(
                iid, str(ind.get("name_zh", iid)), str(ind.get("name_en", iid)), weight, str(source_kind), did,
                ind.get("from"), zero_at, full_at, ind_window,
            ))
        if not inds:
            problems.append(f"dimension {did!r} has no indicators")
        dim = Dimension(did, str(d.get("name_zh", did)), str(d.get("name_en", did)), tuple(inds))
        if d.get("weight") is not None:
            try:
                declared = _finite(d["weight"])
            except (TypeError, ValueError):
                declared = None
            if declared is None or abs(declared - dim.weight) > 1e-6:
                problems.append(f"dimension {did!r}: declared weight {d['weight']} differs from the sum of its "
                                f"indicators' weights ({dim.weight:g})")
        dims.append(dim)
    if not dims:
        problems.append("no dimensions")
    total = sum(i.weight for d in dims for i in d.indicators)
    if dims and abs(total - 100.0) > 1e-6:
        problems.append(f"weights sum to {total:g}, not 100")
    if problems:
        raise FrameworkError(f"{source}: " + "; ".join(problems))
    return Framework(fw_id.strip(), str(version).strip(), str(raw.get("title_zh", "")),
                     str(raw.get("title_en", "")), tuple(levels), tuple(dims), window or DEFAULT_WINDOW_DAYS,
                     min_group, source)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Framework:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FrameworkError(f"framework file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise FrameworkError(f"{path}: not valid YAML: {exc}") from None
    fw = parse_framework(raw, path)
    named = _FILE_VERSION.search(Path(path).stem)
    if named and fw.version != named.group(1) and not fw.version.startswith(named.group(1) + "."):
        raise FrameworkError(f"{path}: the file name says version {named.group(1)} but the file holds version "
                             f"{fw.version!r}")
    from .registry import REGISTRY, all_indicators

    all_indicators()  # every domain registered
    derived = [i for i in fw.indicators if i.source == "derived"]
    unknown = sorted({i.derived_from for i in derived if i.derived_from not in REGISTRY})
    if unknown:
        raise FrameworkError(f"{path}: 'from' names unknown registry indicators: {', '.join(unknown)}")
    not_school = sorted({i.derived_from for i in derived if "school" not in REGISTRY[i.derived_from].levels})
    if not_school:
        raise FrameworkError(f"{path}: these indicators cannot be computed per school: {', '.join(not_school)}")
    return dataclasses.replace(fw, token=f"{path}#{fw.id}@{fw.version}#{mtime}")


def framework() -> Framework:
    path = Path(get_config().maturity_framework)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise FrameworkError(f"framework file not found: {path}") from None
    return _load(str(path), mtime)


# --- scoring (pure) --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SchoolResult:
    score: float
    dimensions: dict[str, float]
    level_by_score: int          # 1-based
    level: int                   # 1-based, after the floor rule
    capped_by: str | None        # the lowest dimension when the floor rule lowered the level


def _usable(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _effective_weights(fw: Framework, scores: Mapping[str, float | None]) -> dict[str, tuple[float, float]]:
    """Per applicable indicator: (dimension points per indicator point, total points per indicator point)."""
    out = {}
    for dim in fw.dimensions:
        applicable = [i for i in dim.indicators if _usable(scores.get(i.id))]
        w = sum(i.weight for i in applicable)
        for i in applicable:
            out[i.id] = (i.weight / w, i.weight / w * dim.weight / 100.0)
    return out


def score_school(fw: Framework, scores: Mapping[str, float | None]) -> SchoolResult:
    """Total, dimension scores and level from indicator scores (None: not applicable, left out and its
    dimension re-weighted; a dimension where nothing applies scores 0). The total is computed from the exact
    dimension scores; then both are rounded to one decimal (``round_score``) and the level is banded on the rounded
    figures — the ones every view prints."""
    total, dims = _exact_scores(fw, scores)
    total, dims = round_score(total), {k: round_score(v) for k, v in dims.items()}
    by_score, level, capped = fw.level(total, dims)
    return SchoolResult(total, dims, by_score + 1, level + 1, capped)


def _exact_scores(fw: Framework, scores: Mapping[str, float | None]) -> tuple[float, dict[str, float]]:
    """(total, dimension scores) before rounding."""
    dims, total = {}, 0.0
    for dim in fw.dimensions:
        applicable = [i for i in dim.indicators if _usable(scores.get(i.id))]
        w = sum(i.weight for i in applicable)
        dims[dim.id] = sum(i.weight * float(scores[i.id]) for i in applicable) / w if w else 0.0
        total += dim.weight * dims[dim.id] / 100.0
    return total, dims


@dataclass(frozen=True)
class GapStep:
    indicator_id: str
    dimension: str
    source: str
    score: float          # now
    target: float         # after the step
    points: float         # target − score, in indicator points
    total_gain: float     # points added to the total score
    reason: str           # "floor": lifts a dimension to the floor; "score": lifts the total into the band


@dataclass(frozen=True)
class GapPlan:
    level: int                    # 1-based, now
    target_level: int | None      # None: already at the top level
    need_total: float | None
    need_dimension: float | None  # every dimension must reach this for the target level
    steps: tuple[GapStep, ...]
    points: float                 # Σ indicator points of the plan (its cost)
    new_score: float | None
    new_level: int | None
    feasible: bool


def _water_fill(levels: dict[str, float], points: float) -> dict[str, float]:
    """Raise the lowest of ``levels`` first (never above 100) until ``points`` are spent: the new levels."""
    out = dict(levels)
    left = points
    while left > 1e-12:
        open_ = [k for k in out if out[k] < 100.0 - 1e-12]
        if not open_:
            break
        low = min(out[k] for k in open_)
        at_low = [k for k in open_ if out[k] <= low + 1e-12]
        above = [out[k] for k in open_ if out[k] > low + 1e-12]
        ceiling = min(above + [100.0])
        step = min(ceiling - low, left / len(at_low))
        for k in at_low:
            out[k] = low + step
        left -= step * len(at_low)
    return out


def plan_next_level(fw: Framework, scores: Mapping[str, float | None]) -> GapPlan:
    """The cheapest indicator improvements that lift a school to the next level.

    Cost model: every indicator point costs the same effort, so the plan minimises Σ points raised. First each
    dimension below the floor of the next level is raised to it through its heaviest indicators (they move the
    dimension most per point, and within a dimension also the total); then the total is raised into the next
    band through the indicators that add the most total points per indicator point, across dimensions. Among
    indicators that move the score equally per point, the lowest are raised first (water-filling): as cheap, and
    it spreads the effort instead of asking one indicator for everything. Indicators that do not apply cannot
    be raised. Targets are rounded up to a tenth of a point (when the rounded plan still reaches the level)."""
    now = score_school(fw, scores)
    top = len(fw.levels)
    if now.level >= top:
        return GapPlan(now.level, None, None, None, (), 0.0, now.score, now.level, True)
    target = now.level + 1                        # 1-based
    need_total = fw.levels[target - 1][1]
    need_dim = fw.levels[target - 2][1]
    eff = _effective_weights(fw, scores)
    new = {k: (float(v) if _usable(v) else None) for k, v in scores.items()}
    for i in fw.indicators:
        new.setdefault(i.id, None)
    reasons: dict[str, str] = {}
    feasible = True

    def spend(ids: list[str], col: int, deficit: float, reason: str) -> float:
        """Cover ``deficit`` (dimension or total points) through ``ids``, best efficiency first; what is left."""
        groups: dict[float, list[str]] = {}
        for k in ids:
            groups.setdefault(round(eff[k][col], 12), []).append(k)
        for e in sorted(groups, reverse=True):
            if deficit <= 1e-6:
                break
            members = {k: new[k] for k in groups[e]}
            room = sum(100.0 - v for v in members.values())
            points = min(room, deficit / e)
            for k, v in _water_fill(members, points).items():
                if v > new[k] + 1e-12:
                    new[k] = v
                    reasons.setdefault(k, reason)
            deficit -= points * e
        return deficit

    # A deficit exists when the stated (rounded) figure misses the bound; it is measured on the exact figure, so
    # that the plan neither leans on rounding nor pays for the rounding of an intermediate total.
    exact_dims = _exact_scores(fw, scores)[1]
    for dim in fw.dimensions:
        deficit = need_dim - exact_dims[dim.id] if now.dimensions[dim.id] < need_dim - 1e-9 else 0.0
        if deficit > 1e-6 and spend([i.id for i in dim.indicators if i.id in eff], 0, deficit, "floor") > 1e-6:
            feasible = False
    stated = score_school(fw, new).score
    deficit = need_total - _exact_scores(fw, new)[0] if stated < need_total - 1e-9 else 0.0
    if deficit > 1e-6 and spend(list(eff), 1, deficit, "score") > 1e-6:
        feasible = False
    rounded = dict(new)
    for k in reasons:
        rounded[k] = min(100.0, math.ceil(new[k] * 10 - 1e-6) / 10)
    if score_school(fw, rounded).level >= score_school(fw, new).level:
        new = rounded
    result = score_school(fw, new)
    steps = []
    for i in fw.indicators:
        before = scores.get(i.id)
        if i.id in reasons and new[i.id] - float(before) > 1e-9:
            points = new[i.id] - float(before)
            steps.append(GapStep(i.id, i.dimension, i.source, float(before), new[i.id], points,
                                 points * eff[i.id][1], reasons[i.id]))
    steps.sort(key=lambda s: (s.reason != "floor", -s.total_gain))
    feasible = feasible and result.level >= target
    return GapPlan(now.level, target, need_total, need_dim, tuple(steps), sum(s.points for s in steps),
                   result.score, result.level, feasible)


# --- reading the warehouse -------------------------------------------------------------------------------------

@memoize()
def assessed_scores(scope: Scope, end: dt.date) -> pd.DataFrame:
    """The assessment round that counts per school as of ``end``, with every score of it assessed by ``end``.

    Rounds are periods whose year — its first four characters, so "2026" and "2026H1" both count as 2026 — is not
    after ``end``'s year; only scores assessed on or before ``end`` exist as of ``end``. Of those rounds the one
    assessed last counts (its latest ``assessed_on``), equal dates going to the greater period: "2026" assessed on
    1 October beats "2026H1" assessed on 1 June although "2026H1" sorts after "2026" as text."""
    s = fact_maturity_score
    known = sa.and_(s.c.school_id.in_(scope.schools), sa.func.substr(s.c.period, 1, 4) <= str(end.year),
                    s.c.assessed_on <= end)
    rounds_q = (sa.select(s.c.school_id, s.c.period, sa.func.max(s.c.assessed_on).label("round_on"))
                .where(known).group_by(s.c.school_id, s.c.period))
    rounds = rounds_q.subquery("rounds")
    last_on = (sa.select(rounds.c.school_id, sa.func.max(rounds.c.round_on).label("round_on"))
               .group_by(rounds.c.school_id).subquery("last_on"))
    again = rounds_q.subquery("rounds_again")
    chosen = (sa.select(again.c.school_id, sa.func.max(again.c.period).label("period"))
              .select_from(again.join(last_on, sa.and_(last_on.c.school_id == again.c.school_id,
                                                       last_on.c.round_on == again.c.round_on)))
              .group_by(again.c.school_id).subquery("chosen"))
    stmt = (sa.select(s.c.school_id, s.c.period, s.c.indicator_id, s.c.score, s.c.evidence, s.c.assessor,
                      s.c.assessed_on)
            .select_from(s.join(chosen, sa.and_(chosen.c.school_id == s.c.school_id, chosen.c.period == s.c.period)))
            .where(s.c.assessed_on <= end))
    return read_df(stmt)


def _schools_with_canteen() -> frozenset[str]:
    from .dims import org_tree

    fac = org_tree().facilities
    return frozenset(fac.loc[fac.facility_type == "canteen", "school_id"].astype(str))


@memoize()
def data_start() -> dt.date | None:
    """The first day of daily data anywhere in the warehouse (one date for every school, so that a school's
    window, and so its score, never depends on the scope it is looked at from)."""
    from .meta import FACT_DATES

    days = []
    for table in _DAILY_STARTS:
        col = agg_meter_daily.c.day if table == "fact_meter_reading" else FACT_DATES[table][0]
        frame = read_df(sa.select(sa.func.min(col).label("first")))
        value = frame.iloc[0, 0] if not frame.empty else None
        if value is not None and not pd.isna(value):
            days.append(pd.Timestamp(value).date())
    return min(days) if days else None


def assessment_window(end: dt.date, days: int | None = None) -> Period:
    """The ``days`` (default: the framework's derived window) ending on ``end``, from the first day of data."""
    days = days or framework().derived_window_days
    start = end - dt.timedelta(days=days - 1)
    first = data_start()
    if first is not None:
        start = min(max(start, first), end)
    return Period(start, end)


def _minus_year(d: dt.date) -> dt.date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


def _school_scope(scope: Scope) -> Scope:
    """The same schools at school granularity (maturity is assessed per school)."""
    if scope.level in ("campus", "facility"):
        return Scope("school", scope.region, scope.school, None, None, scope.schools)
    return scope


def _all_schools() -> Scope:
    from .dims import org_tree

    return Scope("association", schools=tuple(sorted(org_tree().schools.school_id.astype(str))))


INDICATOR_COLUMNS = ["school_id", "indicator_id", "dimension", "source", "weight", "state", "score", "value",
                     "num", "den", "n", "window_start", "window_end", "evidence", "assessor", "period",
                     "assessed_on"]


@memoize()
def _all_indicator_scores(end: dt.date, token: str) -> pd.DataFrame:
    """Every school of the warehouse × every framework indicator, as of ``end``. Private: other schools' rows."""
    from .registry import breakdown

    fw = framework()
    everyone = _all_schools()
    assessed = assessed_scores(everyone, end)
    with_canteen = _schools_with_canteen()
    rows = []
    for ind in fw.indicators:
        base = {"indicator_id": ind.id, "dimension": ind.dimension, "source": ind.source, "weight": ind.weight}
        if ind.source == "assessed":
            hits = assessed.loc[assessed.indicator_id == ind.id].set_index("school_id")
            for school in everyone.schools:
                if school in hits.index:
                    h = hits.loc[school]
                    rows.append({**base, "school_id": school, "state": SCORED,
                                 "score": max(0.0, min(100.0, float(h["score"]))),
                                 "evidence": _text(h["evidence"]), "assessor": _text(h["assessor"]),
                                 "period": str(h["period"]), "assessed_on": pd.Timestamp(h["assessed_on"]).date()})
                else:
                    rows.append({**base, "school_id": school, "state": NOT_ASSESSED, "score": 0.0})
            continue
        window = assessment_window(end, ind.window_days or fw.derived_window_days)
        results = {str(r.key): r for r in breakdown(ind.derived_from, everyone, window, "school")}
        for school in everyone.schools:
            r = results.get(school)
            row = {**base, "school_id": school, "window_start": window.start, "window_end": window.end}
            if r is not None and r.status == "suppressed":
                row.update(state=SUPPRESSED)   # neither the value nor the small n leaves the registry
            elif (r is None or r.value is None) and ind.derived_from in CANTEEN_INDICATORS and school in with_canteen:
                row.update(state=NO_DATA, score=0.0)   # a canteen, but no device reported: nothing is online
            elif r is None or r.value is None:
                row.update(state=NOT_APPLICABLE)
            else:
                row.update(state=SCORED, score=ind.scale(r.value), value=r.value, num=r.num, den=r.den, n=r.n)
            rows.append(row)
    frame = pd.DataFrame(rows, columns=INDICATOR_COLUMNS)
    return frame.astype({"score": "float64", "value": "float64", "num": "float64", "den": "float64"})


def _text(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v) else str(v)


def indicator_scores(scope: Scope, period: Period) -> pd.DataFrame:
    """Per school of the scope and framework indicator, as of the period's end: state (scored, not_assessed,
    not_applicable, suppressed, no_data), score 0–100 (None when left out), the derived value with its numerator,
    denominator, n and window, or the assessed evidence, assessor, period and date."""
    fw = framework()
    frame = _all_indicator_scores(period.end, fw.token)
    return frame.loc[frame.school_id.isin(_school_scope(scope).schools)].reset_index(drop=True)


SCORE_COLUMNS = ["school_id", "score", "level_by_score", "level", "capped_by", "assessed_period", "region_code",
                 "school_type"]


@memoize()
def _all_school_scores(end: dt.date, token: str) -> pd.DataFrame:
    """Every school's total, dimensions and level as of ``end``. Private: other schools' rows."""
    from .dims import org_tree

    fw = framework()
    scores = _all_indicator_scores(end, token)
    out = []
    for school, group in scores.groupby("school_id", sort=True):
        by_id = {k: (None if pd.isna(v) else float(v)) for k, v in zip(group.indicator_id, group.score)}
        res = score_school(fw, by_id)
        periods = group.loc[group.state == SCORED, "period"].dropna()
        out.append({"school_id": school, "score": res.score, "level_by_score": res.level_by_score,
                    "level": res.level, "capped_by": res.capped_by,
                    "assessed_period": periods.max() if not periods.empty else None,
                    **{f"dim.{k}": v for k, v in res.dimensions.items()}})
    frame = pd.DataFrame(out, columns=SCORE_COLUMNS[:6] + [f"dim.{d.id}" for d in fw.dimensions])
    schools = org_tree().schools[["school_id", "region_code", "school_type"]].astype(str)
    return frame.merge(schools, on="school_id", how="left")


def school_scores(scope: Scope, period: Period) -> pd.DataFrame:
    """Per school of the scope, as of the period's end: total score, level by score, level after the floor rule,
    capping dimension, the assessment round used, region, type and one ``dim.<id>`` column per dimension."""
    fw = framework()
    frame = _all_school_scores(period.end, fw.token)
    return frame.loc[frame.school_id.isin(_school_scope(scope).schools)].reset_index(drop=True)


# --- benchmarks -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerBenchmark:
    """A school's peer group described by distribution figures only (never another school's row)."""

    school_id: str
    basis: str                    # "type_region": same type in the same region; "type": same type anywhere
    school_type: str
    region_code: str | None       # set when basis is type_region
    size: int                     # schools in the group, the school included
    min_group: int
    median: dict | None = None    # "score" and each dimension id → value; None when size < min_group
    p75: dict | None = None
    best: dict | None = None      # the highest value per key (per dimension, not one school's profile)
    percentile: float | None = None

    @property
    def shown(self) -> bool:
        return self.size >= self.min_group


def _peer_members(frame: pd.DataFrame, school_id: str, min_group: int) -> tuple[str, pd.DataFrame]:
    me = frame.loc[frame.school_id == school_id].iloc[0]
    same_type = frame.loc[frame.school_type == me.school_type]
    in_region = same_type.loc[same_type.region_code == me.region_code]
    if len(in_region) >= min_group:
        return "type_region", in_region
    return "type", same_type


def percentile_rank(value: float, group_values) -> float | None:
    """Share of the *other* schools of the group scoring lower (ties count half), in %: the best of a group
    is at 100, the worst at 0. ``group_values`` includes the school's own value once."""
    values = [float(v) for v in group_values]
    others = len(values) - 1
    if others < 1:
        return None
    below = sum(1 for v in values if v < value - 1e-9)
    ties = sum(1 for v in values if abs(v - value) <= 1e-9) - 1
    return 100.0 * (below + 0.5 * ties) / others


def _distribution(frame: pd.DataFrame, keys: list[str]) -> tuple[dict, dict, dict]:
    med = {k: float(frame[c].median()) for k, c in keys}
    p75 = {k: float(frame[c].quantile(0.75)) for k, c in keys}
    best = {k: float(frame[c].max()) for k, c in keys}
    return med, p75, best


def _keys(fw: Framework) -> list[tuple[str, str]]:
    return [("score", "score")] + [(d.id, f"dim.{d.id}") for d in fw.dimensions]


def _single_school(scope: Scope) -> str:
    if scope.level not in ("school", "campus", "facility") or not scope.school or scope.school not in scope.schools:
        raise InputError("请选择一所学校", "choose one school")
    return scope.school


def peer_benchmark(scope: Scope, period: Period) -> PeerBenchmark:
    """The peer group of the scope's school (same school_type, and the same region when that gives at least
    ``min_group`` schools) as distribution figures: median, P75, best per dimension and total, and the school's
    percentile. Groups under ``min_group`` schools get their size only."""
    school = _single_school(scope)
    fw = framework()
    frame = _all_school_scores(period.end, fw.token)
    if school not in set(frame.school_id):
        raise InputError("该学校没有成熟度数据", "no maturity figures for this school")
    basis, members = _peer_members(frame, school, fw.min_group)
    me = frame.loc[frame.school_id == school].iloc[0]
    bench = PeerBenchmark(school, basis, str(me.school_type), str(me.region_code) if basis == "type_region" else None,
                          len(members), fw.min_group)
    if not bench.shown:
        return bench
    med, p75, best = _distribution(members, _keys(fw))
    return PeerBenchmark(**{**bench.__dict__, "median": med, "p75": p75, "best": best,
                            "percentile": percentile_rank(float(me.score), members.score)})


def peer_percentiles(scope: Scope, period: Period) -> pd.DataFrame:
    """For each school of the scope: its peer-group basis and size and its percentile within the group (None
    for groups under ``min_group``)."""
    fw = framework()
    frame = _all_school_scores(period.end, fw.token)
    rows = []
    for school in _school_scope(scope).schools:
        if school not in set(frame.school_id):
            continue
        basis, members = _peer_members(frame, school, fw.min_group)
        me = float(frame.loc[frame.school_id == school, "score"].iloc[0])
        rows.append({"school_id": school, "peer_basis": basis, "peer_size": len(members),
                     "percentile": percentile_rank(me, members.score) if len(members) >= fw.min_group else None})
    return pd.DataFrame(rows, columns=["school_id", "peer_basis", "peer_size", "percentile"])


@dataclass(frozen=True)
class ScopeDistribution:
    size: int
    min_group: int
    median: dict | None = None
    p75: dict | None = None
    best: dict | None = None
    worst: dict | None = None
    levels: dict | None = None    # 1-based level → schools

    @property
    def shown(self) -> bool:
        return self.size >= self.min_group


def scope_distribution(scope: Scope, period: Period) -> ScopeDistribution:
    """Median, P75, best and worst score and dimension scores over the scope's schools, and the count per
    level; sizes only when the scope holds fewer than ``min_group`` schools."""
    fw = framework()
    frame = school_scores(scope, period)
    dist = ScopeDistribution(len(frame), fw.min_group)
    if not dist.shown:
        return dist
    med, p75, best = _distribution(frame, _keys(fw))
    worst = {k: float(frame[c].min()) for k, c in _keys(fw)}
    counts = frame["level"].value_counts()
    levels = {i: int(counts.get(i, 0)) for i in range(1, len(fw.levels) + 1)}
    return ScopeDistribution(dist.size, dist.min_group, med, p75, best, worst, levels)


def previous_end(period: Period) -> dt.date:
    """The as-of date one year before the period's end (29 February maps to 28 February)."""
    return _minus_year(period.end)


def year_on_year(scope: Scope, period: Period) -> pd.DataFrame:
    """Per school of the scope: score and level now and as of one year earlier, and the change. A school has
    a previous figure only when it then had an assessment round and the warehouse already held daily data
    (otherwise the derived dimensions would count as empty and the comparison would mislead)."""
    fw = framework()
    now = school_scores(scope, period)
    prev_end = previous_end(period)
    first = data_start()
    cols = ["school_id", "score", "level", "score_prev", "level_prev", "assessed_period_prev", "change",
            "level_change"]
    if now.empty:
        return pd.DataFrame(columns=cols)
    out = now[["school_id", "score", "level"]].copy()
    if first is None or prev_end < first:
        prev = pd.DataFrame(columns=["school_id", "score_prev", "level_prev", "assessed_period_prev"])
    else:
        prev = _all_school_scores(prev_end, fw.token)
        prev = prev.loc[prev.school_id.isin(out.school_id) & prev.assessed_period.notna(),
                        ["school_id", "score", "level", "assessed_period"]]
        prev = prev.rename(columns={"score": "score_prev", "level": "level_prev",
                                    "assessed_period": "assessed_period_prev"})
    out = out.merge(prev, on="school_id", how="left")
    out["change"] = out["score"] - out["score_prev"].astype(float)
    out["level_change"] = out["level"] - out["level_prev"].astype(float)
    return out[cols]


def ranking(scope: Scope, period: Period) -> pd.DataFrame:
    """The assessors' ranking of the scope's schools (rank 1 = highest score; equal scores share a rank): names,
    region, type, score, levels, capping dimension, dimension scores, peer percentile and the year-on-year
    change. Rows of the scope's schools only."""
    from .dims import org_tree

    frame = school_scores(scope, period)
    extra = ["rank", "school_name", "school_name_en", "region_name", "peer_basis", "peer_size", "percentile",
             "score_prev", "level_prev", "change", "level_change"]
    if frame.empty:
        return pd.DataFrame(columns=list(frame.columns) + extra)
    names = org_tree().schools[["school_id", "school_name", "school_name_en", "region_name"]]
    out = (frame.merge(names, on="school_id", how="left")
           .merge(peer_percentiles(scope, period), on="school_id", how="left")
           .merge(year_on_year(scope, period)[["school_id", "score_prev", "level_prev", "change", "level_change"]],
                  on="school_id", how="left"))
    out["rank"] = out["score"].rank(ascending=False, method="min").astype(int)
    return out.sort_values(["rank", "school_id"]).reset_index(drop=True)


# --- the gap list and the evidence pack ----------------------------------------------------------------------

def gap_plan(scope: Scope, period: Period) -> GapPlan:
    """The cheapest indicator improvements lifting the scope's school to the next level."""
    school = _single_school(scope)
    fw = framework()
    frame = _all_indicator_scores(period.end, fw.token)
    mine = frame.loc[frame.school_id == school]
    if mine.empty:
        raise InputError("该学校没有成熟度数据", "no maturity figures for this school")
    return plan_next_level(fw, {k: (None if pd.isna(v) else float(v)) for k, v in zip(mine.indicator_id, mine.score)})


def evidence_tables(fw: Framework | None = None) -> tuple[str, ...]:
    """Warehouse tables behind the framework's figures (for "data as of")."""
    from .registry import get

    fw = fw or framework()
    tables = {"fact_maturity_score"}
    for i in fw.indicators:
        if i.source == "derived":
            tables.update(get(i.derived_from).tables)
    return tuple(sorted(tables))


@dataclass
class EvidencePack:
    """Everything an assessor's evidence workbook holds for one school (plain data)."""

    framework: Framework
    school: dict                  # school_id, school_name, school_name_en, region_code, region_name, school_type
    scope: dict                   # the URL parameters of the scope
    period: Period                # the selected period (only its end matters)
    window: Period                # the default derived window
    data_as_of: dict              # {"loaded_at", "fact"}
    generated_at: dt.datetime
    summary: dict                 # the school's row of school_scores
    indicators: pd.DataFrame      # indicator_scores rows + names, registry source, unit, formula, scale
    benchmark: PeerBenchmark
    plan: GapPlan
    previous: dict | None         # {"as_of", "score", "level", "assessed_period"} or None


def evidence_pack(scope: Scope, period: Period) -> EvidencePack:
    """The evidence pack of the scope's school as of the period's end."""
    from . import meta
    from .dims import org_tree
    from .registry import get

    school = _single_school(scope)
    fw = framework()
    school_scope = Scope("school", scope.region, school, None, None, (school,))
    summary = school_scores(school_scope, period)
    if summary.empty:
        raise InputError("该学校没有成熟度数据", "no maturity figures for this school")
    rows = indicator_scores(school_scope, period).copy()
    fw_ind = [fw.indicator(k) for k in rows.indicator_id]
    reg = [get(i.derived_from) if i.source == "derived" else None for i in fw_ind]
    rows["name_zh"] = [i.name_zh for i in fw_ind]
    rows["name_en"] = [i.name_en for i in fw_ind]
    rows["derived_from"] = [i.derived_from for i in fw_ind]
    rows["zero_at"] = [i.zero_at if i.source == "derived" else None for i in fw_ind]
    rows["full_at"] = [i.full_at if i.source == "derived" else None for i in fw_ind]
    for col in ("name_zh", "name_en", "unit", "formula_zh", "formula_en"):
        rows[f"from_{col}" if col.startswith("name") else col] = [getattr(r, col) if r else None for r in reg]
    tree = org_tree()
    srow = tree.schools.loc[tree.schools.school_id == school].iloc[0]
    info = {k: (None if pd.isna(srow[k]) else str(srow[k]))
            for k in ("school_id", "school_name", "school_name_en", "region_code", "region_name", "school_type")}
    yoy = year_on_year(school_scope, period)
    previous = None
    if not yoy.empty and not pd.isna(yoy.iloc[0]["score_prev"]):
        r = yoy.iloc[0]
        previous = {"as_of": previous_end(period), "score": float(r["score_prev"]), "level": int(r["level_prev"]),
                    "assessed_period": r["assessed_period_prev"]}
    try:
        from zoneinfo import ZoneInfo

        now = dt.datetime.now(ZoneInfo(get_config().timezone)).replace(tzinfo=None, microsecond=0)
    except Exception:  # unknown zone on a minimal system
        now = dt.datetime.now().replace(microsecond=0)
    return EvidencePack(
        framework=fw, school=info, scope=scope.params(), period=period, window=assessment_window(period.end),
        data_as_of=meta.as_of(school_scope, evidence_tables(fw)), generated_at=now,
        summary=summary.iloc[0].to_dict(), indicators=rows, benchmark=peer_benchmark(school_scope, period),
        plan=gap_plan(school_scope, period), previous=previous,
    )


# --- registry entries -----------------------------------------------------------------------------------------

def _median_measure(column: str):
    def measure(scope: Scope, period: Period, by: str | None) -> pd.DataFrame:
        if by not in (None, "school", "region"):
            return pd.DataFrame(columns=["key", "value", "n"])
        try:
            frame = school_scores(scope, period)
        except FrameworkError as exc:
            # A broken framework file must not take the overview, the screens and the API down with it: the
            # tiles show "no data", the maturity page names the problem.
            logger.warning("maturity framework unusable: %s", exc)
            return pd.DataFrame(columns=(["key"] if by else []) + ["value", "n"])
        if frame.empty:
            return pd.DataFrame(columns=(["key"] if by else []) + ["value", "n"])
        if by == "school":
            extra = frame[["school_id", column, "capped_by", "level_by_score"]].rename(
                columns={"school_id": "key", column: "value"})
            extra["n"] = 1
            return extra
        min_group = framework().min_group

        def summary(values: pd.Series) -> dict:
            # Above one school, the figure is a distribution: withheld under min_group schools (INDICATORS.md,
            # "with fewer than 5 peers, show no distribution"). Levels take the lower median: a real level.
            n = int(values.count())
            if n < min_group:
                return {"value": None, "n": n, "too_few": True}
            middle = values.sort_values().iloc[(n - 1) // 2] if column == "level" else values.median()
            return {"value": float(middle), "n": n, "min": float(values.min()),
                    "p75": float(values.quantile(0.75)), "max": float(values.max())}

        if by == "region":
            rows = [{"key": key, **summary(group[column])} for key, group in frame.groupby("region_code")]
            return pd.DataFrame(rows)
        if len(frame) == 1:
            row = frame.iloc[0]
            return pd.DataFrame({"value": [row[column]], "n": [1], "capped_by": [row["capped_by"]],
                                 "level_by_score": [row["level_by_score"]]})
        return pd.DataFrame([summary(frame[column])])

    measure.__name__ = f"measure_{column}"
    return measure


register(Indicator(
    id="maturity.score", domain="maturity", name_zh="数字化成熟度得分", name_en="Digital maturity score", unit="分",
    direction="higher", kind="custom", measure=_median_measure("score"), levels=("association", "region", "school"),
    tables=("fact_maturity_score",), alert_grain="school",
    formula_zh="Σ 权重 × 指标得分 ÷ 100（派生指标取截至期末的12个月）；地区与协会层级为各校中位数",
    formula_en="Σ weight × indicator score ÷ 100 (derived indicators over the 12 months to the period's end); "
               "median over schools at region and association level",
))
register(Indicator(
    id="maturity.level", domain="maturity", name_zh="成熟度等级", name_en="Maturity level", unit="级",
    direction="none", kind="custom", measure=_median_measure("level"), levels=("association", "region", "school"),
    tables=("fact_maturity_score",), decimals=0,
    formula_zh="按得分分档（L1<40, L2 40–59, L3 60–74, L4 75–89, L5≥90），任一维度低于下一档下限则降级",
    formula_en="score band (L1<40, L2 40–59, L3 60–74, L4 75–89, L5≥90), capped when a dimension is below the "
               "lower band of the level below",
))
