"""Dining safety (餐饮安全): queries and indicator declarations.

Daily checks follow INDICATORS.md: on a service day (a meal with covers > 0) each check of config
``dining.per_meal_checks`` is due per served meal and each of ``dining.per_day_checks`` once per day (meal
``day``); a check missing on a service day counts as one item due and none compliant; on a no-service day
nothing is due and check rows, if any, are ignored.
"""
from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import sqlalchemy as sa

from .cache import memoize
from .config import get_config
from .dims import org_tree
from .engine import read_df
from .period import Period
from .registry import AMBER, GREEN, NODATA, RED, Indicator, breakdown, register, threshold_status
from .schema import (
    dim_facility,
    dim_school,
    fact_canteen_inspection,
    fact_cold_chain_reading,
    fact_dining_check,
    fact_food_hazard,
    fact_meals_served,
    fact_staff_certificate,
)
from .scope import Scope, facilities_in_scope, scope_facility_fact, with_key
from .sqlfuncs import date_of, literal_rows, ratio_sum, seconds_between

CHECKS = {
    "sample_retention": ("留样合规率", "Sample retention compliance"),
    "morning_check": ("晨检完成率", "Morning health check completion"),
    "tableware_disinfection": ("餐具消毒合规率", "Tableware disinfection compliance"),
    "pesticide_test": ("农残快检合格率", "Pesticide rapid-test pass rate"),
    "supplier_docs": ("索证索票完整率", "Supplier documents completeness"),
    "accompany_meal": ("陪餐执行率", "Accompanied-meal execution (K12)"),
    "self_check": ("自查执行率", "Self-inspection execution"),
    "video_online": ("明厨亮灶在线率", "Open-kitchen video online rate"),
}
TABLES_CHECKS = ("fact_dining_check", "fact_meals_served")


def _key_or_day(stmt, scope, facility_col, by, day_col):
    if by == "day":
        stmt, _ = scope_facility_fact(stmt, scope, facility_col, None)
        return with_key(stmt, day_col)
    stmt, key = scope_facility_fact(stmt, scope, facility_col, by)
    return with_key(stmt, key)


def _slots(scope: Scope, period: Period) -> sa.Subquery:
    """The checks due in the period: one row (facility_id, d, meal, check_type) per served meal and per-meal
    check, and per service day and per-day check (k12-only checks only at k12 schools)."""
    cfg = get_config().dining
    per_meal = list(cfg.get("per_meal_checks", []))
    per_day = list(cfg.get("per_day_checks", []))
    k12_only = list(cfg.get("k12_only_checks", []))
    ms, f, s = fact_meals_served, dim_facility, dim_school
    in_scope = facilities_in_scope(scope)

    served = (
        sa.select(ms.c.facility_id, ms.c.service_date, ms.c.meal, s.c.school_type)
        .select_from(ms.join(f, f.c.facility_id == ms.c.facility_id).join(s, s.c.school_id == f.c.school_id))
        .where(ms.c.covers > 0, ms.c.service_date >= period.start, ms.c.service_date <= period.end,
               ms.c.facility_id.in_(in_scope))
        .subquery("served")
    )
    meal_types = literal_rows("meal_checks", "check_type", per_meal)
    day_types = literal_rows("day_checks", "check_type", per_day)
    def due_here(check_type, school_type):
        # a k12-only check (accompanied meals) is due at k12 schools only, whether per meal or per day
        return sa.or_(check_type.notin_(k12_only), school_type == "k12") if k12_only else sa.true()

    meal_slots = (
        sa.select(served.c.facility_id, served.c.service_date.label("d"), served.c.meal, meal_types.c.check_type)
        .select_from(served.join(meal_types, sa.true()))
        .where(due_here(meal_types.c.check_type, served.c.school_type))
    )
    days = (sa.select(served.c.facility_id, served.c.service_date, served.c.school_type).distinct()
            .subquery("service_days"))
    day_slots = sa.select(
        days.c.facility_id, days.c.service_date.label("d"), sa.literal("day", sa.String(32)).label("meal"),
        day_types.c.check_type,
    ).select_from(days.join(day_types, sa.true())).where(due_here(day_types.c.check_type, days.c.school_type))
    return sa.union_all(meal_slots, day_slots).subquery("slots")


def _slot_join(slots, period: Period):
    k = fact_dining_check
    # The period's bounds on the checks too, not only through the join: the engine then reads the period's
    # checks instead of every check ever recorded (8x faster on 1.7 M checks).
    return slots.outerjoin(k, sa.and_(
        k.c.facility_id == slots.c.facility_id, k.c.check_date == slots.c.d,
        k.c.meal == slots.c.meal, k.c.check_type == slots.c.check_type,
        k.c.check_date >= period.start, k.c.check_date <= period.end))


@memoize()
def check_totals(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Σ items due and Σ items ok per check type (and per group): key?, check_type, num, den."""
    slots = _slots(scope, period)
    k = fact_dining_check
    missing = k.c.facility_id.is_(None)
    stmt = (
        sa.select(
            slots.c.check_type,
            sa.func.sum(sa.case((missing, 0), else_=k.c.items_ok)).label("num"),
            sa.func.sum(sa.case((missing, 1), else_=k.c.items_due)).label("den"),
            ratio_sum(missing).label("missing"),
        )
        .select_from(_slot_join(slots, period))
        .group_by(slots.c.check_type)
    )
    stmt = _key_or_day(stmt, scope, slots.c.facility_id, by, slots.c.d)
    return read_df(stmt)


@memoize()
def checklist(scope: Scope, period: Period) -> pd.DataFrame:
    """Every check due in the period, one row per slot: facility_id, d, meal, check_type, items_due, items_ok
    (both empty when the check is missing). For the canteen's daily checklist view (one facility, a few
    weeks: a listing, not an aggregate)."""
    slots = _slots(scope, period)
    k = fact_dining_check
    stmt = (
        sa.select(slots.c.facility_id, slots.c.d, slots.c.meal, slots.c.check_type, k.c.items_due, k.c.items_ok)
        .select_from(_slot_join(slots, period))
        .order_by(slots.c.facility_id, slots.c.d, slots.c.meal, slots.c.check_type)
    )
    return read_df(stmt)


@memoize()
def meals_served(scope: Scope, period: Period) -> pd.DataFrame:
    """Covers per day and meal inside the scope (Σ over its canteens): d, meal, covers."""
    ms = fact_meals_served
    stmt = (
        sa.select(ms.c.service_date.label("d"), ms.c.meal, sa.func.sum(ms.c.covers).label("covers"))
        .where(ms.c.service_date >= period.start, ms.c.service_date <= period.end,
               ms.c.facility_id.in_(facilities_in_scope(scope)))
        .group_by(ms.c.service_date, ms.c.meal)
        .order_by(ms.c.service_date, ms.c.meal)
    )
    return read_df(stmt)


def _check_measure(check_type: str):
    def measure(scope: Scope, period: Period, by: str | None) -> pd.DataFrame:
        frame = check_totals(scope, period, by)
        return frame.loc[frame.check_type == check_type].drop(columns="check_type").reset_index(drop=True)

    measure.__name__ = f"measure_{check_type}"
    return measure


def _in_band():
    """SQL condition: the reading lies in its zone's allowed band (inclusive bounds from config)."""
    bands = get_config().dining.get("cold_chain", {})
    r = fact_cold_chain_reading
    whens = []
    for zone, band in bands.items():
        cond = [r.c.zone == zone]
        if band.get("min") is not None:
            cond.append(r.c.temp_c >= float(band["min"]))
        if band.get("max") is not None:
            cond.append(r.c.temp_c <= float(band["max"]))
        whens.append(sa.and_(*cond))
    return sa.or_(*whens) if whens else sa.false()


@memoize()
def cold_chain_totals(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Readings in the allowed band (num) and readings (den), per group."""
    r = fact_cold_chain_reading
    stmt = sa.select(
        ratio_sum(_in_band()).label("num"), sa.func.count().label("den"),
        sa.func.count(sa.distinct(r.c.device_id)).label("devices"),
    ).select_from(r).where(r.c.ts >= period.start, r.c.ts < period.end_exclusive)
    return read_df(_key_or_day(stmt, scope, r.c.facility_id, by, date_of(r.c.ts)))


@memoize()
def cold_chain_online(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Continuously running devices (chilled, frozen) seen in the period that reported in its last 3 days."""
    r = fact_cold_chain_reading
    recent = period.end_exclusive - dt.timedelta(days=3)
    per_device = (
        sa.select(r.c.device_id, sa.func.min(r.c.facility_id).label("facility_id"),
                  sa.func.max(r.c.ts).label("last_ts"))
        .where(r.c.ts >= period.start, r.c.ts < period.end_exclusive, r.c.zone.in_(["chilled", "frozen"]),
               r.c.facility_id.in_(facilities_in_scope(scope)))
        .group_by(r.c.device_id)
        .subquery("devices")
    )
    stmt = sa.select(
        ratio_sum(per_device.c.last_ts >= recent).label("num"), sa.func.count().label("den"),
    ).select_from(per_device)
    if by == "day":
        return pd.DataFrame(columns=["key", "num", "den"])
    stmt, key = scope_facility_fact(stmt, scope, per_device.c.facility_id, by)
    return read_df(with_key(stmt, key))


def _state_date(period: Period) -> dt.date:
    return period.state_date(get_config().today())


def _canteen_groups(scope: Scope, by: str | None) -> set:
    """The groups of the scope (children at level ``by``; the scope itself when None) that have a canteen."""
    rows = canteens(scope)
    if by is None:
        return {None} if len(rows) else set()
    if by == "facility":
        return set(rows["facility_id"])
    if by in ("campus", "school"):
        return set(rows[f"{by}_id"])
    regions = org_tree().schools.set_index("school_id")["region_code"]
    return set(rows["school_id"].map(regions).dropna())


def _canteen_counts(frame: pd.DataFrame, scope: Scope, by: str | None, present: str) -> pd.DataFrame:
    """A count over canteen facts (overdue hazards, certificates) as data where there is something to count: a
    place with a canteen counts 0 when nothing is found; a place without a canteen (and without any such fact,
    ``present`` being 0) has no data, like every other dining indicator — not a green 0."""
    groups = _canteen_groups(scope, by)
    if by is None:
        if frame.empty or (not groups and not (frame.iloc[0][present] or 0)):
            return frame.iloc[0:0]
        return frame
    missing = sorted(groups - set(frame["key"]), key=str)
    if not missing:
        return frame
    zeros = pd.DataFrame({c: (missing if c == "key" else [0] * len(missing)) for c in frame.columns})
    return pd.concat([frame, zeros], ignore_index=True) if len(frame) else zeros


@memoize()
def hazards_overdue(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Hazards open at the period's state date whose due date has passed: num (all), high (severity high)."""
    h = fact_food_hazard
    at = _state_date(period)
    is_open = sa.or_(h.c.closed_on.is_(None), h.c.closed_on >= at)
    stmt = sa.select(
        sa.func.count().label("num"), ratio_sum(h.c.severity == "high").label("high"),
    ).select_from(h).where(h.c.found_on < at, h.c.due_on < at, is_open)
    if by == "day":
        return pd.DataFrame(columns=["key", "num", "high"])
    stmt, key = scope_facility_fact(stmt, scope, h.c.facility_id, by)
    return _canteen_counts(read_df(with_key(stmt, key)), scope, by, "num")


@memoize()
def hazard_closure(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Hazards due in the period (up to yesterday): closed on or before the due date (num) ÷ due (den)."""
    h = fact_food_hazard
    last = min(period.end, get_config().today() - dt.timedelta(days=1))
    stmt = sa.select(
        ratio_sum(sa.and_(h.c.closed_on.is_not(None), h.c.closed_on <= h.c.due_on)).label("num"),
        sa.func.count().label("den"),
    ).select_from(h).where(h.c.due_on >= period.start, h.c.due_on <= last)
    return read_df(_key_or_day(stmt, scope, h.c.facility_id, by, h.c.due_on))


@memoize()
def certificates(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Health certificates expired (valid_until before the state date) or expiring within the warning days."""
    c = fact_staff_certificate
    at = _state_date(period)
    days = int(get_config().dining.get("certificate_warning_days", 30))
    warn = at + dt.timedelta(days=days)
    stmt = sa.select(
        ratio_sum(c.c.valid_until < warn).label("num"),
        ratio_sum(c.c.valid_until < at).label("expired"),
        ratio_sum(sa.and_(c.c.valid_until >= at, c.c.valid_until < warn)).label("expiring"),
        sa.func.count().label("staff"),
    ).select_from(c)
    if by == "day":
        return pd.DataFrame(columns=["key", "num", "expired", "expiring", "staff", "warning_days"])
    stmt, key = scope_facility_fact(stmt, scope, c.c.facility_id, by)
    # the warning window travels with the figures, so a tile can say "expiring in N days" without reading config
    return _canteen_counts(read_df(with_key(stmt, key)), scope, by, "staff").assign(warning_days=days)


@memoize()
def covers(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    ms = fact_meals_served
    stmt = sa.select(sa.func.sum(ms.c.covers).label("num")).select_from(ms).where(
        ms.c.service_date >= period.start, ms.c.service_date <= period.end)
    return read_df(_key_or_day(stmt, scope, ms.c.facility_id, by, ms.c.service_date))


# --- cold-chain excursions ---------------------------------------------------------------------------------
#
# An excursion is a run of consecutive out-of-range readings of one device lasting at least
# ``dining.excursion_minutes`` (30). Its duration runs from the first reading out of range to the first reading
# back in range after it (so three 10-minute readings out of range followed by one in range = 30 minutes: an
# excursion; two = 20 minutes: not). Readings more than ``dining.excursion_max_gap_minutes`` (60) apart do not
# continue a run: the device was silent, nobody knows the temperature in between (hot-holding devices report
# only during service, and lunch's last reading must not join dinner's first). When the run's end is unknown
# (a gap, or no later reading yet), its duration is measured to its last out-of-range reading: what was
# observed. A run belongs to the period in which it starts; runs are followed up to one day past the period.
#
# The status is read per device per ISO week (Monday to Sunday, by the run's start): the worst device-week
# against the thresholds of config (0 green / 1-2 amber / >= 3 red per device per week).


def _excursion_settings() -> tuple[int, int]:
    cfg = get_config().dining
    return int(cfg.get("excursion_minutes", 30)), int(cfg.get("excursion_max_gap_minutes", 60))


def band(zone: str) -> tuple[float | None, float | None]:
    """The allowed (min, max) of a zone in °C, inclusive; None where unbounded."""
    limits = get_config().dining.get("cold_chain", {}).get(zone) or {}
    lo, hi = limits.get("min"), limits.get("max")
    return (None if lo is None else float(lo)), (None if hi is None else float(hi))


@memoize()
def excursions(scope: Scope, period: Period) -> pd.DataFrame:
    """Excursions starting in the period, in order of start: device_id, facility_id, zone, start_ts, end_ts (first
    reading back in range; empty when unknown), last_ts (last reading out of range), readings, minutes,
    min_c, max_c, peak_c (the reading farthest outside the band)."""
    min_minutes, max_gap = _excursion_settings()
    r = fact_cold_chain_reading
    lo = dt.datetime.combine(period.start - dt.timedelta(days=1), dt.time())
    hi = dt.datetime.combine(period.end_exclusive + dt.timedelta(days=1), dt.time())
    out = sa.case((_in_band(), 0), else_=1)
    win = dict(partition_by=r.c.device_id, order_by=r.c.ts)
    in_window = sa.and_(r.c.ts >= lo, r.c.ts < hi, r.c.facility_id.in_(facilities_in_scope(scope)))
    # Only devices with a reading out of range need the window functions (most devices have none): a cheap
    # filter first, then the windows over those devices' readings only. A join on the (materialised, DISTINCT)
    # derived table, not IN: MariaDB runs IN (subquery) here as a FirstMatch semi-join that rescans a clean
    # device's readings for each of its rows (100 s for one canteen's month).
    suspects = sa.select(r.c.device_id).where(in_window, sa.not_(_in_band())).distinct().subquery("suspects")
    readings = (
        sa.select(
            r.c.device_id, r.c.facility_id, r.c.zone, r.c.ts, r.c.temp_c, out.label("out"),
            sa.func.lag(out).over(**win).label("prev_out"),
            sa.func.lag(r.c.ts).over(**win).label("prev_ts"),
            sa.func.lead(out).over(**win).label("next_out"),
            sa.func.lead(r.c.ts).over(**win).label("next_ts"),
        )
        .select_from(r.join(suspects, suspects.c.device_id == r.c.device_id))
        .where(in_window)
        .subquery("readings")
    )
    g = readings.c
    starts = sa.case((sa.and_(g.out == 1, sa.or_(
        g.prev_out.is_(None), g.prev_out == 0, seconds_between(g.prev_ts, g.ts) > max_gap * 60)), 1), else_=0)
    numbered = sa.select(
        g.device_id, g.facility_id, g.zone, g.ts, g.temp_c, g.out, g.next_out, g.next_ts,
        sa.func.sum(starts).over(partition_by=g.device_id, order_by=g.ts,
                                 rows=(None, 0)).label("run_no"),
    ).subquery("numbered")
    n = numbered.c
    back_in = sa.and_(n.next_out == 0, seconds_between(n.ts, n.next_ts) <= max_gap * 60)
    runs = (
        sa.select(
            n.device_id, sa.func.min(n.facility_id).label("facility_id"), sa.func.min(n.zone).label("zone"),
            sa.func.min(n.ts).label("start_ts"), sa.func.max(n.ts).label("last_ts"),
            sa.func.max(sa.case((back_in, n.next_ts))).label("end_ts"),
            sa.func.count().label("readings"), sa.func.min(n.temp_c).label("min_c"),
            sa.func.max(n.temp_c).label("max_c"),
        )
        .where(n.out == 1)
        .group_by(n.device_id, n.run_no)
        .subquery("runs")
    )
    u = runs.c
    seconds = seconds_between(u.start_ts, sa.func.coalesce(u.end_ts, u.last_ts))
    stmt = (
        sa.select(u.device_id, u.facility_id, u.zone, u.start_ts, u.end_ts, u.last_ts, u.readings,
                  (seconds / 60.0).label("minutes"), u.min_c, u.max_c)
        .where(u.start_ts >= dt.datetime.combine(period.start, dt.time()),
               u.start_ts < dt.datetime.combine(period.end_exclusive, dt.time()),
               seconds >= min_minutes * 60)
        .order_by(u.start_ts, u.device_id)
    )
    frame = read_df(stmt)
    frame["minutes"] = frame["minutes"].astype(float).round(6)
    frame["peak_c"] = [_peak(z, a, b) for z, a, b in zip(frame["zone"], frame["min_c"], frame["max_c"])]
    return frame


def _peak(zone: str, low: float, high: float) -> float:
    """The reading farthest outside the zone's band, from the run's lowest and highest readings."""
    lo, hi = band(zone)
    above = high - hi if hi is not None else float("-inf")
    below = lo - low if lo is not None else float("-inf")
    return float(high if above >= below else low)


def _week_start(ts: pd.Series) -> pd.Series:
    days = pd.to_datetime(ts).dt.normalize()
    return days - pd.to_timedelta(days.dt.day_of_week, unit="D")


def _group_keys(frame: pd.DataFrame, by: str | None) -> pd.Series:
    """The group of each excursion: a child level's id, or the start day."""
    if by == "day":
        return pd.to_datetime(frame["start_ts"]).dt.normalize()
    tree = org_tree()
    fac = tree.facilities.set_index("facility_id")
    if by in ("facility", None):
        return frame["facility_id"]
    if by in ("campus", "school"):
        return frame["facility_id"].map(fac[f"{by}_id"])
    regions = tree.schools.set_index("school_id")["region_code"]
    return frame["facility_id"].map(fac["school_id"]).map(regions)


@memoize()
def excursion_counts(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Per group: excursions (num), devices reporting, and the worst device-week (most excursions of one device
    in one ISO week). Groups without any reading are absent (no data, not zero)."""
    base = cold_chain_totals(scope, period, by)
    base = base.loc[base["den"] > 0]
    if base.empty:
        return pd.DataFrame(columns=(["key"] if by else []) + ["num", "devices", "worst"])
    runs = excursions(scope, period)
    if by is None:
        per_week = runs.groupby([runs["device_id"], _week_start(runs["start_ts"])]).size()
        return pd.DataFrame({"num": [len(runs)], "devices": [int(base.iloc[0]["devices"])],
                             "worst": [int(per_week.max()) if len(per_week) else 0]})
    out = base[["key", "devices"]].copy()
    if by == "day":
        out["key"] = pd.to_datetime(out["key"]).dt.normalize()
    keys = _group_keys(runs, by)
    per_week = runs.groupby([keys.rename("key"), runs["device_id"], _week_start(runs["start_ts"])]).size()
    counts = runs.groupby(keys.rename("key")).size()
    worst = per_week.groupby(level="key").max() if len(per_week) else pd.Series(dtype="int64")
    out["num"] = out["key"].map(counts).fillna(0).astype(int)
    out["worst"] = out["key"].map(worst).fillna(0).astype(int)
    return out[["key", "num", "devices", "worst"]].reset_index(drop=True)


@memoize()
def device_summary(scope: Scope, period: Period) -> pd.DataFrame:
    """Per cold-chain device in scope: device_id, facility_id, zone, readings, in_range, min_c, max_c, last_ts."""
    r = fact_cold_chain_reading
    stmt = (
        sa.select(r.c.device_id, sa.func.min(r.c.facility_id).label("facility_id"),
                  sa.func.min(r.c.zone).label("zone"), sa.func.count().label("readings"),
                  ratio_sum(_in_band()).label("in_range"), sa.func.min(r.c.temp_c).label("min_c"),
                  sa.func.max(r.c.temp_c).label("max_c"), sa.func.max(r.c.ts).label("last_ts"))
        .where(r.c.ts >= period.start, r.c.ts < period.end_exclusive,
               r.c.facility_id.in_(facilities_in_scope(scope)))
        .group_by(r.c.device_id)
        .order_by(r.c.device_id)
    )
    frame = read_df(stmt)
    # Each device judged like the cold-chain indicator (readings in range ÷ readings, its thresholds).
    ind = REGISTRY_COLD_CHAIN
    frame["status"] = [threshold_status(ind, 100.0 * a / b if b else None)
                       for a, b in zip(frame["in_range"], frame["readings"])]
    return frame


CURVE_POINTS = 1500
"""At most this many time buckets per device curve (each drawn as its lowest and highest reading, so a short
excursion stays visible however long the period)."""


@memoize()
def device_curve(scope: Scope, period: Period, device_id: str, points: int = CURVE_POINTS) -> pd.DataFrame:
    """One device's temperatures in the period, downsampled in SQL to at most ``points`` buckets: ts (first
    reading of the bucket), low, high, readings. Empty when the device is not in the scope."""
    r = fact_cold_chain_reading
    start = dt.datetime.combine(period.start, dt.time())
    bucket_s = max(60, math.ceil(period.days * 86400 / points))
    bucket = sa.func.floor(seconds_between(sa.literal(start, sa.DateTime()), r.c.ts) / bucket_s)
    inner = (
        sa.select(bucket.label("bucket"), r.c.ts, r.c.temp_c)
        .where(r.c.device_id == device_id, r.c.ts >= start, r.c.ts < period.end_exclusive,
               r.c.facility_id.in_(facilities_in_scope(scope)))
        .subquery("bucketed")
    )
    b = inner.c
    stmt = (
        sa.select(sa.func.min(b.ts).label("ts"), sa.func.min(b.temp_c).label("low"),
                  sa.func.max(b.temp_c).label("high"), sa.func.count().label("readings"))
        .group_by(b.bucket)
        .order_by(sa.func.min(b.ts))
    )
    return read_df(stmt)


# --- hazards, certificates, inspections: the panel's lists ------------------------------------------------

SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
LIST_LIMIT = 300
"""Lists on the panel show at most this many rows (the worst first); the counts above them are complete."""


@memoize()
def open_hazards(scope: Scope, period: Period) -> pd.DataFrame:
    """Hazards open at the period's state date, overdue first, then by severity and due date: hazard_id,
    facility_id, found_on, source, severity, category, due_on, overdue (bool), age_days, overdue_days."""
    h = fact_food_hazard
    at = _state_date(period)
    overdue = h.c.due_on < at
    severity = sa.case(*[(h.c.severity == k, v) for k, v in SEVERITY_RANK.items()], else_=9)
    stmt = (
        sa.select(h.c.hazard_id, h.c.facility_id, h.c.found_on, h.c.source, h.c.severity, h.c.category,
                  h.c.due_on)
        .where(h.c.found_on < at, sa.or_(h.c.closed_on.is_(None), h.c.closed_on >= at),
               h.c.facility_id.in_(facilities_in_scope(scope)))
        .order_by(sa.case((overdue, 0), else_=1), severity, h.c.due_on, h.c.hazard_id)
        .limit(LIST_LIMIT)
    )
    frame = read_df(stmt)
    at_ts = pd.Timestamp(at)
    frame["overdue"] = pd.to_datetime(frame["due_on"]) < at_ts
    frame["age_days"] = (at_ts - pd.to_datetime(frame["found_on"])).dt.days
    frame["overdue_days"] = ((at_ts - pd.to_datetime(frame["due_on"])).dt.days).clip(lower=0)
    return frame


@memoize()
def open_hazard_count(scope: Scope, period: Period) -> int:
    """Hazards open at the period's state date (all of them, while the list stops at LIST_LIMIT)."""
    h = fact_food_hazard
    at = _state_date(period)
    stmt = sa.select(sa.func.count().label("n")).where(
        h.c.found_on < at, sa.or_(h.c.closed_on.is_(None), h.c.closed_on >= at),
        h.c.facility_id.in_(facilities_in_scope(scope)))
    return int(read_df(stmt).iloc[0]["n"])


@memoize()
def hazard_flow(scope: Scope, period: Period) -> pd.DataFrame:
    """Hazards found and hazards closed per day of the period: d, found, closed (days with neither absent)."""
    h = fact_food_hazard
    in_scope = h.c.facility_id.in_(facilities_in_scope(scope))
    found = read_df(sa.select(h.c.found_on.label("d"), sa.func.count().label("found"))
                    .where(h.c.found_on >= period.start, h.c.found_on <= period.end, in_scope)
                    .group_by(h.c.found_on))
    closed = read_df(sa.select(h.c.closed_on.label("d"), sa.func.count().label("closed"))
                     .where(h.c.closed_on >= period.start, h.c.closed_on <= period.end, in_scope)
                     .group_by(h.c.closed_on))
    frame = found.merge(closed, on="d", how="outer").fillna(0)
    frame["d"] = pd.to_datetime(frame["d"])
    return frame.astype({"found": int, "closed": int}).sort_values("d").reset_index(drop=True)


@memoize()
def certificate_list(scope: Scope, period: Period) -> pd.DataFrame:
    """Health certificates expired or expiring within the warning days at the state date, soonest first:
    staff_ref (pseudonymous), facility_id, valid_until, expired (bool), days_left (negative: days expired)."""
    c = fact_staff_certificate
    at = _state_date(period)
    warn = at + dt.timedelta(days=int(get_config().dining.get("certificate_warning_days", 30)))
    stmt = (
        sa.select(c.c.staff_ref, c.c.facility_id, c.c.valid_until)
        .where(c.c.valid_until < warn, c.c.facility_id.in_(facilities_in_scope(scope)))
        .order_by(c.c.valid_until, c.c.staff_ref)
        .limit(LIST_LIMIT)
    )
    frame = read_df(stmt)
    at_ts = pd.Timestamp(at)
    frame["expired"] = pd.to_datetime(frame["valid_until"]) < at_ts
    frame["days_left"] = (pd.to_datetime(frame["valid_until"]) - at_ts).dt.days
    return frame


def _latest_inspections(scope: Scope, period: Period):
    """Each facility's latest inspection before the state date: (facility_id, inspected_on, result, grade)."""
    i = fact_canteen_inspection
    at = _state_date(period)
    latest = (
        sa.select(i.c.facility_id, sa.func.max(i.c.inspected_on).label("inspected_on"))
        .where(i.c.inspected_on < at, i.c.facility_id.in_(facilities_in_scope(scope)))
        .group_by(i.c.facility_id)
        .subquery("latest")
    )
    return (
        sa.select(i.c.facility_id, i.c.inspected_on, i.c.result, i.c.grade)
        .select_from(i.join(latest, sa.and_(latest.c.facility_id == i.c.facility_id,
                                            latest.c.inspected_on == i.c.inspected_on)))
        .subquery("latest_inspection")
    )


@memoize()
def inspection_totals(scope: Scope, period: Period, by: str | None = None) -> pd.DataFrame:
    """Canteens by the result of their latest inspection: passed (num), inspected (den), basic, fail, and the
    newest inspection date."""
    li = _latest_inspections(scope, period)
    stmt = sa.select(
        ratio_sum(li.c.result == "pass").label("num"), sa.func.count().label("den"),
        ratio_sum(li.c.result == "basic_pass").label("basic"), ratio_sum(li.c.result == "fail").label("fail"),
        sa.func.max(li.c.inspected_on).label("latest_on"),
    ).select_from(li)
    if by == "day":
        return pd.DataFrame(columns=["key", "num", "den", "basic", "fail", "latest_on"])
    stmt, key = scope_facility_fact(stmt, scope, li.c.facility_id, by)
    return read_df(with_key(stmt, key))


@memoize()
def inspection_list(scope: Scope, period: Period) -> pd.DataFrame:
    """Every canteen in scope with its latest inspection before the state date (empty columns when never
    inspected): facility_id, inspected_on, result, grade."""
    f = dim_facility
    li = _latest_inspections(scope, period)
    stmt = (
        sa.select(f.c.facility_id, li.c.inspected_on, li.c.result, li.c.grade)
        .select_from(f.outerjoin(li, li.c.facility_id == f.c.facility_id))
        .where(f.c.facility_type == "canteen", f.c.facility_id.in_(facilities_in_scope(scope)))
        .order_by(f.c.facility_id)
    )
    return read_df(stmt)


def canteens(scope: Scope) -> pd.DataFrame:
    """The canteens inside the scope (from the cached organisation tree): facility_id, facility_name,
    campus_id, school_id."""
    fac = org_tree().facilities
    fac = fac.loc[(fac.facility_type == "canteen") & fac.school_id.isin(scope.schools)]
    if scope.campus:
        fac = fac.loc[fac.campus_id == scope.campus]
    if scope.facility:
        fac = fac.loc[fac.facility_id == scope.facility]
    return fac[["facility_id", "facility_name", "campus_id", "school_id"]].reset_index(drop=True)


def canteen_labels(scope: Scope, lang: str = "zh") -> dict[str, str]:
    """{facility_id: display name} for the canteens in scope; prefixed with the school's name when the scope
    spans several schools (every school has a 第一食堂)."""
    tree = org_tree()
    rows = canteens(scope)
    several = rows["school_id"].nunique() > 1 or scope.level in ("association", "region")
    return {r.facility_id: (f"{tree.name('school', r.school_id, lang)} · {r.facility_name}" if several
                            else str(r.facility_name)) for r in rows.itertuples()}


def place_name(level: str, key: str, lang: str = "zh") -> str:
    return org_tree().name(level, key, lang)


def unlisted(scope: Scope, level: str | None, listed, lang: str = "zh") -> list[str]:
    """Names of the heatmap's would-be rows that have no dining data (a school without a canteen ...)."""
    tree = org_tree()
    listed = set(listed)
    if level == "school":
        return [tree.name("school", s, lang) for s in scope.schools if s not in listed]
    if level == "facility":
        return [name for fid, name in canteen_labels(scope, lang).items() if fid not in listed]
    return []


HEATMAP = tuple(f"dining.{c}" for c in CHECKS) + ("dining.cold_chain",)
"""The heatmap's columns: the eight daily checks and cold-chain compliance."""


def heatmap(scope: Scope, period: Period) -> tuple[str | None, list[tuple[str, dict]]]:
    """The check compliance of each school (association, region) or canteen (school, campus) in scope:
    (row level, [(key, {indicator id: Result})]), rows ordered as the organisation tree, those without any
    dining data left out. None at facility level (the checklist replaces the heatmap there)."""
    level = {"association": "school", "region": "school", "school": "facility", "campus": "facility"}.get(scope.level)
    if level is None:
        return None, []
    cells: dict[str, dict] = {}
    for ind_id in HEATMAP:
        for res in breakdown(ind_id, scope, period, level):
            cells.setdefault(str(res.key), {})[ind_id] = res
    tree = org_tree()
    order = (list(tree.schools.school_id) if level == "school" else list(tree.facilities.facility_id))
    return level, [(k, cells[k]) for k in order if k in cells]


def _hazard_status(value, extra, scope, period):
    if value is None:
        return threshold_status(REGISTRY_OVERDUE, None)
    if (extra.get("high") or 0) > 0:
        return RED
    return threshold_status(REGISTRY_OVERDUE, value)


def _certificate_status(value, extra, scope, period):
    if value is None:
        return threshold_status(REGISTRY_CERTS, None)
    if (extra.get("expired") or 0) > 0:
        return RED
    return AMBER if (extra.get("expiring") or 0) > 0 else GREEN


def _excursion_status(value, extra, scope, period):
    """Worst device-week against the per-device-per-week thresholds."""
    if value is None:
        return NODATA
    worst = extra.get("worst")
    return threshold_status(REGISTRY_EXCURSIONS, value if worst is None else worst)


def _inspection_status(value, extra, scope, period):
    """The worst latest result in scope: any fail red, any basic pass amber, else green."""
    if value is None:
        return NODATA
    if (extra.get("fail") or 0) > 0:
        return RED
    return AMBER if (extra.get("basic") or 0) > 0 else GREEN


# --- declarations -------------------------------------------------------------------------------------------

for _check, (_zh, _en) in CHECKS.items():
    register(Indicator(
        id=f"dining.{_check}", domain="dining", name_zh=_zh, name_en=_en, unit="%", direction="higher",
        measure=_check_measure(_check), tables=TABLES_CHECKS, alert_grain="facility",
        formula_zh="Σ合规项 ÷ Σ应检项（服务日缺失的检查计为1项不合规）",
        formula_en="Σ items ok ÷ Σ items due (a check missing on a service day counts as one item not ok)",
    ))

REGISTRY_COLD_CHAIN = register(Indicator(
    id="dining.cold_chain", domain="dining", name_zh="冷链温度达标率", name_en="Cold-chain temperature compliance",
    unit="%", direction="higher", measure=cold_chain_totals, tables=("fact_cold_chain_reading",),
    alert_grain="facility", decimals=2,
    formula_zh="温区范围内读数 ÷ 读数（冷藏 0–8 °C，冷冻 ≤ −12 °C，热保温 ≥ 60 °C）",
    formula_en="readings in range ÷ readings (chilled 0–8 °C, frozen ≤ −12 °C, hot holding ≥ 60 °C)",
))
register(Indicator(
    id="dining.cold_chain_online", domain="dining", name_zh="冷链设备在线率", name_en="Cold-chain devices reporting",
    unit="%", direction="higher", measure=cold_chain_online, tables=("fact_cold_chain_reading",),
    formula_zh="期内出现的冷藏/冷冻设备中最近3天有读数的比例",
    formula_en="chilled/frozen devices seen in the period that reported in its last 3 days",
))
REGISTRY_OVERDUE = register(Indicator(
    id="dining.hazards_overdue", domain="dining", name_zh="逾期未整改隐患", name_en="Overdue open hazards",
    unit="个", direction="lower", kind="sum", measure=hazards_overdue, tables=("fact_food_hazard",),
    status_rule=_hazard_status, alert_grain="facility", decimals=0,
    formula_zh="截至期末未关闭且已过整改期限的隐患数（有高风险即为红）",
    formula_en="hazards open at the end of the period past their due date (any high severity is red)",
))
register(Indicator(
    id="dining.hazard_closure", domain="dining", name_zh="隐患按期整改率", name_en="Hazards closed on time",
    unit="%", direction="higher", measure=hazard_closure, tables=("fact_food_hazard",), alert_grain="facility",
    formula_zh="期限在期内的隐患中按期（含当天）关闭的比例",
    formula_en="hazards due in the period closed on or before their due date",
))
REGISTRY_CERTS = register(Indicator(
    id="dining.certificates_expiring", domain="dining", name_zh="健康证到期", name_en="Health certificates expiring",
    unit="人", direction="lower", kind="sum", measure=certificates, tables=("fact_staff_certificate",),
    status_rule=_certificate_status, alert_grain="facility", decimals=0,
    formula_zh="已过期（红）或在预警天数内到期（黄，dining.certificate_warning_days，默认30天）的健康证数",
    formula_en="certificates expired (red) or expiring within the warning days (amber; "
               "dining.certificate_warning_days, 30 by default)",
))
register(Indicator(
    id="dining.covers", domain="dining", name_zh="就餐人次", name_en="Meals served", unit="人次",
    direction="none", kind="sum", measure=covers, tables=("fact_meals_served",), change="rel", decimals=0,
    formula_zh="Σ就餐人次", formula_en="Σ covers",
))
REGISTRY_EXCURSIONS = register(Indicator(
    id="dining.cold_chain_excursions", domain="dining", name_zh="温度超标事件", name_en="Cold-chain excursions",
    unit="次", direction="lower", kind="sum", measure=excursion_counts, tables=("fact_cold_chain_reading",),
    status_rule=_excursion_status, alert_grain="facility", decimals=0,
    formula_zh="同一设备连续超出温区≥30分钟的次数（自首个超标读数至其后首个回到温区的读数）；"
               "按单台设备单周最多次数判定：0 绿 / 1–2 黄 / ≥3 红",
    formula_en="runs of out-of-range readings of one device lasting >= 30 min (first reading out of range to the "
               "first reading back in range); status by the worst device-week: 0 green / 1-2 amber / >= 3 red",
))
register(Indicator(
    id="dining.inspection", domain="dining", name_zh="最近监督检查结果", name_en="Latest official inspection",
    unit="%", direction="higher", measure=inspection_totals, tables=("fact_canteen_inspection",),
    status_rule=_inspection_status, alert_grain="facility", decimals=0,
    formula_zh="最近一次监督检查结果为“符合”的食堂占比；状态取最差结果：符合 绿 / 基本符合 黄 / 不符合 红",
    formula_en="share of canteens whose latest official inspection was 'pass'; status by the worst latest "
               "result: pass green / basic pass amber / fail red",
))
