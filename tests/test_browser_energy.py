"""The energy panel in headless Chromium at association, school and facility level: it finds the demo's injected
spike, leak and missing day (demo.INCIDENTS) in the anomaly list, its tiles equal the API, the building switch and
the type switch are permalinks, and there are no console errors. Screenshots go to tests/screenshots/."""
from __future__ import annotations

import datetime as dt

import pytest
from selenium.webdriver.common.by import By

from data_access.demo import INCIDENTS

from .browser import api, assert_no_console_errors, click, current_query, open_page, screenshot, start
from .conftest import END

pytestmark = pytest.mark.browser

SPIKE, LEAK, GAP = INCIDENTS["energy_spike"], INCIDENTS["water_leak"], INCIDENTS["meter_gap"]
SPIKE_DAY = (END - dt.timedelta(days=SPIKE["days_before_end"])).isoformat()
GAP_DAY = (END - dt.timedelta(days=GAP["days_before_end"])).isoformat()
LEAK_START = END - dt.timedelta(days=LEAK["start_days_before_end"])
SPIKE_FACILITY = SPIKE["meter_id"].rsplit("-", 1)[0]
LEAK_FACILITY = LEAK["meter_id"].rsplit("-", 1)[0]


@pytest.fixture
def cockpit(dash_duo):
    return start(dash_duo)


SECTION_IDS = ("energy-curves-card", "energy-building", "energy-breakdown-card", "energy-quota-card",
               "energy-anomalies-card")


def shots(duo, name: str):
    """Desk-size screenshots (1600 × 1000 window): the top of the page, then each section scrolled to the top."""
    duo.driver.execute_script("window.scrollTo(0, 0)")
    screenshot(duo, f"{name}-1")
    for i, section in enumerate(SECTION_IDS, 2):
        duo.driver.execute_script(f"document.getElementById('{section}').scrollIntoView({{block: 'start'}})")
        screenshot(duo, f"{name}-{i}")
    duo.driver.execute_script("window.scrollTo(0, 0)")


def _rows(duo, rule):
    table = duo.wait_for_element("#energy-anomalies-card", timeout=60)
    return table.find_elements(By.CSS_SELECTOR, f"tr[data-rule='{rule}']")


def _wait_sections(duo):
    for sel in ("#energy-tiles", "#energy-curves-card", "#energy-building-charts", "#energy-breakdown-card",
                "#energy-quota-card", "#energy-intensity-card", "#energy-anomalies-card"):
        duo.wait_for_element(sel, timeout=60)


def _check_incidents(duo, level):
    spikes = _rows(duo, "spike")
    assert any(r.get_attribute("data-meter") == SPIKE["meter_id"] and r.get_attribute("data-day") == SPIKE_DAY
               for r in spikes), [(r.get_attribute("data-meter"), r.get_attribute("data-day")) for r in spikes]
    missing = _rows(duo, "missing")
    assert any(r.get_attribute("data-day") == GAP_DAY and r.get_attribute("data-facility").startswith(GAP["school"])
               for r in missing)
    if level != "school-sh":
        leaks = _rows(duo, "leak")
        row = next(r for r in leaks if r.get_attribute("data-meter") == LEAK["meter_id"])
        # the first suspect night is the leak's first day or the day after (the leak starts at 00:00)
        first = dt.date.fromisoformat(row.get_attribute("data-day"))
        assert LEAK_START <= first <= LEAK_START + dt.timedelta(days=1)


def _small_peer_groups(raw) -> bool:
    """Whether every school type of the demo has fewer than 5 schools (no peer distribution may be shown)."""
    return int(raw("dim_school").groupby("school_type").size().max()) < 5


def test_association_level_finds_spike_leak_and_gap(cockpit, raw):
    open_page(cockpit, "/energy", "", wait="#energy-tiles", timeout=60)
    _wait_sections(cockpit)
    _check_incidents(cockpit, "association")
    # tiles show what the API says
    expected = api(cockpit, "")
    checked = 0
    for tile in cockpit.driver.find_elements(By.CSS_SELECTOR, "#energy-tiles .kpi-tile"):
        ind = tile.get_attribute("data-indicator")
        shown = tile.find_element(By.CSS_SELECTOR, ".kpi-value").get_attribute("data-value")
        assert tile.get_attribute("data-status") == expected[ind]["status"], ind
        if expected[ind]["value"] is not None:
            assert float(shown) == pytest.approx(expected[ind]["value"]), ind
            checked += 1
    assert checked >= 12
    assert cockpit.find_element("#energy-rank-per_area")   # ranking of schools at association level
    if _small_peer_groups(raw):   # no median, no P25–P75; the status against each school's own last year
        # the ranking is an AG Grid: its rows as the grid holds them (every school, not only those drawn)
        rows = cockpit.driver.execute_script(
            "const out = []; dash_ag_grid.getApi('energy-rank-per_area').forEachNode(n => out.push(n.data));"
            "return out;")
        assert rows and {r["school_id"] for r in rows} <= set(raw("dim_school").school_id)
        assert all(r["median"] is None and r["iqr"] == "—" for r in rows)
        assert {r["basis"] for r in rows} <= {"last_year", ""}
        drawn = cockpit.driver.find_elements(By.CSS_SELECTOR, "#energy-rank-per_area .ag-center-cols-container "
                                                              ".ag-row [col-id='median']")
        assert drawn and all(c.text == "—" for c in drawn)
    shots(cockpit, "energy-association")
    assert_no_console_errors(cockpit)


def test_school_level_spike_gap_quota_and_building_switch(cockpit, raw):
    open_page(cockpit, "/energy", f"school={SPIKE['school']}", wait="#energy-tiles", timeout=60)
    _wait_sections(cockpit)
    _check_incidents(cockpit, "school-sh")
    # the quota school is headed over its quota
    quota = cockpit.find_element(".kpi-tile[data-indicator='energy.quota_use']")
    assert quota.get_attribute("data-status") == "red"
    assert cockpit.find_element("#energy-intensity-table")
    if _small_peer_groups(raw):   # a school leader sees no peer median: a note instead, and the tile says why
        assert cockpit.find_element("#energy-intensity-few")
        tile = cockpit.find_element(".kpi-tile[data-indicator='energy.per_area']")
        assert "同类学校不足 5 所" in tile.text and "同类中位数" not in tile.text
    shots(cockpit, "energy-school")
    # the spike's building link opens the building's charts (a permalink with building=)
    row = next(r for r in _rows(cockpit, "spike") if r.get_attribute("data-meter") == SPIKE["meter_id"])
    click(cockpit, row.find_element(By.TAG_NAME, "a"))
    cockpit.wait_for_element(f"#energy-building-charts[data-building='{SPIKE_FACILITY}']", timeout=60)
    assert current_query(cockpit)["building"] == SPIKE_FACILITY
    cockpit.driver.execute_script("document.getElementById('energy-building').scrollIntoView()")
    screenshot(cockpit, "energy-school-building")
    assert_no_console_errors(cockpit)


def test_facility_level_leaking_building_in_water(cockpit):
    open_page(cockpit, "/energy", f"facility={LEAK_FACILITY}&etype=water", wait="#energy-tiles", timeout=60)
    _wait_sections(cockpit)
    leaks = _rows(cockpit, "leak")
    assert [r.get_attribute("data-meter") for r in leaks] == [LEAK["meter_id"]]
    tile = cockpit.find_element(".kpi-tile[data-indicator='energy.leak_suspect']")
    assert tile.get_attribute("data-status") == "red"
    assert cockpit.find_element(f"#energy-building-charts[data-building='{LEAK_FACILITY}']")
    # the type switch keeps the scope
    click(cockpit, cockpit.find_element("#energy-type-switch a[id*='electricity']"))
    cockpit.wait_for_element("#energy-type-switch a.btn-primary[id*='electricity']", timeout=60)
    q = current_query(cockpit)
    assert q["facility"] == LEAK_FACILITY and q["etype"] == "electricity"
    open_page(cockpit, "/energy", f"facility={LEAK_FACILITY}&etype=water", wait="#energy-tiles", timeout=60)
    _wait_sections(cockpit)
    shots(cockpit, "energy-facility-water")
    assert_no_console_errors(cockpit)


def test_english_and_bad_input(cockpit):
    open_page(cockpit, "/energy", "region=110000&lang=en&etype=kgce", wait="#energy-tiles", timeout=60)
    _wait_sections(cockpit)
    assert "Anomaly list" in cockpit.find_element("#energy-anomalies-card").text
    shots(cockpit, "energy-region-en")
    open_page(cockpit, "/energy", "school=NOPE", wait="#input-error", timeout=60)
    assert "未找到学校" in cockpit.find_element("#error-message").text
    assert_no_console_errors(cockpit)
