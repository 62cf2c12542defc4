"""Energy (能源): conversions, intensities, roll-ups, every anomaly rule, the quota projection, the panel's
queries and callbacks.

Expected values are computed here independently: by hand on small warehouses built for one rule each (with data
just above the rule's threshold, which must fire, and just at or below it, which must not), or with pandas over
the raw tables of the session's demo warehouse (read with duckdb directly, not through the code under test).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from data_access import energy, registry
from data_access.config import get_config, set_config
from data_access.demo import INCIDENTS
from data_access.period import Period

from .conftest import END
from .helpers import org_frames, scope, use_warehouse, write_warehouse
from .test_indicators_demo import facilities_for, in_period, readings_by_type, schools_for

D = dt.date
PERIOD = Period(END - dt.timedelta(days=29), END)
TODAY = D(2026, 11, 16)


# --- building blocks for hand-built warehouses ------------------------------------------------------------------

def meter(mid, fid, sid, etype="electricity", parent=None, end_use=None):
    return {"meter_id": mid, "facility_id": fid, "school_id": sid, "energy_type": etype, "end_use": end_use,
            "parent_meter_id": parent}


def day_row(mid, day, consumption, readings=24, night=None, night_n=5, work=None, work_n=8, leak=None, leak_n=2):
    """One agg_meter_daily row; the windows default to an even hourly profile."""
    hourly = consumption / 24.0
    return {"meter_id": mid, "day": day, "consumption": float(consumption), "readings": readings,
            "night_consumption": float(hourly * night_n if night is None else night), "night_readings": night_n,
            "work_consumption": float(hourly * work_n if work is None else work), "work_readings": work_n,
            "leak_consumption": None if leak_n is None else float(hourly * leak_n if leak is None else leak),
            "leak_readings": leak_n}


def days(start: dt.date, end: dt.date, weekdays=None):
    out = [d.date() for d in pd.date_range(start, end)]
    return [d for d in out if weekdays is None or d.weekday() in weekdays]


def build(tmp_path, frames, name="w.duckdb"):
    return write_warehouse(tmp_path / name, frames)


def value(ind, period, **params):
    return registry.evaluate(ind, scope(**params), period)


@pytest.fixture
def config_energy():
    """Change config.yaml's energy settings for one test."""
    before = get_config()

    def change(**settings):
        set_config(dataclasses.replace(before, energy={**before.energy, **settings}))

    yield change
    set_config(before)


# --- conversions ------------------------------------------------------------------------------------------------

def test_standard_coal_and_co2_with_a_regional_grid_factor(tmp_path, config_energy):
    frames = org_frames(schools=(("S1", "k12", "310000"), ("S2", "k12", "110000")),
                        extra_facilities=(("S1-T1", "S1", "teaching", 1000.0), ("S2-T1", "S2", "teaching", 1000.0)))
    frames["dim_meter"] = pd.DataFrame([
        meter("E1", "S1-T1", "S1"), meter("E1a", "S1-T1", "S1", parent="E1", end_use="hvac"),
        meter("H2", "S2-T1", "S2", "heat"), meter("E2", "S2-T1", "S2"), meter("G1", "S1-CAN1", "S1", "gas"),
    ])
    day = D(2026, 11, 2)
    frames["agg_meter_daily"] = pd.DataFrame([day_row("E1", day, 1000), day_row("E1a", day, 600),
                                              day_row("H2", day, 10), day_row("E2", day, 500), day_row("G1", day, 40)])
    config_energy(electricity_co2_by_region={"110000": 0.58})
    p = Period(day, day)
    with use_warehouse(build(tmp_path, frames), today=TODAY):
        kgce_s1 = 1000 * 0.1229 + 40 * 1.2143
        kgce_s2 = 500 * 0.1229 + 10 * 34.12
        assert value("energy.total_kgce", p, school="S1").value == pytest.approx(kgce_s1)
        assert value("energy.total_kgce", p, school="S2").value == pytest.approx(kgce_s2)
        assert value("energy.total_kgce", p).value == pytest.approx(kgce_s1 + kgce_s2)
        co2_s1 = (1000 * 0.5366 + 40 * 2.16) / 1000          # Shanghai: national factor (no regional one set)
        co2_s2 = (500 * 0.58 + 10 * 110) / 1000              # Beijing: the regional grid factor
        assert value("energy.co2_t", p, school="S1").value == pytest.approx(co2_s1)
        assert value("energy.co2_t", p, school="S2").value == pytest.approx(co2_s2)
        by_region = {r.key: r.value for r in registry.breakdown("energy.co2_t", scope(), p, "region")}
        assert by_region == pytest.approx({"310000": co2_s1, "110000": co2_s2})
        assert value("energy.co2_t", p).value == pytest.approx(co2_s1 + co2_s2)
        # electricity by end use: the sub-meter, the parent's rest, and the building without sub-meters
        uses = energy.end_use(scope(), p).set_index("end_use")["value"].to_dict()
        assert uses == pytest.approx({"hvac": 600.0, "other": 400.0, "not_submetered": 500.0})


def _by_type_in_campus(raw, campus):
    """Σ consumption of a campus's top-level meters per type, from the raw hourly readings."""
    fac = raw("dim_facility")
    meters = raw("dim_meter")
    meters = meters[meters.parent_meter_id.isna() & meters.facility_id.isin(fac.loc[fac.campus_id == campus, "facility_id"])]
    r = raw("fact_meter_reading")
    r = r[r.meter_id.isin(meters.meter_id) & in_period(r.ts)]
    return r.merge(meters[["meter_id", "energy_type"]], on="meter_id").groupby("energy_type").consumption.sum()


@pytest.mark.parametrize("params", [dict(), dict(region="110000"), dict(school="SH-U01"), dict(campus="BJ-U01-C2")])
def test_standard_coal_and_co2_on_the_demo_roll_up(raw, params):
    by_type = _by_type_in_campus(raw, params["campus"]) if "campus" in params else readings_by_type(raw, params)
    kgce = by_type.get("electricity", 0) * 0.1229 + by_type.get("gas", 0) * 1.2143 + by_type.get("heat", 0) * 34.12
    co2 = (by_type.get("electricity", 0) * 0.5366 + by_type.get("gas", 0) * 2.16 + by_type.get("heat", 0) * 110) / 1000
    s = scope(**params)
    assert registry.evaluate("energy.total_kgce", s, PERIOD).value == pytest.approx(kgce, rel=1e-9)
    assert registry.evaluate("energy.co2_t", s, PERIOD).value == pytest.approx(co2, rel=1e-9)
    if s.child_level:
        children = registry.breakdown("energy.total_kgce", s, PERIOD, s.child_level)
        assert sum(r.value for r in children) == pytest.approx(kgce, rel=1e-9)


_KGCE_BY_SCHOOL: dict = {}


def _kgce_by_school(raw, period) -> pd.Series:
    """Standard coal per school of the top-level meters over a period, from the raw hourly readings (kept per
    period: the readings table is the test warehouse's largest)."""
    if period not in _KGCE_BY_SCHOOL:
        _KGCE_BY_SCHOOL[period] = _kgce_by_school_uncached(raw, period)
    return _KGCE_BY_SCHOOL[period].copy()


def _kgce_by_school_uncached(raw, period) -> pd.Series:
    meters = raw("dim_meter")
    meters = meters[meters.parent_meter_id.isna()][["meter_id", "school_id", "energy_type"]]
    r = raw("fact_meter_reading")
    r = r[in_period(r.ts, period)].merge(meters, on="meter_id")
    factor = {"electricity": 0.1229, "gas": 1.2143, "heat": 34.12, "water": 0.0}
    return (r.consumption * r.energy_type.map(factor)).groupby(r.school_id).sum()


@pytest.mark.parametrize("params", [dict(), dict(region="310000"), dict(school="BJ-U01")])
def test_year_on_year_against_the_raw_readings(raw, params):
    """energy.yoy = this period's standard coal ÷ the same dates last year's − 1 (raw hourly readings; the test
    warehouse's 400 days reach back past the same dates last year)."""
    ly = PERIOD.same_last_year()
    assert ly == Period(D(2025, 10, 17), D(2025, 11, 15))
    schools = sorted(schools_for(raw, params))
    now, before = (_kgce_by_school(raw, q).reindex(schools).fillna(0.0) for q in (PERIOD, ly))
    assert (before > 0).all()
    res = registry.evaluate("energy.yoy", scope(**params), PERIOD)
    assert res.value == pytest.approx(100.0 * (now.sum() / before.sum() - 1.0), rel=1e-9)
    if "school" not in params:
        by_school = {r.key: r.value for r in registry.breakdown("energy.yoy", scope(**params), PERIOD, "school")}
        expected = (100.0 * (now / before - 1.0)).to_dict()
        assert by_school == pytest.approx(expected, rel=1e-9)


def test_year_on_year_needs_the_whole_of_last_years_dates(raw):
    first = pd.to_datetime(raw("agg_meter_daily")["day"]).min().date()          # 2025-10-12
    p = Period(first + dt.timedelta(days=360), first + dt.timedelta(days=369))    # last year starts 5 days early
    assert p.same_last_year().start < first
    assert registry.evaluate("energy.yoy", scope(), p).value is None


def _facility_use_raw(raw, params, period, energy_type) -> pd.Series:
    """Use per building of the top-level meters from the raw hourly readings: kgce for "kgce", else the type's
    own use; buildings with meters of the type but no reading are left out."""
    meters = raw("dim_meter")
    meters = meters[meters.parent_meter_id.isna() & meters.facility_id.isin(facilities_for(raw, params))]
    if energy_type != "kgce":
        meters = meters[meters.energy_type == energy_type]
    r = raw("fact_meter_reading")
    r = r[r.meter_id.isin(meters.meter_id) & in_period(r.ts, period)]
    r = r.merge(meters[["meter_id", "facility_id", "energy_type"]], on="meter_id")
    factor = {"electricity": 0.1229, "gas": 1.2143, "heat": 34.12, "water": 0.0}
    if energy_type == "kgce":
        r = r.assign(consumption=r.consumption * r.energy_type.map(factor))
    return r.groupby("facility_id").consumption.sum()


@pytest.mark.parametrize("params,etype", [(dict(school="SH-U01"), "electricity"), (dict(), "kgce"),
                                          (dict(region="110000"), "water")])
def test_top_buildings_against_the_raw_readings(raw, params, etype):
    now = _facility_use_raw(raw, params, PERIOD, etype)
    now = now[now > 0]
    before = _facility_use_raw(raw, params, PERIOD.same_last_year(), etype)
    largest, growing, kind = energy.top_buildings(scope(**params), PERIOD, etype, n=10)
    assert kind == "yoy"                               # the warehouse holds the same dates last year
    expected = sorted(now.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert list(largest["facility_id"]) == [f for f, _ in expected]
    assert largest["value"].to_list() == pytest.approx([v for _, v in expected], rel=1e-9)
    growth = {f: 100.0 * (v / before[f] - 1.0) for f, v in now.items() if before.get(f, 0) > 0}
    expected = sorted(growth.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert list(growing["facility_id"]) == [f for f, _ in expected]
    assert growing["growth"].to_list() == pytest.approx([g for _, g in expected], rel=1e-9)


@pytest.mark.parametrize("params,etype", [(dict(), "electricity"), (dict(school="BJ-U01"), "kgce"),
                                          (dict(region="310000"), "gas")])
def test_use_by_facility_type_against_the_raw_readings(raw, params, etype):
    use = _facility_use_raw(raw, params, PERIOD, etype)
    types = raw("dim_facility").set_index("facility_id")["facility_type"]
    expected = use.groupby(use.index.map(types)).sum()
    got = energy.by_facility_type(scope(**params), PERIOD, etype).set_index("facility_type")
    assert set(got.index) == set(expected.index)
    assert got["value"].to_dict() == pytest.approx(expected.to_dict(), rel=1e-9)
    assert list(got["value"]) == sorted(got["value"], reverse=True)             # largest first
    assert got["value"].sum() == pytest.approx(use.sum(), rel=1e-9)
    if etype != "kgce":
        counts = use.groupby(use.index.map(types)).size()
        assert got["buildings"].to_dict() == counts.to_dict()


def _figures(component, found=None) -> list[dict]:
    """Every figure of the dcc.Graph components in a callback's output."""
    from dash import dcc

    found = [] if found is None else found
    if isinstance(component, (list, tuple)):
        for c in component:
            _figures(c, found)
        return found
    if isinstance(component, dcc.Graph):
        found.append(component.figure)
    children = getattr(component, "children", None)
    if children is not None:
        _figures(children, found)
    return found


def _points(trace: dict) -> int:
    if trace.get("type") == "heatmap":
        return sum(len(row) for row in trace.get("z") or [])
    return max(len(trace.get(axis) or []) for axis in ("x", "y"))


@pytest.mark.parametrize("etype", ["kgce", "electricity"])
def test_no_trace_sent_to_the_browser_has_more_than_5000_points(etype):
    """Issue 5: at most about 5 000 points per trace. The longest period a URL may ask for, at association
    level, every chart of the page (the demo's largest building's day × hour heatmap included)."""
    cfg = get_config()
    end = TODAY - dt.timedelta(days=1)
    start = end - dt.timedelta(days=cfg.max_period_days - 1)
    params = {"from": start.isoformat(), "to": end.isoformat(), "etype": etype}
    page = _energy_page()
    figures = []
    for name in SECTIONS:
        figures += _figures(getattr(page, name)(dict(params)))
    kinds = {t.get("type") for f in figures for t in f["data"]}
    assert {"heatmap", "bar", "scatter"} <= kinds and len(figures) >= 6
    longest = max(_points(t) for f in figures for t in f["data"])
    assert cfg.max_period_days <= longest <= 5000           # the daily curve has a point per day: 1 100
    for f in figures:
        for trace in f["data"]:
            assert _points(trace) <= 5000, (trace.get("type"), trace.get("name"), _points(trace))


# --- intensities ------------------------------------------------------------------------------------------------

def _people_and_area(raw, year):
    y = raw("fact_school_year")
    return y[y.year == year].set_index("school_id")


@pytest.mark.parametrize("params", [dict(), dict(region="310000")])
def test_per_capita_and_water_intensity_roll_up(raw, params):
    years = _people_and_area(raw, PERIOD.end.year)
    schools = sorted(schools_for(raw, params))
    num = water = den = 0.0
    for school in schools:
        by_type = readings_by_type(raw, {"school": school})
        kgce = by_type.get("electricity", 0) * 0.1229 + by_type.get("gas", 0) * 1.2143 + by_type.get("heat", 0) * 34.12
        people = years.loc[school, "students"] + years.loc[school, "staff"]
        num += kgce * 365 / PERIOD.days
        water += by_type.get("water", 0) * 365 / PERIOD.days
        den += people
        res = registry.evaluate("energy.per_capita", scope(school=school), PERIOD)
        assert res.value == pytest.approx(kgce * 365 / PERIOD.days / people)
    s = scope(**params)
    assert registry.evaluate("energy.per_capita", s, PERIOD).value == pytest.approx(num / den)
    assert registry.evaluate("energy.water_per_capita", s, PERIOD).value == pytest.approx(water / den)


def _intensity_wh(tmp_path, kgce_per_school: dict[str, float], area=1000.0, last_year: dict | None = None,
                  name="w.duckdb"):
    """Schools of one type, one building each, electricity only, one day of use: kgce ÷ 0.1229 kWh on
    2026-11-02 (and ``last_year`` kgce on 2025-11-02, the same date a year earlier); 100 people each."""
    schools = tuple((s, "university", "310000") for s in kgce_per_school)
    frames = org_frames(schools=schools, canteens_per_school=0,
                        extra_facilities=tuple((f"{s}-T1", s, "teaching", area) for s in kgce_per_school))
    frames["fact_school_year"] = pd.DataFrame([{"school_id": s, "year": y, "students": 90, "staff": 10,
                                                "floor_area_m2": area} for s in kgce_per_school for y in (2025, 2026)])
    frames["dim_meter"] = pd.DataFrame([meter(f"{s}-E", f"{s}-T1", s) for s in kgce_per_school])
    frames["agg_meter_daily"] = pd.DataFrame(
        [day_row(f"{s}-E", D(2026, 11, 2), k / 0.1229) for s, k in kgce_per_school.items()]
        + [day_row(f"{s}-E", D(2025, 11, 2), k / 0.1229) for s, k in (last_year or {}).items()])
    return build(tmp_path, frames, name)


def test_intensity_status_against_the_peer_median_and_quartiles(tmp_path):
    # annualised per m²: kgce × 365 ÷ 1000 m²; chosen so that the median is S3's value
    kgce = {"S1": 10.0, "S2": 20.0, "S3": 30.0, "S4": 32.9, "S5": 33.1}
    p = Period(D(2026, 11, 2), D(2026, 11, 2))
    with use_warehouse(_intensity_wh(tmp_path, kgce), today=TODAY):
        per_area = {s: k * 365 / 1000 for s, k in kgce.items()}
        median = per_area["S3"]
        results = {s: value("energy.per_area", p, school=s) for s in kgce}
        assert {s: r.value for s, r in results.items()} == pytest.approx(per_area)
        # green at or below the median, amber up to +10 % (32.9 is +9.7 %), red above (33.1 is +10.3 %)
        assert [results[s].status for s in ("S1", "S2", "S3", "S4", "S5")] == ["green", "green", "green", "amber", "red"]
        ranking = energy.intensity_ranking(scope(), p, "per_area").set_index("school_id")
        assert ranking["peer_median"].iloc[0] == pytest.approx(median)
        values = np.array(sorted(per_area.values()))
        assert ranking["p25"].iloc[0] == pytest.approx(np.percentile(values, 25))
        assert ranking["p75"].iloc[0] == pytest.approx(np.percentile(values, 75))
        assert list(ranking.index) == ["S5", "S4", "S3", "S2", "S1"]       # highest first
        assert ranking.loc["S5", "status"] == "red" and ranking.loc["S4", "status"] == "amber"
        # association roll-up: Σ annualised kgce ÷ Σ area
        assert value("energy.per_area", p).value == pytest.approx(sum(per_area.values()) * 1000 / 5000)


def test_annualising_and_completeness_count_only_days_with_data(tmp_path):
    """A period from 1 October to 30 November (61 days, ending after today) over data of 2–8 November: intensities
    are annualised over each school's days with data and completeness expects readings on the warehouse's days
    with data only, so that it agrees with the missing-data list."""
    frames = org_frames(schools=(("S1", "university", "310000"), ("S2", "university", "310000")),
                        canteens_per_school=0,
                        extra_facilities=(("S1-T1", "S1", "teaching", 1000.0), ("S2-T1", "S2", "teaching", 500.0)))
    frames["fact_school_year"] = pd.DataFrame([{"school_id": "S1", "year": 2026, "students": 90, "staff": 10,
                                                "floor_area_m2": 1000.0},
                                               {"school_id": "S2", "year": 2026, "students": 45, "staff": 5,
                                                "floor_area_m2": 500.0}])
    frames["dim_meter"] = pd.DataFrame([meter("E1", "S1-T1", "S1"), meter("W1", "S1-T1", "S1", "water"),
                                        meter("E2", "S2-T1", "S2")])
    week = days(D(2026, 11, 2), D(2026, 11, 8))
    rows = [day_row("E1", d, 1000) for d in week]                                    # S1: 7 days
    rows += [day_row("W1", d, 10, readings=20 if d == week[4] else 24) for d in week if d != week[3]]
    rows += [day_row("E2", d, 400) for d in week[3:]]                                # S2 joined on 5 November
    frames["agg_meter_daily"] = pd.DataFrame(rows)
    p = Period(D(2026, 10, 1), D(2026, 11, 30))
    with use_warehouse(build(tmp_path, frames), today=TODAY):
        # S1: 7 days × 1000 kWh × 0.1229 = 860.3 kgce in 7 days → × 365 ÷ 7 = 44 858.5 kgce a year ÷ 1000 m²
        s1 = value("energy.per_area", p, school="S1")
        assert s1.value == pytest.approx(1000 * 0.1229 * 365 / 1000)               # 44.86, not 5.15 (÷ 61 days)
        assert value("energy.per_capita", p, school="S1").value == pytest.approx(1000 * 0.1229 * 365 / 100)
        # water: 6 days of 10 m³ between 2 and 8 November (the 5th missing) → 60 × 365 ÷ 7 ÷ 100 people
        assert value("energy.water_per_capita", p, school="S1").value == pytest.approx(60 * 365 / 7 / 100)
        # S2: 4 days × 400 kWh × 0.1229 → × 365 ÷ 4 = 17 943.4 kgce a year ÷ 500 m²
        assert value("energy.per_area", p, school="S2").value == pytest.approx(400 * 0.1229 * 365 / 500)
        # the association: Σ annualised kgce ÷ Σ area
        assert value("energy.per_area", p).value == pytest.approx((1000 + 400) * 0.1229 * 365 / 1500)
        # completeness over 2–8 November: E1 7 × 24 and W1 5 × 24 + 20 of 2 meters × 7 days × 24 = 308 ÷ 336
        comp = value("energy.data_completeness", p, school="S1")
        assert (comp.num, comp.den) == (pytest.approx(308), pytest.approx(336))
        assert comp.value == pytest.approx(100 * 308 / 336) and comp.status == "red"       # 91.7 %
        missing = energy.missing_data(scope(school="S1"), p)
        assert {(r.day, r.readings) for r in missing.itertuples()} == {(week[3], 0), (week[4], 20)}
        assert int((missing["expected"] - missing["readings"]).sum()) == pytest.approx(comp.den - comp.num)
        # S2's meter has no readings on 2–4 November although the warehouse holds data for those days: 4 × 24 of
        # 7 × 24 expected, and the missing list names exactly those days
        s2 = value("energy.data_completeness", p, school="S2")
        assert s2.value == pytest.approx(100 * 4 / 7)
        assert set(energy.missing_data(scope(school="S2"), p)["day"]) == set(week[:3])
        # a period wholly after the data: no completeness figure rather than 0 %
        later = value("energy.data_completeness", Period(D(2026, 11, 10), D(2026, 11, 12)), school="S1")
        assert later.value is None


# Distinctive one-day kgce per school, so that no other figure of the page can be mistaken for them.
PEER_KGCE = {"S1": 10.0, "S2": 23.7, "S3": 31.3, "S4": 44.1, "S5": 52.9}
# S1's own figure a year earlier: 9.0 kgce → this year is +11.1 % (red against its own last year)
PEER_KGCE_LY = {"S1": 9.0, "S2": 23.7, "S3": 30.0, "S4": 44.1, "S5": 52.9}


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_small_peer_groups_show_no_distribution_to_anyone(tmp_path, n):
    """Issue 10: with 2 peers 2 × median − own is the other school's figure, with 3 the median is one of them.
    Under 5 schools of a type there is no median (nor P25/P75) anywhere, and the status compares with the
    school's own last year instead; at 5 the median is shown."""
    from components.format import fmt_number
    from data_access.request import acting_as
    from data_access.scope import Access

    from .test_pages import _find_ids

    kgce = dict(list(PEER_KGCE.items())[:n])
    ly = dict(list(PEER_KGCE_LY.items())[:n])
    p = Period(D(2026, 11, 2), D(2026, 11, 2))
    per_area = {s: k * 365 / 1000 for s, k in kgce.items()}         # one day annualised ÷ 1000 m²
    per_capita = {s: k * 365 / 100 for s, k in kgce.items()}        # ÷ 100 people
    with use_warehouse(_intensity_wh(tmp_path, kgce, last_year=ly), today=TODAY):
        median = energy.peer_median(p, "per_area", "university")
        ranking = energy.intensity_ranking(scope(), p, "per_area").set_index("school_id")
        tiles = energy.tile_figures(scope(school="S1"), p, ("energy.per_area", "energy.per_capita"))
        rows = {r["id"]: r for r in energy.panel_intensity(scope(school="S1"), p)["rows"]}
        s1 = value("energy.per_area", p, school="S1")
        if n >= 5:
            # the median of 3.65, 8.65, 11.42, 16.10, 19.31 is S3's 11.42; S1 is below it: green
            assert median == pytest.approx(per_area["S3"])
            assert ranking["peer_median"].to_list() == pytest.approx([per_area["S3"]] * 5)
            assert ranking["p25"].notna().all() and set(ranking["basis"]) == {"peer"}
            assert tiles["energy.per_area"]["peer"] == pytest.approx(per_area["S3"])
            assert tiles["energy.per_area"]["basis"] == "peer" and s1.status == "green"
            return
        assert median is None and energy.peer_median(p, "per_capita", "university") is None
        assert ranking[["peer_median", "p25", "p75"]].isna().all().all()
        assert set(ranking["basis"]) == {"last_year"} and (ranking["peers"] == n).all()
        assert tiles["energy.per_area"]["peer"] is None and tiles["energy.per_capita"]["peer"] is None
        assert rows["energy.per_area"]["peer"] is None and rows["energy.per_area"]["basis"] == "last_year"
        # the status falls back to the school's own last year: 10 against 9 kgce is +11.1 % (> +10 %): red;
        # S2 equal to last year: green; S3 31.3 against 30.0 is +4.3 %: amber
        assert s1.status == "red" and s1.extra["last_year"] == pytest.approx(9.0 * 365 / 1000)
        assert tiles["energy.per_area"]["basis"] == "last_year"
        assert tiles["energy.per_area"]["last_year"] == pytest.approx(9.0 * 365 / 1000)
        assert ranking.loc["S1", "status"] == "red" and ranking.loc["S2", "status"] == "green"
        if n >= 3:
            assert ranking.loc["S3", "status"] == "amber"
        by_school = {r.key: r.status for r in registry.breakdown("energy.per_area", scope(), p, "school")}
        assert by_school == ranking["status"].to_dict()
        # Nothing of another school reaches S1's school leader: not their figures, not a median.
        others = [v for s, v in per_area.items() if s != "S1"] + [float(np.median(list(per_area.values())))]
        others_pc = [v for s, v in per_capita.items() if s != "S1"] + [float(np.median(list(per_capita.values())))]
        page = _energy_page()
        with acting_as(Access(frozenset({"S1"}), None, "school S1")):
            params = {"school": "S1", "from": "2026-11-02", "to": "2026-11-02"}
            header = page.render_header(dict(params))
            assert "energy-tiles" in _find_ids(header)
            text = str(header) + str(page.render_intensity(dict(params)))
        assert "energy-intensity-few" in text
        for v in others:
            assert fmt_number(v, energy.INTENSITY["per_area"].decimals) not in text, v
        for v in others_pc:
            assert fmt_number(v, energy.INTENSITY["per_capita"].decimals) not in text, v
        # without last year's data there is nothing to compare with: no status rather than a leaky one
    with use_warehouse(_intensity_wh(tmp_path, kgce, name="w-no-ly.duckdb"), today=TODAY):
        res = value("energy.per_area", p, school="S1")
        assert res.value == pytest.approx(per_area["S1"]) and res.status == "none"
        assert energy.intensity_ranking(scope(), p, "per_area")["basis"].isna().all()


def _energy_page():
    import app  # noqa: F401  (registers the pages)
    from pages import energy as module

    return module


# --- night base load --------------------------------------------------------------------------------------------

MON, SAT = D(2026, 11, 2), D(2026, 11, 7)   # a Monday and a Saturday in term (default calendar)


def _night_wh(tmp_path, rows, extra_meters=()):
    frames = org_frames(extra_facilities=(("S1-T1", "S1", "teaching", 1000.0), ("S1-O1", "S1", "office", 500.0),
                                          ("S1-D1", "S1", "dormitory", 800.0)))
    frames["dim_meter"] = pd.DataFrame([meter("T1", "S1-T1", "S1"), meter("O1", "S1-O1", "S1"),
                                        meter("D1", "S1-D1", "S1"), *extra_meters])
    frames["agg_meter_daily"] = pd.DataFrame(rows)
    return build(tmp_path, frames)


def test_night_ratio_on_term_workdays_of_teaching_and_office_buildings(tmp_path):
    rows = [
        # T1, Monday: night mean 50/5 = 10, working mean 320/8 = 40
        day_row("T1", MON, 600, night=50, work=320),
        # T1, Tuesday, one night reading missing: night mean 40/4 = 10, working mean 400/8 = 50
        day_row("T1", MON + dt.timedelta(days=1), 600, night=40, night_n=4, work=400),
        # O1, Monday: night 100/5 = 20, working 240/8 = 30
        day_row("O1", MON, 500, night=100, work=240),
        # excluded: a Saturday, a holiday (2026-10-01 in config's default calendar), a dormitory, no work readings
        day_row("T1", SAT, 300, night=250, work=10),
        day_row("T1", D(2026, 10, 1), 300, night=250, work=10),
        day_row("D1", MON, 900, night=500, work=10),
        day_row("O1", MON + dt.timedelta(days=2), 100, night=90, work_n=0, work=0),
    ]
    p = Period(D(2026, 10, 1), D(2026, 11, 8))
    with use_warehouse(_night_wh(tmp_path, rows), today=TODAY):
        res = value("energy.night_ratio", p, school="S1")
        assert res.num == pytest.approx(10 + 10 + 20) and res.den == pytest.approx(40 + 50 + 30)
        assert res.value == pytest.approx(40 / 120) and res.status == "green"      # 0.333 ≤ 0.35
        by_facility = {r.key: r.value for r in registry.breakdown("energy.night_ratio", scope(school="S1"), p, "facility")}
        assert by_facility == pytest.approx({"S1-T1": 20 / 90, "S1-O1": 20 / 30})
        assert res.n == 3


def test_night_building_rule_fires_above_the_bound_only(tmp_path):
    # the red bound is the amber threshold 0.5: T1 exactly at 0.5 must not fire, O1 just above it must
    rows = [day_row("T1", MON, 600, night=5 * 20, work=8 * 40), day_row("O1", MON, 600, night=5 * 20.002, work=8 * 40)]
    p = Period(MON, MON)
    with use_warehouse(_night_wh(tmp_path, rows), today=TODAY):
        found = energy.night_buildings(scope(), p)
        assert list(found["facility_id"]) == ["S1-O1"]
        row = found.iloc[0]
        assert row["ratio"] == pytest.approx(20.002 / 40) and row["worst_day"] == MON
        assert row["days"] == 1 and row["days_over"] == 1
        assert value("energy.night_ratio", p, facility="S1-O1").status == "red"
        assert value("energy.night_ratio", p, facility="S1-T1").status == "amber"


# --- vacation use -----------------------------------------------------------------------------------------------

def test_holiday_ratio_and_its_building_rule(tmp_path):
    term = days(D(2026, 9, 7), D(2026, 9, 11))                 # Monday–Friday in term
    off = days(D(2026, 8, 24), D(2026, 8, 30))                 # a summer-vacation week (weekend included)
    holiday = [D(2026, 10, 1)]                                 # National Day
    rows = []
    for d in term:
        rows += [day_row("T1", d, 100), day_row("O1", d, 200), day_row("D1", d, 50)]
    for d in off + holiday:
        rows += [day_row("T1", d, 60), day_row("O1", d, 140 if d != off[3] else 200), day_row("D1", d, 35)]
    # the holiday: T1 60, O1 140, D1 35; O1's off days: 7 days of 140 except one of 200
    p = Period(D(2026, 8, 24), D(2026, 10, 1))
    with use_warehouse(_night_wh(tmp_path, rows), today=TODAY):
        o1_off = (7 * 140 + 200) / 8                     # 147.5: 0.7375 of its term mean
        res = value("energy.holiday_ratio", p, school="S1")
        assert res.num == pytest.approx(60 + o1_off + 35) and res.den == pytest.approx(100 + 200 + 50)
        by_building = {r.key: r.value for r in registry.breakdown("energy.holiday_ratio", scope(), p, "facility")}
        assert by_building == pytest.approx({"S1-T1": 0.6, "S1-O1": o1_off / 200, "S1-D1": 0.7})
        found = energy.holiday_buildings(scope(), p).set_index("facility_id")
        # O1 (0.75) fires; D1 exactly at the 0.7 bound and T1 (0.6) do not
        assert list(found.index) == ["S1-O1"]
        assert found.loc["S1-O1", "worst_day"] == off[3] and found.loc["S1-O1", "worst"] == pytest.approx(200)
        # 8 off days (a vacation week and the holiday); only the 200 day is above 0.7 × 200 = 140
        assert found.loc["S1-O1", "days"] == 8 and found.loc["S1-O1", "days_over"] == 1


def test_holiday_rule_counts_days_strictly_above_the_bound(tmp_path):
    term = days(D(2026, 9, 7), D(2026, 9, 11))
    off = days(D(2026, 8, 24), D(2026, 8, 27))
    rows = [day_row("O1", d, 100) for d in term] + [day_row("O1", d, v) for d, v in zip(off, (70, 70.01, 90, 80))]
    with use_warehouse(_night_wh(tmp_path, rows), today=TODAY):
        found = energy.holiday_buildings(scope(), Period(off[0], term[-1])).iloc[0]
        assert found["ratio"] == pytest.approx((70 + 70.01 + 90 + 80) / 4 / 100)
        assert found["days_over"] == 3 and found["worst_day"] == off[2] and found["days"] == 4


def test_no_vacation_day_means_no_holiday_ratio(tmp_path):
    rows = [day_row("T1", d, 100) for d in days(D(2026, 11, 2), D(2026, 11, 6))]
    with use_warehouse(_night_wh(tmp_path, rows), today=TODAY):
        res = value("energy.holiday_ratio", Period(D(2026, 11, 2), D(2026, 11, 6)))
        assert res.value is None and res.status == "nodata"


# --- suspected leaks --------------------------------------------------------------------------------------------

def _water_wh(tmp_path, rows, meters):
    frames = org_frames(extra_facilities=(("S1-D1", "S1", "dormitory", 800.0), ("S1-D2", "S1", "dormitory", 800.0),
                                          ("S1-D3", "S1", "dormitory", 800.0)))
    frames["dim_meter"] = pd.DataFrame(meters)
    frames["agg_meter_daily"] = pd.DataFrame(rows)
    return build(tmp_path, frames)


def test_leak_rule_fires_just_above_ten_percent_and_needs_two_nights(tmp_path):
    d1, d2, d3 = D(2026, 11, 2), D(2026, 11, 3), D(2026, 11, 4)
    # 240 m³ a day: mean hourly flow 10; the 02:00–04:00 mean is leak ÷ 2
    rows = [
        day_row("W1", d1, 240, leak=2 * 1.0001), day_row("W1", d2, 240, leak=2 * 1.5), day_row("W1", d3, 240, leak=0.2),
        day_row("W2", d1, 240, leak=2 * 1.0), day_row("W2", d2, 240, leak=2 * 1.0), day_row("W2", d3, 240, leak=2.0),
        day_row("W3", d1, 240, leak=2 * 1.2), day_row("W3", d2, 240, leak=0.5),
        day_row("W3", d3, 240, leak=None, leak_n=None),      # a rollup row without the leak window: ignored
    ]
    meters = [meter("W1", "S1-D1", "S1", "water"), meter("W2", "S1-D2", "S1", "water"),
              meter("W3", "S1-D3", "S1", "water")]
    p = Period(d1, d3)
    with use_warehouse(_water_wh(tmp_path, rows, meters), today=TODAY):
        found = energy.leak_meters(scope(), p).set_index("meter_id")
        # W1: two nights above 10 % (10.001 % and 15 %); W2 exactly 10 % never; W3 one night
        assert sorted(found.index) == ["W1", "W3"]
        assert found.loc["W1", "nights"] == 2 and found.loc["W1", "first_day"] == d1
        assert found.loc["W1", "last_day"] == d2 and found.loc["W1", "max_share"] == pytest.approx(0.15)
        assert found.loc["W3", "nights"] == 1
        res = value("energy.leak_suspect", p)
        assert res.value == 1 and res.status == "red"
        assert value("energy.leak_suspect", p, facility="S1-D3").value == 0
        assert value("energy.leak_suspect", p, facility="S1-D3").status == "green"
        assert list(energy.anomaly_list(scope(), p)["leak"]["meter_id"]) == ["W1"]


def test_rollup_leak_window_matches_the_hourly_readings(raw):
    """bulk.rebuild_meter_daily's 02:00–04:00 columns against pandas over the raw readings (demo)."""
    r = raw("fact_meter_reading")
    r = r[r.meter_id.isin(["BJ-U01-C1-DOR1-WA", "SH-U01-C1-LAB1-EL"]) & in_period(r.ts)]
    hour = pd.to_datetime(r.ts).dt.hour
    r = r.assign(day=pd.to_datetime(r.ts).dt.date, leak_c=r.consumption.where(hour.between(2, 3), 0.0),
                 leak_n=hour.between(2, 3).astype(int))
    expected = r.groupby(["meter_id", "day"]).agg(leak_consumption=("leak_c", "sum"), leak_readings=("leak_n", "sum"))
    agg = raw("agg_meter_daily")
    agg = agg[agg.meter_id.isin(["BJ-U01-C1-DOR1-WA", "SH-U01-C1-LAB1-EL"]) & in_period(agg.day)]
    agg = agg.assign(day=pd.to_datetime(agg.day).dt.date).set_index(["meter_id", "day"]).sort_index()
    expected = expected.sort_index()
    assert list(agg.index) == list(expected.index)
    np.testing.assert_allclose(agg["leak_consumption"], expected["leak_consumption"], rtol=1e-9, atol=1e-9)
    assert (agg["leak_readings"].to_numpy() == expected["leak_readings"].to_numpy()).all()


# --- same-weekday spikes ----------------------------------------------------------------------------------------

MONDAYS = days(D(2026, 9, 7), D(2026, 11, 9), weekdays={0})   # 10 term Mondays (2026-10-05 is a holiday)


def _spike_wh(tmp_path, series: dict[str, dict[dt.date, float]], name="w.duckdb"):
    frames = org_frames(extra_facilities=tuple((f"S1-{m}", "S1", "teaching", 1000.0) for m in series))
    frames["dim_meter"] = pd.DataFrame([meter(m, f"S1-{m}", "S1") for m in series])
    frames["agg_meter_daily"] = pd.DataFrame([day_row(m, d, v) for m, values in series.items() for d, v in values.items()])
    return build(tmp_path, frames, name)


def test_spike_fires_just_above_three_sigma_with_the_sd_floor(tmp_path):
    target = D(2026, 11, 9)
    base = {d: 100.0 for d in MONDAYS if d < target and d != D(2026, 10, 5)}   # 8 term Mondays
    assert len(base) == 8
    tuesdays = {d + dt.timedelta(days=1): 500.0 for d in MONDAYS}            # another weekday: not a baseline
    holiday = {D(2026, 10, 5): 1000.0}                                       # a Monday holiday: another class
    for day_value, fires in ((130.0, False), (130.01, True), (69.99, True), (70.0, False)):
        series = {"E1": {**base, **tuesdays, **holiday, target: day_value}}
        with use_warehouse(_spike_wh(tmp_path, series, f"w{day_value}.duckdb"), today=TODAY):
            found = energy.spikes(scope(), Period(target, target))
            assert (len(found) == 1) == fires, day_value
            if fires:
                row = found.iloc[0]
                # σ of eight equal days is 0: the floor 10 % of the mean (10) stands in
                assert row["baseline"] == pytest.approx(100) and row["baseline_days"] == 8
                assert row["z"] == pytest.approx((day_value - 100) / 10)
                assert row["day_class"] == "term_workday"


def test_spike_uses_the_baseline_sigma_when_above_the_floor(tmp_path):
    target = D(2026, 11, 9)
    prior = [d for d in MONDAYS if d < target and d != D(2026, 10, 5)]
    base = {d: (90.0 if i % 2 else 110.0) for i, d in enumerate(prior)}
    sd = float(np.std(list(base.values()), ddof=1))           # 10.69 > the floor of 10
    limit = 100 + 3 * sd
    for day_value, fires in ((limit - 0.01, False), (limit + 0.01, True)):
        with use_warehouse(_spike_wh(tmp_path, {"E1": {**base, target: day_value}}, f"w{day_value}.duckdb"), today=TODAY):
            found = energy.spikes(scope(), Period(target, target))
            assert (len(found) == 1) == fires
            if fires:
                assert found.iloc[0]["sd"] == pytest.approx(sd) and found.iloc[0]["z"] == pytest.approx((day_value - 100) / sd)


def test_spike_needs_four_baseline_days_and_a_nonzero_baseline(tmp_path):
    target = D(2026, 11, 9)
    prior = [d for d in MONDAYS if d < target and d != D(2026, 10, 5)]
    three = {d: 100.0 for d in prior[-3:]}
    zeros = {d: 0.0 for d in prior}
    with use_warehouse(_spike_wh(tmp_path, {"E1": {**three, target: 500.0}, "E2": {**zeros, target: 50.0}}), today=TODAY):
        assert energy.spikes(scope(), Period(target, target)).empty


def test_common_change_of_the_school_is_not_a_spike(tmp_path):
    """Four buildings of a school rise 40 % the same day (weather): no spike. Then one alone rises 40 %: it is,
    and the others are not pulled down by it (the school's change is a median, not a mean)."""
    target = D(2026, 11, 9)
    prior = [d for d in MONDAYS if d < target and d != D(2026, 10, 5)]
    series = {m: {**{d: 100.0 for d in prior}, target: 140.0} for m in ("E1", "E2", "E3", "E4")}
    with use_warehouse(_spike_wh(tmp_path, series), today=TODAY):
        assert energy.spikes(scope(), Period(target, target)).empty
    series = {m: {**{d: 100.0 for d in prior}, target: 140.0 if m == "E1" else 100.0} for m in ("E1", "E2", "E3", "E4")}
    with use_warehouse(_spike_wh(tmp_path, series, "w2.duckdb"), today=TODAY):
        found = energy.spikes(scope(), Period(target, target))
        assert list(found["meter_id"]) == ["E1"]
        assert found.iloc[0]["common"] == pytest.approx(1.0) and found.iloc[0]["z"] == pytest.approx(4.0)
    # with only two meters there is no adjustment: both 40 % up are two spikes
    series = {m: {**{d: 100.0 for d in prior}, target: 140.0} for m in ("E1", "E2")}
    with use_warehouse(_spike_wh(tmp_path, series, "w3.duckdb"), today=TODAY):
        assert list(energy.spikes(scope(), Period(target, target))["meter_id"]) == ["E1", "E2"]
    # three meters 12 %, 14 % and 150 % up: the median 1.14 is the school's change; only the third is a spike
    series = {m: {**{d: 100.0 for d in prior}, target: v} for m, v in (("E1", 112.0), ("E2", 114.0), ("E3", 250.0))}
    with use_warehouse(_spike_wh(tmp_path, series, "w4.duckdb"), today=TODAY):
        found = energy.spikes(scope(), Period(target, target))
        assert list(found["meter_id"]) == ["E3"]
        assert found.iloc[0]["common"] == pytest.approx(1.14)
        assert found.iloc[0]["z"] == pytest.approx((250 - 114) / 11.4)
        assert value("energy.anomalies", Period(target, target)).value == 1
        assert value("energy.anomalies", Period(target, target), facility="S1-E2").value == 0


# --- missing readings -------------------------------------------------------------------------------------------

def test_missing_days_partial_days_and_dead_meters(tmp_path):
    d = days(D(2026, 11, 2), D(2026, 11, 5))
    rows = ([day_row("E1", x, 100) for x in d if x != d[1]]                      # E1: day 2 missing
            + [day_row("E2", x, 100, readings=20 if x == d[2] else 24) for x in d]   # E2: 20 readings on day 3
            + [day_row("E3", x, 100, readings=30) for x in d])                   # E3: finer readings (capped): complete
    frames = org_frames(extra_facilities=(("S1-T1", "S1", "teaching", 1000.0), ("S1-T2", "S1", "teaching", 1000.0)))
    frames["dim_meter"] = pd.DataFrame([meter("E1", "S1-T1", "S1"), meter("E2", "S1-T1", "S1", parent="E1"),
                                        meter("E3", "S1-T2", "S1"), meter("E4", "S1-T2", "S1", "water")])
    frames["agg_meter_daily"] = pd.DataFrame(rows)
    with use_warehouse(build(tmp_path, frames), today=TODAY):
        found = energy.missing_data(scope(), Period(d[0], d[-1]))
        got = {(r.facility_id, r.day, r.whole): (r.meters, r.readings, r.expected) for r in found.itertuples()}
        assert got == {("S1-T1", d[1], False): (1, 0, 24), ("S1-T1", d[2], False): (1, 20, 24),
                       ("S1-T2", d[0], True): (1, 0, 96)}
        # the period is clipped to the days the warehouse holds data for
        assert len(energy.missing_data(scope(), Period(d[0] - dt.timedelta(days=10), d[-1]))) == 3


# --- quota projection -------------------------------------------------------------------------------------------

def _quota_wh(tmp_path, ly: dict[dt.date, float], ty: dict[dt.date, float], etype="electricity", quota=None,
              region="310000", name="w.duckdb", extra=()):
    frames = org_frames(schools=(("S1", "university", region),),
                        extra_facilities=(("S1-T1", "S1", "teaching", 1000.0),))
    frames["dim_meter"] = pd.DataFrame([meter("M1", "S1-T1", "S1", etype), *extra])
    frames["agg_meter_daily"] = pd.DataFrame([day_row("M1", d, v) for d, v in {**ly, **ty}.items()])
    if quota is not None:
        frames["fact_energy_quota"] = pd.DataFrame([{"school_id": "S1", "year": 2026, "energy_type": etype,
                                                     "quota": quota}])
    return build(tmp_path, frames, name)


def test_seasonal_projection_has_a_known_answer_and_no_band_when_ratios_agree(tmp_path):
    ly = {d: (100.0 if d.month <= 6 else 200.0) for d in days(D(2025, 1, 1), D(2025, 12, 31))}
    ty = {d: 1.1 * (100.0 if d.month <= 6 else 200.0) for d in days(D(2026, 1, 1), D(2026, 6, 30))}
    with use_warehouse(_quota_wh(tmp_path, ly, ty, quota=50_000.0), today=D(2026, 7, 1)):
        p = Period(D(2026, 6, 1), D(2026, 6, 30))
        row = energy.quota_status(scope(), p).iloc[0]
        ytd = 1.1 * 100 * 181
        expected = ytd + 1.1 * 200 * 184                     # the rest of last year's shape × 1.1
        assert row["method"] == "seasonal" and row["ratio"] == pytest.approx(1.1)
        assert row["ytd"] == pytest.approx(ytd) and row["projected"] == pytest.approx(expected)
        assert row["lo"] == pytest.approx(expected) and row["hi"] == pytest.approx(expected)
        res = value("energy.quota_use", p, school="S1")
        assert res.value == pytest.approx(100 * expected / 50_000.0)         # 120.7 % → red
        assert res.status == "red"
        assert res.extra["ytd"] == pytest.approx(ytd * 0.1229)                # in kgce
        path = energy.quota_path(scope(), p, "electricity")
        assert path["actual"].iloc[-1] == pytest.approx(ytd)
        assert path["path"]["mid"].iloc[-1] == pytest.approx(expected)
        assert path["path"]["day"].iloc[-1] == D(2026, 12, 31)


def test_projection_band_from_the_spread_of_monthly_ratios(tmp_path):
    ly = {d: 100.0 for d in days(D(2025, 1, 1), D(2025, 12, 31))}
    ratios = {1: 1.0, 2: 1.2, 3: 1.0, 4: 1.2, 5: 1.0, 6: 1.2}
    ty = {d: 100.0 * ratios[d.month] for d in days(D(2026, 1, 1), D(2026, 6, 30))}
    with use_warehouse(_quota_wh(tmp_path, ly, ty, quota=40_000.0), today=D(2026, 7, 1)):
        row = energy.quota_status(scope(), Period(D(2026, 6, 1), D(2026, 6, 30))).iloc[0]
    lym = np.array([100.0 * pd.Period(f"2025-{m:02d}").days_in_month for m in range(1, 7)])
    tym = lym * np.array([ratios[m] for m in range(1, 7)])
    r = tym.sum() / lym.sum()
    w = lym / lym.sum()
    sd = math.sqrt((w * (tym / lym - r) ** 2).sum() * 6 / 5)
    rest = 100.0 * 184
    projected = tym.sum() + r * rest
    half = 1.645 * sd * rest * math.sqrt(1 / 6 + 1 / 6)       # six months so far, six to come
    assert row["projected"] == pytest.approx(projected)
    assert row["lo"] == pytest.approx(projected - half) and row["hi"] == pytest.approx(projected + half)


def _seasonal_by_hand(level: float, ratios: dict[int, float]):
    """Projection and band half-width of a school with ``level`` kWh every day of 2025 and level × ratio[month]
    every day of January–June 2026 (the formula of quota_status's docstring, written out with numpy)."""
    lym = np.array([level * pd.Period(f"2025-{m:02d}").days_in_month for m in range(1, 7)])
    tym = lym * np.array([ratios[m] for m in range(1, 7)])
    r = tym.sum() / lym.sum()
    sd = math.sqrt(((lym / lym.sum()) * (tym / lym - r) ** 2).sum() * 6 / 5)
    rest = level * 184                                        # 1 July – 31 December 2025
    return tym.sum(), tym.sum() + r * rest, 1.645 * sd * rest * math.sqrt(1 / 6 + 1 / 6)


def test_the_band_of_several_schools_adds_variances_and_names_what_it_leaves_out(tmp_path):
    """B5: above school level the band is no longer dropped when one school has none. S1 and S3 have a seasonal
    projection with a band, S2's data began on 1 March (a run rate, no band): the sum's half-width is
    √(h1² + h3²), S2's projection is added without widening it, and the method reads "mixed"."""
    r1 = {1: 1.0, 2: 1.2, 3: 1.0, 4: 1.2, 5: 1.0, 6: 1.2}
    r3 = {1: 0.9, 2: 1.0, 3: 1.1, 4: 0.9, 5: 1.0, 6: 1.1}
    frames = org_frames(schools=(("S1", "university", "310000"), ("S2", "university", "310000"),
                                 ("S3", "university", "110000")), canteens_per_school=0,
                        extra_facilities=tuple((f"{s}-T1", s, "teaching", 1000.0) for s in ("S1", "S2", "S3")))
    frames["dim_meter"] = pd.DataFrame([meter(f"{s}-E", f"{s}-T1", s) for s in ("S1", "S2", "S3")])
    rows = [day_row("S1-E", d, 100.0) for d in days(D(2025, 1, 1), D(2025, 12, 31))]
    rows += [day_row("S1-E", d, 100.0 * r1[d.month]) for d in days(D(2026, 1, 1), D(2026, 6, 30))]
    rows += [day_row("S3-E", d, 200.0) for d in days(D(2025, 1, 1), D(2025, 12, 31))]
    rows += [day_row("S3-E", d, 200.0 * r3[d.month]) for d in days(D(2026, 1, 1), D(2026, 6, 30))]
    rows += [day_row("S2-E", d, 100.0) for d in days(D(2026, 3, 1), D(2026, 6, 30))]
    frames["agg_meter_daily"] = pd.DataFrame(rows)
    quotas = {"S1": 40_000.0, "S2": 30_000.0, "S3": 80_000.0}
    frames["fact_energy_quota"] = pd.DataFrame([{"school_id": s, "year": 2026, "energy_type": "electricity",
                                                 "quota": q} for s, q in quotas.items()])
    ytd1, p1, h1 = _seasonal_by_hand(100.0, r1)
    ytd3, p3, h3 = _seasonal_by_hand(200.0, r3)
    ytd2, p2 = 100.0 * 122, 100.0 * 365        # 1 March – 30 June: a run rate of 100 kWh a day, a year of it
    total, half = p1 + p2 + p3, math.sqrt(h1 ** 2 + h3 ** 2)
    p = Period(D(2026, 6, 1), D(2026, 6, 30))
    with use_warehouse(build(tmp_path, frames), today=D(2026, 7, 1)):
        status = energy.quota_status(scope(), p).set_index("school_id")
        assert list(status["method"]) == ["seasonal", "linear", "seasonal"]
        assert status.loc["S2", "projected"] == pytest.approx(p2)     # not 12 200 × 365 ÷ 181 at this level either
        assert status.loc["S1", "hi"] - status.loc["S1", "projected"] == pytest.approx(h1)
        # the indicator in standard coal: every part × 0.1229
        res = value("energy.quota_use", p)
        assert res.value == pytest.approx(100 * total / sum(quotas.values()))
        assert res.extra["lo"] == pytest.approx((total - half) * 0.1229)
        assert res.extra["hi"] == pytest.approx((total + half) * 0.1229)
        assert res.extra["unbanded"] == 1
        by_region = {r.key: r for r in registry.breakdown("energy.quota_use", scope(), p, "region")}
        assert by_region["310000"].extra["hi"] == pytest.approx((p1 + p2 + h1) * 0.1229)   # S1's band, S2 without
        assert by_region["110000"].extra["lo"] == pytest.approx((p3 - h3) * 0.1229)
        assert by_region["110000"].extra["unbanded"] == 0
        # the panel's row and chart
        row = energy.panel_quota(scope(), p, "electricity")["rows"][0]
        assert row["method"] == "mixed" and row["methods"] == {"linear": 1, "seasonal": 2}
        assert row["lo_pct"] == pytest.approx(100 * (total - half) / 150_000.0)
        assert row["hi_pct"] == pytest.approx(100 * (total + half) / 150_000.0)
        assert row["unbanded"] == 1 and row["ytd"] == pytest.approx(ytd1 + ytd2 + ytd3)
        path = energy.quota_path(scope(), p, "electricity")
        assert (path["lo"], path["hi"], path["unbanded"]) == (pytest.approx(total - half),
                                                             pytest.approx(total + half), 1)
        assert path["path"]["hi"].iloc[-1] == pytest.approx(total + half)
        # the table says so: a starred band, the note, and the methods with their schools
        from components import energy as view

        table = str(view.quota_table([{**row, "unit": "kWh"}], "zh"))
        assert "energy-quota-unbanded" in table and " *" in table and "季节 2 所" in table and "线性 1 所" in table


def test_heat_follows_last_years_heating_season_not_a_run_rate(tmp_path):
    def season(d):
        return (d.month, d.day) >= (11, 15) or (d.month, d.day) <= (3, 15)

    ly = {d: (50.0 if season(d) else 0.0) for d in days(D(2025, 1, 1), D(2025, 12, 31))}
    ty = {d: (60.0 if season(d) else 0.0) for d in days(D(2026, 1, 1), D(2026, 6, 30))}
    with use_warehouse(_quota_wh(tmp_path, ly, ty, etype="heat", quota=8000.0, region="110000"), today=D(2026, 7, 1)):
        p = Period(D(2026, 6, 1), D(2026, 6, 30))
        row = energy.quota_status(scope(), p).iloc[0]
    ytd = 60.0 * 74                                       # 1 January – 15 March 2026
    expected = ytd + 1.2 * 50.0 * 47                      # 15 November – 31 December, × 60/50
    naive = ytd * 365 / 181
    assert row["projected"] == pytest.approx(expected)    # 7 260 GJ: 90.8 % of the quota
    assert naive > 8000.0 > row["projected"]              # a run rate would say 8 954 GJ, over the quota
    # months with no heat last year carry no ratio: only January–March count (all 1.2) → no spread
    assert row["lo"] == pytest.approx(expected) and row["hi"] == pytest.approx(expected)


def test_without_a_year_of_history_linear_projection_and_none_for_heat(tmp_path):
    ty = {d: 100.0 for d in days(D(2026, 3, 1), D(2026, 6, 30))}
    heat = meter("H1", "S1-T1", "S1", "heat")
    frames_ty = {**ty}
    url = _quota_wh(tmp_path, {}, frames_ty, quota=40_000.0, extra=(heat,))
    with use_warehouse(url, today=D(2026, 7, 1)):
        status = energy.quota_status(scope(), Period(D(2026, 6, 1), D(2026, 6, 30))).set_index("energy_type")
        assert status.loc["electricity", "method"] == "linear"
        # Data began on 1 March: 122 days (31 + 30 + 31 + 30) of 100 kWh, a run rate of 100 kWh a day, so the
        # year is 100 × 365 = 36 500 kWh — not 12 200 × 365 ÷ 181 days since 1 January (24 602, "under quota")
        assert status.loc["electricity", "ytd"] == pytest.approx(12_200.0)
        assert status.loc["electricity", "projected"] == pytest.approx(36_500.0)
        assert math.isnan(status.loc["electricity", "lo"])


def test_linear_projection_counts_from_1_january_when_data_began_earlier(tmp_path):
    # data since 1 September 2025 (under a year before 30 June 2026): 50 kWh a day last year, 100 this year
    ly = {d: 50.0 for d in days(D(2025, 9, 1), D(2025, 12, 31))}
    ty = {d: 100.0 for d in days(D(2026, 1, 1), D(2026, 6, 30))}
    with use_warehouse(_quota_wh(tmp_path, ly, ty, quota=40_000.0), today=D(2026, 7, 1)):
        row = energy.quota_status(scope(), Period(D(2026, 6, 1), D(2026, 6, 30))).iloc[0]
    # 181 days (1 January – 30 June) of 100 kWh: the run rate 100 kWh a day over 365 days
    assert row["method"] == "linear" and row["ytd"] == pytest.approx(18_100.0)
    assert row["projected"] == pytest.approx(36_500.0)


# --- the demo's planted incidents at the data layer -------------------------------------------------------------

def test_demo_incidents_are_found(raw):
    spike, leak, gap = INCIDENTS["energy_spike"], INCIDENTS["water_leak"], INCIDENTS["meter_gap"]
    found = energy.anomaly_list(scope(), PERIOD)
    spikes = found["spike"]
    hit = spikes.loc[(spikes.meter_id == spike["meter_id"]) & (spikes.day == END - dt.timedelta(days=spike["days_before_end"]))]
    assert len(hit) == 1 and hit.iloc[0]["z"] > 10
    leaks = found["leak"].set_index("meter_id")
    assert leak["meter_id"] in leaks.index
    start = END - dt.timedelta(days=leak["start_days_before_end"])
    assert start <= leaks.loc[leak["meter_id"], "first_day"] <= start + dt.timedelta(days=1)
    missing = found["missing"]
    gap_day = END - dt.timedelta(days=gap["days_before_end"])
    gap_rows = missing.loc[missing.day == gap_day]
    fac = raw("dim_facility")
    metered = set(raw("dim_meter").query("school_id == @gap['school']").facility_id)
    assert set(gap_rows.facility_id) == metered and (gap_rows.readings == 0).all()
    outage = INCIDENTS["meter_outage"]                         # a second school without data for two days
    outage_days = {END - dt.timedelta(days=outage["days_before_end"] + k) for k in range(outage["days"])}
    assert set(missing.day) == {gap_day} | outage_days         # the only gaps in the period
    assert set(fac.loc[fac.facility_id.isin(gap_rows.facility_id), "school_id"]) == {gap["school"]}
    # the quota school is headed over its quota
    assert registry.evaluate("energy.quota_use", scope(school=INCIDENTS["quota_overrun"]["school"]), PERIOD).status == "red"


def test_anomaly_counts_roll_up(raw):
    total = registry.evaluate("energy.anomalies", scope(), PERIOD).value
    by_school = registry.breakdown("energy.anomalies", scope(), PERIOD, "school")
    assert sum(r.value for r in by_school) == total == len(energy.spikes(scope(), PERIOD))
    leaks = registry.breakdown("energy.leak_suspect", scope(region="110000"), PERIOD, "school")
    assert sum(r.value for r in leaks) == registry.evaluate("energy.leak_suspect", scope(region="110000"), PERIOD).value
    night = registry.breakdown("energy.night_ratio", scope(), PERIOD, "school")
    whole = registry.evaluate("energy.night_ratio", scope(), PERIOD)
    assert sum(r.num for r in night) == pytest.approx(whole.num) and sum(r.den for r in night) == pytest.approx(whole.den)


@pytest.mark.parametrize("ind", ["energy.anomalies", "energy.leak_suspect", "energy.night_ratio",
                                 "energy.holiday_ratio"])
def test_a_buildings_figures_are_the_same_at_every_level(ind):
    """A building's verdict does not depend on the level it is looked at from (the spike rule's common change
    is always its whole school's)."""
    p = Period(END - dt.timedelta(days=120), END)
    for school in ("BJ-U01", "SH-U01"):
        below = {r.key: (r.value, r.status) for r in registry.breakdown(ind, scope(school=school), p, "facility")}
        assert below
        for fid, (v, status) in below.items():
            res = registry.evaluate(ind, scope(facility=fid), p)
            assert (res.value, res.status) == (pytest.approx(v), status), (ind, fid)


def test_night_ratio_on_the_demo_against_pandas(raw):
    """Σ night means ÷ Σ working means over term workdays of teaching and office electricity (hourly rows)."""
    meters = raw("dim_meter").merge(raw("dim_facility")[["facility_id", "facility_type"]], on="facility_id")
    meters = meters[(meters.school_id == "SH-U01") & meters.parent_meter_id.isna() &
                    (meters.energy_type == "electricity") & meters.facility_type.isin(["teaching", "office"])]
    r = raw("fact_meter_reading")
    r = r[r.meter_id.isin(meters.meter_id) & in_period(r.ts)]
    ts = pd.to_datetime(r.ts)
    r = r.assign(day=ts.dt.date, hour=ts.dt.hour)
    cal = raw("dim_school_calendar")
    cal = cal[cal.school_id == "SH-U01"].assign(day=lambda c: pd.to_datetime(c.cal_date).dt.date)
    workdays = set(cal.loc[cal.day_type.isin(["term", "exam"]) & (pd.to_datetime(cal.cal_date).dt.day_of_week < 5), "day"])
    r = r[r.day.isin(workdays)]
    night = r[r.hour.between(0, 4)].groupby(["meter_id", "day"]).consumption.mean()
    work = r[r.hour.between(9, 16)].groupby(["meter_id", "day"]).consumption.mean()
    res = registry.evaluate("energy.night_ratio", scope(school="SH-U01"), PERIOD)
    assert res.value == pytest.approx(night.sum() / work.sum(), rel=1e-9)


# --- load curves and one building -------------------------------------------------------------------------------

def test_building_hours_and_profile_against_the_raw_readings(raw):
    fid = INCIDENTS["energy_spike"]["meter_id"].rsplit("-", 1)[0]          # SH-U01-C1-LAB1
    p = Period(END - dt.timedelta(days=13), END)
    got = energy.building_hours(scope(school="SH-U01"), fid, p, "electricity").set_index(["day", "hour"])["value"]
    meters = raw("dim_meter")
    tops = meters[(meters.facility_id == fid) & meters.parent_meter_id.isna() & (meters.energy_type == "electricity")]
    r = raw("fact_meter_reading")
    r = r[r.meter_id.isin(tops.meter_id) & in_period(r.ts, p)]
    ts = pd.to_datetime(r.ts)
    expected = r.assign(day=ts.dt.date, hour=ts.dt.hour).groupby(["day", "hour"]).consumption.sum()
    assert list(got.index) == list(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)
    # the building's charts: 14 day columns × 24 hours, the gap day empty, the spike day's 09–16 hot
    data = energy.panel_building(scope(school="SH-U01"), p, "electricity", fid)
    assert data["chosen"] == fid and not data["weekly"] and len(data["columns"]) == 14
    gap = END - dt.timedelta(days=INCIDENTS["meter_gap"]["days_before_end"])
    assert all(row[data["columns"].index(gap)] is None for row in data["z"])           # the gap day is empty
    spike_day = END - dt.timedelta(days=INCIDENTS["energy_spike"]["days_before_end"])
    col = data["columns"].index(spike_day)
    assert data["z"][12][col] == pytest.approx(expected[(spike_day, 12)])
    with pytest.raises(Exception):
        energy.building_hours(scope(school="BJ-U01"), fid, p, "electricity")   # not in that scope


def test_heatmap_matrix_turns_to_weeks_for_long_periods():
    frame = pd.DataFrame([{"day": d, "hour": h, "value": float(i + h)}
                          for i, d in enumerate(days(D(2026, 11, 2), D(2026, 11, 15))) for h in range(24)])
    columns, z, weekly = energy.heatmap_matrix(frame, 20)
    assert not weekly and len(columns) == 14 and z[5][0] == 5.0
    columns, z, weekly = energy.heatmap_matrix(frame, 10)
    assert weekly and columns == [D(2026, 11, 2), D(2026, 11, 9)]
    assert z[0] == [3.0, 10.0] and z[23][1] == pytest.approx(10.0 + 23)      # mean of days 0–6 and 7–13


def test_daily_curve_leaves_the_missing_day_empty():
    frame = energy.daily_use(scope(school="SH-U01"), PERIOD, "electricity")
    gap = END - dt.timedelta(days=INCIDENTS["meter_gap"]["days_before_end"])
    assert len(frame) == PERIOD.days
    assert frame.set_index("day")["value"].isna().to_dict() == {d: d == gap for d in frame["day"]}
    total = registry.evaluate("energy.electricity_kwh", scope(school="SH-U01"), PERIOD).value
    assert frame["value"].sum() == pytest.approx(total)


# --- portability: the panel's statements compile for PostgreSQL and MariaDB -------------------------------------

def test_statements_compile_for_postgresql_and_mysql(monkeypatch):
    captured = []

    def capture(stmt, params=None):
        captured.append(stmt)
        raise LookupError("captured")

    s, p = scope(school="SH-U01"), PERIOD
    calls = [lambda: energy.night_ratio.uncached(s, p, "school"), lambda: energy.holiday_daily.uncached(s, p, "region"),
             lambda: energy.leak_meters.uncached(s, p), lambda: energy.school_spikes.uncached(s.schools, p),
             lambda: energy.night_buildings.uncached(s, p), lambda: energy.holiday_buildings.uncached(s, p),
             lambda: energy.quota_monthly.uncached(s, p.end), lambda: energy.end_use.uncached(s, p),
             lambda: energy.building_hours.uncached(s, "SH-U01-C1-TEA1", p, "electricity")]
    monkeypatch.setattr(energy, "read_df", capture)
    for call in calls:
        with pytest.raises(LookupError):
            call()
    assert len(captured) == len(calls)
    for stmt in captured:
        for dialect in (postgresql.dialect(), mysql.dialect()):
            sql = str(stmt.compile(dialect=dialect))
            assert "isodow(" not in sql and "epoch(" not in sql, sql[:200]


# --- the same figures on PostgreSQL and MariaDB ----------------------------------------------------------------

def _server_frames() -> dict[str, pd.DataFrame]:
    """Eighteen months of two schools (one with its own calendar for part of the time, one on the default) with
    a spike, a leak, a missing day, high night and vacation loads, sub-meters, heat, quotas and hourly readings."""
    rng = np.random.default_rng(5)
    frames = org_frames(schools=(("S1", "university", "310000"), ("S2", "k12", "110000")),
                        extra_facilities=(("S1-T1", "S1", "teaching", 4000.0), ("S1-O1", "S1", "office", 1500.0),
                                          ("S1-D1", "S1", "dormitory", 3000.0), ("S2-T1", "S2", "teaching", 2500.0)))
    frames["fact_school_year"] = pd.DataFrame([{"school_id": s, "year": y, "students": n, "staff": n // 10,
                                                "floor_area_m2": a} for s, n, a in (("S1", 900, 9500.0),
                                                                                   ("S2", 400, 3500.0))
                                               for y in (2025, 2026)])
    frames["dim_meter"] = pd.DataFrame([
        meter("S1-T1-E", "S1-T1", "S1"), meter("S1-T1-E-HV", "S1-T1", "S1", parent="S1-T1-E", end_use="hvac"),
        meter("S1-O1-E", "S1-O1", "S1"), meter("S1-D1-E", "S1-D1", "S1"), meter("S1-D1-W", "S1-D1", "S1", "water"),
        meter("S1-CAN1-G", "S1-CAN1", "S1", "gas"), meter("S2-T1-E", "S2-T1", "S2"), meter("S2-T1-H", "S2-T1", "S2", "heat"),
    ])
    cal = [{"school_id": "S1", "cal_date": d, "day_type": "vacation" if d.month in (7, 8) else "term",
            "teaching_week": None} for d in days(D(2025, 6, 1), D(2025, 12, 31))]
    frames["dim_school_calendar"] = pd.DataFrame(cal)
    base = {"S1-T1-E": 900, "S1-T1-E-HV": 300, "S1-O1-E": 400, "S1-D1-E": 600, "S1-D1-W": 48, "S1-CAN1-G": 80,
            "S2-T1-E": 500, "S2-T1-H": 30}
    rows = []
    for d in days(D(2025, 1, 1), D(2026, 6, 30)):
        off = d.weekday() >= 5 or d.month in (7, 8) or (d.month == 2 and d.day < 20)
        for m, b in base.items():
            if m == "S2-T1-H" and not ((d.month, d.day) >= (11, 15) or (d.month, d.day) <= (3, 15)):
                v = 0.0
            else:
                v = b * (0.45 if off else 1.0) * (1.04 if d.year == 2026 else 1.0) * float(rng.uniform(0.97, 1.03))
            if m == "S1-T1-E" and d == D(2026, 6, 15):
                v *= 2.5                                                   # a spike on a Monday
            if m.startswith("S1-") and d == D(2026, 6, 10):
                continue                                                   # a missing day at S1
            night = v * (0.3 if m == "S1-O1-E" else 0.1) * 5 / 24          # the office: a high night load
            leak = v * (0.25 if (m == "S1-D1-W" and d >= D(2026, 6, 20)) else 0.02) * 2 / 24
            rows.append(day_row(m, d, v, night=night, work=v * 0.5 * 8 / 24, leak=leak))
    frames["agg_meter_daily"] = pd.DataFrame(rows)
    hours = []
    for d in days(D(2026, 6, 1), D(2026, 6, 30)):
        for h in range(24):
            hours.append({"meter_id": "S1-T1-E", "ts": dt.datetime.combine(d, dt.time(h)),
                          "consumption": float(20 + (30 if 8 <= h < 18 else 0) + d.day)})
    frames["fact_meter_reading"] = pd.DataFrame(hours)
    frames["fact_energy_quota"] = pd.DataFrame([{"school_id": s, "year": 2026, "energy_type": t, "quota": q}
                                                for s, t, q in (("S1", "electricity", 600_000.0), ("S1", "water", 15_000.0),
                                                                ("S1", "gas", 20_000.0), ("S2", "electricity", 150_000.0),
                                                                ("S2", "heat", 5_000.0))])
    return frames


def _server_snapshot() -> dict:
    out = {}
    june, half = Period(D(2026, 6, 1), D(2026, 6, 30)), Period(D(2026, 1, 1), D(2026, 6, 30))
    for ind in [i.id for i in registry.all_indicators() if i.domain == "energy"]:
        for params in (dict(), dict(school="S1"), dict(region="110000"), dict(facility="S1-O1")):
            for p in (june, half):
                res = value(ind, p, **params)
                out[(ind, tuple(params.items()), p.start)] = (res.value, res.status)
    found = energy.anomaly_list(scope(), june)
    out["spike"] = [(r.meter_id, r.day, round(r.z, 6)) for r in found["spike"].itertuples()]
    out["leak"] = [(r.meter_id, r.first_day, int(r.nights)) for r in found["leak"].itertuples()]
    out["missing"] = [(r.facility_id, r.day, int(r.readings)) for r in found["missing"].itertuples()]
    out["night"] = [(r.facility_id, r.worst_day, round(r.ratio, 9)) for r in found["night"].itertuples()]
    out["holiday"] = [(r.facility_id, round(r.ratio, 9)) for r in energy.holiday_buildings(scope(), half).itertuples()]
    out["quota"] = [(r.school_id, r.energy_type, r.method, round(r.projected, 6), None if pd.isna(r.lo) else round(r.lo, 6))
                    for r in energy.quota_status(scope(), june).itertuples()]
    out["hours"] = float(energy.building_hours(scope(), "S1-T1", june, "electricity")["value"].sum())
    out["end_use"] = [(r.end_use, round(r.value, 6)) for r in energy.end_use(scope(), june).itertuples()]
    return out


def _same(got, expected):
    if isinstance(expected, float):
        return got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    if isinstance(expected, (tuple, list)):
        return len(got) == len(expected) and all(_same(g, e) for g, e in zip(got, expected))
    return got == expected


@pytest.mark.parametrize("env", ["COCKPIT_TEST_PG_URL", "COCKPIT_TEST_MYSQL_URL"])
def test_the_same_energy_figures_on_a_server_database(tmp_path, env):
    """Run with COCKPIT_TEST_PG_URL=postgresql+psycopg://…/db or COCKPIT_TEST_MYSQL_URL=mysql+pymysql://…/db
    (an empty database the test may fill): every energy indicator and list equals DuckDB's."""
    import os

    from data_access import schema

    url = os.environ.get(env)
    if not url:
        pytest.skip(f"{env} not set")
    frames = _server_frames()
    with use_warehouse(write_warehouse(tmp_path / "server.duckdb", frames), today=D(2026, 7, 1)):
        expected = _server_snapshot()
    assert expected["spike"] and expected["leak"] and expected["missing"] and expected["night"]
    eng = sa.create_engine(url)
    tables = [schema.metadata.tables[t] for t in frames]
    schema.metadata.drop_all(eng, tables=tables)
    schema.metadata.create_all(eng, tables=tables)
    with eng.begin() as conn:
        for table, frame in frames.items():
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            conn.execute(schema.metadata.tables[table].insert(), rows)
    eng.dispose()
    try:
        with use_warehouse(url, today=D(2026, 7, 1)):
            got = _server_snapshot()
        for key, want in expected.items():
            assert _same(got[key], want), (key, got[key], want)
    finally:
        eng = sa.create_engine(url)
        schema.metadata.drop_all(eng, tables=tables)
        eng.dispose()


# --- the page's callbacks, called as functions ------------------------------------------------------------------

@pytest.fixture(scope="module")
def page():
    import app  # noqa: F401  (registers the pages)
    from pages import energy as module

    return module


SECTIONS = ("render_curves", "render_building", "render_breakdown", "render_quota", "render_intensity",
            "render_anomalies")


@pytest.mark.parametrize("params", [{}, {"region": "110000", "etype": "kgce", "lang": "en"},
                                    {"school": "SH-U01", "etype": "water"}, {"campus": "BJ-U01-C2"},
                                    {"facility": "BJ-U01-C1-DOR1", "etype": "heat"},
                                    {"school": "SH-U01", "building": "BJ-U01-C1-DOR1"}])
def test_every_section_renders_at_every_level(page, params):
    from .test_pages import _find_ids

    header = page.render_header(dict(params))
    assert "energy-tiles" in _find_ids(header)
    for name in SECTIONS:
        out = getattr(page, name)(dict(params))
        text = str(out)
        assert "section-failed" not in text and "internal-error" not in text, name
    body, options, chosen, picked = page.render_building(dict(params))
    assert chosen == picked and chosen in {o["value"] for o in options}
    if "building" in params:      # a building outside the scope is not shown
        assert chosen.startswith("SH-U01")


def test_bad_input_shows_one_message(page):
    from .test_pages import _find_ids

    assert "input-error" in _find_ids(page.render_header({"school": "NOPE"}))
    for name in SECTIONS:
        out = getattr(page, name)({"school": "NOPE"})
        assert out is None or out == (None, [], None, None), name


def test_picking_a_building_navigates_to_its_permalink(page):
    from dash import no_update
    from urllib.parse import parse_qs, urlparse

    params = {"school": "SH-U01", "from": "2026-10-01", "to": "2026-10-31", "etype": "water", "ind": "x"}
    link = page.pick_building("SH-U01-C1-DOR2", "SH-U01-C1-DOR1", params)
    assert urlparse(link).path == "/energy"
    assert {k: v[0] for k, v in parse_qs(urlparse(link).query).items()} == {
        "school": "SH-U01", "from": "2026-10-01", "to": "2026-10-31", "etype": "water", "building": "SH-U01-C1-DOR2"}
    assert page.pick_building("SH-U01-C1-DOR1", "SH-U01-C1-DOR1", params) is no_update
