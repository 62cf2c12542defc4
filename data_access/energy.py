"""Energy (能源): queries and indicator declarations.

Day-resolution figures read the ``agg_meter_daily`` rollup, never raw hourly rows. Totals count top-level meters
only (no parent); sub-meters appear in breakdowns. Standard coal and CO₂ factors come from config.yaml.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from . import calendar as cal_mod
from .cache import memoize
from .config import get_config
from .engine import read_df
from .errors import InputError
from .period import Period
from .registry import GREEN, NONE, Indicator, register, threshold_status
from .schema import (
    agg_meter_daily,
    dim_facility,
    dim_meter,
    dim_school,
    fact_energy_quota,
    fact_meter_reading,
    fact_school_year,
)
from .scope import Scope, facilities_in_scope, key_column, with_key
from .sqlfuncs import date_of, hour_of, isodow, percentile_from_ranks, rank_within

ENERGY_TYPES = {
    "electricity": ("用电量", "Electricity", "kWh"),
    "water": ("用水量", "Water", "m³"),
    "gas": ("用气量", "Natural gas", "m³"),
    "heat": ("用热量", "Heat", "GJ"),
}
TABLES = ("fact_meter_reading", "dim_meter")


@memoize()
def consumption(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Σ consumption of top-level meters per energy type, region (for CO₂ factors) and group."""
    d, m, f, s = agg_meter_daily, dim_meter, dim_facility, dim_school
    stmt = (
        sa.select(m.c.energy_type, s.c.region_code, sa.func.sum(d.c.consumption).label("consumption"))
        .select_from(d.join(m, m.c.meter_id == d.c.meter_id).join(f, f.c.facility_id == m.c.facility_id)
                     .join(s, s.c.school_id == f.c.school_id))
        .where(d.c.day >= period.start, d.c.day <= period.end, m.c.parent_meter_id.is_(None),
               m.c.facility_id.in_(facilities_in_scope(scope)))
        .group_by(m.c.energy_type, s.c.region_code)
    )
    key = d.c.day if by == "day" else key_column(by, f, s)
    if key is not None:
        stmt = stmt.add_columns(key.label("key")).group_by(key)
    return read_df(stmt)


def _kgce(frame: pd.DataFrame) -> pd.Series:
    factors = get_config().energy.get("kgce_factor", {})
    return frame["consumption"] * frame["energy_type"].map(lambda t: float(factors.get(t, 0.0)))


def _co2_kg(frame: pd.DataFrame) -> pd.Series:
    e = get_config().energy
    co2 = e.get("co2_factor", {})
    by_region = {str(k): float(v) for k, v in (e.get("electricity_co2_by_region") or {}).items()}

    def factor(row):
        if row.energy_type == "electricity":
            return by_region.get(str(row.region_code), float(co2.get("electricity", 0.0)))
        return float(co2.get(row.energy_type, 0.0))

    if frame.empty:
        return pd.Series(dtype=float)
    return frame["consumption"] * frame.apply(factor, axis=1)


def _sum_by_key(frame: pd.DataFrame, values: pd.Series, by) -> pd.DataFrame:
    out = frame.assign(num=values)
    if by is None:
        return pd.DataFrame({"num": [out["num"].sum()]}) if not out.empty else pd.DataFrame({"num": []})
    return out.groupby("key", as_index=False)["num"].sum()


def _type_measure(energy_type: str):
    def measure(scope, period, by):
        frame = consumption(scope, period, by)
        frame = frame.loc[frame.energy_type == energy_type]
        return _sum_by_key(frame, frame["consumption"], by)

    measure.__name__ = f"measure_{energy_type}"
    return measure


def kgce_measure(scope: Scope, period: Period, by: str | None) -> pd.DataFrame:
    frame = consumption(scope, period, by)
    return _sum_by_key(frame, _kgce(frame), by)


def co2_measure(scope: Scope, period: Period, by: str | None) -> pd.DataFrame:
    frame = consumption(scope, period, by)
    return _sum_by_key(frame, _co2_kg(frame) / 1000.0, by)


@memoize()
def first_day(scope: Scope):
    """The first day with meter data in the scope (None when there is none)."""
    d, m = agg_meter_daily, dim_meter
    frame = read_df(sa.select(sa.func.min(d.c.day).label("first")).select_from(d.join(m, m.c.meter_id == d.c.meter_id))
                    .where(m.c.facility_id.in_(facilities_in_scope(scope))))
    value = frame.iloc[0, 0] if not frame.empty else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def yoy_measure(scope: Scope, period: Period, by: str | None) -> pd.DataFrame:
    """Change of standard coal against the same dates last year, in %. Only when the warehouse covers the
    whole of last year's period: a partly covered base would make a meaningless ratio."""
    last_year = period.same_last_year()
    start = first_day(scope)
    if by == "day" or start is None or start > last_year.start:
        return pd.DataFrame(columns=(["key"] if by else []) + ["value", "num", "den"])
    now = kgce_measure(scope, period, by)
    before = kgce_measure(scope, last_year, by)
    if now.empty or before.empty:
        return pd.DataFrame(columns=(["key"] if by else []) + ["value", "num", "den"])
    if by is None:
        merged = pd.DataFrame({"num": now["num"].values[:1], "den": before["num"].values[:1]})
    else:
        merged = now.merge(before.rename(columns={"num": "den"}), on="key", how="inner")
    merged = merged.loc[merged["den"] > 0]
    merged["value"] = 100.0 * (merged["num"] / merged["den"] - 1.0)
    return merged.reset_index(drop=True)


# --- intensities --------------------------------------------------------------------------------------------

@memoize()
def school_year_figures(year: int) -> pd.DataFrame:
    """Population and floor area of every school for a year (latest year ≤ ``year`` when missing)."""
    y = fact_school_year
    latest = (sa.select(y.c.school_id, sa.func.max(y.c.year).label("year")).where(y.c.year <= year)
              .group_by(y.c.school_id).subquery("latest"))
    stmt = (sa.select(y.c.school_id, y.c.students, y.c.staff, y.c.floor_area_m2, dim_school.c.school_type,
                      dim_school.c.region_code)
            .select_from(y.join(latest, sa.and_(latest.c.school_id == y.c.school_id, latest.c.year == y.c.year))
                         .join(dim_school, dim_school.c.school_id == y.c.school_id)))
    return read_df(stmt)


@memoize()
def school_kgce(period: Period) -> pd.DataFrame:
    """Standard coal and water per school over the whole warehouse, for peer distributions (aggregates only
    leave this module; no other school's figure is shown to a school-level user), with the first and last day
    the school's top-level meters have data within the period (first, last)."""
    d, m = agg_meter_daily, dim_meter
    stmt = (sa.select(m.c.school_id, m.c.energy_type, sa.func.sum(d.c.consumption).label("consumption"),
                      sa.func.min(d.c.day).label("first"), sa.func.max(d.c.day).label("last"))
            .select_from(d.join(m, m.c.meter_id == d.c.meter_id))
            .where(d.c.day >= period.start, d.c.day <= period.end, m.c.parent_meter_id.is_(None))
            .group_by(m.c.school_id, m.c.energy_type))
    frame = read_df(stmt)
    frame["kgce"] = _kgce(frame)
    frame["water"] = frame["consumption"].where(frame["energy_type"] == "water", 0.0)
    for col in ("first", "last"):
        frame[col] = pd.to_datetime(frame[col])
    return frame.groupby("school_id", as_index=False).agg(kgce=("kgce", "sum"), water=("water", "sum"),
                                                         first=("first", "min"), last=("last", "max"))


@memoize()
def _intensity_table(period: Period, what: str) -> pd.DataFrame:
    """Annualised intensity of every school: school_id, school_type, num (annualised amount), den (base),
    days (the days annualised over), first (the school's first day with data in the period).

    Each school's use is annualised over the days its meters have data in the period (its first to its last
    day with data), not over the whole period: a period that starts before a school's data (a school that
    joined later) or ends after it (today, a period reaching into the future) must not thin its figure."""
    figures = school_year_figures(period.end.year)
    amounts = school_kgce(period)
    frame = figures.merge(amounts, on="school_id", how="inner")
    frame["days"] = (frame["last"] - frame["first"]).dt.days + 1
    annual = 365.0 / frame["days"]
    if what == "per_area":
        frame["num"], frame["den"] = frame["kgce"] * annual, frame["floor_area_m2"]
    elif what == "per_capita":
        frame["num"], frame["den"] = frame["kgce"] * annual, frame["students"] + frame["staff"]
    else:  # water per capita
        frame["num"], frame["den"] = frame["water"] * annual, frame["students"] + frame["staff"]
    frame["first"] = frame["first"].dt.date
    return frame.loc[frame["den"] > 0].drop(columns=["last"])


PEER_MIN_GROUP = 5
"""The smallest peer group (schools of one type, the school itself included) that shows a distribution — median,
P25, P75 — or is compared with. With fewer, a median reveals another school's figure to a school-level user
(two schools: 2 × median − own; three: the median is one of them). INDICATORS.md (maturity): "with fewer than 5
peers, show no distribution"; issue 10: other schools only as anonymous distribution figures."""


@memoize()
def peer_stats(period: Period, what: str) -> pd.DataFrame:
    """Per school type (index): peers (schools with a figure), and median, p25, p75 of their annualised
    intensities — NaN for groups of fewer than PEER_MIN_GROUP schools."""
    table = _intensity_table(period, what)
    cols = ["peers", "median", "p25", "p75"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    values = (table["num"] / table["den"]).groupby(table["school_type"])
    stats = pd.DataFrame({"peers": values.size(), "median": values.median(), "p25": values.quantile(0.25),
                          "p75": values.quantile(0.75)})
    stats.loc[stats["peers"] < PEER_MIN_GROUP, ["median", "p25", "p75"]] = float("nan")
    return stats[cols]


def peer_median(period: Period, what: str, school_type: str | None) -> float | None:
    """The median intensity of the schools of a type; None for a group under PEER_MIN_GROUP schools."""
    stats = peer_stats(period, what)
    if not school_type or school_type not in stats.index:
        return None
    value = stats.loc[school_type, "median"]
    return None if pd.isna(value) else float(value)


def peer_count(period: Period, what: str, school_type: str | None) -> int:
    """How many schools of the type have a figure (the school itself included)."""
    stats = peer_stats(period, what)
    return int(stats.loc[school_type, "peers"]) if school_type and school_type in stats.index else 0


def _last_year_intensity(schools, period: Period, what: str, table: pd.DataFrame | None = None) -> float | None:
    """The same schools' intensity over the same dates last year (Σnum ÷ Σden), when every one of them has data
    from the first of those dates on; else None. ``table``: last year's ``_intensity_table`` when at hand."""
    ly = period.same_last_year()
    table = _intensity_table(ly, what) if table is None else table
    table = table.loc[table.school_id.isin(list(schools))]
    if table.empty or len(table) < len(set(schools)) or (table["first"] > ly.start).any():
        return None
    den = float(table["den"].sum())
    return float(table["num"].sum()) / den if den else None


def _intensity_measure(what: str):
    """Σ annualised amount ÷ Σ base over the scope's schools; school_type when they are all of one type, and
    last_year (the same schools' figure a year earlier) when their peer group is too small to compare with, for
    the status rule."""

    def with_last_year(rows: pd.DataFrame, groups, period: Period) -> pd.DataFrame:
        rows = rows.copy()
        medians = peer_stats(period, what)["median"].dropna()
        small = [bool(stype) and stype not in medians.index for stype in rows["school_type"]]
        before = _intensity_table(period.same_last_year(), what) if any(small) else None
        rows["last_year"] = [_last_year_intensity(schools, period, what, before) if few else None
                             for few, schools in zip(small, groups)]
        return rows

    def measure(scope: Scope, period: Period, by: str | None) -> pd.DataFrame:
        if by == "day":
            return pd.DataFrame(columns=["key", "num", "den"])
        frame = _intensity_table(period, what)
        frame = frame.loc[frame.school_id.isin(scope.schools)]
        if by is None:
            if frame.empty:
                return pd.DataFrame(columns=["num", "den"])
            types = frame.school_type.unique()
            out = pd.DataFrame({"num": [frame["num"].sum()], "den": [frame["den"].sum()],
                                "school_type": [types[0] if len(types) == 1 else None]})
            return with_last_year(out, [tuple(frame["school_id"])], period)
        keycol = {"school": "school_id", "region": "region_code"}[by]
        out = frame.groupby(keycol, as_index=False).agg(num=("num", "sum"), den=("den", "sum"),
                                                      school_type=("school_type", "first"))
        if by == "region":
            out["school_type"] = None
            return out.rename(columns={keycol: "key"})
        return with_last_year(out, [(s,) for s in out[keycol]], period).rename(columns={keycol: "key"})

    measure.__name__ = f"measure_{what}"
    return measure


def compare_intensity(what: str, value: float | None, reference: float | None) -> str:
    """Green at or below the reference (the peer median, or the school's own last year), amber up to +amber %,
    red above."""
    if value is None or not reference:
        return NONE
    return threshold_status(INTENSITY[what], 100.0 * (value / reference - 1.0)) if value > reference else GREEN


def _peer_status(what: str):
    """Against the peer median of the same school type; for a peer group under PEER_MIN_GROUP schools, against
    the school's own figure a year earlier (the measure's last_year), else no status."""

    def rule(value, extra, scope, period):
        if value is None:
            return threshold_status(INTENSITY[what], None)
        school_type = extra.get("school_type")
        if not school_type:
            return NONE
        median = peer_median(period, what, school_type)
        return compare_intensity(what, value, median if median else extra.get("last_year"))

    return rule


def intensity_basis(period: Period, what: str, school_type: str | None, last_year: float | None) -> str | None:
    """What an intensity's status compares with: "peer" (the peer median), "last_year" (the peer group is under
    PEER_MIN_GROUP schools and last year is known) or None."""
    if not school_type:
        return None
    if peer_median(period, what, school_type) is not None:
        return "peer"
    return "last_year" if last_year else None


# --- coverage and completeness ------------------------------------------------------------------------------

@memoize()
def meter_coverage(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Buildings with a top-level electricity meter ÷ buildings (facilities in scope)."""
    f, m, s = dim_facility, dim_meter, dim_school
    metered = sa.select(m.c.facility_id).where(m.c.energy_type == "electricity", m.c.parent_meter_id.is_(None))
    stmt = sa.select(
        sa.func.sum(sa.case((f.c.facility_id.in_(metered), 1), else_=0)).label("num"),
        sa.func.count().label("den"),
    ).select_from(f.join(s, s.c.school_id == f.c.school_id)).where(f.c.facility_id.in_(facilities_in_scope(scope)))
    if by == "day":
        return pd.DataFrame(columns=["key", "num", "den"])
    key = key_column(by, f, s)
    if key is not None:
        stmt = stmt.add_columns(key.label("key")).group_by(key)
    return read_df(stmt)


@memoize()
def data_completeness(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Hourly readings present ÷ expected (24 per meter and day, finer readings capped at 24), over the days of
    the period the warehouse holds meter data for (as ``missing_data``): days before the first or after the last
    day of data (a period reaching into the future) are not expected to have readings."""
    if by == "day":
        return pd.DataFrame(columns=["key", "num", "den"])
    span = data_range()
    start, end = (max(period.start, span[0]), min(period.end, span[1])) if span else (period.start, period.end)
    if span is None or end < start:
        return _empty(by)
    d, m, f, s = agg_meter_daily, dim_meter, dim_facility, dim_school
    meters = (sa.select(m.c.meter_id, m.c.facility_id)
              .where(m.c.facility_id.in_(facilities_in_scope(scope))).subquery("meters"))
    capped = sa.case((d.c.readings > 24, 24), else_=d.c.readings)
    present = (sa.select(d.c.meter_id, sa.func.sum(capped).label("present"))
               .where(d.c.day >= start, d.c.day <= end).group_by(d.c.meter_id).subquery("present"))
    stmt = sa.select(
        sa.func.sum(sa.func.coalesce(present.c.present, 0)).label("num"),
        (sa.func.count() * (24 * ((end - start).days + 1))).label("den"),
    ).select_from(
        meters.outerjoin(present, present.c.meter_id == meters.c.meter_id)
        .join(f, f.c.facility_id == meters.c.facility_id).join(s, s.c.school_id == f.c.school_id)
    )
    key = key_column(by, f, s)
    if key is not None:
        stmt = stmt.add_columns(key.label("key")).group_by(key)
    return read_df(stmt)


# --- shared pieces of the panel's queries --------------------------------------------------------------------

def setting(name: str, default):
    """A setting of config.yaml ``energy``."""
    return get_config().energy.get(name, default)


_e = setting


def _empty(by, *cols) -> pd.DataFrame:
    return pd.DataFrame(columns=(["key"] if by else []) + list(cols or ("num", "den")))


@memoize()
def meter_dim() -> pd.DataFrame:
    """Every meter with its building and organisation (a dimension: small, cached): meter_id, facility_id,
    energy_type, end_use, parent_meter_id, top (bool), campus_id, school_id, region_code, facility_type."""
    m, f, s = dim_meter, dim_facility, dim_school
    stmt = (sa.select(m.c.meter_id, m.c.facility_id, m.c.energy_type, m.c.end_use, m.c.parent_meter_id,
                      f.c.campus_id, f.c.school_id, s.c.region_code, f.c.facility_type)
            .select_from(m.join(f, f.c.facility_id == m.c.facility_id).join(s, s.c.school_id == f.c.school_id))
            .order_by(m.c.meter_id))
    frame = read_df(stmt)
    frame["top"] = frame["parent_meter_id"].isna()
    return frame


def meters_in_scope(scope: Scope, energy_types=None, top_only: bool = True) -> pd.DataFrame:
    """Rows of ``meter_dim`` inside the scope."""
    frame = meter_dim()
    mask = frame.school_id.isin(scope.schools)
    if scope.campus:
        mask &= frame.campus_id == scope.campus
    if scope.facility:
        mask &= frame.facility_id == scope.facility
    if energy_types is not None:
        mask &= frame.energy_type.isin(list(energy_types))
    if top_only:
        mask &= frame.top
    return frame.loc[mask]


@memoize()
def building_labels(lang: str = "zh") -> dict[str, tuple[str, str, str]]:
    """facility_id → (building name, "school · building", school_id): names for lists, built once."""
    from .dims import org_tree

    f = org_tree().facilities
    sn = f["school_id"].astype("str").map(school_labels(lang))
    return {fid: (str(name), f"{school} · {name}", str(sid))
            for fid, name, school, sid in zip(f["facility_id"], f["facility_name"], sn, f["school_id"])}


@memoize()
def school_labels(lang: str = "zh") -> dict[str, str]:
    """school_id → display name."""
    from .dims import org_tree

    schools = org_tree().schools
    names = schools["school_name"]
    if lang == "en" and "school_name_en" in schools:
        en = schools["school_name_en"]
        names = en.where(en.notna() & (en.astype("str").str.len() > 0), names)
    return dict(zip(schools["school_id"].astype("str"), names.astype("str")))


KEY_COLUMNS = {"region": "region_code", "school": "school_id", "campus": "campus_id", "facility": "facility_id"}


def _count_by_key(meters: pd.DataFrame, hits: pd.DataFrame, by) -> pd.DataFrame:
    """Counts of ``hits`` (rows with meter_id) per group, with 0 for every group that has eligible meters.
    Empty when there are no eligible meters (no data, not zero)."""
    if meters.empty:
        return _empty(by)
    if by is None:
        return pd.DataFrame({"num": [float(hits["meter_id"].isin(meters["meter_id"]).sum())]})
    if by == "day":
        if hits.empty:
            return _empty(by)
        per = hits.groupby("day").size()
        return pd.DataFrame({"key": per.index, "num": per.to_numpy(dtype=float)})
    col = KEY_COLUMNS[by]
    keys = meters[col].drop_duplicates()
    where = meters.set_index("meter_id")[col]
    counts = hits.loc[hits.meter_id.isin(where.index), "meter_id"].map(where).value_counts()
    return pd.DataFrame({"key": keys.to_numpy(), "num": counts.reindex(keys).fillna(0).to_numpy(dtype=float)})


def _meter_day_from(scope: Scope, start: dt.date, end: dt.date, energy_types, top_only: bool = True,
                    facility_types=None, by: str | None = None, calendar: bool = False, codes: bool = False):
    """FROM agg_meter_daily ⋈ dim_meter ⋈ dim_facility (⋈ dim_school for regions, ⟕ the school calendar) with
    the scope, day range, energy types and meter level applied. Returns (join, where clauses, key column,
    day class expression or None)."""
    d, m, f = agg_meter_daily, dim_meter, dim_facility
    j = d.join(m, m.c.meter_id == d.c.meter_id).join(f, f.c.facility_id == m.c.facility_id)
    s = None
    if by == "region":
        s = dim_school
        j = j.join(s, s.c.school_id == f.c.school_id)
    cls = None
    if calendar:
        j, cal = cal_mod.join_calendar(j, f.c.school_id, d.c.day)
        cls = cal_mod.day_class_sql(d.c.day, cal.c.day_type, codes)
    where = [d.c.day >= start, d.c.day <= end, m.c.facility_id.in_(facilities_in_scope(scope)),
             m.c.energy_type.in_(list(energy_types))]
    if top_only:
        where.append(m.c.parent_meter_id.is_(None))
    if facility_types is not None:
        where.append(f.c.facility_type.in_(list(facility_types)))
    key = d.c.day if by == "day" else key_column(by, f, s)
    return j, where, key, cls


def _plus_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


@memoize()
def data_range() -> tuple[dt.date, dt.date] | None:
    """First and last day of meter data in the warehouse (the days readings are expected on)."""
    d = agg_meter_daily
    frame = read_df(sa.select(sa.func.min(d.c.day).label("first"), sa.func.max(d.c.day).label("last")))
    if frame.empty or pd.isna(frame.iloc[0, 0]):
        return None
    return pd.Timestamp(frame.iloc[0, 0]).date(), pd.Timestamp(frame.iloc[0, 1]).date()


def last_year_covered(scope: Scope, period: Period) -> bool:
    """Whether the warehouse holds the scope's meter data for the same dates last year."""
    start = first_day(scope)
    return start is not None and start <= period.same_last_year().start


# --- night base load ----------------------------------------------------------------------------------------

@memoize()
def night_ratio(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """energy.night_ratio: mean hourly load 00:00–05:00 ÷ mean hourly load 09:00–17:00 on term workdays, for the
    top-level electricity meters of teaching and office buildings.

    Per meter-day the two means are (consumption ÷ readings) of each window; num and den are their sums over
    meter-days, so the scope's figure is its summed night load ÷ its summed daytime load and rolls up as
    Σnum ÷ Σden. Meter-days missing either window are left out; n counts the meter-days used.
    """
    d = agg_meter_daily
    j, where, key, cls = _meter_day_from(scope, period.start, period.end, ["electricity"],
                                         facility_types=_e("night_ratio_facility_types", ["teaching", "office"]),
                                         by=by, calendar=True)
    ok = sa.and_(d.c.night_readings > 0, d.c.work_readings > 0)
    stmt = (sa.select(sa.func.sum(sa.case((ok, d.c.night_consumption / d.c.night_readings))).label("num"),
                      sa.func.sum(sa.case((ok, d.c.work_consumption / d.c.work_readings))).label("den"),
                      sa.func.sum(sa.case((ok, 1), else_=0)).label("n"))
            .select_from(j).where(*where, cls == "term_workday"))
    frame = read_df(with_key(stmt, key))
    if frame.empty:
        return _empty(by, "num", "den", "n")
    return frame.loc[frame["n"].fillna(0) > 0].reset_index(drop=True) if by else frame


# --- vacation and holiday use -------------------------------------------------------------------------------

def _off_group(cls):
    return sa.case((cls == "term_workday", "term"), else_="off")


@memoize()
def holiday_daily(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Per building (and group key): Σ consumption and days with data on term workdays ("term") and on vacation
    and holiday days ("off"), top-level meters of config ``holiday_ratio_energy_type``."""
    d, m = agg_meter_daily, dim_meter
    etype = _e("holiday_ratio_energy_type", "electricity")
    j, where, key, cls = _meter_day_from(scope, period.start, period.end, [etype], by=by, calendar=True)
    grp = _off_group(cls)
    stmt = (sa.select(m.c.facility_id, grp.label("grp"), sa.func.sum(d.c.consumption).label("consumption"),
                      sa.func.count(sa.distinct(d.c.day)).label("days"))
            .select_from(j).where(*where, cls.in_(("term_workday",) + cal_mod.OFF_CLASSES))
            .group_by(m.c.facility_id, grp))
    if key is not None and by != "facility":
        stmt = stmt.add_columns(key.label("key")).group_by(key)
    frame = read_df(stmt)
    if by == "facility":
        frame["key"] = frame["facility_id"]
    return frame


def holiday_ratio(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """energy.holiday_ratio: mean daily use on vacation and holiday days ÷ mean daily use on term workdays.

    Each building's two means (Σ ÷ days with data) are summed over the buildings that have both kinds of days in
    the period: num = Σ vacation means, den = Σ term-workday means, so the ratio is the scope's daily load off
    term ÷ its daily load in term and rolls up as Σnum ÷ Σden. n = buildings.
    """
    if by == "day":
        return _empty(by, "num", "den", "n")
    frame = holiday_daily(scope, period, by)
    if frame.empty:
        return _empty(by, "num", "den", "n")
    frame = frame.assign(mean=frame["consumption"] / frame["days"])
    index = ["facility_id"] + (["key"] if by else [])
    wide = frame.pivot_table(index=index, columns="grp", values="mean", aggfunc="sum")
    if "term" not in wide.columns or "off" not in wide.columns:
        return _empty(by, "num", "den", "n")
    wide = wide.dropna(subset=["term", "off"]).reset_index()
    if wide.empty:
        return _empty(by, "num", "den", "n")
    if by is None:
        return pd.DataFrame({"num": [wide["off"].sum()], "den": [wide["term"].sum()], "n": [len(wide)]})
    out = wide.groupby("key", as_index=False).agg(num=("off", "sum"), den=("term", "sum"), n=("facility_id", "size"))
    return out


# --- suspected leaks ----------------------------------------------------------------------------------------

@memoize()
def leak_meters(scope: Scope, period: Period) -> pd.DataFrame:
    """Top-level water meters with at least one leak-suspect night in the period: a meter-day whose 02:00–04:00
    mean flow exceeds ``leak_night_share`` of the day's mean hourly flow. Columns: meter_id, facility_id,
    school_id, nights, first_day, last_day, max_share, share_last (the share on the last suspect day)."""
    d, m, f = agg_meter_daily, dim_meter, dim_facility
    share = float(_e("leak_night_share", 0.10))
    j, where, _, _ = _meter_day_from(scope, period.start, period.end, ["water"])
    leak_c, leak_n = sa.func.coalesce(d.c.leak_consumption, 0.0), sa.func.coalesce(d.c.leak_readings, 0)
    valid = sa.and_(leak_n > 0, d.c.readings > 0, d.c.consumption > 0)
    # leak mean > share × day mean, without divisions: leak_c × readings > share × consumption × leak_n
    suspect = sa.and_(valid, leak_c * d.c.readings > share * d.c.consumption * leak_n)
    ratio = (leak_c / leak_n) / (d.c.consumption / d.c.readings)
    nights = sa.func.sum(sa.case((suspect, 1), else_=0))
    stmt = (sa.select(m.c.meter_id, m.c.facility_id, f.c.school_id, nights.label("nights"),
                      sa.func.min(sa.case((suspect, d.c.day))).label("first_day"),
                      sa.func.max(sa.case((suspect, d.c.day))).label("last_day"),
                      sa.func.max(sa.case((suspect, ratio))).label("max_share"))
            .select_from(j).where(*where).group_by(m.c.meter_id, m.c.facility_id, f.c.school_id)
            .having(nights > 0))
    frame = read_df(stmt)
    for col in ("first_day", "last_day"):
        frame[col] = pd.to_datetime(frame[col]).dt.date
    return frame


def leak_suspect(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """energy.leak_suspect: water meters with at least ``leak_min_nights`` suspect nights in the period."""
    if by == "day":
        return _empty(by)
    meters = meters_in_scope(scope, ["water"])
    hits = leak_meters(scope, period)
    hits = hits.loc[hits["nights"] >= int(_e("leak_min_nights", 2))]
    return _count_by_key(meters, hits, by)


# --- same-weekday spikes ------------------------------------------------------------------------------------

COMMON_MIN_METERS = 3
"""Meters of one type a school needs before its common change of the day is taken out of the spike rule."""


@memoize()
def spikes(scope: Scope, period: Period) -> pd.DataFrame:
    """The spike meter-days (see ``school_spikes``) of the scope's buildings. The rule is evaluated over whole
    schools, so that a building's verdict (its school's common change) is the same at every level."""
    found = school_spikes(scope.schools, period)
    if scope.campus or scope.facility:
        found = found.loc[found["facility_id"].isin(set(meters_in_scope(scope, top_only=False)["facility_id"]))]
    return found.reset_index(drop=True)


@memoize()
def school_spikes(schools: tuple[str, ...], period: Period) -> pd.DataFrame:
    """Meter-days of the period whose use lies more than ``anomaly_z`` standard deviations from the mean of the
    previous ``anomaly_baseline_days`` days with the same weekday and day class (term workday with term
    workday), for the top-level meters of ``anomaly_energy_types``.

    The baseline's σ is floored at ``anomaly_min_rel_sd`` × its mean (see config.yaml); a baseline of fewer
    than ``anomaly_min_baseline`` days, or with a mean of 0, gives no verdict. The baseline is scaled by the
    school's common change of the day (the median ratio of its meters of the type to their baselines, with at
    least COMMON_MIN_METERS of them): a hot day that raises every building is not a spike. Columns: meter_id,
    facility_id, school_id, energy_type, day, day_class, consumption, baseline, sd, common, expected (baseline ×
    common), z, baseline_days.
    """
    d, m, f = agg_meter_daily, dim_meter, dim_facility
    k = int(_e("anomaly_baseline_days", 8))
    lookback = int(_e("anomaly_lookback_days", 119))
    rel = float(_e("anomaly_min_rel_sd", 0.10))
    z_limit = float(_e("anomaly_z", 3.0))
    min_n = int(_e("anomaly_min_baseline", 4))
    scope = Scope("association", schools=tuple(schools))
    j, where, _, cls = _meter_day_from(scope, period.start - dt.timedelta(days=lookback), period.end,
                                       _e("anomaly_energy_types", ["electricity", "water", "gas"]), calendar=True,
                                       codes=True)
    base = (sa.select(d.c.meter_id, m.c.facility_id, f.c.school_id, m.c.energy_type, d.c.day, d.c.consumption,
                      isodow(d.c.day).label("dow"), cls.label("day_class"))
            .select_from(j).where(*where).subquery("spike_base"))
    window = dict(partition_by=[base.c.meter_id, base.c.dow, base.c.day_class], order_by=base.c.day, rows=(-k, -1))
    win = sa.select(
        base,
        sa.func.avg(base.c.consumption).over(**window).label("baseline"),
        sa.func.stddev_samp(base.c.consumption).over(**window).label("sd"),
        sa.func.count(base.c.consumption).over(**window).label("baseline_days"),
    ).subquery("spike_window")
    # Common movement: the weather and the calendar move a whole school, a spike is one meter's. The school's
    # change that day is the median, over its meters of the same type with a baseline, of use ÷ baseline (robust
    # to the spiking meter itself); with fewer than COMMON_MIN_METERS such meters there is no adjustment.
    days_in = (sa.select(win, (win.c.consumption / win.c.baseline).label("r"))
               .where(win.c.day >= period.start, win.c.baseline_days >= min_n, win.c.baseline > 0)
               .subquery("spike_days"))
    groups = [days_in.c.school_id, days_in.c.energy_type, days_in.c.day]
    rn, cnt = rank_within(days_in.c.r, groups)
    ranked = sa.select(*groups, days_in.c.r, rn.label("rn"), cnt.label("cnt")).subquery("spike_ranked")
    rgroups = [ranked.c.school_id, ranked.c.energy_type, ranked.c.day]
    median = (sa.select(*rgroups, percentile_from_ranks(ranked.c.r, ranked.c.rn, ranked.c.cnt, 0.5).label("med"),
                        sa.func.count(ranked.c.r).label("peers"))
              .group_by(*rgroups).subquery("spike_median"))
    adj = (sa.select(days_in, median.c.med, median.c.peers)
           .select_from(days_in.join(median, sa.and_(median.c.school_id == days_in.c.school_id,
                                                     median.c.energy_type == days_in.c.energy_type,
                                                     median.c.day == days_in.c.day)))
           .subquery("spike_common"))
    common = sa.case((sa.and_(adj.c.peers >= COMMON_MIN_METERS, adj.c.med > 0), adj.c.med),
                     else_=sa.literal(1.0, sa.Double))
    expected = adj.c.baseline * common
    floor = expected * rel
    scaled_sd = sa.func.coalesce(adj.c.sd, 0.0) * common
    sd_eff = sa.case((scaled_sd > floor, scaled_sd), else_=floor)
    stmt = (sa.select(adj.c.meter_id, adj.c.facility_id, adj.c.school_id, adj.c.energy_type, adj.c.day,
                      adj.c.day_class, adj.c.consumption, adj.c.baseline, adj.c.sd, common.label("common"),
                      expected.label("expected"), ((adj.c.consumption - expected) / sd_eff).label("z"),
                      adj.c.baseline_days)
            .where(adj.c.baseline_days >= min_n, adj.c.baseline > 0, expected > 0,
                   sa.func.abs(adj.c.consumption - expected) > z_limit * sd_eff)
            .order_by(adj.c.day, adj.c.meter_id))
    frame = read_df(stmt)
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    frame["day_class"] = frame["day_class"].map(lambda c: cal_mod.DAY_CLASSES[int(c)])
    return frame


def anomalies(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """energy.anomalies: the number of spike meter-days (see ``spikes``)."""
    meters = meters_in_scope(scope, _e("anomaly_energy_types", ["electricity", "water", "gas"]))
    return _count_by_key(meters, spikes(scope, period), by)


# --- missing readings ---------------------------------------------------------------------------------------

@memoize()
def missing_data(scope: Scope, period: Period) -> pd.DataFrame:
    """Building-days of the period with fewer hourly readings than expected (24 per meter and day, every meter
    of the building, sub-meters included), within the days the warehouse holds meter data for.

    Columns: facility_id, school_id, day, meters (meters short that day), readings (present), expected. A meter
    without any reading in the period gives one row per building on the first expected day with ``whole``
    True (a dead or not yet connected meter, not a day's gap).
    """
    cols = ["facility_id", "school_id", "day", "meters", "readings", "expected", "whole"]
    span = data_range()
    if span is None:
        return pd.DataFrame(columns=cols)
    start, end = max(period.start, span[0]), min(period.end, span[1])
    if end < start:
        return pd.DataFrame(columns=cols)
    n_days = (end - start).days + 1
    d, m = agg_meter_daily, dim_meter
    capped = sa.case((d.c.readings > 24, 24), else_=d.c.readings)
    present = (sa.select(d.c.meter_id, sa.func.count().label("days"), sa.func.sum(capped).label("readings"))
               .where(d.c.day >= start, d.c.day <= end).group_by(d.c.meter_id).subquery("present"))
    per_meter = read_df(
        sa.select(m.c.meter_id, m.c.facility_id, sa.func.coalesce(present.c.days, 0).label("days"),
                  sa.func.coalesce(present.c.readings, 0).label("readings"))
        .select_from(m.outerjoin(present, present.c.meter_id == m.c.meter_id))
        .where(m.c.facility_id.in_(facilities_in_scope(scope)))
    )
    short = per_meter.loc[per_meter["readings"] < 24 * n_days]
    if short.empty:
        return pd.DataFrame(columns=cols)
    schools = meter_dim().set_index("meter_id")["school_id"]
    rows = []
    dead = short.loc[short["days"] == 0]
    for fac, group in dead.groupby("facility_id"):
        rows.append({"facility_id": fac, "day": start, "meters": len(group), "readings": 0,
                     "expected": 24 * n_days * len(group), "whole": True, "meter_id": group["meter_id"].iloc[0]})
    gaps = short.loc[short["days"] > 0]
    if not gaps.empty:
        ids = sorted(gaps["meter_id"])
        found = []
        for i in range(0, len(ids), 500):   # bound the bound parameters per statement
            found.append(read_df(sa.select(d.c.meter_id, d.c.day, capped.label("readings"))
                                 .where(d.c.meter_id.in_(ids[i:i + 500]), d.c.day >= start, d.c.day <= end)))
        days = pd.concat(found, ignore_index=True)
        days["day"] = pd.to_datetime(days["day"]).dt.date
        all_days = pd.date_range(start, end, freq="D").date
        grid = pd.MultiIndex.from_product([ids, all_days], names=["meter_id", "day"])
        full = days.set_index(["meter_id", "day"])["readings"].reindex(grid).fillna(0).reset_index()
        full = full.loc[full["readings"] < 24]
        full["facility_id"] = full["meter_id"].map(gaps.set_index("meter_id")["facility_id"])
        per = full.groupby(["facility_id", "day"]).agg(meters=("meter_id", "size"), readings=("readings", "sum"),
                                                       meter_id=("meter_id", "first")).reset_index()
        per["expected"] = 24 * per["meters"]
        per["whole"] = False
        rows.extend(per.to_dict("records"))
    out = pd.DataFrame(rows)
    out["school_id"] = out["meter_id"].map(schools)
    out["readings"] = out["readings"].astype(int)
    return out.sort_values(["day", "facility_id"]).reset_index(drop=True)[cols + ["meter_id"]]


# --- per-building rules for the anomaly list ----------------------------------------------------------------

@memoize()
def night_buildings(scope: Scope, period: Period) -> pd.DataFrame:
    """Teaching and office buildings whose night ratio over the period's term workdays is above the amber
    bound of energy.night_ratio (red): facility_id, school_id, ratio, days (workdays used), days_over (workdays
    whose own ratio is above the bound), worst_day, worst (that day's ratio)."""
    d, m, f = agg_meter_daily, dim_meter, dim_facility
    limit = _threshold_amber("energy.night_ratio", 0.5)
    j, where, _, cls = _meter_day_from(scope, period.start, period.end, ["electricity"],
                                       facility_types=_e("night_ratio_facility_types", ["teaching", "office"]),
                                       calendar=True)
    ok = sa.and_(d.c.night_readings > 0, d.c.work_readings > 0)
    daily = (sa.select(m.c.facility_id, f.c.school_id, d.c.day,
                       sa.func.sum(d.c.night_consumption / d.c.night_readings).label("night"),
                       sa.func.sum(d.c.work_consumption / d.c.work_readings).label("work"))
             .select_from(j).where(*where, ok, cls == "term_workday")
             .group_by(m.c.facility_id, f.c.school_id, d.c.day).subquery("night_daily"))
    day_ratio = sa.case((daily.c.work > 0, daily.c.night / daily.c.work))
    part = dict(partition_by=[daily.c.facility_id])
    ranked = sa.select(
        daily.c.facility_id, daily.c.school_id, daily.c.day, day_ratio.label("day_ratio"),
        sa.func.sum(daily.c.night).over(**part).label("night_total"),
        sa.func.sum(daily.c.work).over(**part).label("work_total"),
        sa.func.count().over(**part).label("days"),
        sa.func.sum(sa.case((day_ratio > limit, 1), else_=0)).over(**part).label("days_over"),
        sa.func.row_number().over(partition_by=[daily.c.facility_id],
                                  order_by=[sa.case((day_ratio.is_(None), 1), else_=0), day_ratio.desc(),
                                            daily.c.day]).label("rn"),
    ).subquery("night_ranked")
    stmt = (sa.select(ranked.c.facility_id, ranked.c.school_id, ranked.c.night_total, ranked.c.work_total,
                      ranked.c.days, ranked.c.days_over, ranked.c.day.label("worst_day"),
                      ranked.c.day_ratio.label("worst"))
            .where(ranked.c.rn == 1, ranked.c.work_total > 0, ranked.c.night_total > limit * ranked.c.work_total))
    frame = read_df(stmt)
    frame["ratio"] = frame["night_total"] / frame["work_total"]
    frame["worst_day"] = pd.to_datetime(frame["worst_day"]).dt.date
    return frame.drop(columns=["night_total", "work_total"]).sort_values("ratio", ascending=False,
                                                                       ignore_index=True)


@memoize()
def holiday_buildings(scope: Scope, period: Period) -> pd.DataFrame:
    """Buildings whose holiday ratio (mean daily use on vacation and holiday days ÷ on term workdays) is above
    the amber bound of energy.holiday_ratio (red): facility_id, school_id, ratio, term_mean, off_mean,
    days (off days), days_over (off days above the bound × the term-workday mean), worst_day, worst (its use)."""
    d, m, f = agg_meter_daily, dim_meter, dim_facility
    limit = _threshold_amber("energy.holiday_ratio", 0.7)
    etype = _e("holiday_ratio_energy_type", "electricity")
    j, where, _, cls = _meter_day_from(scope, period.start, period.end, [etype], calendar=True)
    grp = _off_group(cls)
    daily = (sa.select(m.c.facility_id, f.c.school_id, d.c.day, grp.label("grp"),
                       sa.func.sum(d.c.consumption).label("consumption"))
             .select_from(j).where(*where, cls.in_(("term_workday",) + cal_mod.OFF_CLASSES))
             .group_by(m.c.facility_id, f.c.school_id, d.c.day, grp).subquery("holiday_daily"))
    means = sa.select(
        daily,
        sa.func.avg(sa.case((daily.c.grp == "term", daily.c.consumption))).over(
            partition_by=[daily.c.facility_id]).label("term_mean"),
        sa.func.avg(daily.c.consumption).over(partition_by=[daily.c.facility_id, daily.c.grp]).label("grp_mean"),
        sa.func.count().over(partition_by=[daily.c.facility_id, daily.c.grp]).label("days"),
        sa.func.row_number().over(partition_by=[daily.c.facility_id, daily.c.grp],
                                  order_by=[daily.c.consumption.desc(), daily.c.day]).label("rn"),
    ).subquery("holiday_means")
    counted = sa.select(
        means,
        sa.func.sum(sa.case((means.c.consumption > limit * means.c.term_mean, 1), else_=0)).over(
            partition_by=[means.c.facility_id, means.c.grp]).label("days_over"),
    ).subquery("holiday_counted")
    stmt = (sa.select(counted.c.facility_id, counted.c.school_id, counted.c.term_mean,
                      counted.c.grp_mean.label("off_mean"), counted.c.days, counted.c.days_over,
                      counted.c.day.label("worst_day"), counted.c.consumption.label("worst"))
            .where(counted.c.grp == "off", counted.c.rn == 1, counted.c.term_mean > 0,
                   counted.c.grp_mean > limit * counted.c.term_mean))
    frame = read_df(stmt)
    frame["ratio"] = frame["off_mean"] / frame["term_mean"]
    frame["worst_day"] = pd.to_datetime(frame["worst_day"]).dt.date
    return frame.sort_values("ratio", ascending=False, ignore_index=True)


def _threshold_amber(indicator_id: str, default: float) -> float:
    t = get_config().threshold(indicator_id)
    return float(t.amber) if t is not None else default


ANOMALY_RULES = ("spike", "leak", "missing", "night", "holiday")


def anomaly_list(scope: Scope, period: Period) -> dict[str, pd.DataFrame]:
    """Every rule's findings in the scope and period, each row with the building, the day, the figure:

    spike    meter-day |z| > anomaly_z against the previous same weekdays of its day class
    leak     water meter with ≥ leak_min_nights suspect nights (first suspect night, nights, highest share)
    missing  building-day with fewer readings than expected
    night    building whose night ratio is red (worst workday, workdays above the bound)
    holiday  building whose holiday ratio is red (worst vacation/holiday day, days above the bound)
    """
    leaks = leak_meters(scope, period)
    return {
        "spike": spikes(scope, period),
        "leak": leaks.loc[leaks["nights"] >= int(_e("leak_min_nights", 2))].reset_index(drop=True),
        "missing": missing_data(scope, period),
        "night": night_buildings(scope, period),
        "holiday": holiday_buildings(scope, period),
    }


# --- quota: year to date and projection ---------------------------------------------------------------------

QUOTA_TYPES = ("electricity", "water", "gas", "heat")


def _quota_windows(scope: Scope, end: dt.date) -> dict:
    """The date windows of the projection for the year of ``end``:

    ytd      1 January … end
    matched  the part of ytd whose same dates last year hold data (None without a year of history)
    ly       those dates last year, and ly_rest: the day after them … 31 December last year
    """
    jan1 = dt.date(end.year, 1, 1)
    out = {"ytd": Period(jan1, end), "matched": None, "ly": None, "ly_rest": None}
    first = first_day(scope)
    if first is None:
        return out
    start = max(jan1, _plus_years(first, 1))
    while start <= end and Period(start, end).same_last_year().start < first:
        start += dt.timedelta(days=1)      # 29 February of the first year
    if start > end:
        return out
    matched = Period(start, end)
    ly = matched.same_last_year()
    out.update(matched=matched, ly=ly)
    dec31 = dt.date(end.year - 1, 12, 31)
    if ly.end < dec31:
        out["ly_rest"] = Period(ly.end + dt.timedelta(days=1), dec31)
    return out


@memoize()
def quota_monthly(scope: Scope, end: dt.date) -> pd.DataFrame:
    """Σ use of top-level meters per school, energy type, window and month: school_id, energy_type, bucket
    (ty_pre: this year before the matched dates · tym: this year's matched dates · lym: the same dates last year ·
    lyrest: the rest of last year), month, consumption, first (the group's first day with data)."""
    d, m = agg_meter_daily, dim_meter
    w = _quota_windows(scope, end)
    ytd, matched, ly, rest = w["ytd"], w["matched"], w["ly"], w["ly_rest"]
    whens = []
    if matched is not None:
        whens.append((sa.and_(d.c.day >= ytd.start, d.c.day < matched.start), "ty_pre"))
        whens.append((sa.and_(d.c.day >= matched.start, d.c.day <= matched.end), "tym"))
        whens.append((sa.and_(d.c.day >= ly.start, d.c.day <= ly.end), "lym"))
        if rest is not None:
            whens.append((sa.and_(d.c.day >= rest.start, d.c.day <= rest.end), "lyrest"))
    else:
        whens.append((sa.and_(d.c.day >= ytd.start, d.c.day <= ytd.end), "ty_pre"))
    bucket = sa.case(*whens, else_=None)
    month = sa.extract("month", d.c.day)
    lo = ly.start if ly is not None else ytd.start
    stmt = (sa.select(m.c.school_id, m.c.energy_type, bucket.label("bucket"), month.label("month"),
                      sa.func.sum(d.c.consumption).label("consumption"), sa.func.min(d.c.day).label("first"))
            .select_from(d.join(m, m.c.meter_id == d.c.meter_id))
            .where(d.c.day >= lo, d.c.day <= ytd.end, m.c.parent_meter_id.is_(None),
                   m.c.facility_id.in_(facilities_in_scope(scope)))
            .group_by(m.c.school_id, m.c.energy_type, bucket, month))
    frame = read_df(stmt)
    frame = frame.loc[frame["bucket"].notna()].copy()
    frame["month"] = frame["month"].astype(int)
    frame["first"] = pd.to_datetime(frame["first"]).dt.date
    return frame


@memoize()
def quotas(scope: Scope, year: int) -> pd.DataFrame:
    """fact_energy_quota rows of the scope's schools for a year: school_id, energy_type, quota."""
    q = fact_energy_quota
    return read_df(sa.select(q.c.school_id, q.c.energy_type, q.c.quota)
                   .where(q.c.year == year, q.c.school_id.in_(scope.schools)))


@memoize()
def quota_status(scope: Scope, period: Period) -> pd.DataFrame:
    """Year-to-date use and year-end projection per school and energy type, against the year's quota.

    Projection ("seasonal"): this year's use so far plus the rest of last year scaled by r = this year's use ÷
    last year's use over the matched dates (every day of the year so far that has data a year earlier). Last
    year's shape carries the seasons, so a heating season or a summer vacation still to come is projected as it
    happened, not as a run rate. The 90 % band (config projection_band_z) treats the monthly ratios this/last
    year as draws around r: half-width = z · σ_months · rest · √(1/n_months + 1/n_rest_months), at least the
    use so far. Without a year of history (or with no use last year on the matched dates) the projection is
    "linear" (no band) for every type but heat, which has none: a run rate cannot know the heating season. The
    run rate is the use so far ÷ the days since the later of 1 January and the school's first day with data of
    the type this year, over the whole year (a school whose meters came on 1 March is not "under quota" for the
    two months it was not measured).

    Columns: school_id, energy_type, quota (NaN without one), ytd, projected, lo, hi, method, ratio,
    ytd_pct, projected_pct, lo_pct, hi_pct.
    """
    cols = ["school_id", "energy_type", "quota", "ytd", "projected", "lo", "hi", "method", "ratio",
            "ytd_pct", "projected_pct", "lo_pct", "hi_pct"]
    end = period.end
    monthly = quota_monthly(scope, end)
    q = quotas(scope, end.year)
    if monthly.empty and q.empty:
        return pd.DataFrame(columns=cols)
    sums = monthly.pivot_table(index=["school_id", "energy_type"], columns="bucket", values="consumption",
                               aggfunc="sum", fill_value=0.0)
    for b in ("ty_pre", "tym", "lym", "lyrest"):
        if b not in sums.columns:
            sums[b] = 0.0
    out = sums.reset_index()[["school_id", "energy_type", "ty_pre", "tym", "lym", "lyrest"]]
    out = out.merge(q, on=["school_id", "energy_type"], how="outer")
    out[["ty_pre", "tym", "lym", "lyrest"]] = out[["ty_pre", "tym", "lym", "lyrest"]].fillna(0.0)
    out["ytd"] = out["ty_pre"] + out["tym"]
    out = out.loc[out["energy_type"].isin(QUOTA_TYPES)].reset_index(drop=True)

    # Spread of the monthly ratios around r (months where last year had use on the matched dates).
    z = float(_e("projection_band_z", 1.645))
    pairs = monthly.loc[monthly["bucket"].isin(["tym", "lym"])].pivot_table(
        index=["school_id", "energy_type", "month"], columns="bucket", values="consumption", aggfunc="sum",
        fill_value=0.0)
    rest_months = (monthly.loc[(monthly["bucket"] == "lyrest") & (monthly["consumption"] > 0)]
                   .groupby(["school_id", "energy_type"]).size())
    stats = {}
    if not pairs.empty and {"tym", "lym"} <= set(pairs.columns):
        pairs = pairs.loc[pairs["lym"] > 0].reset_index()
        for (school, etype), g in pairs.groupby(["school_id", "energy_type"]):
            r = g["tym"].sum() / g["lym"].sum()
            n = len(g)
            if n < 2:
                stats[(school, etype)] = (n, None)
                continue
            w = g["lym"] / g["lym"].sum()
            var = float((w * (g["tym"] / g["lym"] - r) ** 2).sum()) * n / (n - 1)
            stats[(school, etype)] = (n, var ** 0.5)

    jan1 = dt.date(end.year, 1, 1)
    days_in_year = (dt.date(end.year, 12, 31) - jan1).days + 1
    # The later of 1 January and the first day with data this year (the monthly buckets of this year cover
    # 1 January … end, so their first day is exactly that).
    this_year = monthly.loc[monthly["bucket"].isin(["ty_pre", "tym"])]
    first_this_year = this_year.groupby(["school_id", "energy_type"])["first"].min().to_dict()
    rows = []
    for r in out.itertuples(index=False):
        projected = lo = hi = ratio = None
        if r.lym > 0:
            method = "seasonal"
            ratio = r.tym / r.lym
            projected = r.ytd + ratio * r.lyrest
            n, sd = stats.get((r.school_id, r.energy_type), (0, None))
            n_rest = int(rest_months.get((r.school_id, r.energy_type), 0))
            if r.lyrest <= 0 or n_rest == 0:
                lo = hi = projected
            elif sd is not None:
                half = z * sd * r.lyrest * (1.0 / n + 1.0 / n_rest) ** 0.5
                lo, hi = max(r.ytd, projected - half), projected + half
        elif r.energy_type != "heat" and r.ytd > 0:
            method = "linear"
            since = max(jan1, first_this_year.get((r.school_id, r.energy_type), jan1))
            projected = r.ytd * days_in_year / ((end - since).days + 1)
        else:
            method = "none"
        rows.append({"school_id": r.school_id, "energy_type": r.energy_type, "quota": r.quota, "ytd": r.ytd,
                     "projected": projected, "lo": lo, "hi": hi, "method": method, "ratio": ratio})
    frame = pd.DataFrame(rows, columns=cols[:9])
    for c in ("quota", "ytd", "projected", "lo", "hi", "ratio"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    has_quota = frame["quota"] > 0
    for c in ("ytd", "projected", "lo", "hi"):
        frame[f"{c}_pct"] = (100.0 * frame[c] / frame["quota"]).where(has_quota)
    return frame.sort_values(["school_id", "energy_type"], ignore_index=True)


def _kgce_factor(energy_type: str) -> float:
    return float(get_config().energy.get("kgce_factor", {}).get(energy_type, 0.0))


def combined_band(parts: pd.DataFrame) -> tuple[float | None, float | None, int]:
    """The 90 % band of a sum of projections (rows with ytd, projected, lo, hi in one unit, projected known):
    (lo, hi, unbanded).

    The parts' errors are taken as independent, so their variances add: the half-width of the sum is
    √Σ halfᵢ² over the parts with a band (halfᵢ = hiᵢ − projectedᵢ; a seasonal projection whose ratios agree
    has a band of width 0). Parts without a band — run-rate ("linear") projections, a seasonal one from a single
    month — add their projection without widening the band; ``unbanded`` counts them so that the band can say
    what it leaves out. The lower bound is at least the use so far. (None, None, unbanded) when no part has one.
    """
    banded = parts.loc[parts["hi"].notna()]
    unbanded = int(len(parts) - len(banded))
    if banded.empty:
        return None, None, unbanded
    half = float((((banded["hi"] - banded["projected"]) ** 2).sum()) ** 0.5)
    total = float(parts["projected"].sum())
    return max(float(parts["ytd"].sum()), total - half), total + half, unbanded


def quota_use(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """energy.quota_use: projected year-end use ÷ quota, in standard coal over the energy types (water is not
    energy) that have both a quota and a projection; extra columns for the panel: ytd, lo, hi (kgce; the band
    of ``combined_band``, None when no projection has one) and unbanded (projections left out of the band)."""
    if by not in (None, "school", "region"):
        return _empty(by)
    frame = quota_status(scope, period)
    frame = frame.loc[(frame["quota"] > 0) & frame["projected"].notna()].copy()
    frame["f"] = frame["energy_type"].map(_kgce_factor)
    frame = frame.loc[frame["f"] > 0]
    if frame.empty:
        return _empty(by, "num", "den", "ytd", "lo", "hi", "unbanded")
    for c in ("projected", "quota", "ytd", "lo", "hi"):
        frame[c] = frame[c] * frame["f"]
    if by == "region":
        from .dims import org_tree

        frame["key"] = frame["school_id"].map(org_tree().schools.set_index("school_id")["region_code"])
    elif by == "school":
        frame["key"] = frame["school_id"]

    def agg(g):
        lo, hi, unbanded = combined_band(g)
        return {"num": float(g["projected"].sum()), "den": float(g["quota"].sum()), "ytd": float(g["ytd"].sum()),
                "lo": lo, "hi": hi, "unbanded": unbanded}

    if by is None:
        return pd.DataFrame([agg(frame)])
    return pd.DataFrame([{"key": k, **agg(g)} for k, g in frame.groupby("key")])


@memoize()
def quota_daily(scope: Scope, end: dt.date, schools: tuple[str, ...]) -> pd.DataFrame:
    """Daily use per energy type of some schools of the scope (those with a quota), this year to ``end`` and the
    rest of last year: energy_type, day, consumption, part ("ytd" | "lyrest")."""
    d, m = agg_meter_daily, dim_meter
    w = _quota_windows(scope, end)
    ytd, rest = w["ytd"], w["ly_rest"]
    part = sa.case((d.c.day >= ytd.start, "ytd"), else_="lyrest")
    lo = rest.start if rest is not None else ytd.start
    allowed = [s for s in schools if s in scope.schools]
    stmt = (sa.select(m.c.energy_type, d.c.day, part.label("part"), sa.func.sum(d.c.consumption).label("consumption"))
            .select_from(d.join(m, m.c.meter_id == d.c.meter_id))
            .where(sa.or_(sa.and_(d.c.day >= ytd.start, d.c.day <= ytd.end),
                          sa.and_(d.c.day >= lo, d.c.day <= dt.date(end.year - 1, 12, 31)) if rest is not None
                          else sa.false()),
                   m.c.parent_meter_id.is_(None), m.c.school_id.in_(allowed),
                   m.c.facility_id.in_(facilities_in_scope(scope)))
            .group_by(m.c.energy_type, d.c.day, part).order_by(d.c.day))
    frame = read_df(stmt)
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def quota_path(scope: Scope, period: Period, energy_type: str) -> dict | None:
    """The quota chart of one energy type (or "kgce": electricity, gas and heat in standard coal) over the
    schools that have a quota for it: quota, actual (day, cumulative use) to the period's end, and the
    projected path (day, mid, lo, hi) to 31 December along last year's shape. None without a quota."""
    status = quota_status(scope, period)
    types = [t for t in QUOTA_TYPES if t != "water"] if energy_type == "kgce" else [energy_type]
    status = status.loc[status["energy_type"].isin(types) & (status["quota"] > 0)].copy()
    if status.empty:
        return None
    factor = {t: (_kgce_factor(t) if energy_type == "kgce" else 1.0) for t in types}
    status["f"] = status["energy_type"].map(factor)
    status = status.loc[status["f"] > 0]
    schools = tuple(sorted(status["school_id"].unique()))
    daily = quota_daily(scope, period.end, schools)
    daily = daily.loc[daily["energy_type"].isin(types)].copy()
    daily["value"] = daily["consumption"] * daily["energy_type"].map(factor)
    actual = daily.loc[daily["part"] == "ytd"].groupby("day")["value"].sum().sort_index().cumsum()
    quota_total = float((status["quota"] * status["f"]).sum())
    ytd = float((status["ytd"] * status["f"]).sum())
    projectable = status.loc[status["projected"].notna()]
    complete = len(projectable) == len(status)
    out = {"quota": quota_total, "ytd": ytd, "actual": actual, "path": None, "complete": complete,
           "projected": None, "lo": None, "hi": None, "unbanded": 0}
    if projectable.empty:
        return out
    scaled = pd.DataFrame({c: projectable[c] * projectable["f"] for c in ("ytd", "projected", "lo", "hi")})
    proj = float(scaled["projected"].sum())
    lo, hi, unbanded = combined_band(scaled)
    # Schools without a projection still count with their use so far.
    rest_ytd = ytd - float(scaled["ytd"].sum())
    out.update(projected=rest_ytd + proj, lo=None if lo is None else rest_ytd + lo,
               hi=None if hi is None else rest_ytd + hi, unbanded=unbanded)
    end = period.end
    dec31 = dt.date(end.year, 12, 31)
    if end >= dec31:
        return out
    days = pd.date_range(end, dec31, freq="D").date
    rest = daily.loc[daily["part"] == "lyrest"].groupby("day")["value"].sum()
    shape = pd.Series(0.0, index=days[1:])
    if not rest.empty and rest.sum() > 0:
        moved = rest.copy()
        moved.index = [_plus_years(d, 1) for d in moved.index]
        moved = moved.groupby(level=0).sum()
        shape = moved.reindex(days[1:]).fillna(0.0)
        share = shape.cumsum() / shape.sum()
    else:  # linear projections: an even share per day
        share = pd.Series(range(1, len(days)), index=days[1:], dtype=float) / (len(days) - 1)
    share = pd.concat([pd.Series([0.0], index=[days[0]]), share])
    remain = out["projected"] - ytd
    path = pd.DataFrame({"day": list(share.index), "mid": ytd + remain * share.to_numpy()})
    if out["lo"] is not None:
        path["lo"] = ytd + (out["lo"] - ytd) * share.to_numpy()
        path["hi"] = ytd + (out["hi"] - ytd) * share.to_numpy()
    out["path"] = path
    return out


# --- breakdowns, top-N, load curves -------------------------------------------------------------------------

PANEL_TYPES = ("kgce", "electricity", "water", "gas", "heat")


def _value_of(frame: pd.DataFrame, energy_type: str) -> pd.Series:
    """The chosen measure of consumption rows: standard coal for "kgce", else the type's own use."""
    if energy_type == "kgce":
        return _kgce(frame)
    return frame["consumption"].where(frame["energy_type"] == energy_type, 0.0)


def facility_use(scope: Scope, period: Period, energy_type: str) -> pd.DataFrame:
    """Use per building (top-level meters): facility_id, value; buildings without such use are left out."""
    frame = consumption(scope, period, "facility")
    if frame.empty:
        return pd.DataFrame(columns=["facility_id", "value"])
    frame = frame.assign(value=_value_of(frame, energy_type))
    if energy_type != "kgce":
        frame = frame.loc[frame["energy_type"] == energy_type]
    out = frame.groupby("key", as_index=False)["value"].sum().rename(columns={"key": "facility_id"})
    return out


def by_facility_type(scope: Scope, period: Period, energy_type: str) -> pd.DataFrame:
    """Use per facility type: facility_type, value, buildings (sorted, largest first)."""
    from .dims import org_tree

    use = facility_use(scope, period, energy_type)
    if use.empty:
        return pd.DataFrame(columns=["facility_type", "value", "buildings"])
    types = org_tree().facilities.set_index("facility_id")["facility_type"]
    use["facility_type"] = use["facility_id"].map(types)
    out = use.groupby("facility_type", as_index=False).agg(value=("value", "sum"), buildings=("facility_id", "size"))
    return out.sort_values("value", ascending=False, ignore_index=True)


END_USES = ("lighting_socket", "hvac", "power", "special", "other", "not_submetered")


@memoize()
def end_use(scope: Scope, period: Period) -> pd.DataFrame:
    """Electricity by end use: the sub-meters' use per end_use; "other" = the parents' use not covered by their
    sub-meters; "not_submetered" = top-level electricity of buildings without sub-meters. The rows add up to
    the scope's electricity total. Columns: end_use, value."""
    d, m = agg_meter_daily, dim_meter
    in_scope = m.c.facility_id.in_(facilities_in_scope(scope))
    days = sa.and_(d.c.day >= period.start, d.c.day <= period.end)
    parents = sa.select(m.c.parent_meter_id).where(m.c.parent_meter_id.is_not(None)).scalar_subquery()
    subs = read_df(sa.select(m.c.end_use, sa.func.sum(d.c.consumption).label("value"))
                   .select_from(d.join(m, m.c.meter_id == d.c.meter_id))
                   .where(days, in_scope, m.c.energy_type == "electricity", m.c.parent_meter_id.is_not(None))
                   .group_by(m.c.end_use))
    has_subs = sa.case((m.c.meter_id.in_(parents), 1), else_=0)
    tops = read_df(sa.select(has_subs.label("has_subs"), sa.func.sum(d.c.consumption).label("value"))
                   .select_from(d.join(m, m.c.meter_id == d.c.meter_id))
                   .where(days, in_scope, m.c.energy_type == "electricity", m.c.parent_meter_id.is_(None))
                   .group_by(has_subs))
    rows = [{"end_use": str(r.end_use or "other"), "value": float(r.value)} for r in subs.itertuples()]
    parent_total = float(tops.loc[tops["has_subs"] == 1, "value"].sum())
    if parent_total or rows:
        rows.append({"end_use": "other", "value": parent_total - float(subs["value"].sum())})
    plain = float(tops.loc[tops["has_subs"] == 0, "value"].sum())
    if plain:
        rows.append({"end_use": "not_submetered", "value": plain})
    out = pd.DataFrame(rows, columns=["end_use", "value"]).groupby("end_use", as_index=False)["value"].sum()
    order = {u: i for i, u in enumerate(END_USES)}
    return out.sort_values("end_use", key=lambda c: c.map(lambda u: order.get(u, len(order))), ignore_index=True)


def comparison_period(scope: Scope, period: Period) -> tuple[Period, str]:
    """Same dates last year when the warehouse has them ("yoy"), else the previous period ("prev")."""
    if last_year_covered(scope, period):
        return period.same_last_year(), "yoy"
    return period.previous(), "prev"


def top_buildings(scope: Scope, period: Period, energy_type: str, n: int | None = None):
    """(largest users, fastest growing) buildings: facility_id, value, before, growth (%); and the comparison
    ("yoy" or "prev"). Growth needs use in the comparison period."""
    n = int(n or _e("top_n", 10))
    now = facility_use(scope, period, energy_type)
    now = now.loc[now["value"] > 0]
    other, kind = comparison_period(scope, period)
    before = facility_use(scope, other, energy_type).rename(columns={"value": "before"})
    merged = now.merge(before, on="facility_id", how="left")
    merged["growth"] = (100.0 * (merged["value"] / merged["before"] - 1.0)).where(merged["before"] > 0)
    largest = merged.sort_values(["value", "facility_id"], ascending=[False, True]).head(n).reset_index(drop=True)
    growing = (merged.dropna(subset=["growth"]).sort_values(["growth", "facility_id"], ascending=[False, True])
               .head(n).reset_index(drop=True))
    return largest, growing, kind


def daily_use(scope: Scope, period: Period, energy_type: str) -> pd.DataFrame:
    """Daily totals of the top-level meters: day, energy_type, value (kgce per type for "kgce")."""
    frame = consumption(scope, period, "day")
    if frame.empty:
        return pd.DataFrame(columns=["day", "energy_type", "value"])
    frame = frame.assign(value=_value_of(frame, energy_type))
    if energy_type != "kgce":
        frame = frame.loc[frame["energy_type"] == energy_type]
    else:
        frame = frame.loc[frame["value"] != 0]
    out = frame.groupby(["key", "energy_type"], as_index=False)["value"].sum().rename(columns={"key": "day"})
    out["day"] = pd.to_datetime(out["day"]).dt.date
    # Every day of the period for every type drawn, NaN where the scope has no reading: a missing day shows as
    # a gap in the curve, not as a line drawn across it.
    days = pd.date_range(period.start, period.end, freq="D").date
    grid = pd.MultiIndex.from_product([sorted(out["energy_type"].unique()), days], names=["energy_type", "day"])
    out = out.set_index(["energy_type", "day"]).reindex(grid).reset_index()
    return out.sort_values(["day", "energy_type"], ignore_index=True)[["day", "energy_type", "value"]]


def buildings_in_scope(scope: Scope, period: Period, energy_type: str, limit: int = 100) -> pd.DataFrame:
    """Buildings of the scope with top-level meters of the type (any energy for "kgce"), largest users first
    (at most ``limit``): facility_id, value."""
    types = [t for t in QUOTA_TYPES if t != "water"] if energy_type == "kgce" else [energy_type]
    meters = meters_in_scope(scope, types)
    ids = meters["facility_id"].drop_duplicates()
    use = facility_use(scope, period, energy_type).set_index("facility_id")["value"]
    out = pd.DataFrame({"facility_id": ids.to_numpy(), "value": use.reindex(ids).fillna(0.0).to_numpy()})
    return out.sort_values(["value", "facility_id"], ascending=[False, True]).head(limit).reset_index(drop=True)


@memoize()
def building_hours(scope: Scope, facility_id: str, period: Period, energy_type: str) -> pd.DataFrame:
    """Hourly use of one building's top-level meters (raw readings, aggregated in SQL): day, hour, value.
    The building must lie inside the scope."""
    if meters_in_scope(scope).loc[lambda f: f.facility_id == facility_id].empty:
        raise InputError(f"该建筑不在当前范围内：{facility_id[:64]}", f"building not in this scope: {facility_id[:64]}")
    r, m = fact_meter_reading, dim_meter
    types = [t for t in QUOTA_TYPES if t != "water"] if energy_type == "kgce" else [energy_type]
    meters = sa.select(m.c.meter_id).where(m.c.facility_id == facility_id, m.c.parent_meter_id.is_(None),
                                           m.c.energy_type.in_(types))
    day, hour = date_of(r.c.ts), hour_of(r.c.ts)
    stmt = (sa.select(m.c.energy_type, day.label("day"), hour.label("hour"), sa.func.sum(r.c.consumption).label("consumption"))
            .select_from(r.join(m, m.c.meter_id == r.c.meter_id))
            .where(r.c.meter_id.in_(meters), r.c.ts >= dt.datetime.combine(period.start, dt.time()),
                   r.c.ts < dt.datetime.combine(period.end_exclusive, dt.time()))
            .group_by(m.c.energy_type, day, hour))
    frame = read_df(stmt)
    frame = frame.assign(value=_value_of(frame, energy_type))
    out = frame.groupby(["day", "hour"], as_index=False)["value"].sum()
    out["day"] = pd.to_datetime(out["day"]).dt.date
    out["hour"] = out["hour"].astype(int)
    return out.sort_values(["day", "hour"], ignore_index=True)


def building_profile(scope: Scope, facility_id: str, period: Period, energy_type: str) -> pd.DataFrame:
    """Mean hourly use of a building per day class: day_class, hour, value, days."""
    from .dims import org_tree

    hours = building_hours(scope, facility_id, period, energy_type)
    if hours.empty:
        return pd.DataFrame(columns=["day_class", "hour", "value", "days"])
    school = str(org_tree().facilities.set_index("facility_id").loc[facility_id, "school_id"])
    cal = cal_mod.day_types(Scope("school", school=school, schools=(school,)), period)
    hours = hours.merge(cal[["day", "day_class"]], on="day", how="left")
    out = hours.groupby(["day_class", "hour"], as_index=False).agg(value=("value", "mean"), days=("day", "nunique"))
    return out


# --- intensity ranking --------------------------------------------------------------------------------------

@memoize()
def intensity_ranking(scope: Scope, period: Period, what: str) -> pd.DataFrame:
    """The scope's schools by annualised intensity, with their peer group (same school type, every school of the
    warehouse): school_id, school_type, value, peer_median, p25, p75 (NaN for a group under PEER_MIN_GROUP
    schools), peers, last_year (the same dates last year, when the school has data from their first day),
    basis (what the status compares with: "peer", "last_year" or None), status. Sorted highest first."""
    cols = ["school_id", "school_type", "value", "peer_median", "p25", "p75", "peers", "last_year", "basis",
            "status"]
    table = _intensity_table(period, what)
    if table.empty:
        return pd.DataFrame(columns=cols)
    table = table.assign(value=table["num"] / table["den"])
    stats = peer_stats(period, what).rename(columns={"median": "peer_median"})
    out = table.loc[table.school_id.isin(scope.schools), ["school_id", "school_type", "value"]]
    out = out.merge(stats, left_on="school_type", right_index=True, how="left")
    ly = period.same_last_year()
    before = _intensity_table(ly, what)
    before = before.loc[before["first"] <= ly.start]
    out["last_year"] = out["school_id"].map(pd.Series((before["num"] / before["den"]).to_numpy(),
                                                      index=before["school_id"])).astype(float)
    # The indicator's status rule, with the medians at hand: against the peer median, or for a small peer group
    # against the school's own last year.
    out["basis"] = [None if not t else "peer" if pd.notna(m) else "last_year" if pd.notna(y) else None
                    for t, m, y in zip(out["school_type"], out["peer_median"], out["last_year"])]
    out["status"] = [compare_intensity(what, v, m if b == "peer" else y if b == "last_year" else None)
                     for v, m, y, b in zip(out["value"], out["peer_median"], out["last_year"], out["basis"])]
    return out.sort_values(["value", "school_id"], ascending=[False, True], ignore_index=True)[cols]


# --- what each section of the panel reads: one cached bundle per section ------------------------------------
# A warm section then costs one cache read instead of dozens (each memoized call costs a key and an unpickle).

@memoize()
def meter_types(scope: Scope) -> tuple[str, ...]:
    """The energy types metered in the scope (top-level meters); empty when the scope has no meter at all."""
    if meters_in_scope(scope, top_only=False).empty:
        return ()
    return tuple(sorted(set(meters_in_scope(scope)["energy_type"])))


@memoize()
def tile_figures(scope: Scope, period: Period, indicator_ids: tuple[str, ...]) -> dict:
    """For each indicator applicable at the scope's level: the current Result, the change against the previous
    period, "data as of", and the panel's details: yoy (% change against the same dates last year, for sums,
    when the warehouse holds them), peer (the peer median, intensities of one school type, None for a peer
    group under PEER_MIN_GROUP schools), peers (the group's size), basis (what the status compares with: "peer",
    "last_year" or None), last_year (intensities), covered (last year held)."""
    from . import meta, registry

    covered = last_year_covered(scope, period)
    ly = period.same_last_year()
    out = {}
    for ind_id in indicator_ids:
        ind = registry.get(ind_id)
        if scope.level not in ind.levels:
            continue
        tile = registry.tile(ind_id, scope, period)
        cur = tile.current
        item = {"current": cur, "change": tile.change, "as_of": meta.as_of(scope, ind.tables), "covered": covered,
                "yoy": None, "peer": None, "last_year": None}
        if cur.value is not None and covered and ind.kind == "sum" and ind.unit != "个":
            before = registry.evaluate(ind_id, scope, ly).value
            item["yoy"] = 100.0 * (cur.value / before - 1.0) if before else None
        what = next((k for k, v in INTENSITY.items() if v.id == ind_id), None)
        if what is not None and cur.value is not None:
            item.update(_intensity_details(scope, period, what, cur, covered))
        out[ind_id] = item
    return out


def _intensity_details(scope: Scope, period: Period, what: str, cur, covered: bool) -> dict:
    """peer, peers, basis and last_year of an intensity's current Result (see ``tile_figures``)."""
    from . import registry

    school_type = cur.extra.get("school_type")
    last_year = cur.extra.get("last_year")
    if last_year is None and covered:
        last_year = registry.evaluate(INTENSITY[what].id, scope, period.same_last_year()).value
    return {"peer": peer_median(period, what, school_type), "peers": peer_count(period, what, school_type),
            "basis": intensity_basis(period, what, school_type, cur.extra.get("last_year")),
            "last_year": last_year}


@memoize()
def panel_daily(scope: Scope, period: Period, energy_type: str) -> dict:
    """The load curve: daily use per type, and at school level and below the school's vacation and holiday
    runs (first, last, "vacation" | "holiday")."""
    spans = []
    if scope.school:
        cal = cal_mod.day_types(Scope("school", school=scope.school, schools=(scope.school,)), period)
        spans = cal_mod.spans(cal, cal_mod.OFF_CLASSES)
    return {"daily": daily_use(scope, period, energy_type), "spans": spans}


def heatmap_matrix(hours: pd.DataFrame, max_days: int, period: Period | None = None):
    """(columns, 24 rows of values, weekly?) from a building's (day, hour, value) rows: days as columns (every
    day of ``period``, a day without readings empty), or weeks (the mean day of each week, Monday first) when
    there are more than ``max_days`` days."""
    grid = hours.pivot_table(index="hour", columns="day", values="value", aggfunc="sum").reindex(range(24))
    if period is not None:
        grid = grid.reindex(columns=list(pd.date_range(period.start, period.end, freq="D").date))
    weekly = grid.shape[1] > max_days
    if weekly:
        days = pd.to_datetime(pd.Series(grid.columns))
        weeks = (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).dt.date
        grid = grid.T.groupby(weeks.to_numpy()).mean().T
    z = [[None if pd.isna(v) else float(v) for v in row] for row in grid.to_numpy()]
    return list(grid.columns), z, weekly


@memoize()
def panel_building(scope: Scope, period: Period, energy_type: str, wanted: str | None) -> dict | None:
    """One building's charts: the buildings to choose from (largest first), the chosen one (``wanted`` when it
    has meters of the type in the scope, else the facility of a facility scope, else the largest user), its
    mean hourly profile per day class and its day (or week) × hour matrix, and its school's off days."""
    listed = buildings_in_scope(scope, period, energy_type)
    if listed.empty:
        return None
    options = list(listed["facility_id"])
    eligible = set(meters_in_scope(scope, None if energy_type == "kgce" else [energy_type])["facility_id"])
    if wanted not in eligible:
        wanted = scope.facility if scope.facility in eligible else options[0]
    if wanted not in options:
        options.append(wanted)
    hours = building_hours(scope, wanted, period, energy_type)
    out = {"options": options, "chosen": wanted, "empty": hours.empty}
    if hours.empty:
        return out
    from .dims import org_tree

    school = str(org_tree().facilities.set_index("facility_id").loc[wanted, "school_id"])
    cal = cal_mod.day_types(Scope("school", school=school, schools=(school,)), period)
    hours = hours.merge(cal[["day", "day_class"]], on="day", how="left")
    profile = hours.groupby(["day_class", "hour"], as_index=False)["value"].mean()
    out["profile"] = {c: [None if pd.isna(v) else float(v) for v in
                          profile.loc[profile.day_class == c].set_index("hour")["value"].reindex(range(24))]
                      for c in cal_mod.DAY_CLASSES if c in set(profile["day_class"])}
    out["columns"], out["z"], out["weekly"] = heatmap_matrix(hours, int(_e("heatmap_max_days", 200)), period)
    out["off_days"] = list(cal.loc[cal.day_class.isin(cal_mod.OFF_CLASSES), "day"])
    return out


@memoize()
def panel_breakdown(scope: Scope, period: Period, energy_type: str) -> dict:
    """By building type, electricity by end use, and the top-N buildings by use and by growth."""
    largest, growing, kind = top_buildings(scope, period, energy_type)
    uses = end_use(scope, period)
    return {"types": by_facility_type(scope, period, energy_type), "end_use": uses.loc[uses["value"] > 0],
            "largest": largest, "growing": growing, "kind": kind}


@memoize()
def panel_quota(scope: Scope, period: Period, energy_type: str) -> dict | None:
    """The quota section: one row per energy type with a quota (summed over the scope's schools that have one:
    quota, ytd, projected — None when a school's cannot be projected —, the band of ``combined_band`` and
    their % of quota, unbanded, method — "mixed" when the schools' methods differ, with methods: method → schools
    —, status) and the chart of ``energy_type`` (or of the first type with a quota). None without any quota."""
    from . import registry

    status = quota_status(scope, period)
    status = status.loc[status["quota"] > 0]
    if status.empty:
        return None
    ind = registry.get("energy.quota_use")
    rows = []
    for etype, g in status.groupby("energy_type", sort=False):
        n = len(g)
        quota, ytd = float(g["quota"].sum()), float(g["ytd"].sum())
        projected = g["projected"].sum(min_count=n)
        lo = hi = None
        unbanded = 0
        if not pd.isna(projected):
            lo, hi, unbanded = combined_band(g)
        methods = {m: int(c) for m, c in g["method"].value_counts().sort_index().items()}
        method = next(iter(methods)) if len(methods) == 1 else "mixed"

        def pct(v):
            return None if v is None or pd.isna(v) else 100.0 * float(v) / quota

        rows.append({"energy_type": etype, "quota": quota, "ytd": ytd, "ytd_pct": pct(ytd),
                     "projected": None if pd.isna(projected) else float(projected), "projected_pct": pct(projected),
                     "lo_pct": pct(lo), "hi_pct": pct(hi), "unbanded": unbanded, "method": method,
                     "methods": methods, "status": registry.threshold_status(ind, pct(projected))})
    order = {e: i for i, e in enumerate(QUOTA_TYPES)}
    rows.sort(key=lambda r: order.get(r["energy_type"], 9))
    types = {r["energy_type"] for r in rows}
    chart_type = energy_type if (energy_type == "kgce" and types - {"water"}) or energy_type in types \
        else rows[0]["energy_type"]
    return {"rows": rows, "chart_type": chart_type, "path": quota_path(scope, period, chart_type)}


@memoize()
def panel_intensity(scope: Scope, period: Period) -> dict:
    """School level: per intensity the value, status, peer median (None for a peer group under
    PEER_MIN_GROUP schools), what the status compares with, and last year's value. Region and
    association: the ranking of the scope's schools per intensity (per area, per person)."""
    from . import registry

    if scope.level == "school":
        covered = last_year_covered(scope, period)
        rows = []
        for what, ind in INTENSITY.items():
            cur = registry.evaluate(ind.id, scope, period)
            rows.append({"id": ind.id, "value": cur.value, "status": cur.status,
                         **_intensity_details(scope, period, what, cur, covered)})
        return {"rows": rows}
    return {"rankings": {what: intensity_ranking(scope, period, what) for what in ("per_area", "per_capita")}}


@memoize()
def panel_anomalies(scope: Scope, period: Period) -> dict[str, pd.DataFrame]:
    """The anomaly list (see ``anomaly_list``)."""
    return anomaly_list(scope, period)


# --- declarations -------------------------------------------------------------------------------------------

for _type, (_zh, _en, _unit) in ENERGY_TYPES.items():
    register(Indicator(
        id=f"energy.{_type}_{ {'electricity': 'kwh', 'water': 'm3', 'gas': 'm3', 'heat': 'gj'}[_type] }",
        domain="energy", name_zh=_zh, name_en=_en, unit=_unit, direction="none", kind="sum",
        measure=_type_measure(_type), tables=TABLES, change="rel", decimals=0,
        formula_zh="总表 Σ用量（不含分项子表）", formula_en="Σ consumption of top-level meters",
    ))

register(Indicator(
    id="energy.total_kgce", domain="energy", name_zh="综合能耗", name_en="Total energy (standard coal)",
    unit="kgce", direction="none", kind="sum", measure=kgce_measure, tables=TABLES, change="rel", decimals=0,
    formula_zh="Σ用量 × 折标系数（当量值，GB/T 2589-2020），仅总表",
    formula_en="Σ consumption × standard-coal factor (GB/T 2589-2020), top-level meters only",
))
register(Indicator(
    id="energy.co2_t", domain="energy", name_zh="碳排放", name_en="CO₂ emissions", unit="t",
    direction="none", kind="sum", measure=co2_measure, tables=TABLES, change="rel",
    formula_zh="Σ用量 × 排放因子 ÷ 1000", formula_en="Σ consumption × CO₂ factor ÷ 1000",
))
register(Indicator(
    id="energy.yoy", domain="energy", name_zh="能耗同比", name_en="Energy year on year", unit="%",
    direction="lower", kind="custom", measure=yoy_measure, tables=TABLES, alert_grain="school",
    formula_zh="本期综合能耗 ÷ 去年同期 − 1", formula_en="this period's kgce ÷ same period last year − 1",
))
INTENSITY = {
    "per_area": register(Indicator(
        id="energy.per_area", domain="energy", name_zh="单位面积能耗", name_en="Energy per m²",
        unit="kgce/m²·a", direction="lower", scale=1.0, measure=_intensity_measure("per_area"),
        status_rule=_peer_status("per_area"), tables=TABLES + ("fact_school_year",),
        levels=("association", "region", "school"), alert_grain="school", decimals=2,
        formula_zh="综合能耗（年化）÷ 建筑面积；与同类型学校中位数比较",
        formula_en="annualised kgce ÷ floor area; against the median of schools of the same type",
    )),
    "per_capita": register(Indicator(
        id="energy.per_capita", domain="energy", name_zh="人均综合能耗", name_en="Energy per person",
        unit="kgce/人·a", direction="lower", scale=1.0, measure=_intensity_measure("per_capita"),
        status_rule=_peer_status("per_capita"), tables=TABLES + ("fact_school_year",),
        levels=("association", "region", "school"), alert_grain="school",
        formula_zh="综合能耗（年化）÷（学生 + 教职工）；与同类型学校中位数比较",
        formula_en="annualised kgce ÷ (students + staff); against the median of schools of the same type",
    )),
    "water_per_capita": register(Indicator(
        id="energy.water_per_capita", domain="energy", name_zh="人均用水", name_en="Water per person",
        unit="m³/人·a", direction="lower", scale=1.0, measure=_intensity_measure("water_per_capita"),
        status_rule=_peer_status("water_per_capita"), tables=TABLES + ("fact_school_year",),
        levels=("association", "region", "school"), alert_grain="school", decimals=2,
        formula_zh="用水量（年化）÷（学生 + 教职工）", formula_en="annualised water ÷ (students + staff)",
    )),
}
register(Indicator(
    id="energy.meter_coverage", domain="energy", name_zh="计量覆盖率", name_en="Meter coverage", unit="%",
    direction="higher", measure=meter_coverage, tables=("dim_meter", "dim_facility"), alert_grain="school",
    formula_zh="有电力总表的建筑 ÷ 建筑", formula_en="buildings with a top-level electricity meter ÷ buildings",
))
register(Indicator(
    id="energy.data_completeness", domain="energy", name_zh="数据完整率", name_en="Meter data completeness",
    unit="%", direction="higher", measure=data_completeness, tables=TABLES, alert_grain="school", decimals=2,
    formula_zh="实际小时读数 ÷ 应有读数（每表每天24个）", formula_en="hourly readings present ÷ expected (24 per meter-day)",
))

register(Indicator(
    id="energy.quota_use", domain="energy", name_zh="定额执行率", name_en="Quota use (projected)", unit="%",
    direction="lower", measure=quota_use, tables=TABLES + ("fact_energy_quota",),
    levels=("association", "region", "school"), alert_grain="school",
    formula_zh="预计全年能耗 ÷ 能耗定额（折标煤，电、气、热）；预测 = 年初至今 + 去年余下各日 × 今年/去年同日比",
    formula_en="projected year-end use ÷ quota (standard coal; electricity, gas, heat); projection = year to date "
               "+ the rest of last year × this year's use ÷ last year's on the same dates",
))
register(Indicator(
    id="energy.night_ratio", domain="energy", name_zh="夜间基荷比", name_en="Night base-load ratio", unit="",
    direction="lower", scale=1.0, measure=night_ratio, tables=TABLES + ("dim_school_calendar",),
    alert_grain="school", decimals=2,
    formula_zh="教学楼、办公楼电力：教学工作日 0–5 时平均负荷 ÷ 9–17 时平均负荷",
    formula_en="teaching and office electricity: mean load 00:00–05:00 ÷ 09:00–17:00 on term workdays",
))
register(Indicator(
    id="energy.holiday_ratio", domain="energy", name_zh="假期能耗比", name_en="Vacation use ratio", unit="",
    direction="lower", scale=1.0, measure=holiday_ratio, tables=TABLES + ("dim_school_calendar",),
    alert_grain="school", decimals=2,
    formula_zh="电力：寒暑假及节假日日均用量 ÷ 教学工作日日均用量（按建筑求和）",
    formula_en="electricity: mean daily use in vacations and on holidays ÷ on term workdays (summed over buildings)",
))
register(Indicator(
    id="energy.leak_suspect", domain="energy", name_zh="疑似漏水", name_en="Suspected water leaks", unit="个",
    direction="lower", kind="sum", measure=leak_suspect, tables=TABLES, alert_grain="facility", decimals=0,
    formula_zh="2–4 时平均流量超过当日平均小时流量 10% 的夜晚 ≥ 2 个的水表数",
    formula_en="water meters with ≥ 2 nights whose 02:00–04:00 mean flow exceeds 10 % of the day's mean hourly flow",
))
register(Indicator(
    id="energy.anomalies", domain="energy", name_zh="用能异常", name_en="Consumption anomalies", unit="个",
    direction="lower", kind="sum", measure=anomalies, tables=TABLES + ("dim_school_calendar",),
    alert_grain="school", decimals=0,
    formula_zh="与前 8 个同类同星期日相比 |z| > 3 的表计日（电、水、气）",
    formula_en="meter-days with |z| > 3 against the previous 8 same weekdays of the same day class (electricity, "
               "water, gas)",
))
