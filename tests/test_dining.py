"""Dining safety (issue 4): every dining indicator and the panel's queries, against values worked out by hand on a
small hand-built warehouse (at facility, school, region and association level, with the named edge cases: a
no-service day, a reading exactly at 8.0 °C, excursions of 29 vs 30 minutes, a hazard closed on its due date) and
against pandas over the raw tables of the session's demo warehouse; then the page callbacks and components."""
from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest
import sqlalchemy as sa

from data_access import dining, registry
from data_access.config import get_config
from data_access.demo import INCIDENTS
from data_access.period import Period

from .conftest import END
from .helpers import org_frames, scope, use_warehouse, write_warehouse
from .test_components import _text
from .test_indicators_demo import facilities_for, in_period

# --- a hand-built warehouse -----------------------------------------------------------------------------------
# S1 (k12, Shanghai) has two canteens, S2 (university, Beijing) one, S3 (vocational, Shanghai) none.
# The period is two ISO weeks, Monday 2 March to Sunday 15 March 2026; state indicators are read on 16 March.

PERIOD = Period(dt.date(2026, 3, 2), dt.date(2026, 3, 15))
TODAY = dt.date(2026, 3, 20)
D = dt.date


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(f"2026-{text}")


def _readings(device, facility, zone, rows):
    return [{"device_id": device, "facility_id": facility, "zone": zone, "ts": _ts(ts), "temp_c": temp}
            for ts, temp in rows]


READINGS = (
    # D1 chilled (0-8 °C), S1-CAN1.
    # 29 minutes: out from 10:00 until the reading at 10:29, which is exactly 8.0 °C (in range): no excursion.
    _readings("D1", "S1-CAN1", "chilled", [("03-03 09:50", 4.0), ("03-03 10:00", 8.5), ("03-03 10:10", 9.0),
                                           ("03-03 10:20", 8.6), ("03-03 10:29", 8.0), ("03-03 10:40", 7.0)])
    # 30 minutes: out from 10:00, back in range at 10:30: an excursion, peak 10.2, 3 readings out.
    + _readings("D1", "S1-CAN1", "chilled", [("03-04 09:50", 5.0), ("03-04 10:00", 8.1), ("03-04 10:10", 9.5),
                                             ("03-04 10:20", 10.2), ("03-04 10:30", 7.9)])
    # D2 frozen (<= -12 °C), S1-CAN1: three excursions in the week of 2 March (40, 30 and 60 min) -> red.
    + _readings("D2", "S1-CAN1", "frozen", [("03-05 00:50", -18.0), ("03-05 01:00", -10.0), ("03-05 01:40", -13.0),
                                            ("03-06 01:00", -11.0), ("03-06 01:30", -12.0),
                                            ("03-07 01:50", -18.0), ("03-07 02:00", -5.0), ("03-07 02:10", -6.0),
                                            ("03-07 02:20", -7.0), ("03-07 02:30", -8.0), ("03-07 02:40", -9.0),
                                            ("03-07 02:50", -10.0), ("03-07 03:00", -15.0)])
    # ... and runs broken by silences over 60 min: none of them is an excursion.
    + _readings("D2", "S1-CAN1", "frozen", [("03-09 01:00", -10.0), ("03-09 03:00", -15.0),
                                            ("03-10 01:00", -9.0), ("03-10 01:20", -9.0), ("03-10 02:40", -9.0),
                                            ("03-10 02:50", -15.0)])
    # D3 hot holding (>= 60 °C), S1-CAN2: reports only during service; 58 °C at the end of lunch and 66 °C at
    # dinner are not a six-hour excursion. 60.0 °C is in range.
    + _readings("D3", "S1-CAN2", "hot_holding", [("03-02 11:00", 65.0), ("03-02 11:10", 58.0),
                                                 ("03-02 17:00", 66.0), ("03-02 17:10", 60.0)])
    # D4 chilled, S2-CAN1: a run starting before the period (not counted in it) and one still going at the end
    # of the data (30 minutes observed: counted, not ended).
    + _readings("D4", "S2-CAN1", "chilled", [("03-01 23:30", 5.0), ("03-01 23:40", 9.0), ("03-01 23:50", 9.0),
                                             ("03-02 00:00", 9.0), ("03-02 00:10", 9.0), ("03-02 00:20", 5.0),
                                             ("03-15 22:50", 5.0), ("03-15 23:00", 10.0), ("03-15 23:10", 10.5),
                                             ("03-15 23:20", 10.0), ("03-15 23:30", 10.0)])
)


def _meal(fid, day, meal, covers):
    return {"facility_id": fid, "service_date": day, "meal": meal, "covers": covers}


def _check(fid, day, meal, check, due, ok):
    return {"facility_id": fid, "check_date": day, "meal": meal, "check_type": check, "items_due": due, "items_ok": ok}


def _hazard(hid, fid, found, severity, due, closed=None, source="self_check"):
    return {"hazard_id": hid, "facility_id": fid, "found_on": found, "source": source, "severity": severity,
            "category": "温度控制", "due_on": due, "closed_on": closed}


def hand_frames() -> dict[str, pd.DataFrame]:
    frames = org_frames(schools=(("S1", "k12", "310000"), ("S2", "university", "110000"),
                                 ("S3", "vocational", "310000")), canteens_per_school=0,
                        extra_facilities=(("S1-CAN1", "S1", "canteen", 800.0), ("S1-CAN2", "S1", "canteen", 600.0),
                                          ("S2-CAN1", "S2", "canteen", 1000.0), ("S3-T1", "S3", "teaching", 5000.0)))
    frames["fact_meals_served"] = pd.DataFrame([
        _meal("S1-CAN1", D(2026, 3, 2), "lunch", 100), _meal("S1-CAN1", D(2026, 3, 3), "lunch", 100),
        _meal("S1-CAN1", D(2026, 3, 4), "lunch", 0),            # a no-service day written as 0 covers
        # 5 March: no row at all for S1-CAN1 -> no service either
        _meal("S1-CAN2", D(2026, 3, 2), "breakfast", 40), _meal("S1-CAN2", D(2026, 3, 2), "lunch", 60),
        _meal("S2-CAN1", D(2026, 3, 2), "lunch", 200),
    ])
    frames["fact_dining_check"] = pd.DataFrame([
        _check("S1-CAN1", D(2026, 3, 2), "lunch", "sample_retention", 10, 10),
        _check("S1-CAN1", D(2026, 3, 3), "lunch", "sample_retention", 10, 8),
        _check("S1-CAN1", D(2026, 3, 4), "lunch", "sample_retention", 5, 0),     # no service: ignored
        _check("S1-CAN1", D(2026, 3, 5), "lunch", "sample_retention", 4, 4),     # no service: ignored
        _check("S1-CAN1", D(2026, 3, 2), "lunch", "accompany_meal", 1, 1),
        _check("S1-CAN1", D(2026, 3, 2), "day", "morning_check", 20, 20),
        # 3 March morning check missing on a service day -> 1 due, 0 ok
        _check("S1-CAN1", D(2026, 3, 4), "day", "morning_check", 20, 20),        # no service: ignored
        _check("S1-CAN2", D(2026, 3, 2), "breakfast", "sample_retention", 6, 6),
        # S1-CAN2 lunch sample retention missing -> 1 due, 0 ok; its morning check too
        _check("S2-CAN1", D(2026, 3, 2), "lunch", "sample_retention", 12, 12),
        _check("S2-CAN1", D(2026, 3, 2), "day", "morning_check", 30, 29),
    ])
    frames["fact_cold_chain_reading"] = pd.DataFrame(READINGS)
    frames["fact_food_hazard"] = pd.DataFrame([
        _hazard("H1", "S1-CAN1", D(2026, 3, 2), "low", D(2026, 3, 9), D(2026, 3, 9)),     # closed on the due date
        _hazard("H2", "S1-CAN1", D(2026, 3, 2), "low", D(2026, 3, 9), D(2026, 3, 10)),    # a day late
        _hazard("H3", "S1-CAN2", D(2026, 3, 5), "high", D(2026, 3, 8), source="iot"),     # open, overdue, high
        _hazard("H4", "S2-CAN1", D(2026, 3, 10), "low", D(2026, 3, 25)),                  # open, not yet due
        _hazard("H5", "S2-CAN1", D(2026, 3, 1), "medium", D(2026, 3, 6), D(2026, 3, 16)),  # closed on the state date
        _hazard("H6", "S1-CAN1", D(2026, 3, 20), "high", D(2026, 3, 23)),                 # found after the period
    ])
    frames["fact_staff_certificate"] = pd.DataFrame([
        {"facility_id": "S1-CAN1", "staff_ref": "R1", "valid_until": D(2026, 3, 15)},    # expired
        {"facility_id": "S1-CAN1", "staff_ref": "R2", "valid_until": D(2026, 3, 16)},    # expires on the state date
        {"facility_id": "S1-CAN2", "staff_ref": "R3", "valid_until": D(2026, 4, 14)},    # expiring (29 days)
        {"facility_id": "S1-CAN2", "staff_ref": "R4", "valid_until": D(2026, 4, 15)},    # 30 days out: fine
        {"facility_id": "S2-CAN1", "staff_ref": "R5", "valid_until": D(2027, 1, 1)},
    ])
    frames["fact_canteen_inspection"] = pd.DataFrame([
        {"facility_id": "S1-CAN1", "inspected_on": D(2025, 12, 1), "result": "fail", "grade": "C"},
        {"facility_id": "S1-CAN1", "inspected_on": D(2026, 3, 10), "result": "pass", "grade": "A"},
        {"facility_id": "S1-CAN2", "inspected_on": D(2026, 2, 1), "result": "basic_pass", "grade": "B"},
        {"facility_id": "S1-CAN2", "inspected_on": D(2026, 3, 16), "result": "fail", "grade": "C"},  # after the period
    ])
    return frames


@pytest.fixture(scope="class")
def wh(tmp_path_factory):
    url = write_warehouse(tmp_path_factory.mktemp("dining-panel") / "w.duckdb", hand_frames())
    with use_warehouse(url, today=TODAY):
        yield


def ev(ind, period=PERIOD, **params):
    return registry.evaluate(ind, scope(**params), period)


@pytest.mark.usefixtures("wh")
class TestHandBuilt:
    """Hand-worked values on the small warehouse above."""

    @pytest.mark.parametrize("level, params, num, den", [
        ("facility", dict(facility="S1-CAN1"), 18, 20),     # 10/10, 10/8; 4 and 5 March had no service
        ("facility", dict(facility="S1-CAN2"), 6, 7),       # breakfast 6/6, lunch missing (1 due, 0 ok)
        ("school", dict(school="S1"), 24, 27),
        ("region", dict(region="310000"), 24, 27),          # S3 has no canteen
        ("association", dict(), 36, 39),                     # + S2 12/12: Σnum ÷ Σden, not a mean of rates
    ])
    def test_sample_retention_at_every_level(self, level, params, num, den):
        res = ev("dining.sample_retention", **params)
        assert (res.num, res.den) == (num, den)
        assert res.value == pytest.approx(100 * num / den)


    def test_per_day_check_and_k12_only_check(self):
        res = ev("dining.morning_check", facility="S1-CAN1")
        assert (res.num, res.den) == (20, 21)
        assert ev("dining.morning_check", school="S1").value == pytest.approx(100 * 20 / 22)
        assert ev("dining.morning_check").value == pytest.approx(100 * 49 / 52)
        # accompanied meal: due per served meal at the k12 school only (S1-CAN1 1/2, S1-CAN2 0/2)
        assert ev("dining.accompany_meal", school="S1").value == pytest.approx(25.0)
        assert ev("dining.accompany_meal", school="S2").status == "nodata"


    def test_k12_only_check_stays_k12_only_when_configured_per_day(self):
        from data_access import cache
        from data_access.config import override, set_config

        cfg = get_config()
        override(dining={**cfg.dining, "per_meal_checks": ["sample_retention", "tableware_disinfection"],
                         "per_day_checks": [*cfg.dining["per_day_checks"], "accompany_meal"]})
        cache.clear()
        try:
            # once per service day, at the k12 school only: S1-CAN1 2 and 3 March, S1-CAN2 2 March -> 3 due; the
            # only accompany_meal row is written for lunch, not for the day, so none is ok. S2 (a university)
            # served on 2 March, but nothing is due there.
            res = ev("dining.accompany_meal", school="S1")
            assert (res.num, res.den) == (0, 3)
            res = ev("dining.accompany_meal", school="S2")
            assert (res.value, res.status) == (None, "nodata")
            assert (ev("dining.accompany_meal").num, ev("dining.accompany_meal").den) == (0, 3)
        finally:
            set_config(cfg)
            cache.clear()


    def test_school_without_canteen_has_no_figure_and_the_panel_knows(self):
        for ind in ("dining.sample_retention", "dining.cold_chain_excursions", "dining.inspection",
                    "dining.cold_chain", "dining.hazards_overdue", "dining.certificates_expiring"):
            res = ev(ind, school="S3")
            assert res.value is None and res.status == "nodata", ind
        assert dining.canteens(scope(school="S3")).empty
        # one level down the counts list every school with a canteen (hazards S1: H3 overdue; S2: H5, closed
        # only on the state date; certificates S1: R1 expired + R2, R3 expiring = 3, S2: R5 valid -> 0) and
        # leave S3 out rather than show it as a green 0
        for ind, expected in (("dining.hazards_overdue", {"S1": 1, "S2": 1}),
                              ("dining.certificates_expiring", {"S1": 3, "S2": 0})):
            rows = registry.breakdown(ind, scope(), PERIOD, "school")
            assert {r.key: r.value for r in rows} == expected, ind
        # a canteen without any hazard is a real 0 (S1-CAN1: H1, H2 closed, H6 found after the period)
        res = ev("dining.hazards_overdue", facility="S1-CAN1")
        assert (res.value, res.status) == (0, "green")


    # --- excursions -----------------------------------------------------------------------------------------------

    def test_excursions_29_vs_30_minutes_gaps_and_period_edges(self):
        runs = dining.excursions(scope(), PERIOD)
        got = [(r.device_id, str(r.start_ts), r.minutes, r.readings, r.peak_c, pd.notna(r.end_ts))
               for r in runs.itertuples()]
        assert got == [
            ("D1", "2026-03-04 10:00:00", 30.0, 3, 10.2, True),     # 30 min: an excursion (29 min on 3 March is not)
            ("D2", "2026-03-05 01:00:00", 40.0, 1, -10.0, True),
            ("D2", "2026-03-06 01:00:00", 30.0, 1, -11.0, True),    # back in range at exactly -12.0
            ("D2", "2026-03-07 02:00:00", 60.0, 6, -5.0, True),
            ("D4", "2026-03-15 23:00:00", 30.0, 4, 10.5, False),    # still out at the end of the data
        ]
        # the run that began on 1 March belongs to that day's period
        before = dining.excursions(scope(), Period(D(2026, 3, 1), D(2026, 3, 1)))
        assert [(r.device_id, r.minutes) for r in before.itertuples()] == [("D4", 40.0)]


    def test_excursion_minimum_comes_from_config(self):
        from data_access.config import override, set_config

        cfg = get_config()
        override(dining={**cfg.dining, "excursion_minutes": 29})
        try:
            from data_access import cache

            cache.clear()
            starts = [str(r.start_ts) for r in dining.excursions(scope(), PERIOD).itertuples()]
            assert "2026-03-03 10:00:00" in starts        # the 29-minute run counts once the minimum is 29
        finally:
            set_config(cfg)
            from data_access import cache

            cache.clear()


    @pytest.mark.parametrize("params, value, worst, status", [
        (dict(facility="S1-CAN1"), 4, 3, "red"),       # D2 had three in one week
        (dict(facility="S1-CAN2"), 0, 0, "green"),     # its hot-holding probe reported, none out for 30 min
        (dict(school="S1"), 4, 3, "red"),
        (dict(school="S2"), 1, 1, "amber"),
        (dict(region="110000"), 1, 1, "amber"),
        (dict(), 5, 3, "red"),
    ])
    def test_excursion_indicator_by_worst_device_week(self, params, value, worst, status):
        res = ev("dining.cold_chain_excursions", **params)
        assert (res.value, res.extra["worst"], res.status) == (value, worst, status)


    def test_excursions_break_down_and_by_day(self):
        by_school = {r.key: r.value
                     for r in registry.breakdown("dining.cold_chain_excursions", scope(), PERIOD, "school")}
        assert by_school == {"S1": 4, "S2": 1}
        by_facility = {r.key: (r.value, r.status) for r in
                       registry.breakdown("dining.cold_chain_excursions", scope(school="S1"), PERIOD, "facility")}
        assert by_facility == {"S1-CAN1": (4, "red"), "S1-CAN2": (0, "green")}
        days = {p.key: p.value for p in registry.series("dining.cold_chain_excursions", scope(), PERIOD) if p.value}
        assert days == {"2026-03-04": 1, "2026-03-05": 1, "2026-03-06": 1, "2026-03-07": 1, "2026-03-15": 1}


    def test_curve_is_downsampled_in_sql_and_scoped(self):
        day = Period(D(2026, 3, 3), D(2026, 3, 3))
        full = dining.device_curve(scope(facility="S1-CAN1"), day, "D1")
        assert list(full["low"]) == [4.0, 8.5, 9.0, 8.6, 8.0, 7.0] and list(full["readings"]) == [1] * 6
        halves = dining.device_curve(scope(facility="S1-CAN1"), day, "D1", 2)     # two 12-hour buckets
        assert [(r.low, r.high, r.readings) for r in halves.itertuples()] == [(4.0, 9.0, 6)]
        assert dining.device_curve(scope(school="S2"), day, "D1").empty            # not in that scope


    def test_device_summary_judges_each_device(self):
        frame = dining.device_summary(scope(school="S1"), PERIOD).set_index("device_id")
        # D3: 65, 58, 66, 60.0 -> 3 of 4 in range
        assert (frame.loc["D3", "readings"], frame.loc["D3", "in_range"], frame.loc["D3", "status"]) == (4, 3, "red")
        # D1: out 8.5 9.0 8.6 8.1 9.5 10.2; in 4.0 8.0 7.0 5.0 7.9 -> 5 of 11
        assert (frame.loc["D1", "readings"], frame.loc["D1", "in_range"]) == (11, 5)


    # --- hazards, certificates, inspections ----------------------------------------------------------------------

    def test_hazard_closed_on_due_date_is_on_time_and_closure_rolls_up(self):
        # due 2-15 March: H1 on its due date (on time), H2 a day late, H3 open, H5 closed after its due date
        assert (ev("dining.hazard_closure", school="S1").num, ev("dining.hazard_closure", school="S1").den) == (1, 3)
        assert ev("dining.hazard_closure", facility="S1-CAN1").value == pytest.approx(50.0)
        assert ev("dining.hazard_closure").value == pytest.approx(25.0)


    def test_open_hazard_list_overdue_first_with_age(self):
        frame = dining.open_hazards(scope(), PERIOD)
        got = [(r.hazard_id, r.overdue, r.age_days, r.overdue_days) for r in frame.itertuples()]
        # H5 was closed on the state date itself: still open when the state is read (as the overdue count says)
        assert got == [("H3", True, 11, 8), ("H5", True, 15, 10), ("H4", False, 6, 0)]
        assert dining.open_hazard_count(scope(), PERIOD) == 3
        assert ev("dining.hazards_overdue").value == 2 and ev("dining.hazards_overdue").status == "red"
        assert list(dining.open_hazards(scope(school="S2"), PERIOD)["hazard_id"]) == ["H5", "H4"]
        assert ev("dining.hazards_overdue", school="S2").status == "amber"


    def test_hazard_flow_found_and_closed_per_day(self):
        frame = dining.hazard_flow(scope(), PERIOD)
        got = {r.d.date().isoformat(): (r.found, r.closed) for r in frame.itertuples()}
        assert got == {"2026-03-02": (2, 0), "2026-03-05": (1, 0), "2026-03-09": (0, 1), "2026-03-10": (1, 1)}


    def test_certificates_expired_and_expiring_by_ref(self):
        frame = dining.certificate_list(scope(), PERIOD)
        assert [(r.staff_ref, r.expired, r.days_left) for r in frame.itertuples()] == [
            ("R1", True, -1), ("R2", False, 0), ("R3", False, 29)]
        res = ev("dining.certificates_expiring", school="S1")
        assert (res.extra["expired"], res.extra["expiring"], res.status) == (1, 2, "red")
        assert set(frame.columns) == {"staff_ref", "facility_id", "valid_until", "expired", "days_left"}   # no names


    def test_certificate_warning_days_come_from_config_to_the_tile(self):
        from components.tiles import kpi_tile
        from data_access import cache
        from data_access.config import override, set_config

        cfg = get_config()
        override(dining={**cfg.dining, "certificate_warning_days": 60})
        cache.clear()
        try:
            # state date 16 March + 60 days = 15 May: R2 (16 March), R3 (14 April) and R4 (15 April) expiring,
            # R1 expired
            res = ev("dining.certificates_expiring", school="S1")
            assert (res.extra["expired"], res.extra["expiring"], res.extra["warning_days"]) == (1, 3, 60)
            ind = registry.get("dining.certificates_expiring")
            assert "60天内到期 3" in _text(kpi_tile(ind, res, None, {}, "zh"))
            assert "expiring in 60 d 3" in _text(kpi_tile(ind, res, None, {}, "en"))
            assert "30" not in _text(kpi_tile(ind, res, None, {}, "zh"))
        finally:
            set_config(cfg)
            cache.clear()


    @pytest.mark.parametrize("params, value, status", [
        (dict(facility="S1-CAN1"), 100.0, "green"),     # latest 10 March pass (the December fail is older)
        (dict(facility="S1-CAN2"), 0.0, "amber"),       # basic pass; the 16 March fail is after the period
        (dict(school="S1"), 50.0, "amber"),
        (dict(school="S2"), None, "nodata"),            # never inspected
        (dict(), 50.0, "amber"),
    ])
    def test_latest_inspection(self, params, value, status):
        res = ev("dining.inspection", **params)
        assert (res.value, res.status) == (value, status)


    def test_latest_inspection_moves_with_the_period(self):
        later = Period(D(2026, 3, 3), D(2026, 3, 16))
        assert ev("dining.inspection", later, facility="S1-CAN2").status == "red"
        frame = dining.inspection_list(scope(), PERIOD).set_index("facility_id")
        assert frame.loc["S1-CAN1", "result"] == "pass" and frame.loc["S1-CAN1", "grade"] == "A"
        assert frame.loc["S1-CAN2", "result"] == "basic_pass"
        assert pd.isna(frame.loc["S2-CAN1", "result"])


    # --- the checklist and the heatmap -----------------------------------------------------------------------------

    def test_checklist_lists_each_check_due_and_skips_no_service_days(self):
        frame = dining.checklist(scope(facility="S1-CAN1"), PERIOD)
        days = sorted({d.date() for d in pd.to_datetime(frame["d"])})
        assert days == [D(2026, 3, 2), D(2026, 3, 3)]                  # 4 and 5 March had no service
        assert len(frame) == 2 * (3 + 5)                                 # 3 per-meal checks (k12) + 5 per-day checks
        cell = {(pd.Timestamp(r.d).date().isoformat(), r.meal, r.check_type): (r.items_due, r.items_ok)
                for r in frame.itertuples()}
        assert cell[("2026-03-03", "lunch", "sample_retention")] == (10, 8)
        assert all(pd.isna(v) for v in cell[("2026-03-03", "day", "morning_check")])        # missing
        assert cell[("2026-03-02", "lunch", "accompany_meal")] == (1, 1)


    def test_heatmap_rows_and_unlisted_school(self):
        level, rows = dining.heatmap(scope(), PERIOD)
        assert level == "school" and [k for k, _ in rows] == ["S2", "S1"]     # as the tree: by region, then id
        cells = dict(rows)
        assert cells["S1"]["dining.sample_retention"].value == pytest.approx(100 * 24 / 27)
        assert "dining.accompany_meal" not in cells["S2"]
        assert dining.unlisted(scope(), level, [k for k, _ in rows]) == ["学校S3"]
        level, rows = dining.heatmap(scope(school="S1"), PERIOD)
        assert level == "facility" and [k for k, _ in rows] == ["S1-CAN1", "S1-CAN2"]
        assert dining.heatmap(scope(facility="S1-CAN1"), PERIOD) == (None, [])




    @pytest.mark.parametrize("env", ["COCKPIT_TEST_PG_URL", "COCKPIT_TEST_MYSQL_URL"])
    def test_the_same_dining_figures_on_a_server_database(self, env):
        """Run with COCKPIT_TEST_PG_URL=postgresql+psycopg://…/db or COCKPIT_TEST_MYSQL_URL=mysql+pymysql://…/db
        (an empty database the test may fill; utf8mb4 on MariaDB): the hand-built warehouse gives the same
        figures and lists there as on DuckDB."""
        url = os.environ.get(env)
        if not url:
            pytest.skip(f"{env} not set")
        from data_access import schema

        def snapshot():
            out = {}
            for ind in [i.id for i in registry.all_indicators() if i.domain == "dining"]:
                for params in (dict(), dict(school="S1"), dict(facility="S1-CAN1"), dict(school="S3")):
                    res = ev(ind, **params)
                    out[(ind, tuple(params.items()))] = (res.value, res.status)
            s = scope()
            out["excursions"] = [(r.device_id, str(r.start_ts), r.minutes, r.readings, r.peak_c)
                                 for r in dining.excursions(s, PERIOD).itertuples()]
            out["hazards"] = list(dining.open_hazards(s, PERIOD).hazard_id)
            out["certs"] = list(dining.certificate_list(s, PERIOD).staff_ref)
            out["checklist"] = len(dining.checklist(scope(facility="S1-CAN1"), PERIOD))
            curve = dining.device_curve(scope(), Period(D(2026, 3, 3), D(2026, 3, 3)), "D1", 2)
            out["curve"] = [tuple(r) for r in curve[["low", "high", "readings"]].itertuples(index=False)]
            return out

        expected = snapshot()
        frames = hand_frames()
        eng = sa.create_engine(url)
        tables = [schema.metadata.tables[t] for t in frames] + [schema.meta_load]
        schema.metadata.drop_all(eng, tables=tables)
        schema.metadata.create_all(eng, tables=tables)
        with eng.begin() as conn:
            for table, frame in frames.items():
                rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
                conn.execute(schema.metadata.tables[table].insert(), rows)
        eng.dispose()
        try:
            with use_warehouse(url, today=TODAY):
                got = snapshot()
            for key, value in expected.items():
                if isinstance(value, tuple) and len(value) == 2 and not isinstance(value[0], tuple):
                    assert got[key][1] == value[1], key
                    assert (got[key][0] is None and value[0] is None) or got[key][0] == pytest.approx(value[0]), key
                else:
                    assert got[key] == value, key
        finally:
            eng = sa.create_engine(url)
            schema.metadata.drop_all(eng, tables=tables)
            eng.dispose()


# --- the demo warehouse: against pandas over the raw tables ----------------------------------------------------

DEMO = Period(END - dt.timedelta(days=29), END)
DEMO_LEVELS = [dict(), dict(region="310000"), dict(school="SH-U01"), dict(facility="SH-U01-C1-CAN1")]


def expected_excursions(raw, facilities, period=DEMO) -> list[tuple]:
    """Runs of out-of-range readings per device, found by walking the readings in Python (not SQL)."""
    cfg = get_config().dining
    bands, min_s, gap = cfg["cold_chain"], cfg["excursion_minutes"] * 60, cfg["excursion_max_gap_minutes"] * 60
    r = raw("fact_cold_chain_reading")
    lo = pd.Timestamp(period.start) - pd.Timedelta(days=1)
    hi = pd.Timestamp(period.end_exclusive) + pd.Timedelta(days=1)
    r = r[r.facility_id.isin(facilities) & (r.ts >= lo) & (r.ts < hi)].sort_values(["device_id", "ts"])

    def out(zone, temp):
        b = bands[zone]
        return (b["min"] is not None and temp < b["min"]) or (b["max"] is not None and temp > b["max"])

    found = []
    for device, g in r.groupby("device_id"):
        ts, temps, zones = list(g.ts), list(g.temp_c), list(g.zone)
        flags = [out(z, v) for z, v in zip(zones, temps)]
        i = 0
        while i < len(ts):
            if not flags[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(ts) and flags[j + 1] and (ts[j + 1] - ts[j]).total_seconds() <= gap:
                j += 1
            back = j + 1 < len(ts) and not flags[j + 1] and (ts[j + 1] - ts[j]).total_seconds() <= gap
            end = ts[j + 1] if back else ts[j]
            seconds = (end - ts[i]).total_seconds()
            if seconds >= min_s and pd.Timestamp(period.start) <= ts[i] < pd.Timestamp(period.end_exclusive):
                found.append((device, ts[i], seconds / 60))
            i = j + 1
    return sorted(found)


@pytest.mark.parametrize("params", DEMO_LEVELS)
def test_demo_excursions_match_an_independent_walk(raw, params):
    expected = expected_excursions(raw, facilities_for(raw, params))
    runs = dining.excursions(scope(**params), DEMO)
    assert sorted((r.device_id, r.start_ts, r.minutes) for r in runs.itertuples()) == expected
    assert registry.evaluate("dining.cold_chain_excursions", scope(**params), DEMO).value == len(expected)


@pytest.mark.parametrize("params", DEMO_LEVELS)
def test_demo_every_other_dining_indicator(raw, params):
    """The eight checks, closure, devices reporting and covers, by pandas over the raw rows."""
    from .test_indicators_demo import expected_checks

    fac = facilities_for(raw, params)
    s = scope(**params)
    checks = expected_checks(raw, fac)
    for check in dining.CHECKS:
        res = registry.evaluate(f"dining.{check}", s, DEMO)
        if check in checks.index:
            ok, due = checks.loc[check]
            assert (res.num, res.den) == (ok, due), check
        else:
            assert res.value is None, check
    h = raw("fact_food_hazard")
    h = h[h.facility_id.isin(fac)]
    due_on, closed_on = pd.to_datetime(h.due_on), pd.to_datetime(h.closed_on)
    last = pd.Timestamp(min(DEMO.end, get_config().today() - dt.timedelta(days=1)))
    due = h[(due_on >= pd.Timestamp(DEMO.start)) & (due_on <= last)]
    on_time = due[closed_on[due.index].notna() & (closed_on[due.index] <= due_on[due.index])]
    res = registry.evaluate("dining.hazard_closure", s, DEMO)
    assert (res.num, res.den) == (len(on_time), len(due))
    m = raw("fact_meals_served")
    m = m[m.facility_id.isin(fac) & in_period(m.service_date, DEMO)]
    assert registry.evaluate("dining.covers", s, DEMO).value == m.covers.sum()
    r = raw("fact_cold_chain_reading")
    r = r[r.facility_id.isin(fac) & in_period(r.ts, DEMO) & r.zone.isin(["chilled", "frozen"])]
    last_seen = r.groupby("device_id").ts.max()
    res = registry.evaluate("dining.cold_chain_online", s, DEMO)
    recent = pd.Timestamp(DEMO.end_exclusive - dt.timedelta(days=3))
    assert (res.num, res.den) == ((last_seen >= recent).sum(), len(last_seen))


def test_demo_planted_excursions_and_not_the_blip():
    runs = dining.excursions(scope(school="SH-U01"), DEMO)
    got = {(r.device_id, r.minutes) for r in runs.itertuples()}
    chilled, frozen = INCIDENTS["cold_chain_excursion"], INCIDENTS["cold_chain_frozen_excursion"]
    # 6 readings 14:00-14:50, back in range at 15:00 -> 60 minutes; 13 readings 02:00-04:00 -> 130 minutes
    assert got == {(chilled["device_id"], 60.0), (frozen["device_id"], 130.0)}
    blip = INCIDENTS["cold_chain_short_blip"]
    assert all(r.start_ts.date() != END - dt.timedelta(days=blip["days_before_end"]) for r in runs.itertuples())


def test_demo_repeated_excursions_make_one_device_week_red():
    inc = INCIDENTS["cold_chain_repeated_excursions"]
    canteen = inc["device_id"].rsplit("-", 1)[0]
    runs = dining.excursions(scope(facility=canteen), DEMO)
    day = END - dt.timedelta(days=inc["days_before_end"])
    # 4 readings out from 06:00, 12:00 and 18:00, each back in range 40 minutes after its start
    got = [(r.device_id, str(r.start_ts), r.minutes) for r in runs.itertuples()]
    assert got == [(inc["device_id"], f"{day} {at}:00", 40.0) for at in inc["starts"]]
    res = registry.evaluate("dining.cold_chain_excursions", scope(facility=canteen), DEMO)
    assert (res.value, res.extra["worst"], res.status) == (3, 3, "red")


@pytest.mark.parametrize("params", DEMO_LEVELS)
def test_demo_latest_inspection(raw, params):
    at = pd.Timestamp(DEMO.end + dt.timedelta(days=1))
    i = raw("fact_canteen_inspection")
    i = i[i.facility_id.isin(facilities_for(raw, params)) & (pd.to_datetime(i.inspected_on) < at)]
    latest = i.sort_values("inspected_on").groupby("facility_id").tail(1)
    res = registry.evaluate("dining.inspection", scope(**params), DEMO)
    assert res.value == pytest.approx(100 * (latest.result == "pass").mean())
    worst = "red" if (latest.result == "fail").any() else "amber" if (latest.result == "basic_pass").any() else "green"
    assert res.status == worst
    listed = dining.inspection_list(scope(**params), DEMO).dropna(subset=["result"])
    assert dict(zip(listed.facility_id, listed.result)) == dict(zip(latest.facility_id, latest.result))


@pytest.mark.parametrize("params", DEMO_LEVELS)
def test_demo_open_hazards_and_certificates(raw, params):
    at = pd.Timestamp(DEMO.end + dt.timedelta(days=1))
    fac = facilities_for(raw, params)
    h = raw("fact_food_hazard")
    h = h[h.facility_id.isin(fac)]
    open_ = h[(pd.to_datetime(h.found_on) < at) & (h.closed_on.isna() | (pd.to_datetime(h.closed_on) >= at))]
    frame = dining.open_hazards(scope(**params), DEMO)
    assert set(frame.hazard_id) == set(open_.hazard_id)
    assert dining.open_hazard_count(scope(**params), DEMO) == len(open_)
    overdue = frame[frame.overdue]
    assert list(frame.overdue) == sorted(frame.overdue, reverse=True)        # overdue first
    assert len(overdue) == registry.evaluate("dining.hazards_overdue", scope(**params), DEMO).value
    c = raw("fact_staff_certificate")
    c = c[c.facility_id.isin(fac) & (pd.to_datetime(c.valid_until) < at + pd.Timedelta(days=30))]
    certs = dining.certificate_list(scope(**params), DEMO)
    assert set(certs.staff_ref) == set(c.staff_ref)
    assert set(certs[certs.expired].staff_ref) == set(c[pd.to_datetime(c.valid_until) < at].staff_ref)


def test_demo_planted_hazard_and_certificates_are_listed():
    frame = dining.open_hazards(scope(), DEMO)
    first = frame.iloc[0]
    assert first.hazard_id == INCIDENTS["hazard_overdue_high"]["hazard_id"]
    assert first.severity == "high" and first.overdue
    certs = dining.certificate_list(scope(school="SH-K01"), DEMO)
    assert set(certs[certs.expired].staff_ref) == set(INCIDENTS["certificates_expired"]["staff_refs"])


@pytest.mark.parametrize("params", [dict(), dict(school="SH-U01")])
def test_demo_heatmap_cells_are_sums_per_row(raw, params):
    from .test_indicators_demo import expected_checks

    level, rows = dining.heatmap(scope(**params), DEMO)
    assert level == ("school" if not params else "facility")
    for key, cells in rows:
        expected = expected_checks(raw, facilities_for(raw, {level: key}))
        for check in ("sample_retention", "morning_check", "video_online"):
            ok, due = expected.loc[check]
            assert cells[f"dining.{check}"].value == pytest.approx(100 * ok / due), (key, check)


def test_demo_checklist_shows_the_missed_retention(raw):
    fid = INCIDENTS["sample_retention_missed"]["facility_id"]
    frame = dining.checklist(scope(facility=fid), DEMO)
    sr = frame[frame.check_type == "sample_retention"]
    assert sr.items_due.isna().sum() == INCIDENTS["sample_retention_missed"]["missing_rows"]
    meals = raw("fact_meals_served")
    meals = meals[(meals.facility_id == fid) & (meals.covers > 0) & in_period(meals.service_date, DEMO)]
    assert len(sr) == len(meals)       # one retention check due per served meal, none on a no-service day


# --- portability: the window-function query compiles for PostgreSQL and MariaDB ---------------------------------

@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_excursion_sql_compiles_for_other_engines(monkeypatch, dialect):
    from sqlalchemy.dialects import mysql, postgresql

    seen = []
    monkeypatch.setattr(dining, "read_df", lambda stmt, params=None: seen.append(stmt) or pd.DataFrame(
        columns=["device_id", "facility_id", "zone", "start_ts", "end_ts", "last_ts", "readings", "minutes", "min_c",
                 "max_c"]))
    dining.excursions.uncached(scope(), DEMO)
    sql = str(seen[0].compile(dialect=(postgresql if dialect == "postgresql" else mysql).dialect()))
    assert "OVER (PARTITION BY" in sql and "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW" in sql
    assert ("EXTRACT(EPOCH FROM" if dialect == "postgresql" else "TIMESTAMPDIFF(SECOND") in sql
    assert "epoch(" not in sql


# --- the page, called as functions -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page():
    import app  # noqa: F401  (registers the pages)
    from pages import dining as module

    return module


def _ids(component, found=None):
    from .test_pages import _find_ids

    return _find_ids(component, found)


def test_page_at_association_school_and_canteen(page):
    q = {"from": DEMO.start.isoformat(), "to": DEMO.end.isoformat()}
    content = page.render(q)
    found = _ids(content)
    assert {"dining-checks", "dining-safety", "dining-heatmap", "dining-cold", "dining-hazards", "dining-certs",
            "dining-inspection", "dining-covers", "tile-dining-cold_chain_excursions",
            "tile-dining-inspection"} <= found
    text = _text(content)
    assert INCIDENTS["hazard_overdue_high"]["hazard_id"] in text
    assert all(ref in text for ref in INCIDENTS["certificates_expired"]["staff_refs"])
    content = page.render({**q, "facility": INCIDENTS["sample_retention_missed"]["facility_id"]})
    assert "dining-checklist" in _ids(content) and "dining-heatmap" not in _ids(content)
    assert "缺失" in _text(content)


def test_page_empty_scope_and_bad_input(page):
    content = page.render({"school": "SH-V02"})
    assert "dining-empty" in _ids(content) and "没有食堂" in _text(content) and "0%" not in _text(content)
    content = page.render({"facility": "SH-U01-C2-SPO1", "lang": "en"})
    assert "not a canteen" in _text(content)
    assert "input-error" in _ids(page.render({"to": "2026-13-01"}))


def test_heatmap_click_navigates_to_the_row(page):
    link = "/dining?from=2026-10-17&lang=en&school=SH-U01&to=2026-11-15"
    assert page.drill([{"points": [{"customdata": link, "x": "Samples", "y": "Hulan University"}]}]) == link
    assert page.drill([None]) is dash_no_update()
    assert page.drill([{"points": [{"customdata": "https://elsewhere.example/"}]}]) is dash_no_update()


def dash_no_update():
    from dash import no_update

    return no_update


def test_heatmap_figure_colours_by_each_checks_status():
    from components.dining import heatmap_figure
    from components.theme import STATUS_COLORS
    from data_access.registry import Result

    rows = [{"key": "A", "name": "A", "href": "/dining?school=A", "cells": {
        "dining.pesticide_test": Result("dining.pesticide_test", 99.0, "green"),
        "dining.sample_retention": Result("dining.sample_retention", 99.0, "amber")}}]
    fig = heatmap_figure(rows, [("dining.sample_retention", "留样"), ("dining.pesticide_test", "农残"),
                                ("dining.video_online", "明厨亮灶")], "zh")
    trace = fig.data[0]
    assert list(trace.z[0]) == [1, 0, 3]
    assert list(trace.text[0]) == ["▲ 99.0%", "● 99.0%", "—"]
    assert trace.customdata[0][0] == "/dining?school=A"
    assert STATUS_COLORS["amber"] in [c for _, c in trace.colorscale]


def test_temperature_curve_breaks_at_silences():
    from components.dining import temperature_figure

    t0 = dt.datetime(2026, 3, 2, 11, 0)
    ts = [t0, t0 + dt.timedelta(minutes=10), t0 + dt.timedelta(minutes=20), t0 + dt.timedelta(hours=6)]
    fig = temperature_figure(ts, [65, 58, 61, 66], [65, 58, 61, 66], (60.0, None), [], "zh")
    assert list(fig.data[0].y) == [65, 58, 61, None, 66]
    assert len(fig.layout.shapes) == 2      # the band and its lower edge


def test_tiles_hazard_and_certificate_detail_lines():
    from components.tiles import kpi_tile
    from data_access.registry import Result

    hazards = registry.get("dining.hazards_overdue")
    # overdue hazards none of them high: no red "high severity" line (the count would be 0)
    text = _text(kpi_tile(hazards, Result(hazards.id, 2, "amber", extra={"high": 0}), None, {}, "zh"))
    assert "高风险" not in text and "告警" not in text
    text = _text(kpi_tile(hazards, Result(hazards.id, 2, "red", extra={"high": 1}), None, {}, "zh"))
    assert "其中高风险 1 个" in text
    assert "high severity: 1" in _text(kpi_tile(hazards, Result(hazards.id, 2, "red", extra={"high": 1}),
                                                 None, {}, "en"))
    certs = registry.get("dining.certificates_expiring")
    res = Result(certs.id, 3, "red", extra={"expired": 1, "expiring": 2, "warning_days": 45})
    assert "已过期 1 · 45天内到期 2" in _text(kpi_tile(certs, res, None, {}, "zh"))
    # a window passed in explicitly wins over the result's
    assert "expiring in 14 d 2" in _text(kpi_tile(certs, res, None, {}, "en", warning_days=14))
    # without any window known the line still gives the counts, without inventing a number of days
    bare = Result(certs.id, 3, "red", extra={"expired": 1, "expiring": 2})
    assert "即将到期 2" in _text(kpi_tile(certs, bare, None, {}, "zh"))
