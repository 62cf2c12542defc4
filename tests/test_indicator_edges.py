"""Indicators on hand-built warehouses whose expected values are worked out by hand in the test: the edge cases
INDICATORS.md and the issues name (no-service days, 8.0 °C, SLA exactly 2 h, closed on the due date …)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from data_access import registry
from data_access.config import get_config, override, set_config
from data_access.period import Period

from .helpers import org_frames, scope, use_warehouse, write_warehouse

D1 = dt.date(2026, 3, 2)
D2 = dt.date(2026, 3, 3)
TODAY = dt.date(2026, 3, 20)
PERIOD = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 19))


@pytest.fixture(scope="module")
def dining_wh(tmp_path_factory):
    frames = org_frames(schools=(("S1", "k12", "310000"), ("S2", "university", "310000")))
    frames["fact_meals_served"] = pd.DataFrame([
        {"facility_id": "S1-CAN1", "service_date": D1, "meal": "breakfast", "covers": 50},
        {"facility_id": "S1-CAN1", "service_date": D1, "meal": "lunch", "covers": 100},
        {"facility_id": "S1-CAN1", "service_date": D1, "meal": "dinner", "covers": 0},   # no service
        {"facility_id": "S2-CAN1", "service_date": D1, "meal": "lunch", "covers": 300},
        # D2: no rows at all for S1 -> a no-service day
    ])
    frames["fact_dining_check"] = pd.DataFrame([
        {"facility_id": "S1-CAN1", "check_date": D1, "meal": "breakfast", "check_type": "sample_retention", "items_due": 10, "items_ok": 10},
        # lunch sample_retention missing -> 1 due, 0 ok
        {"facility_id": "S1-CAN1", "check_date": D1, "meal": "dinner", "check_type": "sample_retention", "items_due": 5, "items_ok": 5},
        {"facility_id": "S1-CAN1", "check_date": D2, "meal": "lunch", "check_type": "sample_retention", "items_due": 3, "items_ok": 0},
        {"facility_id": "S1-CAN1", "check_date": D1, "meal": "breakfast", "check_type": "accompany_meal", "items_due": 1, "items_ok": 1},
        {"facility_id": "S1-CAN1", "check_date": D1, "meal": "day", "check_type": "morning_check", "items_due": 20, "items_ok": 19},
        {"facility_id": "S2-CAN1", "check_date": D1, "meal": "lunch", "check_type": "sample_retention", "items_due": 20, "items_ok": 20},
    ])
    ts = pd.Timestamp(D1)
    frames["fact_cold_chain_reading"] = pd.DataFrame([
        {"device_id": "T1", "facility_id": "S1-CAN1", "zone": "chilled", "ts": ts + pd.Timedelta(minutes=0), "temp_c": 8.0},
        {"device_id": "T1", "facility_id": "S1-CAN1", "zone": "chilled", "ts": ts + pd.Timedelta(minutes=10), "temp_c": 8.1},
        {"device_id": "T1", "facility_id": "S1-CAN1", "zone": "chilled", "ts": ts + pd.Timedelta(minutes=20), "temp_c": 0.0},
        {"device_id": "T2", "facility_id": "S1-CAN1", "zone": "frozen", "ts": ts, "temp_c": -12.0},
        {"device_id": "T2", "facility_id": "S1-CAN1", "zone": "frozen", "ts": ts + pd.Timedelta(minutes=10), "temp_c": -11.9},
        {"device_id": "T3", "facility_id": "S1-CAN1", "zone": "hot_holding", "ts": ts, "temp_c": 60.0},
        {"device_id": "T3", "facility_id": "S1-CAN1", "zone": "hot_holding", "ts": ts + pd.Timedelta(minutes=10), "temp_c": 59.9},
    ])
    frames["fact_food_hazard"] = pd.DataFrame([
        {"hazard_id": "H1", "facility_id": "S1-CAN1", "found_on": D1, "source": "self_check", "severity": "low",
         "category": "卫生", "due_on": dt.date(2026, 3, 10), "closed_on": dt.date(2026, 3, 10)},
        {"hazard_id": "H2", "facility_id": "S1-CAN1", "found_on": D1, "source": "inspection", "severity": "medium",
         "category": "设备", "due_on": dt.date(2026, 3, 10), "closed_on": dt.date(2026, 3, 11)},
        {"hazard_id": "H3", "facility_id": "S1-CAN1", "found_on": D1, "source": "iot", "severity": "high",
         "category": "冷链", "due_on": dt.date(2026, 3, 12), "closed_on": None},
        {"hazard_id": "H4", "facility_id": "S1-CAN1", "found_on": D1, "source": "complaint", "severity": "low",
         "category": "服务", "due_on": dt.date(2026, 3, 25), "closed_on": None},
    ])
    frames["fact_staff_certificate"] = pd.DataFrame([
        {"facility_id": "S1-CAN1", "staff_ref": "P1", "valid_until": dt.date(2026, 3, 19)},   # expired
        {"facility_id": "S1-CAN1", "staff_ref": "P2", "valid_until": dt.date(2026, 3, 20)},   # expiring
        {"facility_id": "S1-CAN1", "staff_ref": "P3", "valid_until": dt.date(2026, 4, 19)},   # 30 days out: fine
        {"facility_id": "S2-CAN1", "staff_ref": "P4", "valid_until": dt.date(2027, 1, 1)},
    ])
    url = write_warehouse(tmp_path_factory.mktemp("dining") / "w.duckdb", frames)
    with use_warehouse(url, today=TODAY):
        yield


def value(ind, **params):
    return registry.evaluate(ind, scope(**params), PERIOD)


def test_missing_check_counts_as_due_and_no_service_day_does_not(dining_wh):
    # breakfast 10/10 + lunch missing (1 due, 0 ok); dinner had no covers, D2 had no service: ignored
    assert value("dining.sample_retention", facility="S1-CAN1").value == pytest.approx(100 * 10 / 11)


def test_rollup_is_sum_of_numerators_over_sum_of_denominators(dining_wh):
    # S1: 10/11, S2: 20/20 -> 30/31, not the mean of 90.9 % and 100 %
    res = value("dining.sample_retention")
    assert res.value == pytest.approx(100 * 30 / 31)
    assert res.value != pytest.approx((100 * 10 / 11 + 100) / 2)


def test_accompany_meal_is_due_only_at_k12(dining_wh):
    # S1 (k12): breakfast 1/1, lunch missing -> 1/2; S2 (university) lunch without a row is not due
    assert value("dining.accompany_meal", school="S1").value == pytest.approx(50.0)
    assert value("dining.accompany_meal", school="S2").status == "nodata"
    assert value("dining.accompany_meal").value == pytest.approx(50.0)


def test_per_day_checks_due_once_per_service_day(dining_wh):
    assert value("dining.morning_check", school="S1").value == pytest.approx(95.0)
    # video_online has no row on the service day: 0 of 1
    assert value("dining.video_online", school="S1").value == pytest.approx(0.0)
    assert value("dining.video_online", school="S1").status == "red"


def test_cold_chain_band_edges_are_inclusive(dining_wh):
    # in: 8.0, 0.0, -12.0, 60.0; out: 8.1, -11.9, 59.9
    assert value("dining.cold_chain", school="S1").value == pytest.approx(100 * 4 / 7)


def test_hazard_closed_on_due_date_is_on_time(dining_wh):
    # due in period up to yesterday: H1 (on the due date), H2 (a day late), H3 (open) -> 1/3
    assert value("dining.hazard_closure", school="S1").value == pytest.approx(100 / 3)


def test_overdue_hazards_any_high_is_red(dining_wh):
    res = value("dining.hazards_overdue", school="S1")
    assert res.value == 1 and res.extra["high"] == 1 and res.status == "red"
    assert value("dining.hazards_overdue", school="S2").value == 0


def test_certificates_expired_and_expiring(dining_wh):
    res = value("dining.certificates_expiring", school="S1")
    assert (res.extra["expired"], res.extra["expiring"], res.value, res.status) == (1, 1, 2, "red")
    assert value("dining.certificates_expiring", school="S2").status == "green"


def test_school_without_canteen_has_no_dining_figure(tmp_path):
    frames = org_frames(schools=(("S9", "vocational", "310000"),), canteens_per_school=0,
                        extra_facilities=(("S9-T1", "S9", "teaching", 5000.0),))
    url = write_warehouse(tmp_path / "w.duckdb", frames)
    with use_warehouse(url, today=TODAY):
        for ind in ("dining.sample_retention", "dining.hazards_overdue", "dining.certificates_expiring"):
            res = value(ind, school="S9")
            assert res.value is None and res.status == "nodata", ind


# --- service ------------------------------------------------------------------------------------------------

def _order(i, priority, created, responded=None, completed=None, **kw):
    row = {"order_id": f"O{i}", "school_id": "S1", "facility_id": None, "kind": "repair", "service_line": "repair",
           "priority": priority, "created_at": pd.Timestamp(created), "responded_at": responded and pd.Timestamp(responded),
           "completed_at": completed and pd.Timestamp(completed), "reopened": False, "callback_done": False, "rating": None}
    row.update(kw)
    return row


@pytest.fixture
def service_wh(tmp_path):
    frames = org_frames()
    frames["fact_work_order"] = pd.DataFrame([
        _order(1, "urgent", "2026-03-02 08:00", "2026-03-02 10:00:00", "2026-03-03 08:00"),        # exactly 2 h / 24 h
        _order(2, "urgent", "2026-03-02 08:00", "2026-03-02 10:00:01", "2026-03-03 08:00:01"),     # a second late
        _order(3, "normal", "2026-03-02 08:00"),                                                   # never answered: late
        _order(4, "normal", "2026-03-19 20:00"),                                                   # not yet due
        _order(5, "normal", "2026-03-05 09:00", "2026-03-05 12:00", "2026-03-06 12:00", reopened=True,
               callback_done=True, rating=5),
    ])
    url = write_warehouse(tmp_path / "w.duckdb", frames)
    with use_warehouse(url, today=TODAY):
        yield


def test_sla_edges(service_wh):
    cfg = get_config()
    override(min_group_size=1)
    try:
        # response due: 1, 2, 3, 5 (4 is not yet due at the state date); on time: 1 (exactly 2 h) and 5
        res = value("service.response_on_time", school="S1")
        assert (res.num, res.den) == (2, 4)
        # completion due: 1, 2, 3 (72 h passed), 5; on time: 1 and 5
        assert value("service.completion_on_time", school="S1").value == pytest.approx(50.0)
        # completed repairs 1, 2, 5; reopened 5 -> first-time fix 2/3
        assert value("service.first_time_fix", school="S1").value == pytest.approx(100 * 2 / 3)
        assert value("service.callback_rate", school="S1").value == pytest.approx(100 / 3)
    finally:
        set_config(cfg)


def test_figures_on_fewer_than_ten_orders_are_suppressed(service_wh):
    res = value("service.response_on_time", school="S1")
    assert res.status == "suppressed" and res.value is None and res.n == 4


# --- energy -------------------------------------------------------------------------------------------------

def test_standard_coal_and_co2_conversions(tmp_path):
    frames = org_frames(canteens_per_school=1, extra_facilities=(("S1-T1", "S1", "teaching", 4000.0),))
    frames["dim_meter"] = pd.DataFrame([
        {"meter_id": "E1", "facility_id": "S1-T1", "school_id": "S1", "energy_type": "electricity", "end_use": None, "parent_meter_id": None},
        {"meter_id": "E1a", "facility_id": "S1-T1", "school_id": "S1", "energy_type": "electricity", "end_use": "hvac", "parent_meter_id": "E1"},
        {"meter_id": "G1", "facility_id": "S1-CAN1", "school_id": "S1", "energy_type": "gas", "end_use": None, "parent_meter_id": None},
        {"meter_id": "W1", "facility_id": "S1-T1", "school_id": "S1", "energy_type": "water", "end_use": None, "parent_meter_id": None},
    ])
    agg = []
    for meter, amount in (("E1", 1000.0), ("E1a", 400.0), ("G1", 50.0), ("W1", 30.0)):
        agg.append({"meter_id": meter, "day": D1, "consumption": amount, "readings": 24, "night_consumption": 0.0,
                    "night_readings": 5, "work_consumption": 0.0, "work_readings": 8})
    frames["agg_meter_daily"] = pd.DataFrame(agg)
    url = write_warehouse(tmp_path / "w.duckdb", frames)
    with use_warehouse(url, today=TODAY):
        # only top-level meters: 1000 kWh × 0.1229 + 50 m³ × 1.2143; water is not energy
        assert value("energy.total_kgce", school="S1").value == pytest.approx(1000 * 0.1229 + 50 * 1.2143)
        assert value("energy.co2_t", school="S1").value == pytest.approx((1000 * 0.5366 + 50 * 2.16) / 1000)
        assert value("energy.electricity_kwh", school="S1").value == pytest.approx(1000.0)
        assert value("energy.water_m3", school="S1").value == pytest.approx(30.0)
        # the canteen has no electricity meter: 1 of 2 buildings metered
        assert value("energy.meter_coverage", school="S1").value == pytest.approx(50.0)


# --- maturity -----------------------------------------------------------------------------------------------

def test_floor_rule_and_band_edges():
    from data_access.maturity import framework

    fw = framework()
    dims = {d.id: 80.0 for d in fw.dimensions}
    assert fw.level(60.0, dims)[:2] == (2, 2)            # exactly on the L3 edge -> L3 (index 2)
    assert fw.level(59.999, dims)[:2] == (1, 1)
    low = dict(dims, data=38.0)
    by_score, level, capped = fw.level(65.0, low)
    assert (by_score, level, capped) == (2, 1, "data")    # L3 by score, capped at L2 because data is 38
    assert fw.level(65.0, dict(dims, data=40.0))[1] == 2  # exactly the L2 lower bound satisfies the L3 floor
    assert fw.level(92.0, dict(dims, strategy=74.0))[1] == 3   # L5 needs every dimension ≥ 75 -> L4
