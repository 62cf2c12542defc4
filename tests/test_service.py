"""Service satisfaction and work orders (issue 6): the registry's service indicators and the panel's queries
against values computed independently — pandas over the raw demo tables (the ``raw`` fixture) and a hand-built
warehouse whose values are worked out by hand below — including the SLA edge cases (exactly at the SLA, missing
responded_at, reopened orders), percentiles, complaints per 1000 people and the n < 10 suppression everywhere
(tiles, tables, matrix, API). Also: the percentile SQL on SQLite and compiled for PostgreSQL and MariaDB."""
from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from data_access import registry, service
from data_access.config import get_config, override, set_config
from data_access.period import Period

from .conftest import END, TODAY
from .helpers import logged_in, org_frames, scope, use_warehouse, write_warehouse
from .test_components import _text

PERIOD = Period(END - dt.timedelta(days=29), END)
AT = pd.Timestamp(TODAY)                      # the state date of PERIOD: open orders are read at its start
SLA = {"urgent": (2, 24), "normal": (24, 72)}  # config service.sla, hours (response, completion)
MIN_N = 10


# --- independent computations over the raw demo tables ------------------------------------------------------

def _schools(raw, params):
    s = raw("dim_school")
    if "region" in params:
        s = s[s.region_code == params["region"]]
    if "school" in params:
        s = s[s.school_id == params["school"]]
    return set(s.school_id)


def _scoped_rows(raw, table, params, date_col, period=PERIOD):
    t = raw(table)
    t = t[t.school_id.isin(_schools(raw, params))]
    if "facility" in params:
        t = t[t.facility_id == params["facility"]]
    if "campus" in params:
        fac = raw("dim_facility")
        t = t[t.facility_id.isin(fac.loc[fac.campus_id == params["campus"], "facility_id"])]
    d = pd.to_datetime(t[date_col]).dt.date
    return t[(d >= period.start) & (d <= period.end)]


def responses(raw, params, period=PERIOD):
    return _scoped_rows(raw, "fact_survey_response", params, "submitted_on", period)


def orders(raw, params, period=PERIOD):
    return _scoped_rows(raw, "fact_work_order", params, "created_at", period)


def csi(frame):
    return ((frame.score - 1) * 25).mean()


def nps(frame):
    n = frame.nps.dropna()
    return 100 * ((n >= 9).mean() - (n <= 6).mean()) if len(n) else None


def hours(frame, col):
    at = frame.responded_at.fillna(frame.completed_at) if col == "responded_at" else frame[col]  # README: answered
    return ((at - frame.created_at).dt.total_seconds() / 3600.0).dropna()                      # at completion


def check(result, expected, n, withheld_ok=False):
    """A Result equals the expected value, or is suppressed (no value) when it rests on fewer than 10. With
    ``withheld_ok`` (figures shown beside their total) it may also be withheld by complementary suppression —
    whether that was needed and enough is checked by test_no_withheld_figure_can_be_worked_out."""
    assert result.n == n
    if n < MIN_N:
        assert result.status == "suppressed" and result.value is None
    elif withheld_ok and result.extra.get("complementary"):
        assert result.status == "suppressed" and result.value is None
    else:
        assert result.value == pytest.approx(expected)


LEVELS = [dict(), dict(region="310000"), dict(school="SH-V01"), dict(campus="BJ-U01-C1"),
          dict(facility="SH-U01-C1-CAN1")]


@pytest.mark.parametrize("params", LEVELS)
def test_satisfaction_by_service_line_and_respondent_type(raw, params):
    r = responses(raw, params)
    s = scope(**params)
    for by, col in (("service_line", "service_line"), ("respondent_type", "respondent_type")):
        rows = {row.key: row for row in service.satisfaction_rows(s, PERIOD, by)}
        assert set(rows) == set(r[col])
        for key, part in r.groupby(col):
            row = rows[key]
            check(row.results["service.csi"], csi(part), len(part), withheld_ok=True)
            check(row.results["service.satisfied_rate"], 100 * (part.score >= 4).mean(), len(part), withheld_ok=True)
            n_nps = part.nps.notna().sum()
            if n_nps:
                check(row.results["service.nps"], nps(part), n_nps, withheld_ok=True)


@pytest.mark.parametrize("params", [dict(), dict(region="310000"), dict(school="SH-U01")])
def test_matrix_cells_are_computed_over_their_own_responses(raw, params):
    r = responses(raw, params)
    s = scope(**params)
    mat = service.matrix("service.csi", s, PERIOD)
    if s.level == "school":
        assert mat.level == "facility"
        r, child = r[r.facility_id.notna()], "facility_id"
        assert mat.unattributed == len(responses(raw, params)) - len(r)
    else:
        assert mat.level == "school"
        child = "school_id"
    expected = r.groupby([child, "service_line"])
    cells = {(k, line): res for k, row, _ in mat.rows for line, res in row.items()}
    assert set(cells) == set(expected.groups)
    for (k, line), part in expected:
        check(cells[(k, line)], csi(part), len(part), withheld_ok=True)
    totals = {k: total for k, _, total in mat.rows}
    for k, part in r.groupby(child):
        check(totals[k], csi(part), len(part), withheld_ok=True)
    for line, part in responses(raw, params).groupby("service_line"):
        check(mat.totals[line], csi(part), len(part), withheld_ok=True)
    # worst first
    values = [total.value for _, _, total in mat.rows if total.value is not None]
    assert values == sorted(values)


def test_csi_roll_up_is_weighted_by_responses_not_a_mean_of_schools(raw):
    r = responses(raw, {})
    res = registry.evaluate("service.csi", scope(), PERIOD)
    assert res.value == pytest.approx(csi(r)) and res.n == len(r)
    mean_of_schools = r.groupby("school_id").apply(csi, include_groups=False).mean()
    assert abs(res.value - mean_of_schools) > 0.1


def test_planted_small_venue_cell_is_suppressed(raw):
    rows = {row.key: row for row in service.satisfaction_rows(scope(school="BJ-U01"), PERIOD, "service_line")}
    venue = rows["venue"]
    assert venue.responses == 6
    for res in venue.results.values():
        assert res.status == "suppressed" and res.value is None
    assert venue.change is None
    mat = service.matrix("service.csi", scope(), PERIOD)
    cell = dict((k, row) for k, row, _ in mat.rows)["BJ-U01"]["venue"]
    assert cell.status == "suppressed" and cell.n == 6


def test_biggest_movers_against_pandas(raw):
    now, before = responses(raw, {}), responses(raw, {}, PERIOD.previous())
    expected = {}
    for line, part in now.groupby("service_line"):
        prev = before[before.service_line == line]
        if len(part) >= MIN_N and len(prev) >= MIN_N:
            expected[line] = csi(part) - csi(prev)
    movers = service.biggest_movers(service.satisfaction_rows(scope(), PERIOD, "service_line"), limit=3)
    ranked = sorted(expected, key=lambda k: -abs(expected[k]))[:3]
    assert [m.key for m in movers] == ranked
    for m in movers:
        assert m.change == pytest.approx(expected[m.key])


def test_weekly_trend_of_one_service_line(raw):
    r = responses(raw, dict(school="SH-U01"))
    r = r[r.service_line == "dining"].copy()
    day = pd.to_datetime(r.submitted_on)
    r["week"] = (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.date.map(lambda d: d.isoformat())
    freq, points = service.satisfaction_trend(scope(school="SH-U01"), PERIOD, "dining")
    assert freq == "W"
    got = {p.key: p for p in points["service.csi"]}
    assert set(got) == set(r.week)
    for week, part in r.groupby("week"):
        check(got[week], csi(part), len(part), withheld_ok=True)
    # all lines: the registry's own series
    _, overall = service.satisfaction_trend(scope(school="SH-U01"), PERIOD)
    assert [p.key for p in overall["service.csi"]] == [p.key for p in registry.series("service.csi", scope(school="SH-U01"), PERIOD, "W")]


# --- work orders on the demo ----------------------------------------------------------------------------------

def _sla_flags(o, at=AT):
    limit_r = o.priority.map(lambda p: SLA[p][0] * 3600.0)
    limit_c = o.priority.map(lambda p: SLA[p][1] * 3600.0)
    age = (at - o.created_at).dt.total_seconds()
    answered = o.responded_at.fillna(o.completed_at)
    waited_r = (answered - o.created_at).dt.total_seconds()
    waited_c = (o.completed_at - o.created_at).dt.total_seconds()
    return pd.DataFrame({
        "resp_due": answered.notna() | (age >= limit_r),
        "resp_ok": answered.notna() & (waited_r <= limit_r),
        "comp_due": o.completed_at.notna() | (age >= limit_c),
        "comp_ok": o.completed_at.notna() & (waited_c <= limit_c),
    }, index=o.index)


@pytest.mark.parametrize("params", LEVELS)
def test_response_and_completion_percentiles(raw, params):
    o = orders(raw, params)
    s = scope(**params)
    for metric, col in (("response", "responded_at"), ("completion", "completed_at")):
        h = hours(o, col)
        for q in (50, 90):
            res = registry.evaluate(f"service.{metric}_p{q}", s, PERIOD)
            check(res, h.quantile(q / 100), len(h))


@pytest.mark.parametrize("by, col", [("priority", "priority"), ("service_line", "service_line"), ("school", "school_id")])
def test_percentiles_and_sla_rates_per_group(raw, by, col):
    o = orders(raw, {})
    flags = _sla_flags(o)
    results = service.breakdown_map(service.ORDER_TABLE, scope(), PERIOD, by)
    assert set(results) == set(o[col])
    for key, part in o.groupby(col):
        got = results[key]
        f = flags.loc[part.index]
        check(got["service.response_on_time"], 100 * f.resp_ok.sum() / f.resp_due.sum(), f.resp_due.sum(), True)
        check(got["service.completion_on_time"], 100 * f.comp_ok.sum() / f.comp_due.sum(), f.comp_due.sum(), True)
        for metric, c in (("response", "responded_at"), ("completion", "completed_at")):
            h = hours(part, c)
            for q in (50, 90):
                check(got[f"service.{metric}_p{q}"], h.quantile(q / 100), len(h))


def test_group_percentile_is_not_a_roll_up_of_child_percentiles(raw):
    o = orders(raw, {})
    h = hours(o, "responded_at")
    whole = registry.evaluate("service.response_p90", scope(), PERIOD).value
    children = [r.value for r in registry.breakdown("service.response_p90", scope(), PERIOD, "school")]
    assert whole == pytest.approx(h.quantile(0.9))
    assert whole != pytest.approx(float(np.mean(children)))


def test_order_counts_volume_and_priority_table(raw):
    o = orders(raw, dict(school="SH-V01"))
    vol = service.volume(scope(school="SH-V01"), PERIOD)
    expected = o.groupby(["service_line", "kind"]).size()
    got = vol.set_index(["service_line", "kind"])["orders"]
    assert got.sort_index().to_dict() == expected.sort_index().to_dict()
    rows = service.orders_by(scope(school="SH-V01"), PERIOD, "priority")
    assert [(k, n) for k, n, _ in rows] == [(p, int((o.priority == p).sum())) for p in ("urgent", "normal")]


def test_complaints_per_thousand_people_and_closure(raw):
    people = raw("fact_school_year")
    people = people[people.year == people[people.year <= PERIOD.end.year].year.max()]
    people = people.set_index("school_id").eval("students + staff")
    prev_people = raw("fact_school_year")
    prev_people = prev_people[prev_people.year == PERIOD.previous().end.year].set_index("school_id").eval(
        "students + staff")
    o, before = orders(raw, {}), orders(raw, {}, PERIOD.previous())
    per_school = o[o.kind == "complaint"].groupby("school_id").size().reindex(people.index, fill_value=0)
    prev_school = before[before.kind == "complaint"].groupby("school_id").size().reindex(people.index, fill_value=0)
    results = {r.key: r for r in registry.breakdown("service.complaints", scope(), PERIOD, "school")}
    t = get_config().threshold("service.complaints")
    for school, count in per_school.items():
        res = results[school]
        value = 1000.0 * count / people[school]
        prev = 1000.0 * prev_school[school] / prev_people[school]
        check(res, value, int(people[school]))   # the rate rests on the population, not on the orders
        change = 100 * (value / prev - 1)
        assert res.status == ("green" if change <= t.green else "amber" if change <= t.amber else "red")
    total = registry.evaluate("service.complaints", scope(), PERIOD)
    assert total.value == pytest.approx(1000.0 * per_school.sum() / people.sum())
    # closure: complaints closed ÷ complaints due (closed, or past the completion SLA at the state date)
    c = o[o.kind == "complaint"]
    f = _sla_flags(c)
    res = registry.evaluate("service.complaint_closure", scope(), PERIOD)
    check(res, 100 * c.completed_at.notna().sum() / f.comp_due.sum(), int(f.comp_due.sum()))
    # complaints per 1000 people is not defined below school level
    res = registry.evaluate("service.complaints", scope(facility="SH-U01-C1-CAN1"), PERIOD)
    assert res.value is None and res.extra.get("not_applicable")


def expected_open(raw, school=None, at=AT):
    o = raw("fact_work_order")
    if school:
        o = o[o.school_id == school]
    o = o[(o.created_at < at) & (o.completed_at.isna() | (o.completed_at >= at))].copy()
    age = (at - o.created_at).dt.total_seconds()
    o["overdue"] = age >= o.priority.map(lambda p: SLA[p][1] * 3600.0)
    answered = o.responded_at.notna() & (o.responded_at < at)
    o["unanswered_late"] = ~answered & (age >= o.priority.map(lambda p: SLA[p][0] * 3600.0))
    o["over_h"] = (age - o.priority.map(lambda p: SLA[p][1] * 3600.0)) / 3600.0
    return o


@pytest.mark.parametrize("school", [None, "SH-V01"])
def test_open_and_overdue_orders(raw, school):
    from data_access.demo import INCIDENTS

    exp = expected_open(raw, school)
    s = scope(school=school) if school else scope()
    counts = service.open_order_counts(s, PERIOD)
    assert counts == {"open": len(exp), "overdue": int(exp.overdue.sum()), "unanswered_late": int(exp.unanswered_late.sum())}
    listed = service.open_orders(s, PERIOD)
    assert set(listed.order_id) == set(exp.order_id) or len(listed) == 100
    assert list(listed.over_h) == sorted(listed.over_h, reverse=True)
    merged = listed.merge(exp[["order_id", "overdue", "over_h"]], on="order_id", suffixes=("", "_exp"))
    assert (merged.overdue == merged.overdue_exp).all()
    assert np.allclose(merged.over_h, merged.over_h_exp)
    # nothing about a person leaves the query
    assert not {"rating", "callback_done", "responded_at", "completed_at"} & set(listed.columns)
    if school == "SH-V01":
        planted = exp[exp.overdue & (exp.created_at >= AT - pd.Timedelta(days=14))
                      & (exp.created_at < AT - pd.Timedelta(days=4))]
        assert len(planted) >= INCIDENTS["poor_repair_service"]["overdue_open_orders"]
        assert set(planted.order_id) <= set(listed.loc[listed.overdue, "order_id"])


def test_poor_school_stands_out_on_every_order_measure(raw):
    bad = scope(school="SH-V01")
    for ind in ("service.csi", "service.satisfied_rate", "service.nps", "service.response_on_time",
                "service.completion_on_time", "service.callback_rate"):
        assert registry.evaluate(ind, bad, PERIOD).status == "red", ind
    p90 = {r.key: r.value for r in registry.breakdown("service.completion_p90", scope(), PERIOD, "school")}
    assert max(p90, key=p90.get) == "SH-V01"


# --- hand-built warehouse: SLA edges, percentiles by hand, complaints, privacy boundaries ----------------------

H_TODAY = dt.date(2026, 3, 20)
H_PERIOD = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 19))       # state date 2026-03-20 00:00
J_PERIOD = Period(dt.date(2026, 1, 5), dt.date(2026, 1, 25))       # only S3's responses


def _order(i, school, priority, created, responded=None, completed=None, facility=None, **kw):
    row = {"order_id": f"O{i}", "school_id": school, "facility_id": facility, "kind": "repair",
           "service_line": "repair", "priority": priority, "created_at": pd.Timestamp(created),
           "responded_at": pd.Timestamp(responded) if responded else pd.NaT,
           "completed_at": pd.Timestamp(completed) if completed else pd.NaT,
           "reopened": False, "callback_done": False, "rating": None}
    row.update(kw)
    return row


def _responses(school, line, day, scores, nps_value, rtypes, facility=None, start=0):
    return [{"response_id": f"{school}-{line}-{day}-{start + i}", "school_id": school, "facility_id": facility,
             "service_line": line, "submitted_on": pd.Timestamp(day), "respondent_type": rtypes[i % len(rtypes)],
             "score": s, "nps": nps_value} for i, s in enumerate(scores)]


def hand_frames():
    frames = org_frames(schools=(("S1", "university", "310000"), ("S2", "k12", "310000"), ("S3", "k12", "110000")),
                        extra_facilities=(("S1-DOR1", "S1", "dormitory", 500.0), ("S2-DOR1", "S2", "dormitory", 500.0)))
    frames["fact_school_year"] = pd.DataFrame([
        {"school_id": "S1", "year": 2025, "students": 400, "staff": 100, "floor_area_m2": 1.0},
        {"school_id": "S1", "year": 2026, "students": 900, "staff": 100, "floor_area_m2": 1.0},
        {"school_id": "S2", "year": 2026, "students": 1900, "staff": 100, "floor_area_m2": 1.0},
        # S3 has no population figure: its complaints cannot be put per 1000 people and are left out
    ])
    s1 = [
        _order(1, "S1", "urgent", "2026-03-02 08:00", "2026-03-02 10:00:00", "2026-03-03 08:00", "S1-CAN1"),     # exactly 2 h / 24 h
        _order(2, "S1", "urgent", "2026-03-02 08:00", "2026-03-02 10:00:01", "2026-03-03 08:00:01", "S1-CAN1"),  # 1 s late
        _order(3, "S1", "normal", "2026-03-02 08:00", facility="S1-DOR1"),                                       # never answered
        _order(4, "S1", "normal", "2026-03-19 20:00", facility="S1-DOR1"),                                       # not yet due
        _order(5, "S1", "normal", "2026-03-05 09:00", "2026-03-05 12:00", "2026-03-06 12:00", "S1-DOR1",
               reopened=True, callback_done=True, rating=5),                                                     # reopened repair
        _order(6, "S1", "normal", "2026-03-10 09:00", "2026-03-10 10:00", "2026-03-12 09:00", None, kind="complaint",
               service_line="dining", reopened=True, callback_done=True, rating=2),                              # reopened complaint
        _order(7, "S1", "urgent", "2026-03-18 12:00", "2026-03-18 13:00", facility="S1-CAN1"),                   # open, 36 h > 24 h
        _order(8, "S1", "normal", "2026-03-17 00:00", "2026-03-17 05:00", facility="S1-CAN1"),                   # open, exactly 72 h
        _order(9, "S1", "normal", "2026-02-20 09:00", "2026-02-20 10:00", "2026-02-20 12:00", kind="request"),   # previous period
    ]
    s2 = [  # response times 1, 2, 3 h at the canteen, 10, 20 h at the dormitory; 3 complaints (2 before)
        _order(21, "S2", "normal", "2026-03-03 08:00", "2026-03-03 09:00", "2026-03-03 12:00", "S2-CAN1", kind="complaint"),
        _order(22, "S2", "normal", "2026-03-03 08:00", "2026-03-03 10:00", "2026-03-03 12:00", "S2-CAN1", kind="complaint"),
        _order(23, "S2", "normal", "2026-03-03 08:00", "2026-03-03 11:00", "2026-03-03 12:00", "S2-CAN1", kind="complaint"),
        _order(24, "S2", "normal", "2026-03-03 08:00", "2026-03-03 18:00", "2026-03-04 08:00", "S2-DOR1"),
        _order(25, "S2", "normal", "2026-03-03 08:00", "2026-03-04 04:00", "2026-03-04 08:00", "S2-DOR1"),
        _order(26, "S2", "normal", "2026-02-15 08:00", "2026-02-15 09:00", "2026-02-15 12:00", kind="complaint"),
        _order(27, "S2", "normal", "2026-02-16 08:00", "2026-02-16 09:00", "2026-02-16 12:00", kind="complaint"),
    ]
    s3 = [_order(31, "S3", "normal", "2026-03-04 08:00", "2026-03-04 09:00", "2026-03-04 10:00", kind="complaint"),
          _order(32, "S3", "normal", "2026-03-04 08:00", "2026-03-04 09:00", "2026-03-04 10:00", kind="complaint"),
          # completed with no response on record: answered at the completion at the latest (6 h; 30 h > 24 h)
          _order(33, "S3", "normal", "2026-03-05 08:00", None, "2026-03-05 14:00"),
          _order(34, "S3", "normal", "2026-03-06 08:00", None, "2026-03-07 14:00")]
    frames["fact_work_order"] = pd.DataFrame(s1 + s2 + s3)
    frames["fact_work_order"]["rating"] = frames["fact_work_order"]["rating"].astype("Int64")
    survey = (
        _responses("S1", "dining", "2026-03-04", [5] * 9, 10, ["student"], "S1-CAN1")        # 9: below the threshold
        + _responses("S1", "dormitory", "2026-03-05", [1] * 10, 0, ["student", "staff"], "S1-DOR1")  # 10: shown
        + _responses("S2", "property", "2026-03-06", [3] * 10, 7, ["other"])
        + _responses("S1", "dormitory", "2026-02-20", [3] * 10, 7, ["student"], "S1-DOR1")    # previous period
        + _responses("S2", "property", "2026-02-21", [4] * 10, 8, ["other"])
        # S3, in January only (J_PERIOD): dining 12 at its canteen, venue 6 and parcels 5 without a facility
        + _responses("S3", "dining", "2026-01-07", [4] * 12, 9, ["student"], "S3-CAN1")
        + _responses("S3", "venue", "2026-01-07", [2] * 6, 3, ["staff"])
        + _responses("S3", "parcel", "2026-01-07", [5] * 5, 10, ["staff"])
    )
    frames["fact_survey_response"] = pd.DataFrame(survey)
    frames["fact_survey_response"]["nps"] = frames["fact_survey_response"]["nps"].astype("Int64")
    return frames


@pytest.fixture(scope="module")
def hand_url(tmp_path_factory):
    return write_warehouse(tmp_path_factory.mktemp("svc") / "w.duckdb", hand_frames())


@pytest.fixture
def hand_wh(hand_url):
    with use_warehouse(hand_url, today=H_TODAY):
        yield hand_url


@pytest.fixture
def everyone(hand_wh):
    """Figures on any number of people (the privacy threshold set to 1), for the arithmetic tests."""
    cfg = get_config()
    override(min_group_size=1)
    yield
    set_config(cfg)


def ev(ind, **params):
    return registry.evaluate(ind, scope(**params), H_PERIOD)


def test_sla_edges_by_hand(everyone):
    # response due: 1, 2, 3, 5, 6, 7, 8 (4 is 4 h old, not yet due); on time: 1 (exactly 2 h), 5, 6, 7, 8
    res = ev("service.response_on_time", school="S1")
    assert (res.num, res.den) == (5, 7)
    # completion due: 1, 2, 3 (never answered), 5, 6, 7 (36 h > 24 h), 8 (exactly 72 h old, still open: late);
    # on time: 1 (exactly 24 h), 5 (27 h), 6 (48 h)
    res = ev("service.completion_on_time", school="S1")
    assert (res.num, res.den) == (3, 7)
    # completed repairs 1, 2, 5; 5 was reopened (the reopened complaint 6 is no repair): 2 of 3
    res = ev("service.first_time_fix", school="S1")
    assert (res.num, res.den) == (2, 3)
    # callbacks 5 and 6 of the completed 1, 2, 5, 6; rated 5 (5) and 6 (2)
    assert (ev("service.callback_rate", school="S1").num, ev("service.callback_rate", school="S1").den) == (2, 4)
    assert ev("service.callback_satisfaction", school="S1").value == pytest.approx(50.0)


def test_percentiles_by_hand(everyone):
    # S1 response hours: 2 (1), 2 h 1 s (2), 3 (5), 1 (6), 1 (7), 5 (8); 3 and 4 unanswered are left out
    # sorted 1, 1, 2, 2.000278, 3, 5: P50 at rank 3.5 → 2 + 0.5·(1/3600); P90 at rank 5.5 → 3 + 0.5·2 = 4
    assert ev("service.response_p50", school="S1").value == pytest.approx(2 + 0.5 / 3600)
    assert ev("service.response_p90", school="S1").value == pytest.approx(4.0)
    assert ev("service.response_p50", school="S1").n == 6
    # completion hours 24, 24.000278, 27, 48: P50 = 24.000278 + 0.5·(27 − 24.000278); P90 = 27 + 0.7·21
    assert ev("service.completion_p50", school="S1").value == pytest.approx((24 + 1 / 3600 + 27) / 2)
    assert ev("service.completion_p90", school="S1").value == pytest.approx(27 + 0.7 * 21)
    # S2: canteen 1, 2, 3 h (P50 2), dormitory 10, 20 h (P50 15); the school's P50 is over its five orders: 3
    facility = {r.key: r.value for r in registry.breakdown("service.response_p50", scope(school="S2"), H_PERIOD,
                                                           "facility")}
    assert facility == {"S2-CAN1": pytest.approx(2.0), "S2-DOR1": pytest.approx(15.0)}
    assert ev("service.response_p50", school="S2").value == pytest.approx(3.0)
    # one value: itself; P90 of 1, 2, 3, 10, 20 at rank 4.6 → 10 + 0.6·10
    assert ev("service.response_p90", school="S2").value == pytest.approx(16.0)
    assert ev("service.response_p50", facility="S1-CAN1").value == pytest.approx(
        pd.Series([2, 2 + 1 / 3600, 1, 5]).quantile(0.5))


def test_percentile_of_a_group_without_answers_is_no_data(everyone):
    frame = service.order_durations(scope(school="S1"), H_PERIOD, "priority")
    assert set(frame["key"]) == {"urgent", "normal"}
    res = registry.evaluate("service.response_p50", scope(school="S1"),
                            Period(dt.date(2026, 3, 19), dt.date(2026, 3, 19)))   # only order 4: unanswered
    assert res.value is None and res.status == "nodata"


def test_complaints_per_thousand_by_hand(everyone):
    # S1: 1 complaint / 1000 people (2026 figure, not 2025); S2: 3 / 2000; S3 has no population: left out
    assert ev("service.complaints", school="S1").value == pytest.approx(1.0)
    assert ev("service.complaints", school="S2").value == pytest.approx(1.5)
    assert ev("service.complaints").value == pytest.approx(1000 * 4 / 3000)
    assert ev("service.complaints", school="S3").status == "nodata"
    # against the previous period (2026-02-10 … 02-28): S2 had 2 / 2000 → +50 % is red (amber up to +20 %);
    # S1 had none → no ratio to compare: amber
    assert ev("service.complaints", school="S2").status == "red"
    assert ev("service.complaints", school="S1").status == "amber"
    # closure: S2's three complaints closed; S3's two too
    assert ev("service.complaint_closure").value == pytest.approx(100.0)
    assert ev("service.complaint_closure").n == 6


def test_open_orders_by_hand(everyone):
    counts = service.open_order_counts(scope(school="S1"), H_PERIOD)
    # open at 03-20 00:00: 3, 4, 7, 8; overdue: 3, 7 (36 h ≥ 24 h), 8 (exactly 72 h); unanswered late: 3
    assert counts == {"open": 4, "overdue": 3, "unanswered_late": 1}
    listed = service.open_orders(scope(school="S1"), H_PERIOD)
    assert list(listed.order_id) == ["O3", "O7", "O8", "O4"]
    assert list(listed.overdue) == [True, True, True, False]
    assert listed.loc[listed.order_id == "O8", "over_h"].item() == pytest.approx(0.0)
    # a past period is read at its own state date: on 03-06 00:00, order 5 (completed 03-06 12:00) was open
    past = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 5))
    listed = service.open_orders(scope(school="S1"), past)
    assert set(listed.order_id) == {"O3", "O5"}
    assert service.open_order_counts(scope(school="S1"), past) == {"open": 2, "overdue": 1, "unanswered_late": 1}
    # at facility level only that facility's orders
    assert set(service.open_orders(scope(facility="S1-CAN1"), H_PERIOD).order_id) == {"O7", "O8"}


def test_satisfaction_weighting_and_privacy_boundary(hand_wh):
    # S1: 9 dining responses CSI 100 (suppressed: 9 < 10) and 10 dormitory responses CSI 0 (withheld as well:
    # see test_a_withheld_line_cannot_be_worked_out_from_the_tile)
    rows = {r.key: r for r in service.satisfaction_rows(scope(school="S1"), H_PERIOD, "service_line")}
    assert rows["dining"].results["service.csi"].status == "suppressed"
    assert rows["dining"].results["service.csi"].value is None and rows["dining"].responses == 9
    # exactly 10 is shown: S2's 10 property responses, CSI (3 − 1) ÷ 4 × 100 = 50
    s2 = {r.key: r for r in service.satisfaction_rows(scope(school="S2"), H_PERIOD, "service_line")}
    assert s2["property"].responses == 10 and s2["property"].results["service.csi"].value == pytest.approx(50.0)
    # weighted by responses: (9·100 + 10·0 + 10·50) ÷ 29, not the mean of the schools (47.4 and 50)
    assert ev("service.csi").value == pytest.approx(1400 / 29)
    assert ev("service.csi", school="S1").value == pytest.approx(900 / 19)
    # NPS: 9 promoters, 10 detractors, 10 passives
    assert ev("service.nps").value == pytest.approx(100 * (9 - 10) / 29)
    assert ev("service.satisfied_rate").value == pytest.approx(100 * 9 / 29)
    # the matrix: S1 × dining suppressed, S1 × dormitory withheld with it (else S1's total − it = dining),
    # S2 × property 50; worst school first: S1 (47.4) before S2 (50)
    mat = service.matrix("service.csi", scope(), H_PERIOD)
    assert [k for k, _, _ in mat.rows] == ["S1", "S2"]
    cells = {k: row for k, row, _ in mat.rows}
    assert cells["S1"]["dining"].status == "suppressed" and cells["S1"]["dining"].value is None
    assert cells["S1"]["dormitory"].value is None and cells["S1"]["dormitory"].extra == {"complementary": True}
    assert cells["S2"]["property"].value == pytest.approx(50.0)
    # movers: property 75 → 50 (−25); dormitory (50 → 0) is withheld now, dining has no previous figure
    lines = service.satisfaction_rows(scope(), H_PERIOD, "service_line")
    assert [(m.key, m.change) for m in service.biggest_movers(lines)] == [("property", pytest.approx(-25.0))]


def _state(res) -> str:
    """shown / primary (on fewer than 10) / complementary (withheld beside a total) / nodata."""
    if res.status == "suppressed":
        return "complementary" if res.extra.get("complementary") else "primary"
    return "nodata" if res.value is None else "shown"


def _states(results: dict) -> dict:
    return {k: _state(r) for k, r in results.items()}


def test_a_withheld_line_cannot_be_worked_out_from_the_tile(hand_wh):
    # S1's tile: CSI 900 ÷ 19 = 47.4 on 19 responses. Dining: 9 responses (CSI 100, suppressed); dormitory: 10
    # (CSI 0). Showing the dormitory would give dining = (47.4 × 19 − 0 × 10) ÷ 9 = 100, so it is withheld too.
    s1 = scope(school="S1")
    assert ev("service.csi", school="S1").value == pytest.approx(900 / 19)
    for ind in service.SATISFACTION:   # NPS alike: 9 answers (all 10) at dining, 10 (all 0) at the dormitory
        f = service.satisfaction_figures(ind, s1, H_PERIOD)
        assert f.total.value is not None and f.total.n == 19
        assert _states(f.lines) == {"dining": "primary", "dormitory": "complementary"}, ind
        # students 9 + 5 = 14 and staff 5 (suppressed): students withheld, else staff = (19·T − 14·S) ÷ 5
        assert _states(f.types) == {"student": "complementary", "staff": "primary"}, ind
        # facility rows: S1-CAN1 (9) suppressed → S1-DOR1 (10) withheld against the school; its one cell would
        # then equal it, so the cell goes too
        assert _states(f.rows) == {"S1-CAN1": "primary", "S1-DOR1": "complementary"}, ind
        assert _states(f.cells) == {("S1-CAN1", "dining"): "primary",
                                    ("S1-DOR1", "dormitory"): "complementary"}, ind
        assert f.unattributed == {}
    # the trend (weekly): one week holding all 19 responses (= the tile, shown); the dormitory's point of that week
    # would equal the withheld dormitory line: withheld
    f = service.satisfaction_figures("service.csi", s1, H_PERIOD)
    assert [(p.key, _state(p)) for p in f.trend] == [("2026-03-02", "shown")]
    assert {ln: [_state(p) for p in pts] for ln, pts in f.line_trend.items()} == {
        "dining": ["primary"], "dormitory": ["complementary"]}
    # counts stay shown
    rows = {r.key: r for r in service.satisfaction_rows(s1, H_PERIOD, "service_line")}
    assert (rows["dining"].responses, rows["dormitory"].responses) == (9, 10)
    assert rows["dormitory"].change is None
    # the page (tables and export) says why a figure on 10 responses is missing
    from components import service as view

    inds = {i: registry.get(i) for i in service.SATISFACTION}
    text = _text(view.satisfaction_table(list(rows.values()), inds, "zh", MIN_N))
    assert text.count("已隐去 (防反推)") == 3 and text.count("样本不足 (n < 10)") == 3
    assert "0.0" not in text


def test_respondent_types_at_association_level(hand_wh):
    # all 29: students 14 (S1: 9 dining CSI 100, 5 dormitory CSI 0), staff 5 (S1 dormitory, suppressed), others 10
    # (S2 property, CSI 50). With others shown, staff = (1400 − 900 − 500) ÷ 5 = 0 would be exposed; the smaller
    # shown type (others, 10 < 14) is withheld too, and the withheld pair rests on 15 ≥ 10: students stay shown.
    types = {r.key: r for r in service.satisfaction_rows(scope(), H_PERIOD, "respondent_type")}
    for ind in service.SATISFACTION:
        assert _states({k: r.results[ind] for k, r in types.items()}) == {
            "student": "shown", "staff": "primary", "other": "complementary"}, ind
    assert types["student"].results["service.csi"].value == pytest.approx(900 / 14)
    assert types["student"].results["service.satisfied_rate"].value == pytest.approx(100 * 9 / 14)
    # service lines of all 29: dining 9 (suppressed); dormitory 10 and property 10 tie: the first by name goes
    lines = service.satisfaction_figures("service.csi", scope(), H_PERIOD).lines
    assert _states(lines) == {"dining": "primary", "dormitory": "complementary", "property": "shown"}


def test_no_figure_is_withheld_when_the_small_groups_cover_each_other(hand_wh):
    # S3 in January: dining 12 (CSI 75) at its canteen; venue 6 (CSI 25) and parcels 5 (CSI 100) without a facility.
    # The two small lines together rest on 11 ≥ 10: nothing beyond them is withheld, at any level.
    for params in (dict(school="S3"), dict(region="110000"), dict()):
        s = scope(**params)
        for ind in service.SATISFACTION:
            f = service.satisfaction_figures(ind, s, J_PERIOD)
            assert f.total.value == pytest.approx({"service.csi": 1550 / 23, "service.satisfied_rate": 100 * 17 / 23,
                                                   "service.nps": 100 * (17 - 6) / 23}[ind])
            assert _states(f.lines) == {"dining": "shown", "venue": "primary", "parcel": "primary"}, (params, ind)
            assert _states(f.types) == {"student": "shown", "staff": "shown"}
            everything = [*f.lines.values(), *f.types.values(), *f.rows.values(), *f.cells.values(), *f.trend,
                          *[p for pts in f.line_trend.values() for p in pts]]
            assert not [r for r in everything if r.extra.get("complementary")], (params, ind)
    f = service.satisfaction_figures("service.csi", scope(school="S3"), J_PERIOD)
    assert f.lines["dining"].value == pytest.approx(75.0)
    assert _states(f.rows) == {"S3-CAN1": "shown"} and f.unattributed == {"venue": 6, "parcel": 5}


def test_protect_withholds_the_smallest_shown_sibling_until_ten():
    from data_access.registry import Result

    def group(*ns, parent_n=None):
        members = [Result("service.csi", None if n < MIN_N else 50.0, "suppressed" if n < MIN_N else "green", n,
                          key=f"g{i}") for i, n in enumerate(ns)]
        return Result("service.csi", 50.0, "green", parent_n or sum(ns)), members

    # 6 and 5 cover each other (11): nothing more
    parent, members = group(6, 5, 30, 40)
    assert service.protect([service.Siblings(parent, members)]) == []
    # 4 alone: the smallest shown (12) joins it → 16
    parent, members = group(4, 30, 12)
    assert [m.key for m in service.protect([service.Siblings(parent, members)])] == ["g2"]
    assert [_state(m) for m in members] == ["primary", "shown", "complementary"]
    # 3 + 4 = 7 < 10: the smallest shown (20, before 25) joins → 27
    parent, members = group(3, 25, 4, 20)
    service.protect([service.Siblings(parent, members)])
    assert [_state(m) for m in members] == ["primary", "shown", "primary", "complementary"]
    # a rest of 3 people never shown (responses without a facility) is a small group too
    parent, members = group(30, 12, parent_n=45)
    service.protect([service.Siblings(parent, members, rest_n=3)])
    assert [_state(m) for m in members] == ["shown", "complementary"]
    # a withheld parent must not be the sum of its shown members: b (25), withheld beside a (5), has children
    # 12 and 13: the smaller goes too. The top parent (the tile, a member of no set) stays.
    top, (a, b) = group(5, 25)
    children = [Result("service.csi", 50.0, "green", n, key=f"c{n}") for n in (13, 12)]
    service.protect([service.Siblings(top, [a, b]), service.Siblings(b, children)])
    assert [_state(r) for r in (top, a, b, *children)] == ["shown", "primary", "complementary", "shown",
                                                          "complementary"]
    # a withheld member alone in its set is covered by its parent (when the parent is a member elsewhere): c (12)
    # goes beside p (5); c is the only member of line (12), which goes, and then line's sibling (30) beside it
    top, (p, c) = group(5, 12)
    top2, (line, other) = group(12, 30)
    service.protect([service.Siblings(top, [p, c]), service.Siblings(line, [c]), service.Siblings(top2, [line, other])])
    assert [_state(r) for r in (top, p, c, top2, line, other)] == ["shown", "primary", "complementary", "shown",
                                                                   "complementary", "complementary"]
    # and the threshold is config privacy.min_group_size: 4 + 5 = 9 covers itself at 9, not at 10
    parent, members = group(4, 5, 30, 40)
    assert [m.key for m in service.protect([service.Siblings(parent, members)])] == ["g2"]
    cfg = get_config()
    override(min_group_size=9)
    try:
        parent, members = group(4, 5, 30, 40)
        assert service.protect([service.Siblings(parent, members)]) == []
    finally:
        set_config(cfg)


# Whether a withheld figure can be worked out from what the panel shows, by linear algebra over the sums
# (figure × n) that add up: a hidden sum is determined iff its unit vector lies in the row space of the
# relations' coefficients restricted to the hidden sums. The relations are written here from what the figures
# mean, not taken from data_access.service's own sets.

def _visible(ind_id, s, period):
    from data_access.registry import Result

    nodes = {("T",): registry.evaluate(ind_id, s, period)}
    rel = []
    lines = {r.key: r.results[ind_id] for r in service.satisfaction_rows(s, period, "service_line")}
    types = {r.key: r.results[ind_id] for r in service.satisfaction_rows(s, period, "respondent_type")}
    for name, groups in (("line", lines), ("type", types)):
        nodes.update({(name, k): r for k, r in groups.items()})
        rel.append((("T",), [(name, k) for k in groups]))
    mat = service.matrix(ind_id, s, period)
    if mat is not None and mat.rows:
        for child, cells, total in mat.rows:
            nodes[("row", child)] = total
            nodes.update({("cell", child, ln): r for ln, r in cells.items()})
            rel.append((("row", child), [("cell", child, ln) for ln in cells]))
        rest = (nodes[("T",)].n or 0) - sum(total.n or 0 for _, _, total in mat.rows)
        nodes[("U",)] = Result(ind_id, None, "suppressed", rest)        # responses without a facility: never shown
        rel.append((("T",), [("row", c) for c, _, _ in mat.rows] + [("U",)]))
        rests = []
        for ln, total in lines.items():
            members = [("cell", c, ln) for c, cells, _ in mat.rows if ln in cells]
            nodes[("u", ln)] = Result(ind_id, None, "suppressed", (total.n or 0) - sum(nodes[m].n for m in members))
            rel.append((("line", ln), members + [("u", ln)]))
            rests.append(("u", ln))
        rel.append((("U",), rests))
    if ind_id in service.TREND:
        _, points = service.satisfaction_trend(s, period)
        nodes.update({("week", p.key): p for p in points[ind_id]})
        rel.append((("T",), [("week", p.key) for p in points[ind_id]]))
        per_week = {}
        for ln in lines:
            _, points = service.satisfaction_trend(s, period, ln)
            nodes.update({("lw", ln, p.key): p for p in points[ind_id]})
            rel.append((("line", ln), [("lw", ln, p.key) for p in points[ind_id]]))
            for p in points[ind_id]:
                per_week.setdefault(p.key, []).append(("lw", ln, p.key))
        rel += [(("week", w), members) for w, members in per_week.items()]
    return nodes, rel


def _worked_out(nodes, rel) -> set:
    unknown = [k for k, r in nodes.items() if r.value is None and (r.n or 0) > 0]
    if not unknown:
        return set()
    col = {k: i for i, k in enumerate(unknown)}
    a = np.zeros((len(rel), len(unknown)))
    for row, (parent, members) in enumerate(rel):
        for k, sign in [(parent, 1.0)] + [(m, -1.0) for m in members]:
            if k in col:
                a[row, col[k]] += sign
    rank = np.linalg.matrix_rank(a)
    return {k for k, i in col.items() if np.linalg.matrix_rank(np.vstack([a, np.eye(len(unknown))[i]])) == rank}


def _assert_nothing_small_worked_out(nodes, rel, where):
    exposed = {k: nodes[k].n for k in _worked_out(nodes, rel) if nodes[k].n < MIN_N}
    assert not exposed, (where, exposed)
    for parent, members in rel:   # and beside a shown total, the withheld together rest on 10 or more
        if nodes[parent].value is not None:
            hidden = sum(nodes[m].n or 0 for m in members if nodes[m].value is None)
            assert hidden == 0 or hidden >= MIN_N, (where, parent, hidden)


def test_no_withheld_figure_can_be_worked_out_on_the_hand_built_warehouse(hand_wh):
    for params in (dict(), dict(school="S1"), dict(school="S2"), dict(facility="S1-DOR1")):
        for ind in service.SATISFACTION:
            _assert_nothing_small_worked_out(*_visible(ind, scope(**params), H_PERIOD), (params, ind))
    # the same check finds the leak of the unprotected figures: dining = S1's tile minus the dormitory
    from data_access.registry import Result

    raw_lines = {r.key: r for r in registry.breakdown("service.csi", scope(school="S1"), H_PERIOD, "service_line")}
    nodes = {("T",): ev("service.csi", school="S1"), **{("line", k): r for k, r in raw_lines.items()}}
    assert _worked_out(nodes, [(("T",), [("line", "dining"), ("line", "dormitory")])]) == {("line", "dining")}
    assert isinstance(nodes[("line", "dining")], Result) and nodes[("line", "dining")].n == 9


@pytest.mark.parametrize("params", [dict(), dict(region="310000"), dict(school="BJ-U01"), dict(school="SH-U01"),
                                    dict(campus="BJ-U01-C1"), dict(facility="SH-U01-C1-CAN1")])
def test_no_withheld_figure_can_be_worked_out_on_the_demo(raw, params):
    s = scope(**params)
    for ind in service.SATISFACTION:
        _assert_nothing_small_worked_out(*_visible(ind, s, PERIOD), (params, ind))
    # the planted small venue group (6 responses at BJ-U01) needs a partner there
    if params == dict(school="BJ-U01"):
        lines = service.satisfaction_figures("service.csi", s, PERIOD).lines
        assert _state(lines["venue"]) == "primary"
        assert [k for k, r in lines.items() if _state(r) == "complementary"]


def test_sla_rates_per_group_are_protected_against_their_tile(hand_wh):
    # The period's orders: S1 1–8 (urgent 1, 2, 7), S2 21–25, S3 31–34, all others normal. Response due: urgent 3
    # (suppressed), normal 13 (S1: 3, 5, 6, 8 — 4 is not yet due; S2: 5; S3: 4), tile 16: with the tile shown,
    # normal would be the tile minus urgent, so it is withheld too. Completion due: urgent 3 (7 is 36 h open),
    # normal 13 (S1: 3, 5, 6, 8 at exactly 72 h) alike.
    rows = {k: res for k, _, res in service.orders_by(scope(), H_PERIOD, "priority")}
    for ind in service.ADDITIVE_ORDER:
        assert _states({k: r[ind] for k, r in rows.items()}) == {"urgent": "primary", "normal": "complementary"}, ind
    # percentiles cannot be subtracted: shown as they are
    assert rows["normal"]["service.response_p50"].value is not None
    assert ev("service.response_on_time").value is not None


def test_order_figures_on_fewer_than_ten_are_suppressed(hand_wh):
    for ind in ("service.response_on_time", "service.completion_on_time", "service.response_p50",
                "service.response_p90", "service.completion_p50", "service.completion_p90", "service.first_time_fix",
                "service.callback_rate", "service.callback_satisfaction", "service.complaint_closure"):
        res = ev(ind, school="S1")
        assert res.status == "suppressed" and res.value is None and 0 < res.n < MIN_N, ind
    # complaints per 1000 people rest on the population (S1: 900 students + 100 staff), not on its 8 orders:
    # 1 complaint → 1.0 ‰ is shown; their closure rests on the 1 complaint due and is withheld (above)
    res = ev("service.complaints", school="S1")
    assert (res.value, res.n) == (pytest.approx(1.0), 1000)
    assert ev("service.complaint_closure", school="S1").n == 1


def test_completed_without_a_recorded_response_was_answered_at_completion(everyone):
    # S3: 31 and 32 answered after 1 h; 33 completed after 6 h and 34 after 30 h with no response on record: they
    # were answered at their completion at the latest → response times 1, 1, 6, 30 h (normal SLA 24 h)
    res = ev("service.response_on_time", school="S3")
    assert (res.num, res.den) == (3, 4)                    # 34 late (30 h > 24 h); 33 on time (6 h)
    p50 = ev("service.response_p50", school="S3")
    assert p50.n == 4                                      # the same four orders as the rate's
    assert p50.value == pytest.approx(1 + 0.5 * (6 - 1))   # sorted 1, 1, 6, 30: rank 1 + 0.5·3 = 2.5
    assert ev("service.response_p90", school="S3").value == pytest.approx(6 + 0.7 * (30 - 6))   # rank 3.7
    # completion is unchanged: 2, 2, 6, 30 h, all within 72 h
    res = ev("service.completion_on_time", school="S3")
    assert (res.num, res.den) == (4, 4)


def test_api_suppresses_service_figures(hand_wh):
    from app import server

    client = logged_in(server.test_client())
    ids = [i.id for i in registry.all_indicators() if i.domain == "service" and i.id != "service.complaints"]
    # the canteen S1-CAN1: 9 responses, 4 orders
    body = client.get(f"/api/v1/indicators?ids={','.join(ids)}&facility=S1-CAN1&from=2026-03-01&to=2026-03-19")
    by_id = {i["id"]: i for i in body.get_json()["indicators"]}
    assert set(by_id) == set(ids)
    for ind_id in ids:
        item = by_id[ind_id]
        assert item["value"] is None, ind_id
        if ind_id in ("service.complaint_closure", "service.callback_satisfaction"):   # none at the canteen
            assert (item["status"], item["n"]) == ("nodata", 0), ind_id
        else:
            assert item["status"] == "suppressed" and 0 < item["n"] < MIN_N, ind_id
        if item["status"] == "suppressed":   # the tiles' label, in both languages
            assert (item["label"], item["label_en"]) == ("样本不足 (n < 10)", "Too few (n < 10)"), ind_id
        else:
            assert "label" not in item, ind_id
    # complaints per 1000 people at school S1 rest on its 1000 people: 1 complaint → 1.0 ‰, shown, no label
    item = client.get("/api/v1/indicators?ids=service.complaints&school=S1&from=2026-03-01&to=2026-03-19"
                      ).get_json()["indicators"][0]
    assert (item["status"], item["value"], item["n"]) == ("amber", pytest.approx(1.0), 1000) and "label" not in item


def test_api_returns_the_registry_values_on_the_demo(raw):
    from app import server

    use = ("service.response_p50", "service.response_p90", "service.completion_p90", "service.complaints",
           "service.complaint_closure")
    body = logged_in(server.test_client()).get(f"/api/v1/indicators?ids={','.join(use)}&school=SH-U01"
                                    f"&from={PERIOD.start}&to={PERIOD.end}").get_json()
    for item in body["indicators"]:
        expected = registry.evaluate(item["id"], scope(school="SH-U01"), PERIOD)
        assert item["value"] == pytest.approx(expected.value) and item["status"] == expected.status
    h = hours(orders(raw, dict(school="SH-U01")), "responded_at")
    assert {i["id"]: i for i in body["indicators"]}["service.response_p90"]["value"] == pytest.approx(h.quantile(0.9))


# --- portability of the percentile SQL ------------------------------------------------------------------------

def _durations_sql(dialect):
    from data_access.sqlfuncs import percentile_from_ranks, rank_within

    o = sa.table("o", sa.column("g"), sa.column("x", sa.Float))
    rn, cnt = rank_within(o.c.x, [o.c.g])
    inner = sa.select(o.c.g, o.c.x, rn.label("rn"), cnt.label("cnt")).subquery("r")
    stmt = sa.select(inner.c.g, percentile_from_ranks(inner.c.x, inner.c.rn, inner.c.cnt, 0.9)).group_by(inner.c.g)
    return str(stmt.compile(dialect=dialect))


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb", "sqlite", "duckdb"])
def test_percentile_sql_uses_only_window_functions_every_engine_has(dialect):
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    d = {"postgresql": postgresql.dialect(), "mysql": mysql.dialect(), "sqlite": sqlite.dialect(),
         "mariadb": mysql.dialect(is_mariadb=True)}.get(dialect)
    if d is None:
        from duckdb_engine import Dialect

        d = Dialect()
    sql = " ".join(_durations_sql(d).lower().split())
    assert "row_number() over (partition by o.g order by case when (o.x is null) then 1 else 0 end, o.x)" in sql
    assert "count(o.x) over (partition by o.g)" in sql
    assert "quantile" not in sql and "percentile" not in sql and "within group" not in sql and "floor" not in sql


def _sqlite_copy(path, frames):
    from data_access import schema

    url = f"sqlite:///{path}"
    eng = sa.create_engine(url)
    schema.metadata.create_all(eng, tables=[schema.metadata.tables[t] for t in frames])
    with eng.begin() as conn:
        for table, frame in frames.items():
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            conn.execute(schema.metadata.tables[table].insert(), rows)
    eng.dispose()
    return url


def test_the_same_order_figures_on_sqlite(tmp_path, hand_wh):
    """SQLite has no percentile function at all: the rank-based percentile gives the DuckDB figures there too."""
    cfg = get_config()
    override(min_group_size=1)
    try:
        wanted = ("service.response_p50", "service.response_p90", "service.completion_p50", "service.completion_p90",
                  "service.response_on_time", "service.completion_on_time", "service.complaints")
        on_duckdb = {(i, s): ev(i, **dict(s)).value for i in wanted for s in ((), (("school", "S1"),),
                                                                                (("school", "S2"),))}
        open_duck = service.open_orders(scope(school="S1"), H_PERIOD)[["order_id", "over_h"]]
    finally:
        set_config(cfg)
    url = _sqlite_copy(tmp_path / "w.sqlite", hand_frames())
    with use_warehouse(url, today=H_TODAY):
        override(min_group_size=1)
        for (i, s), value in on_duckdb.items():
            assert ev(i, **dict(s)).value == pytest.approx(value), (i, s)
        open_lite = service.open_orders(scope(school="S1"), H_PERIOD)[["order_id", "over_h"]]
        assert list(open_lite.order_id) == list(open_duck.order_id)
        assert np.allclose(open_lite.over_h, open_duck.over_h)


@pytest.mark.parametrize("env", ["COCKPIT_TEST_PG_URL", "COCKPIT_TEST_MYSQL_URL"])
def test_the_same_order_figures_on_a_server_database(env, hand_wh):
    """Run with e.g. COCKPIT_TEST_PG_URL=postgresql+psycopg://…/db or COCKPIT_TEST_MYSQL_URL=mysql+pymysql://…/db
    (an empty database the test may fill): the hand-built warehouse gives the same figures there."""
    url = os.environ.get(env)
    if not url:
        pytest.skip(f"{env} not set")
    from data_access import schema

    cfg = get_config()
    override(min_group_size=1)
    try:
        wanted = [i.id for i in registry.all_indicators() if i.domain == "service"]
        expected = {(i, k): ev(i, **dict([k]) if k else {}).value for i in wanted
                    for k in (None, ("school", "S1"), ("school", "S2"), ("facility", "S2-DOR1"))}
        open_expected = list(service.open_orders(scope(), H_PERIOD).order_id)
    finally:
        set_config(cfg)
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
        with use_warehouse(url, today=H_TODAY):
            override(min_group_size=1)
            for (i, k), value in expected.items():
                got = ev(i, **dict([k]) if k else {}).value
                assert (got is None and value is None) or got == pytest.approx(value), (i, k)
            assert list(service.open_orders(scope(), H_PERIOD).order_id) == open_expected
    finally:
        eng = sa.create_engine(url)
        schema.metadata.drop_all(eng, tables=tables)
        eng.dispose()


# --- page and components --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page():
    import app  # noqa: F401  (registers the pages)
    from pages import service as page

    return page


def _ids(component, found=None):
    found = set() if found is None else found
    if isinstance(component, (list, tuple)):
        for c in component:
            _ids(c, found)
        return found
    cid = getattr(component, "id", None)
    if isinstance(cid, str):
        found.add(cid)
    children = getattr(component, "children", None)
    if children is not None:
        _ids(children, found)
    return found


def test_page_renders_every_part(page):
    content = page.render({"school": "SH-V01"})
    found = _ids(content)
    assert {"svc-satisfaction", "svc-orders", "svc-lines", "svc-types", "svc-movers", "svc-matrix-table",
            "svc-trend-graph", "svc-priority", "svc-order-lines", "svc-volume-graph", "svc-open-table"} <= found
    text = _text(content)
    assert "样本不足 (n < 10)" in text and "已超时" in text


def test_page_without_data_says_so(page):
    text = _text(page.render({"from": "2025-01-01", "to": "2025-01-31"}))
    assert "本范围内无数据" in text and "该期间无满意度评价" in text and "本范围内没有未完结工单" in text


@pytest.mark.parametrize("params, message", [
    ({"school": "NOPE"}, "未找到学校"),
    ({"from": "2026-02-30"}, "不是有效日期"),
    ({"facility": "SH-U01-C1-CAN1", "school": "SH-V01", "lang": "en"}, "does not contain"),
])
def test_bad_url_shows_a_message(page, params, message):
    content = page.render(params)
    assert "input-error" in _ids(content) and message in _text(content)


def test_unknown_page_options_are_ignored(page):
    content = page.render({"line": "<script>", "m": "energy.total_kgce"})
    assert "svc-matrix-table" in _ids(content) and "<script>" not in _text(content)


def test_unreachable_warehouse_shows_a_banner(page, tmp_path):
    with use_warehouse(f"duckdb:///{tmp_path / 'gone.duckdb'}"):
        assert "warehouse-banner" in _ids(page.render({}))


def test_suppressed_cells_never_show_a_number():
    from components import service as view
    from data_access.registry import Result
    from data_access.service import LineRow, Matrix

    ind = registry.get("service.csi")
    hidden = Result(ind.id, None, "suppressed", n=4)
    mat = Matrix("school", ["dining"], [("S1", {"dining": hidden}, hidden)], {"dining": hidden}, 0)
    table = view.matrix_table(mat, ind, {("school", "S1"): "学校S1"}, "zh", 10, lambda k: "/service?school=" + k,
                              lambda k, ln: "/service")
    assert _text(table).count("样本不足 (n < 10)") == 3 and "4" not in _text(table).replace("n < 10", "")
    inds = {i: registry.get(i) for i in service.SATISFACTION}
    row = LineRow("venue", {i: Result(i, None, "suppressed", n=6) for i in service.SATISFACTION},
                  Result(ind.id, 88.0, "green", n=40), None)
    text = _text(view.satisfaction_table([row], inds, "en", 10))
    assert text.count("Too few (n < 10)") == 3 and "88" not in text


def test_trend_chart_plots_no_value_for_a_suppressed_point():
    """trend_figure is the chart that plots satisfaction values (volume_figure plots counts of orders, which are
    shown as they are): a suppressed week is a gap with the label, and its number is nowhere in the figure."""
    from components import service as view

    # three weeks: 20 responses (CSI 1500 ÷ 20 = 75), 7 (CSI 500 ÷ 7 = 71.43, satisfied 6 ÷ 7 = 85.71 %: withheld),
    # 16 (CSI 1000 ÷ 16 = 62.5; withheld by hand below as if beside a total, satisfied 12 ÷ 16 = 75 %)
    weeks = ["2026-10-19", "2026-10-26", "2026-11-02"]
    frames = {"service.csi": pd.DataFrame({"key": weeks, "num": [1500.0, 500.0, 1000.0], "den": [20, 7, 16],
                                           "n": [20, 7, 16]}),
              "service.satisfied_rate": pd.DataFrame({"key": weeks, "num": [15.0, 6.0, 12.0], "den": [20, 7, 16],
                                                      "n": [20, 7, 16]})}
    points = {i: registry.results(i, f, None, None) for i, f in frames.items()}
    assert [p.status for p in points["service.csi"]][1] == "suppressed"
    service.withhold(points["service.csi"][2])
    inds = {i: registry.get(i) for i in frames}
    fig = view.trend_figure("W", points, inds, "zh", MIN_N)
    csi_trace = next(tr for tr in fig.data if tr.name == inds["service.csi"].name("zh"))
    assert list(csi_trace.x) == weeks
    assert csi_trace.y[0] == pytest.approx(75.0) and csi_trace.y[1] is None and csi_trace.y[2] is None
    rate_trace = next(tr for tr in fig.data if tr.name == inds["service.satisfied_rate"].name("zh"))
    assert rate_trace.y[1] is None and rate_trace.y[2] == pytest.approx(75.0)
    assert csi_trace.text[1] == "样本不足 (n < 10)" and rate_trace.text[1] == "样本不足 (n < 10)"
    marks = next(tr for tr in fig.data if tr.mode == "markers+text")
    assert list(marks.x) == weeks[1:] and list(marks.text) == ["样本不足 (n < 10)", "已隐去 (防反推)"]
    dumped = fig.to_json()
    for hidden in ("71.4", "71,4", "85.7", "62.5"):
        assert hidden not in dumped, hidden
    assert "样本不足 (n < 10)" in json.loads(dumped)["data"][-1]["text"]


# --- the Excel export ------------------------------------------------------------------------------------------

def _sheets(download) -> dict[str, pd.DataFrame]:
    import base64
    import io

    assert download["filename"].endswith(".xlsx")
    return pd.read_excel(io.BytesIO(base64.b64decode(download["content"])), sheet_name=None)


def test_export_withholds_what_the_page_withholds(page, raw):
    download, message = page.export(1, {"school": "BJ-U01"})
    assert message is None and download["filename"] == "service-BJ-U01-2026-10-17-2026-11-15.xlsx"
    sheets = _sheets(download)
    assert {"说明", "指标", "服务类别", "评价人类型", "矩阵", "趋势", "按优先级", "各类别工单", "工单量", "未完结工单"} <= set(sheets)
    lines = sheets["服务类别"].set_index("服务类别")
    assert list(lines.loc["场馆", ["满意度指数", "满意率", "净推荐值"]]) == ["样本不足 (n < 10)"] * 3
    r = responses(raw, dict(school="BJ-U01"))
    dining = r[r.service_line == "dining"]
    assert lines.loc["餐饮", "评价数"] == len(dining)
    assert lines.loc["餐饮", "满意度指数"] == pytest.approx(round(csi(dining), 1))
    indicators = sheets["指标"].set_index("指标")
    assert indicators.loc["满意度指数", "数值"] == pytest.approx(
        round(registry.evaluate("service.csi", scope(school="BJ-U01"), PERIOD).value, 1))
    matrix = _sheets(page.export(1, {})[0])["矩阵"].set_index("学校")
    assert matrix.loc["京岚大学", "场馆"] == "样本不足 (n < 10)"
    assert matrix.loc["申禾职业技术学院", "合计"] == pytest.approx(
        round(csi(responses(raw, dict(school="SH-V01"))), 1))
    open_orders = sheets["未完结工单"]
    assert set(open_orders["工单号"]) == set(expected_open(raw, "BJ-U01").order_id)
    assert not {"评分", "rating", "姓名"} & set(open_orders.columns)


def test_export_in_english_and_on_a_hand_built_warehouse(page, hand_wh):
    sheets = _sheets(page.export(1, {"school": "S1", "from": "2026-03-01", "to": "2026-03-19", "lang": "en"})[0])
    lines = sheets["Service lines"].set_index("Service line")
    assert list(lines.loc["Dining", ["CSI", "Satisfied", "NPS"]]) == ["Too few (n < 10)"] * 3
    assert lines.loc["Dormitory", "CSI"] == "Withheld (protects n < 10)"   # else dining = tile − dormitory
    assert lines.loc["Dormitory", "Responses"] == 10
    values = sheets["Indicators"].set_index("Indicator")["Value"]
    assert values["Responded within SLA"] == "Too few (n < 10)"      # 7 orders due
    assert set(sheets["Open orders"]["Order"]) == {"O3", "O4", "O7", "O8"}


def test_export_of_a_bad_request_is_a_message(page):
    download, message = page.export(1, {"school": "NOPE"})
    assert download is dash_no_update() and "未找到学校" in _text(message)


def dash_no_update():
    from dash import no_update

    return no_update


def test_big_matrix_shows_the_worst_rows_and_says_so():
    from components import service as view
    from data_access.registry import Result
    from data_access.service import Matrix

    ind = registry.get("service.csi")
    rows = [(f"S{i:03d}", {"dining": Result(ind.id, 50.0 + i * 0.1, "red", n=20)},
             Result(ind.id, 50.0 + i * 0.1, "red", n=20)) for i in range(100)]
    mat = Matrix("school", ["dining"], rows, {"dining": Result(ind.id, 55.0, "red", n=2000)}, 0)
    block = view.matrix_block(mat, "school", ind, {}, "zh", 10, None, lambda k: "/service", lambda k, ln: "/service")
    text = _text(block)
    assert "仅显示最差的 40 个（共 100 个）" in text and "S039" in text and "S040" not in text
