"""The weekly review (data_access.review, data_access.notes, pages/review.py): ISO and teaching week arithmetic,
every comparison value against an independent computation over the raw tables, what changed, the alerts
opened and closed, and the notes and action items (persistence, carry-forward, who/when, scope)."""
from __future__ import annotations

import datetime as dt
import math
import os
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from data_access import appdb, config, notes, overview, registry, review
from data_access.config import get_config
from data_access.errors import InputError
from data_access.period import Period
from data_access.review import IsoWeek

from .conftest import TODAY
from .helpers import org_frames, scope, use_warehouse, write_warehouse

D = dt.date
W46 = IsoWeek(2026, 46)



# --- ISO weeks ----------------------------------------------------------------------------------------------

def test_iso_weeks_in_year():
    assert [review.weeks_in_year(y) for y in (2020, 2021, 2025, 2026, 2027)] == [53, 52, 52, 53, 52]


def test_week_one_and_week_fifty_three():
    w1 = IsoWeek(2026, 1)
    assert (w1.start, w1.end) == (D(2025, 12, 29), D(2026, 1, 4))       # week 1 begins in December
    assert w1.previous() == IsoWeek(2025, 52)                            # 2025 has no week 53
    assert w1.same_week_last_year() == IsoWeek(2025, 1)
    assert IsoWeek(2025, 1).start == D(2024, 12, 30)
    w53 = IsoWeek(2026, 53)
    assert (w53.start, w53.end) == (D(2026, 12, 28), D(2027, 1, 3))     # week 53 ends in January
    assert w53.next() == IsoWeek(2027, 1) and IsoWeek(2027, 1).previous() == w53
    assert w53.same_week_last_year() == IsoWeek(2025, 52)                # no week 53 in 2025: its last week
    assert IsoWeek(2020, 53).same_week_last_year() == IsoWeek(2019, 52)   # 53-week years never follow each other
    assert IsoWeek.of(D(2027, 1, 1)) == w53 and IsoWeek.of(D(2021, 1, 3)) == IsoWeek(2020, 53)
    assert w53.period == Period(D(2026, 12, 28), D(2027, 1, 3)) and w53.period.days == 7


@pytest.mark.parametrize("text, expected", [("2026-W46", (2026, 46)), ("2026W46", (2026, 46)),
                                            (" 2026-w05 ", (2026, 5)), ("2026-W53", (2026, 53))])
def test_parse_week(text, expected):
    w = IsoWeek.parse(text)
    assert (w.year, w.week) == expected and str(w) == f"{expected[0]}-W{expected[1]:02d}"


@pytest.mark.parametrize("text", ["2025-W53", "2026-W54", "2026-W00", "W46", "2026-46-1", "", "二〇二六"])
def test_parse_week_refuses_what_is_no_iso_week(text):
    with pytest.raises(InputError):
        IsoWeek.parse(text)


@pytest.mark.parametrize("today, expected", [(D(2026, 11, 16), W46), (D(2026, 11, 22), W46), (D(2026, 11, 21), W46),
                                             (D(2026, 11, 23), IsoWeek(2026, 47)), (D(2027, 1, 4), IsoWeek(2026, 53))])
def test_last_complete_week(today, expected):
    assert review.last_complete_week(today) == expected


def test_week_from_params():
    s = scope(school="SH-U01")
    assert review.week_from_params(s, {}, TODAY) == W46
    assert review.week_from_params(s, {"week": "2026-W40"}, TODAY) == IsoWeek(2026, 40)
    assert review.week_from_params(s, {"tw": "10"}, TODAY) == W46
    with pytest.raises(InputError):
        review.week_from_params(s, {"tw": "x"}, TODAY)
    with pytest.raises(InputError):
        review.build(s, IsoWeek(2026, 48), TODAY)       # has not begun


# --- teaching weeks -----------------------------------------------------------------------------------------

def _calendar_rows(school: str, start: D, end: D, terms, holidays) -> pd.DataFrame:
    """A school calendar: terms (first Monday, last day), holidays (first, last); teaching weeks counted from
    each term's first Monday, none on holidays and in vacations."""
    rows = []
    day = start
    while day <= end:
        kind, week = "vacation", None
        for first, last in terms:
            if first <= day <= last:
                kind, week = "term", (day - first).days // 7 + 1
        if any(a <= day <= b for a, b in holidays):
            kind, week = "holiday", None
        rows.append({"school_id": school, "cal_date": day, "day_type": kind, "teaching_week": week})
        day += dt.timedelta(days=1)
    frame = pd.DataFrame(rows)
    frame["teaching_week"] = frame["teaching_week"].astype("Int64")
    return frame


@pytest.fixture(scope="module")
def calendar_warehouse(tmp_path_factory):
    """S1 numbers its weeks through the National Day holiday (week 5 = the days after it); S2 has no calendar
    rows (the default calendar of config applies)."""
    frames = org_frames(schools=(("S1", "university", "310000"), ("S2", "vocational", "310000")))
    frames["dim_school_calendar"] = _calendar_rows(
        "S1", D(2025, 8, 1), D(2026, 12, 31),
        terms=[(D(2025, 9, 1), D(2026, 1, 16)), (D(2026, 2, 23), D(2026, 7, 10)), (D(2026, 9, 7), D(2027, 1, 15))],
        holidays=[(D(2025, 10, 1), D(2025, 10, 7)), (D(2026, 1, 1), D(2026, 1, 1)), (D(2026, 5, 1), D(2026, 5, 5)),
                  (D(2026, 10, 1), D(2026, 10, 7))])
    return write_warehouse(tmp_path_factory.mktemp("cal") / "cal.duckdb", frames)


def test_term_week_across_a_holiday(calendar_warehouse):
    with use_warehouse(calendar_warehouse, today=D(2026, 11, 16)):
        s1 = scope(school="S1")
        # W40 (Sep 28–Oct 4): Mon–Wed are week 4, Thu–Sun the holiday; W41 (Oct 5–11): Mon–Wed holiday, Thu–Sun week 5
        w40, w41, w42 = (review.term_week(s1, IsoWeek(2026, n)) for n in (40, 41, 42))
        assert (w40.number, w41.number, w42.number) == (4, 5, 6)
        assert w41.term_start == D(2026, 9, 7)
        # the same teaching week last term: spring week 5 = the week of Mar 23 (W13); spring week 10 spans May Day
        assert w41.last_term == IsoWeek(2026, 13) and w41.last_term_start == D(2026, 2, 23)
        w46 = review.term_week(s1, IsoWeek(2026, 46))
        assert w46.number == 10 and w46.last_term == IsoWeek(2026, 18)
        assert IsoWeek(2026, 18).period == Period(D(2026, 4, 27), D(2026, 5, 3))   # compared over all 7 days
        # a teaching week is reviewed as the ISO week of its first labelled day, the holiday days included
        assert review.resolve_teaching_week(s1, 5, D(2026, 11, 16)) == IsoWeek(2026, 41)
        assert review.resolve_teaching_week(s1, 12, D(2026, 11, 16)) == IsoWeek(2026, 20)   # autumn has not reached 12
        assert review.term_week(s1, IsoWeek(2026, 32)) is None                               # summer vacation
        assert review.term_week(s1, IsoWeek(2026, 9)).last_term == IsoWeek(2025, 36)         # across New Year
        with pytest.raises(InputError):
            review.resolve_teaching_week(s1, 30, D(2026, 11, 16))


def test_default_calendar_gives_teaching_weeks(calendar_warehouse):
    with use_warehouse(calendar_warehouse, today=D(2026, 11, 16)):
        s2 = scope(school="S2")
        # config: vacation 07-10..08-31, so the autumn term starts Tue Sep 1: week 1 is the week of Aug 31
        assert review.term_week(s2, IsoWeek(2026, 36)).number == 1
        term = review.term_week(s2, W46)
        assert term.number == 11 and term.term_start == D(2026, 9, 1)
        # 10-01..10-07 are default holidays: W40 still has Mon–Wed labelled 5
        assert review.term_week(s2, IsoWeek(2026, 40)).number == 5
        # spring: vacation ends 02-25, the term starts Thu Feb 26: week 1 is the week of Feb 23
        assert term.last_term == IsoWeek(2026, 19)
        # both schools: each numbers its own way; the scope takes what most give and says how many
        both = review.term_week(scope(), W46)
        assert both.of == 2 and both.schools == 1 and both.number in (10, 11)


def test_teaching_week_options_are_begun_weeks(calendar_warehouse):
    with use_warehouse(calendar_warehouse, today=D(2026, 11, 16)):
        options = dict((str(w), n) for n, w in review.teaching_week_options(scope(school="S1"), D(2026, 11, 16)))
        assert options["2026-W46"] == 10 and options["2026-W41"] == 5 and "2026-W47" not in options
        assert options["2026-W20"] == 12                    # the previous term too


def test_demo_teaching_weeks_from_the_raw_calendar(raw):
    cal = raw("dim_school_calendar")
    cal = cal[cal.school_id == "SH-U01"].assign(day=lambda f: pd.to_datetime(f.cal_date).dt.date).sort_values("day")
    inside = cal[(cal.day >= W46.start) & (cal.day <= W46.end) & cal.teaching_week.notna()]
    number = int(Counter(inside.teaching_week).most_common(1)[0][0])
    labelled = cal[cal.teaching_week == number].day.tolist()
    runs = [[labelled[0]]]
    for d in labelled[1:]:
        if (d - runs[-1][-1]).days <= 14:
            runs[-1].append(d)
        else:
            runs.append([d])
    previous_first = runs[-2][0]
    term = review.term_week(scope(school="SH-U01"), W46)
    assert term.number == number
    assert term.last_term == IsoWeek.of(previous_first)


# --- comparisons against independent computations -----------------------------------------------------------

def _facilities(raw, params):
    fac = raw("dim_facility").merge(raw("dim_school")[["school_id", "region_code"]], on="school_id")
    for k in ("facility", "school"):
        if k in params:
            fac = fac[fac[f"{k}_id"] == params[k]]
    if "region" in params:
        fac = fac[fac.region_code == params["region"]]
    return set(fac.facility_id)


def _schools(raw, params):
    s = raw("dim_school")
    if "facility" in params:
        fac = raw("dim_facility")
        s = s[s.school_id.isin(fac.loc[fac.facility_id == params["facility"], "school_id"])]
    if "school" in params:
        s = s[s.school_id == params["school"]]
    if "region" in params:
        s = s[s.region_code == params["region"]]
    return set(s.school_id)


def _within(series, period):
    d = pd.to_datetime(series).dt.date
    return (d >= period.start) & (d <= period.end)


def expected_cold_chain(raw, params, period):
    bands = get_config().dining["cold_chain"]
    r = raw("fact_cold_chain_reading")
    r = r[_within(r.ts, period) & r.facility_id.isin(_facilities(raw, params))]
    if r.empty:
        return None
    lo = r.zone.map(lambda z: -np.inf if bands[z]["min"] is None else bands[z]["min"])
    hi = r.zone.map(lambda z: np.inf if bands[z]["max"] is None else bands[z]["max"])
    return 100.0 * ((r.temp_c >= lo) & (r.temp_c <= hi)).sum() / len(r)


def expected_kgce(raw, params, period):
    meters = raw("dim_meter")
    meters = meters[meters.parent_meter_id.isna() & meters.facility_id.isin(_facilities(raw, params))]
    r = raw("fact_meter_reading")
    r = r[r.meter_id.isin(meters.meter_id) & _within(r.ts, period)]
    by_type = r.merge(meters[["meter_id", "energy_type"]], on="meter_id").groupby("energy_type").consumption.sum()
    if by_type.empty:
        return None
    return sum(by_type.get(t, 0.0) * f for t, f in get_config().energy["kgce_factor"].items())


def expected_csi(raw, params, period):
    r = raw("fact_survey_response")
    r = r[r.school_id.isin(_schools(raw, params)) & _within(r.submitted_on, period)]
    if "facility" in params:    # below school level only the responses naming the facility count
        r = r[r.facility_id == params["facility"]]
    if len(r) < get_config().min_group_size:
        return None if r.empty else "suppressed"
    return float(((r.score - 1) / 4 * 100).mean())


def expected_sample_retention(raw, params, period):
    """Σok ÷ Σdue over every due slot: a sample per served meal (covers > 0); a missing row is 1 due, 0 ok."""
    meals = raw("fact_meals_served")
    meals = meals[(meals.covers > 0) & _within(meals.service_date, period)
                  & meals.facility_id.isin(_facilities(raw, params))]
    slots = pd.DataFrame({"facility_id": meals.facility_id, "check_date": pd.to_datetime(meals.service_date).dt.date,
                          "meal": meals.meal})
    checks = raw("fact_dining_check")
    checks = checks[checks.check_type == "sample_retention"]
    checks = checks.assign(check_date=pd.to_datetime(checks.check_date).dt.date)
    merged = slots.merge(checks, on=["facility_id", "check_date", "meal"], how="left")
    due, ok = merged.items_due.fillna(1).sum(), merged.items_ok.fillna(0).sum()
    return None if due == 0 else 100.0 * ok / due


EXPECTED = {"dining.cold_chain": expected_cold_chain, "energy.total_kgce": expected_kgce, "service.csi": expected_csi,
            "dining.sample_retention": expected_sample_retention}


def _expected_last_term(raw, school_ids, week):
    """The same teaching week of last term from the raw calendars: per school the mode number in the week, the
    first day labelled so in the previous run of that number; the scope's choice is the most common week."""
    cal = raw("dim_school_calendar").assign(day=lambda f: pd.to_datetime(f.cal_date).dt.date)
    votes = Counter()
    for sid in school_ids:
        c = cal[(cal.school_id == sid) & cal.teaching_week.notna()].sort_values("day")
        inside = c[(c.day >= week.start) & (c.day <= week.end)]
        if inside.empty:
            continue
        number = Counter(inside.teaching_week).most_common(1)[0][0]
        days = c[c.teaching_week == number].day.tolist()
        firsts = [days[0]] + [b for a, b in zip(days, days[1:]) if (b - a).days > 14]
        current = max(d for d in firsts if d <= week.end)
        before = [d for d in firsts if d < current]
        votes[(number, IsoWeek.of(before[-1]) if before else None)] += 1
    return votes.most_common(1)[0][0][1] if votes else None


@pytest.mark.parametrize("params", [dict(school="SH-U01"), dict(), dict(facility="SH-K01-C1-CAN1")])
def test_every_comparison_against_independent_computation(raw, params):
    s = scope(**params)
    data = review.build(s, W46, TODAY, with_alerts=False, with_trends=False)
    assert data.periods["this"] == Period(D(2026, 11, 9), D(2026, 11, 15))
    assert data.periods["last_week"] == Period(D(2026, 11, 2), D(2026, 11, 8))
    assert data.periods["last_year"] == Period(D(2025, 11, 10), D(2025, 11, 16))
    last_term = _expected_last_term(raw, sorted(_schools(raw, params)), W46)
    assert data.weeks["last_term"] == last_term
    rows = {r.indicator.id: r for rows in data.rows.values() for r in rows}
    checked = 0
    for ind_id, compute in EXPECTED.items():
        if ind_id not in rows:
            continue
        row = rows[ind_id]
        for key in ("this", "last_week", "last_year", "last_term"):
            period = data.periods[key]
            expected = compute(raw, params, period) if period else None
            got = row.results[key]
            if expected == "suppressed":
                assert got.status == "suppressed" and got.value is None, (ind_id, key)
            elif expected is None:
                assert got is None or got.value is None, (ind_id, key)
            else:
                assert got.value == pytest.approx(expected, rel=1e-9), (ind_id, key)
                checked += 1
        ind = row.indicator
        for key in ("last_week", "last_year", "last_term"):
            cur, prev = row.results["this"], row.results[key]
            if cur is None or prev is None or cur.value is None or prev.value is None:
                assert row.changes[key] is None
            elif ind.change == "rel":
                assert row.changes[key] == pytest.approx(100 * (cur.value / prev.value - 1))
            else:
                assert row.changes[key] == pytest.approx(cur.value - prev.value)
    assert checked >= 8


def test_week_one_compares_across_the_new_year(raw):
    data = review.build(scope(school="SH-U01"), IsoWeek(2026, 1), TODAY, with_alerts=False, with_trends=False)
    assert data.periods["last_week"] == Period(D(2025, 12, 22), D(2025, 12, 28))
    assert data.periods["last_year"] == Period(D(2024, 12, 30), D(2025, 1, 5))        # before the data: no values
    rows = {r.indicator.id: r for rows in data.rows.values() for r in rows}
    assert rows["energy.total_kgce"].results["last_year"].value is None
    assert rows["energy.total_kgce"].results["this"].value == pytest.approx(
        expected_kgce(raw, {"school": "SH-U01"}, Period(D(2025, 12, 29), D(2026, 1, 4))))


def test_rows_follow_the_configured_indicators():
    data = review.build(scope(school="SH-U01"), W46, TODAY, with_alerts=False, with_trends=False)
    configured = get_config().review["indicators"]
    for domain, ids in configured.items():
        assert [r.indicator.id for r in data.rows[domain]] == list(ids)
    # at a canteen, indicators meaningful only at school level and above are left out
    data = review.build(scope(facility="SH-U01-C1-CAN1"), W46, TODAY, with_alerts=False, with_trends=False)
    assert "maturity.score" not in {r.indicator.id for rows in data.rows.values() for r in rows}


# --- what changed, alerts -----------------------------------------------------------------------------------

def test_movements_are_ranked_by_size_and_new_reds_listed():
    s = scope(school="SH-U01")
    data = review.build(s, W46, TODAY, with_alerts=False, with_trends=False)
    assert 0 < len(data.movements) <= get_config().review["top_movements"]
    scores = [m.score for m in data.movements]
    assert scores == sorted(scores, reverse=True)
    band_pct = get_config().review["relative_band_pct"]
    for m in data.movements:
        before = registry.evaluate(m.indicator.id, s, data.periods["last_week"])
        after = registry.evaluate(m.indicator.id, s, data.periods["this"])
        assert (m.before.value, m.after.value) == (before.value, after.value)
        t = get_config().threshold(m.indicator.id)
        if t is not None and t.green != t.amber:
            assert m.score == pytest.approx(abs(after.value - before.value) / abs(t.green - t.amber))
        elif before.value:
            assert m.score == pytest.approx(abs(after.value / before.value - 1) * 100 / band_pct)
        if m.indicator.direction == "higher":
            assert m.worse == (after.value < before.value)
    everything = [i for i in registry.all_indicators() if i.domain in overview.DOMAINS and s.level in i.levels]
    expected_red = {i.id for i in everything
                    if registry.evaluate(i.id, s, data.periods["this"]).status == "red"
                    and registry.evaluate(i.id, s, data.periods["last_week"]).status != "red"}
    assert {m.indicator.id for m in data.new_red} == expected_red
    assert expected_red   # the demo week has some (hazard closure, energy year on year)


@pytest.mark.parametrize("params", [dict(school="SH-U01"), dict()])
def test_alerts_opened_and_closed(params):
    s = scope(**params)
    data = review.build(s, W46, TODAY, with_trends=False)
    now = {(a.indicator_id, a.level, a.key) for a in overview.alerts(s, data.periods["this"])}
    before = {(a.indicator_id, a.level, a.key) for a in overview.alerts(s, data.periods["last_week"])}
    got = {state: {(c.alert.indicator_id, c.alert.level, c.alert.key) for c in data.alerts if c.state == state}
           for state in ("opened", "closed", "continuing")}
    assert got == {"opened": now - before, "closed": before - now, "continuing": now & before}
    for c in data.alerts:
        if c.state == "closed" and c.now is not None:
            assert c.now.status != "red"
        if c.state == "opened":
            assert c.now.status == "red" and (c.before is None or c.before.status != "red")
    assert data.alerts, "the demo week has alerts"


def test_trends_cover_the_configured_weeks():
    data = review.build(scope(school="SH-U01"), W46, TODAY, with_alerts=False)
    n = get_config().review["trend_weeks"]
    ind, points = data.trends["energy"]
    assert ind.id == "energy.total_kgce" and len(points) == n
    assert points[-1].key == W46.start.isoformat()
    expected = registry.evaluate("energy.total_kgce", scope(school="SH-U01"), W46.period).value
    assert points[-1].value == pytest.approx(expected)


# --- notes and action items ---------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "duckdb", "pg", "mysql"])
def app_db(request, tmp_path):
    url = {"sqlite": f"sqlite:///{tmp_path / 'app.db'}", "duckdb": f"duckdb:///{tmp_path / 'app.duckdb'}",
           "pg": os.environ.get("COCKPIT_TEST_PG_URL"),
           "mysql": os.environ.get("COCKPIT_TEST_MYSQL_URL")}[request.param]
    if not url:
        pytest.skip(f"set COCKPIT_TEST_{request.param.upper()}_URL to an empty scratch database")
    before = config.get_config()
    config.override(app_db_url=url)
    appdb.reset()
    notes.reset()
    if request.param == "duckdb":
        try:
            appdb.app_engine()
        except Exception as exc:  # another module's table DuckDB cannot create (an autoincrement Integer key)
            appdb.reset()
            config.set_config(before)
            if "SERIAL" in str(exc):
                pytest.skip("a table of appdb.metadata has an Integer autoincrement key (SERIAL): DuckDB cannot "
                            "create it (STACK-NOTES); review_item itself uses text keys")
            raise
    if request.param in ("pg", "mysql"):
        with appdb.app_engine().begin() as conn:
            for table in (notes.review_item_event, notes.review_item):
                table.drop(conn, checkfirst=True)
        notes.reset()
    try:
        yield url
    finally:
        appdb.reset()
        notes.reset()
        config.set_config(before)


def test_items_persist_and_carry_forward_until_closed(app_db):
    s = scope(school="SH-U01")
    action = notes.add_item(s, "2026-W45", "action", "更换第一食堂冷柜门封条", indicator_id="dining.cold_chain",
                            owner="膳食科科长", due_on="2026-11-13")
    note = notes.add_item(s, "2026-W45", "note", "关注能耗同比上升", indicator_id="energy.yoy")
    later = notes.add_item(s, "2026-W46", "note", "本周复盘")
    assert [i.item_id for i in notes.items_for(s, "2026-W44")] == []
    w45 = {i.item_id: i for i in notes.items_for(s, "2026-W45")}
    assert set(w45) == {action, note} and not any(i.carried for i in w45.values())
    assert not w45[action].overdue                                   # due Fri of W46... not yet at W45's end
    # persisted: a new engine (another worker, a restart) reads the same rows
    appdb.reset()
    notes.reset()
    w46 = {i.item_id: i for i in notes.items_for(s, "2026-W46")}
    assert set(w46) == {action, note, later}
    assert w46[action].carried and w46[note].carried and not w46[later].carried
    assert w46[action].overdue and w46[action].owner == "膳食科科长" and w46[action].due_on == D(2026, 11, 13)
    assert w46[action].indicator_id == "dining.cold_chain" and w46[action].place == {"region": "310000",
                                                                                       "school": "SH-U01"}
    # closed in W46: still listed in W46 (as closed), gone from W47 on; the open note goes on
    assert notes.update_item(action, "2026-W46", scope=s, status="done", who="王科长")
    w46 = {i.item_id: i for i in notes.items_for(s, "2026-W46")}
    assert w46[action].status == "done" and w46[action].closed_week == "2026-W46" and not w46[action].overdue
    assert w46[action].updated_by == "王科长"
    assert set(i.item_id for i in notes.items_for(s, "2026-W47")) == {note, later}
    assert set(i.item_id for i in notes.items_for(s, "2027-W10")) == {note, later}
    # reopened: carried again
    assert notes.update_item(action, "2026-W47", status="in_progress")
    assert action in {i.item_id for i in notes.items_for(s, "2026-W48")}
    # closed from an older week's page: closed as of its own week at the earliest
    notes.update_item(later, "2026-W40", status="cancelled")
    assert later not in {i.item_id for i in notes.items_for(s, "2026-W47")}
    assert later in {i.item_id for i in notes.items_for(s, "2026-W46")}
    assert not notes.update_item(later, "2026-W46", status="cancelled")       # nothing changed


def test_who_and_when_are_recorded(app_db, monkeypatch):
    from flask import Flask, session

    from data_access import request as req

    s = scope(school="SH-U01")
    # nobody known (before accounts, or a CLI): the session's display name, else 匿名/anonymous
    monkeypatch.setattr(req, "current_user_name", lambda: "anonymous", raising=False)
    assert notes.current_user_name() == notes.ANONYMOUS == "匿名/anonymous"
    before = dt.datetime.now().replace(microsecond=0)
    item = notes.add_item(s, "2026-W46", "note", "无署名")
    app = Flask("t")
    app.secret_key = "k"
    with app.test_request_context("/"):
        session["display_name"] = "后勤处 李主任"
        assert notes.current_user_name() == "后勤处 李主任"
        notes.update_item(item, "2026-W46", text="有署名", owner="膳食科")
    (found,) = notes.items_for(s, "2026-W46")
    assert found.created_by == notes.ANONYMOUS and found.updated_by == "后勤处 李主任"
    assert before <= found.created_at <= found.updated_at <= dt.datetime.now()
    events = notes.events(item)
    assert [e["action"] for e in events] == ["create", "update"]
    assert events[1]["changed_by"] == "后勤处 李主任" and events[1]["changes"]["text"] == ["无署名", "有署名"]
    assert events[1]["changes"]["owner"] == [None, "膳食科"]
    # the logged-in user, once the accounts work knows one, comes first
    monkeypatch.setattr(req, "current_user_name", lambda: "demo-director", raising=False)
    notes.update_item(item, "2026-W47", status="done")
    assert notes.events(item)[-1]["changed_by"] == "demo-director"
    assert notes.events(item)[-1]["changes"]["status"] == ["open", "done"]


def test_items_follow_the_scope(app_db):
    canteen = notes.add_item(scope(facility="SH-U01-C1-CAN1"), "2026-W46", "note", "食堂")
    school = notes.add_item(scope(school="SH-U01"), "2026-W46", "note", "学校")
    region = notes.add_item(scope(region="310000"), "2026-W46", "note", "地区")
    other = notes.add_item(scope(school="SH-K01"), "2026-W46", "note", "另一所学校")

    def ids(**params):
        return {i.item_id for i in notes.items_for(scope(**params), "2026-W46")}

    assert ids(facility="SH-U01-C1-CAN1") == {canteen}
    assert ids(school="SH-U01") == {canteen, school}                 # the places inside the school too
    assert ids(region="310000") == {canteen, school, region, other}
    assert ids() == {canteen, school, region, other}
    assert ids(region="110000") == set()
    from data_access.scope import Access, resolve_scope

    only_k01 = resolve_scope({}, Access(frozenset({"SH-K01"})))
    assert {i.item_id for i in notes.items_for(only_k01, "2026-W46")} == {other}   # nothing outside one's schools
    nobody = resolve_scope({}, Access())
    assert notes.items_for(nobody, "2026-W46") == []
    with pytest.raises(InputError):
        notes.update_item(school, "2026-W46", scope=scope(school="SH-K01"), status="done")


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="note", text="   "), "请填写内容"),
    (dict(kind="note", text="x" * 2001), "内容过长"),
    (dict(kind="action", text="无负责人", due_on="2026-11-20"), "负责人"),
    (dict(kind="action", text="无截止日期", owner="科长"), "截止日期"),
    (dict(kind="todo", text="x"), "未知类型"),
    (dict(kind="note", text="x", indicator_id="dining.nope"), "未知指标"),
    (dict(kind="note", text="x", due_on="2026-13-01"), "截止日期无效"),
    (dict(kind="note", text="x", status="closed"), "未知状态"),
])
@pytest.mark.parametrize("app_db", ["sqlite"], indirect=True)
def test_item_validation(app_db, kwargs, message):
    kwargs = dict(kwargs)
    kind = kwargs.pop("kind")
    text = kwargs.pop("text")
    with pytest.raises(InputError) as err:
        notes.add_item(scope(school="SH-U01"), "2026-W46", kind, text, **kwargs)
    assert message in err.value.message("zh")
    with pytest.raises(InputError):
        notes.add_item(scope(school="SH-U01"), "2026-W60", "note", "bad week")


# --- the page's callbacks, called as functions ----------------------------------------------------------------

@pytest.fixture(scope="module")
def page():
    import app  # noqa: F401  (registers the pages)
    from pages import review as page

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


def test_render_and_messages(page):
    content = page.render({"school": "SH-U01", "week": "2026-W46"})
    found = _ids(content)
    assert {"review-key", "review-key-table", "review-changed", "review-alerts", "review-trends",
            "review-export-xlsx", "review-export-pdf"} <= found
    assert "input-error" in _ids(page.render({"school": "SH-U01", "week": "2026-W99"}))
    assert "input-error" in _ids(page.render({"school": "NOPE"}))
    assert "input-error" in _ids(page.render({"school": "SH-U01", "week": "2027-W10"}))   # not begun


def test_report_sections(page):
    rep = page.report({"school": "SH-U01", "week": "2026-W46"})
    keys = [s.key for s in rep.sections]
    assert keys[:4] == ["indicators", "movements", "new-red", "alerts"] and keys[-1] == "notes"
    assert {"trend-dining", "trend-energy", "trend-service"} <= set(keys)
    assert rep.filename == "review-SH-U01-2026-W46" and "2026-W46" in rep.title and "沪澜大学" in rep.title
    table = rep.section("indicators").table
    data = review.build(scope(school="SH-U01"), W46, TODAY, with_alerts=False, with_trends=False)
    this_col = next(c for c in table.columns if c.startswith("本周"))
    for row in (r for rows in data.rows.values() for r in rows):
        shown = table.loc[table["指标"] == row.indicator.name_zh, this_col].iloc[0]
        value = row.results["this"].value
        if value is None:
            assert shown is None or (isinstance(shown, float) and math.isnan(shown))
        elif row.indicator.unit == "%":
            factor = 10 ** row.indicator.decimals
            assert shown == pytest.approx(math.trunc(value * factor) / factor)
        else:
            assert shown == pytest.approx(value)


# --- a week in progress ---------------------------------------------------------------------------------------

THURSDAY = D(2026, 11, 12)      # "today" inside W46: Monday–Wednesday (9–11 November) have passed


def test_a_week_in_progress_is_compared_like_for_like(raw):
    """Its days so far against the same weekdays of every other week, never a part of a week against whole ones;
    each value against the raw tables over those days (written out by hand)."""
    params = {"school": "SH-U01"}
    s = scope(**params)
    data = review.build(s, W46, THURSDAY, with_trends=False)
    assert data.in_progress and data.days == 3
    assert data.periods["this"] == Period(D(2026, 11, 9), D(2026, 11, 11))
    assert data.periods["last_week"] == Period(D(2026, 11, 2), D(2026, 11, 4))
    assert data.periods["last_year"] == Period(D(2025, 11, 10), D(2025, 11, 12))      # W46 of 2025: Mon–Wed
    last_term = _expected_last_term(raw, sorted(_schools(raw, params)), W46)
    assert data.periods["last_term"] == Period(last_term.start, last_term.start + dt.timedelta(days=2))
    rows = {r.indicator.id: r for rows in data.rows.values() for r in rows}
    kgce = rows["energy.total_kgce"]
    for key in ("this", "last_week", "last_year", "last_term"):
        assert kgce.results[key].value == pytest.approx(expected_kgce(raw, params, data.periods[key]), rel=1e-9), key
        cold = expected_cold_chain(raw, params, data.periods[key])
        assert rows["dining.cold_chain"].results[key].value == pytest.approx(cold, rel=1e-9), key
    this, before = (expected_kgce(raw, params, data.periods[k]) for k in ("this", "last_week"))
    assert kgce.changes["last_week"] == pytest.approx(100 * (this / before - 1))
    # against a whole last week three days would look like a drop of more than a third; like for like they do not
    whole = expected_kgce(raw, params, Period(D(2026, 11, 2), D(2026, 11, 8)))
    assert 100 * (this / whole - 1) < -33 and abs(kgce.changes["last_week"]) < 15
    # what changed and the alerts are judged over the same days
    for m in data.movements:
        assert m.before.value == registry.evaluate(m.indicator.id, s, data.periods["last_week"]).value
        assert m.after.value == registry.evaluate(m.indicator.id, s, data.periods["this"]).value
    now = {(a.indicator_id, a.level, a.key) for a in overview.alerts(s, data.periods["this"])}
    assert {(c.alert.indicator_id, c.alert.level, c.alert.key) for c in data.alerts if c.state != "closed"} == now
    # a complete week stays a whole week
    full = review.build(s, W46, TODAY, with_alerts=False, with_trends=False)
    assert not full.in_progress and full.days == 7 and full.periods["this"] == W46.period


def test_a_week_in_progress_is_marked_on_the_page_and_in_the_exports(page):
    before = config.get_config()
    params = {"school": "SH-U01", "week": "2026-W46"}
    try:
        config.override(today_override=THURSDAY)
        found = _ids(page.render(params))
        assert {"review-partial", "review-changed-partial"} <= found
        text = str(page.render(params))
        assert "进行中 · 前 3 天" in text and "2026-11-09 至 2026-11-11" in text and "临时结果" in text
        rep = page.report(params)
        assert any("前 3 天" in v for _k, v in rep.meta)
        for key in ("indicators", "movements", "new-red", "trend-energy"):
            assert any("3 天" in line for line in rep.section(key).text), key
        assert any(c.startswith("本周 (2026-11-09–11-11)") for c in rep.section("indicators").table.columns)
    finally:
        config.set_config(before)
    found = _ids(page.render(params))
    assert not {"review-partial", "review-changed-partial"} & found        # the complete week: no mark
    assert all("3 天" not in line for line in page.report(params).section("movements").text)


@pytest.mark.parametrize("app_db", ["sqlite"], indirect=True)
def test_due_on_the_weeks_last_day_is_not_overdue(app_db):
    s = scope(school="SH-U01")
    sunday = notes.add_item(s, "2026-W46", "action", "周日到期", owner="科长", due_on="2026-11-15")
    saturday = notes.add_item(s, "2026-W46", "action", "周六到期", owner="科长", due_on="2026-11-14")
    items = {i.item_id: i for i in notes.items_for(s, "2026-W46", W46.end, today=TODAY)}
    assert not items[sunday].overdue and items[saturday].overdue
    # a week later, the Sunday has passed
    items = {i.item_id: i for i in notes.items_for(s, "2026-W47", today=D(2026, 11, 23))}
    assert items[sunday].overdue
    # in a week in progress (Thursday 12 November): due yesterday is overdue, due today or later is not
    wednesday = notes.add_item(s, "2026-W46", "action", "周三到期", owner="科长", due_on="2026-11-11")
    thursday = notes.add_item(s, "2026-W46", "action", "周四到期", owner="科长", due_on="2026-11-12")
    items = {i.item_id: i for i in notes.items_for(s, "2026-W46", W46.end, today=THURSDAY)}
    assert items[wednesday].overdue and not items[thursday].overdue and not items[saturday].overdue


def _find(component, cid):
    if isinstance(component, (list, tuple)):
        return next((f for f in (_find(c, cid) for c in component) if f is not None), None)
    if getattr(component, "id", None) == cid:
        return component
    children = getattr(component, "children", None)
    return None if children is None else _find(children, cid)


@pytest.mark.parametrize("params", [{}, {"school": "SH-U01"}])
def test_every_alert_change_is_in_the_grid(page, params):
    """The alert changes are an AG Grid with every one of them (no cap: one component however many), what
    changed first; each row's place links to that place's review for the same week."""
    grid = _find(page.render({**params, "week": "2026-W46"}), "review-alerts-table")
    assert grid is not None and type(grid).__name__ == "AgGrid"
    data = review.build(scope(**params), W46, TODAY)
    rows = grid.rowData
    assert len(rows) == len(data.alerts) > 0
    assert Counter(r["state"] for r in rows) == Counter(c.state for c in data.alerts)
    order = [r["state"] for r in rows]
    assert order == sorted(order, key=["opened", "closed", "continuing"].index)
    assert Counter((r["indicator_id"], r["state"]) for r in rows) == \
        Counter((c.alert.indicator_id, c.state) for c in data.alerts)
    assert Counter(c.alert.name for c in data.alerts if c.alert.name) <= Counter(r["where_name"] for r in rows)
    for r in rows:
        assert r["where"].startswith("[") and "](/review?" in r["where"] and "week=2026-W46" in r["where"]
