"""What the overview shows, assembled from the registry: headline tiles per domain, the alert list, trends
and the one-level-down breakdown of an indicator. Plain data out; the page renders it with components."""
from __future__ import annotations

from dataclasses import dataclass, field

from . import meta, registry
from .config import get_config
from .dims import org_tree
from .period import Period
from .registry import RED, Result, Tile
from .scope import LEVELS, Scope

DOMAINS = ("dining", "energy", "service", "maturity")
DOMAIN_NAMES = {
    "dining": ("餐饮安全", "Dining safety"),
    "energy": ("能源", "Energy"),
    "service": ("服务满意度", "Service satisfaction"),
    "maturity": ("成熟度", "Digital maturity"),
}
# The series drawn as each domain's small trend.
TREND = {"dining": "dining.sample_retention", "energy": "energy.total_kgce", "service": "service.csi"}


@dataclass
class TileData:
    tile: Tile
    as_of: dict


@dataclass
class Alert:
    indicator_id: str
    domain: str
    level: str
    key: str | None
    name: str
    result: Result
    params: dict = field(default_factory=dict)   # URL parameters selecting the place


def domain_tiles(domain: str, scope: Scope, period: Period) -> list[TileData]:
    ids = get_config().overview.get(domain, ())
    out = []
    for ind_id in ids:
        ind = registry.get(ind_id)
        out.append(TileData(registry.tile(ind_id, scope, period), meta.as_of(scope, ind.tables)))
    return out


def place_name(level: str, key: str, lang: str = "zh") -> str:
    """A name that identifies the place on its own: campuses and facilities carry their school's name
    (every school has a 第一食堂)."""
    tree = org_tree()
    name = tree.name(level, key, lang)
    if level in ("campus", "facility"):
        table = tree.campuses if level == "campus" else tree.facilities
        row = table.loc[table[f"{level}_id"] == key]
        if not row.empty:
            return f"{tree.name('school', str(row.iloc[0].school_id), lang)} · {name}"
    return name


def _place_params(level: str, key: str) -> dict:
    tree = org_tree()
    if level == "region":
        return {"region": key}
    if level == "school":
        return {"school": key}
    if level == "campus":
        return {"campus": key}
    if level == "facility":
        row = tree.facilities.loc[tree.facilities.facility_id == key]
        return {"facility": key} if row.empty else {"school": str(row.iloc[0].school_id), "facility": key}
    return {}


def alerts(scope: Scope, period: Period, lang: str = "zh", domains=DOMAINS) -> list[Alert]:
    """Every red indicator inside the scope, located at the indicator's alert grain (or the scope itself when
    the scope is already finer)."""
    tree = org_tree()
    out: list[Alert] = []
    depth = LEVELS.index(scope.level)
    for ind in registry.all_indicators():
        if ind.alert_grain is None or ind.domain not in domains:
            continue
        grain = ind.alert_grain
        if LEVELS.index(grain) <= depth:
            if scope.level not in ind.levels:
                continue
            res = registry.evaluate(ind.id, scope, period)
            if res.status == RED:
                key = scope.key()
                out.append(Alert(ind.id, ind.domain, scope.level, key, tree.name(scope.level, key, lang) if key else "",
                                 res, scope.params()))
            continue
        for res in registry.breakdown(ind.id, scope, period, grain):
            if res.status == RED and res.key is not None:
                out.append(Alert(ind.id, ind.domain, grain, str(res.key), place_name(grain, str(res.key), lang), res,
                                 _place_params(grain, str(res.key))))
    order = {d: i for i, d in enumerate(DOMAINS)}
    out.sort(key=lambda a: (order.get(a.domain, 9), a.indicator_id, a.name))
    return out


def trend(domain: str, scope: Scope, period: Period) -> tuple[str, str, list[Result]] | None:
    """The domain's trend series as (indicator id, "D" or "W", points), or None when the domain has none."""
    ind_id = TREND.get(domain)
    if ind_id is None:
        return None
    # Satisfaction per day rests on few people and is mostly suppressed: weekly always.
    freq = "W" if domain == "service" or period.days > 60 else "D"
    return ind_id, freq, registry.series(ind_id, scope, period, freq)


def children(indicator_id: str, scope: Scope, period: Period) -> tuple[str | None, list[Result]]:
    """The indicator one level down from the scope: (child level, results sorted worst first)."""
    level = scope.child_level
    ind = registry.get(indicator_id)
    while level is not None and level not in ind.levels:
        level = None
    if level is None:
        return None, []
    # Rows without a place (work orders and survey answers that name no facility) have no child to drill into.
    results = [r for r in registry.breakdown(indicator_id, scope, period, level) if r.key is not None]
    rank = {"red": 0, "amber": 1, "green": 2, "none": 3, "suppressed": 4, "nodata": 5}
    reverse = ind.direction == "higher"
    results.sort(key=lambda r: (rank.get(r.status, 9), (r.value if r.value is not None else 0) * (1 if reverse else -1)))
    return level, results
