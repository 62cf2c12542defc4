"""Scopes: what a request asks to see, intersected with what the caller may see (default deny).

A ``Scope`` is built on the server only, by ``resolve_scope`` from request parameters and the caller's
``Access``. It carries the resolved tuple of schools in scope, so every query filters on it and every cache key
includes it. An empty tuple returns nothing.

Query helpers here add the joins, filters and grouping key that scope a fact table, so domain modules never
repeat the hierarchy logic.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from .dims import org_tree
from .errors import InputError, ScopeDenied
from .schema import dim_facility, dim_school

LEVELS = ("association", "region", "school", "campus", "facility")
CHILD = {"association": "region", "region": "school", "school": "campus", "campus": "facility", "facility": None}
PARENT = {v: k for k, v in CHILD.items() if v}
PARAMS = ("region", "school", "campus", "facility")

LEVEL_NAMES = {
    "association": ("协会", "Association"),
    "region": ("地区", "Region"),
    "school": ("学校", "School"),
    "campus": ("校区", "Campus"),
    "facility": ("设施", "Facility"),
}


@dataclass(frozen=True)
class Access:
    """What a caller may see: ``schools=None`` means every school of the warehouse; the default, nothing."""

    schools: frozenset[str] | None = frozenset()
    facility: str | None = None  # a canteen manager sees one facility
    label: str = "nobody"

    @classmethod
    def everything(cls) -> "Access":
        return cls(None, None, "all")


@dataclass(frozen=True)
class Scope:
    level: str
    region: str | None = None
    school: str | None = None
    campus: str | None = None
    facility: str | None = None
    schools: tuple[str, ...] = field(default=())

    @property
    def child_level(self) -> str | None:
        return CHILD[self.level]

    def params(self) -> dict[str, str]:
        """The URL parameters that select this scope (the most specific ones suffice; parents are included)."""
        return {k: getattr(self, k) for k in PARAMS if getattr(self, k)}

    def key(self) -> str | None:
        """The id of the scoped entity (None at association level)."""
        return getattr(self, self.level) if self.level != "association" else None

    def child(self, key: str) -> "Scope":
        """The scope one level down (``key`` being a child id), still limited to this scope's schools."""
        level = self.child_level
        if level is None:
            raise InputError("设施已是最低层级", "a facility has no lower level")
        return _build(org_tree(), {level: key}, set(self.schools))

    def __repr__(self) -> str:  # stable: part of cache keys
        parts = [self.level] + [f"{k}={getattr(self, k)}" for k in PARAMS if getattr(self, k)]
        return f"Scope({','.join(parts)};{'|'.join(self.schools)})"


def _unknown(kind_zh: str, kind_en: str, value: str) -> InputError:
    return InputError(f"未找到{kind_zh}：{value[:64]}", f"unknown {kind_en}: {value[:64]}")


def _build(tree, params: dict[str, str], allowed_schools) -> Scope:
    """Resolve params against the org tree (consistency of parents included), limited to allowed_schools."""
    facility = params.get("facility")
    campus = params.get("campus")
    school = params.get("school")
    region = params.get("region")
    if facility:
        row = tree.facilities.loc[tree.facilities.facility_id == facility]
        if row.empty:
            raise _unknown("设施", "facility", facility)
        campus = _consistent(campus, str(row.iloc[0].campus_id), "campus", "校区")
        school = _consistent(school, str(row.iloc[0].school_id), "school", "学校")
    if campus:
        row = tree.campuses.loc[tree.campuses.campus_id == campus]
        if row.empty:
            raise _unknown("校区", "campus", campus)
        school = _consistent(school, str(row.iloc[0].school_id), "school", "学校")
    if school:
        row = tree.schools.loc[tree.schools.school_id == school]
        if row.empty:
            raise _unknown("学校", "school", school)
        region = _consistent(region, str(row.iloc[0].region_code), "region", "地区")
        schools = (school,)
    elif region:
        hits = tree.schools.loc[tree.schools.region_code == region, "school_id"]
        if hits.empty:
            raise _unknown("地区", "region", region)
        schools = tuple(hits)
    else:
        schools = tuple(tree.schools.school_id)
    if allowed_schools is not None:
        schools = tuple(s for s in schools if s in allowed_schools)
    level = "facility" if facility else "campus" if campus else "school" if school else "region" if region else "association"
    return Scope(level, region, school, campus, facility, tuple(sorted(schools)))


def _home(tree, access: Access) -> dict[str, str]:
    """Where a caller lands when the URL names no place: a canteen manager on the canteen, a school's people
    on their school, a region's officer on the region; the association otherwise."""
    if access.facility is not None:
        return {"facility": access.facility}
    allowed = access.schools
    if allowed is None or not allowed:
        return {}
    if len(allowed) == 1:
        return {"school": next(iter(allowed))}
    regions = set(tree.schools.loc[tree.schools.school_id.isin(allowed), "region_code"])
    if len(regions) == 1:
        region = next(iter(regions))
        if set(tree.schools.loc[tree.schools.region_code == region, "school_id"]) <= set(allowed):
            return {"region": region}
    return {}


def _consistent(given: str | None, actual: str, en: str, zh: str) -> str:
    if given and given != actual:
        raise InputError(f"{zh}参数与所选层级不一致：{given[:64]}", f"{en} {given[:64]!r} does not contain the selected item")
    return actual


def resolve_scope(params: dict, access: Access | None = None) -> Scope:
    """Build the scope of a request. Unknown ids raise InputError; ids outside ``access`` raise ScopeDenied."""
    if access is None:
        raise ScopeDenied("无权访问", "no access")
    clean = {}
    for k in PARAMS:
        v = params.get(k)
        if isinstance(v, list):
            v = v[0] if v else None
        if v is not None and str(v).strip():
            clean[k] = str(v).strip()
    level = params.get("level")
    tree = org_tree()
    if not clean and not level:
        clean = _home(tree, access)
    scope = _build(tree, clean, None)
    if level and level not in LEVELS:
        raise InputError(f"未知层级：{str(level)[:32]}", f"unknown level: {str(level)[:32]}")
    if level and level != scope.level:
        raise InputError(
            f"层级 {level} 与所给参数不符（参数指向 {scope.level}）",
            f"level {level} does not match the parameters given (they select {scope.level})",
        )
    allowed = access.schools
    if access.facility is not None:
        if scope.facility != access.facility:
            raise ScopeDenied("超出您的数据权限范围", "outside your data scope")
        return scope
    if allowed is not None:
        inside = [s for s in scope.schools if s in allowed]
        # A place that shares no school with the caller's access is refused outright — a region included: an
        # empty answer would still be an answer (and go unaudited). The association is everyone's top level
        # (it shows the schools one may see; none for an account without data access, like an admin).
        if scope.level != "association" and not inside:
            raise ScopeDenied("超出您的数据权限范围", "outside your data scope")
        scope = Scope(scope.level, scope.region, scope.school, scope.campus, scope.facility, tuple(inside))
    return scope


# --- query helpers ------------------------------------------------------------------------------------------

def key_column(level: str | None, fac, sch):
    """The grouping column for a child level, given the facility and school tables joined in a query."""
    return {
        None: None,
        "region": sch.c.region_code if sch is not None else None,
        "school": fac.c.school_id if fac is not None else sch.c.school_id,
        "campus": fac.c.campus_id if fac is not None else None,
        "facility": fac.c.facility_id if fac is not None else None,
    }[level]


def scope_facility_fact(stmt, scope: Scope, facility_col, by: str | None = None):
    """Scope a select over a fact keyed by facility_id. Returns (stmt, key column or None).

    Joins dim_facility (and dim_school when grouping by region), filters on the scope's schools and on the
    campus/facility when set.
    """
    f = dim_facility
    stmt = stmt.join(f, f.c.facility_id == facility_col)
    s = None
    if by == "region":
        s = dim_school
        stmt = stmt.join(s, s.c.school_id == f.c.school_id)
    stmt = stmt.where(f.c.school_id.in_(scope.schools))
    if scope.campus:
        stmt = stmt.where(f.c.campus_id == scope.campus)
    if scope.facility:
        stmt = stmt.where(f.c.facility_id == scope.facility)
    key = key_column(by, f, s)
    return stmt, key


def scope_school_fact(stmt, scope: Scope, school_col, facility_col=None, by: str | None = None):
    """Scope a select over a fact keyed by school_id with an optional facility_id.

    Rows without a facility count at school level and above; at campus or facility level they cannot be
    attributed and drop out.
    """
    s = None
    f = None
    if by == "region":
        s = dim_school
        stmt = stmt.join(s, s.c.school_id == school_col)
    needs_facility = scope.campus or scope.facility or by in ("campus", "facility")
    if needs_facility:
        if facility_col is None:
            raise InputError("该指标不能细分到校区或设施", "this indicator has no campus or facility breakdown")
        f = dim_facility
        stmt = stmt.join(f, f.c.facility_id == facility_col, isouter=not (scope.campus or scope.facility))
    stmt = stmt.where(school_col.in_(scope.schools))
    if scope.campus:
        stmt = stmt.where(f.c.campus_id == scope.campus)
    if scope.facility:
        stmt = stmt.where(facility_col == scope.facility)
    key = {None: None, "region": s.c.region_code if s is not None else None, "school": school_col,
           "campus": f.c.campus_id if f is not None else None, "facility": facility_col}[by]
    return stmt, key


def with_key(stmt, key, label: str = "key"):
    """Add a grouping key column to an aggregate select."""
    if key is None:
        return stmt
    return stmt.add_columns(key.label(label)).group_by(key)


def facilities_in_scope(scope: Scope):
    """A subquery of the facility ids inside the scope (for filtering early, before joins and unions)."""
    f = dim_facility
    stmt = sa.select(f.c.facility_id).where(f.c.school_id.in_(scope.schools))
    if scope.campus:
        stmt = stmt.where(f.c.campus_id == scope.campus)
    if scope.facility:
        stmt = stmt.where(f.c.facility_id == scope.facility)
    return stmt

