"""The organisation tree (regions, schools, campuses, facilities): small, read often, cached."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from .cache import memoize, store_get, store_set
from .engine import WarehouseUnavailable, read_df
from .schema import dim_campus, dim_facility, dim_school

logger = logging.getLogger(__name__)
_LAST_GOOD_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True)
class OrgTree:
    schools: pd.DataFrame     # school_id, school_name, school_name_en, region_code, region_name, school_type, boarding
    campuses: pd.DataFrame    # campus_id, school_id, campus_name
    facilities: pd.DataFrame  # facility_id, campus_id, school_id, facility_name, facility_type, floor_area_m2, capacity

    def name(self, level: str, key: str | None, lang: str = "zh") -> str:
        """Display name of an entity; the id itself when unknown."""
        if key is None:
            return ""
        if level == "region":
            hit = self.schools.loc[self.schools.region_code == key, "region_name"]
        elif level == "school":
            row = self.schools.loc[self.schools.school_id == key]
            if lang == "en" and not row.empty and isinstance(row.iloc[0].school_name_en, str) and row.iloc[0].school_name_en:
                return row.iloc[0].school_name_en
            hit = row["school_name"]
        elif level == "campus":
            hit = self.campuses.loc[self.campuses.campus_id == key, "campus_name"]
        elif level == "facility":
            hit = self.facilities.loc[self.facilities.facility_id == key, "facility_name"]
        else:
            return key
        return str(hit.iloc[0]) if len(hit) else str(key)

    def names(self, level: str, keys, lang: str = "zh") -> dict[str, str]:
        return {k: self.name(level, k, lang) for k in keys}


_LAST_GOOD_KEY = "dims:org_tree:last_good"


@memoize()
def _org_tree() -> OrgTree:
    schools = read_df(sa.select(dim_school).order_by(dim_school.c.region_code, dim_school.c.school_id))
    campuses = read_df(sa.select(dim_campus).order_by(dim_campus.c.school_id, dim_campus.c.campus_id))
    facilities = read_df(sa.select(dim_facility).order_by(dim_facility.c.school_id, dim_facility.c.facility_id))
    tree = OrgTree(schools, campuses, facilities)
    store_set(_LAST_GOOD_KEY, tree, timeout=_LAST_GOOD_TTL_S)
    return tree


def org_tree() -> OrgTree:
    """The organisation tree of the current data. While the warehouse is unreachable, the last tree read (kept
    in the shared cache, outside the data version) stands in: names and scope checks keep working, so a wall
    screen can go on showing its last good snapshot instead of an error."""
    try:
        return _org_tree()
    except WarehouseUnavailable:
        last = store_get(_LAST_GOOD_KEY)
        if last is None:
            raise
        logger.info("warehouse unavailable: using the last organisation tree read")
        return last


def ancestors(scope, lang: str = "zh") -> list[tuple[str, str | None, dict]]:
    """The chain from the association down to the scope: (level, display name, URL params selecting it)."""
    tree = org_tree()
    chain = [("association", None, {})]
    params: dict = {}
    for level in ("region", "school", "campus", "facility"):
        key = getattr(scope, level)
        if key:
            params = {**params, level: key}
            chain.append((level, tree.name(level, key, lang), dict(params)))
    return chain


def children_of(scope, lang: str = "zh") -> list[tuple[str, str]]:
    """(id, name) of the entities one level below the scope, inside the scope's schools."""
    tree = org_tree()
    level = scope.child_level
    schools = set(scope.schools)
    if level == "region":
        s = tree.schools.loc[tree.schools.school_id.isin(schools)].drop_duplicates("region_code")
        return [(str(r.region_code), str(r.region_name)) for r in s.itertuples()]
    if level == "school":
        s = tree.schools.loc[tree.schools.school_id.isin(schools)]
        return [(str(r.school_id), tree.name("school", str(r.school_id), lang)) for r in s.itertuples()]
    if level == "campus":
        c = tree.campuses.loc[(tree.campuses.school_id == scope.school) & tree.campuses.school_id.isin(schools)]
        return [(str(r.campus_id), str(r.campus_name)) for r in c.itertuples()]
    if level == "facility":
        f = tree.facilities.loc[(tree.facilities.campus_id == scope.campus) & tree.facilities.school_id.isin(schools)]
        return [(str(r.facility_id), str(r.facility_name)) for r in f.itertuples()]
    return []


def scope_nav(scope, lang: str = "zh") -> dict:
    """What the scope bar needs: the ancestor chain and the children one level down."""
    return {"ancestors": ancestors(scope, lang), "child_level": scope.child_level,
            "children": children_of(scope, lang)}
