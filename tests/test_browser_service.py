"""The service panel in headless Chromium at association, region, school and facility level: it finds the demo's
poorly performing school (SH-V01) in the matrix, drills into it by clicking, lists its overdue orders, shows
"样本不足 (n < 10)" where a figure rests on fewer than 10 responses, and its tiles equal the API.
Screenshots go to tests/screenshots/."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from .browser import api, assert_no_console_errors, click, current_query, start
from .browser import open_page as _open
from .conftest import SCREENSHOTS, TODAY

pytestmark = pytest.mark.browser

SUPPRESSED = "样本不足 (n < 10)"
WITHHELD = "已隐去 (防反推)"   # withheld beside a total so that a smaller group cannot be worked out


@pytest.fixture
def cockpit(dash_duo):
    return start(dash_duo)


def open_panel(duo, query: str = "", wait: str = "#svc-orders"):
    return _open(duo, "/service", query, wait, timeout=60)


def full_screenshot(duo, name: str, part: int = 1100):
    """The whole page at desk width (1600 px), not only the window (the panel is taller than a screen), saved in
    parts of ``part`` px so that each stays readable: name.png, name-2.png …"""
    import base64

    height = min(int(duo.driver.execute_script("return document.documentElement.scrollHeight")), 8000)
    for i, top in enumerate(range(0, height, part)):
        shot = duo.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": top, "width": 1600, "height": min(part, height - top), "scale": 1}})
        (SCREENSHOTS / (f"{name}.png" if i == 0 else f"{name}-{i + 1}.png")).write_bytes(base64.b64decode(shot["data"]))


def _name(level, key, lang="zh"):
    from data_access.dims import org_tree

    return org_tree().name(level, key, lang)


def _tiles_equal_api(duo, query):
    tiles = duo.driver.find_elements(By.CSS_SELECTOR, ".kpi-tile")
    wanted = ",".join(t.get_attribute("data-indicator") for t in tiles)
    expected = api(duo, f"{query}&ids={wanted}" if query else f"ids={wanted}")
    checked = 0
    for tile in tiles:
        ind = tile.get_attribute("data-indicator")
        shown = tile.find_element(By.CSS_SELECTOR, ".kpi-value").get_attribute("data-value")
        assert tile.get_attribute("data-status") == expected[ind]["status"], ind
        if expected[ind]["value"] is None:
            assert shown == "", ind
        else:
            assert float(shown) == pytest.approx(expected[ind]["value"]), ind
            checked += 1
    return checked


def expected_overdue(raw, school):
    """Orders of the school open at the state date (today, 00:00) and past their completion SLA, by pandas."""
    at = pd.Timestamp(TODAY)
    o = raw("fact_work_order")
    o = o[(o.school_id == school) & (o.created_at < at) & (o.completed_at.isna() | (o.completed_at >= at))]
    sla_h = o.priority.map({"urgent": 24, "normal": 72})
    return set(o.loc[(at - o.created_at).dt.total_seconds() >= sla_h * 3600, "order_id"])


def test_association_matrix_flags_the_poor_school_and_drills_into_it(cockpit, raw):
    open_panel(cockpit)
    table = cockpit.wait_for_element("#svc-matrix-table", timeout=60)
    row = table.find_element(By.CSS_SELECTOR, "tr[data-key='SH-V01']")
    total = row.find_elements(By.CSS_SELECTOR, "td.svc-cell")[0]
    assert total.get_attribute("data-status") == "red"
    reds = [r.get_attribute("data-key") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr[data-key]")
            if r.find_elements(By.CSS_SELECTOR, "td.svc-cell")[0].get_attribute("data-status") == "red"]
    assert reds == ["SH-V01"]
    assert _tiles_equal_api(cockpit, "") >= 10
    full_screenshot(cockpit, "service-association")
    # drill into the school by its name in the matrix; period and language are kept
    click(cockpit, cockpit.find_element("#svc-matrix-table a[id*='\"index\":\"SH-V01\"']"))
    cockpit.wait_for_text_to_equal("#scope-current", _name("school", "SH-V01"), timeout=60)
    q = current_query(cockpit)
    assert q["school"] == "SH-V01" and q["from"] == "2026-10-17" and q["to"] == "2026-11-15"
    cockpit.wait_for_element("#svc-open-table", timeout=60)
    shown = {r.get_attribute("data-order") for r in
             cockpit.driver.find_elements(By.CSS_SELECTOR, "#svc-open-table tr[data-overdue='1']")}
    assert shown == expected_overdue(raw, "SH-V01") and len(shown) >= 6
    assert_no_console_errors(cockpit)


def test_school_level_shows_red_tiles_and_overdue_orders(cockpit, raw):
    open_panel(cockpit, "school=SH-V01")
    cockpit.wait_for_element("#svc-open-table", timeout=60)
    for ind in ("service.csi", "service.response_on_time", "service.completion_on_time"):
        tile = cockpit.find_element(f".kpi-tile[data-indicator='{ind}']")
        assert tile.get_attribute("data-status") == "red", ind
    counts = cockpit.find_element("#svc-open-counts")
    overdue = expected_overdue(raw, "SH-V01")
    assert int(counts.get_attribute("data-overdue")) == len(overdue)
    # the planted overdue orders come first, each marked overdue with a shape and a label
    rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#svc-open-table tbody tr")
    flags = [r.get_attribute("data-overdue") for r in rows]
    assert flags == sorted(flags, reverse=True)
    assert all("已超时" in r.text for r in rows if r.get_attribute("data-overdue") == "1")
    assert _tiles_equal_api(cockpit, "school=SH-V01") >= 10
    # the matrix at school level has the school's facilities as rows
    matrix_rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#svc-matrix-table tbody tr[data-key]")
    assert matrix_rows and all(r.get_attribute("data-key").startswith("SH-V01-") for r in matrix_rows)
    full_screenshot(cockpit, "service-school-SH-V01")
    # the Excel export answers without a message (the file itself is checked in test_service.py)
    click(cockpit, cockpit.find_element("#service-export"))
    cockpit.wait_for_element("#svc-open-table", timeout=60)
    assert cockpit.find_element("#service-export-msg").text == ""
    assert_no_console_errors(cockpit)


def test_region_matrix_cell_drills_to_school_and_line(cockpit):
    open_panel(cockpit, "region=310000")
    table = cockpit.wait_for_element("#svc-matrix-table", timeout=60)
    keys = [r.get_attribute("data-key") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr[data-key]")]
    assert "SH-V01" in keys and not any(k.startswith("BJ-") for k in keys)
    full_screenshot(cockpit, "service-region")
    cell = table.find_element(By.CSS_SELECTOR, "tr[data-key='SH-U01'] td.svc-cell a")
    click(cockpit, cell)
    cockpit.wait_for_text_to_equal("#scope-current", _name("school", "SH-U01"), timeout=60)
    q = current_query(cockpit)
    assert q["school"] == "SH-U01" and q.get("line") in {"dining", "dormitory", "property", "repair"}
    title = cockpit.wait_for_element("#svc-trend .svc-block-title", timeout=60).text
    from components.service import line_name

    assert line_name(q["line"], "zh") in title
    assert_no_console_errors(cockpit)


def test_facility_level_suppresses_small_groups(cockpit):
    open_panel(cockpit, "facility=SH-V01-C1-CAN1")
    cockpit.wait_for_element("#svc-lines", timeout=60)
    assert not cockpit.driver.find_elements(By.CSS_SELECTOR, "#svc-matrix-table")   # no lower level
    suppressed = cockpit.driver.find_elements(By.CSS_SELECTOR, "[data-status='suppressed']")
    assert suppressed
    for el in suppressed:
        if "kpi-tile" in el.get_attribute("class"):
            assert SUPPRESSED in el.text
            assert el.find_element(By.CSS_SELECTOR, ".kpi-value").get_attribute("data-value") == ""
        else:
            assert el.text.strip() in (SUPPRESSED, WITHHELD)
            assert el.get_attribute("data-value") in ("", None)
    complaints = cockpit.find_element(".kpi-tile[data-indicator='service.complaints']")
    assert "不适用于此层级" in complaints.text
    _tiles_equal_api(cockpit, "facility=SH-V01-C1-CAN1")
    full_screenshot(cockpit, "service-facility")
    assert_no_console_errors(cockpit)


def test_small_venue_cell_is_suppressed_in_table_and_matrix(cockpit):
    open_panel(cockpit, "school=BJ-U01")
    row = cockpit.wait_for_element("#svc-lines tr[data-key='venue']", timeout=60)
    cells = row.find_elements(By.CSS_SELECTOR, "td.svc-cell")
    assert [c.text for c in cells] == [SUPPRESSED] * 3
    assert all(c.get_attribute("data-value") == "" for c in cells)
    # venue's 6 responses would be the tile minus the other lines: another line (10 or more responses) is withheld
    partners = [r for r in cockpit.driver.find_elements(By.CSS_SELECTOR, "#svc-lines tbody tr")
                if r.find_elements(By.CSS_SELECTOR, "td.svc-cell")[0].text == WITHHELD]
    assert partners and all(int(r.find_elements(By.TAG_NAME, "td")[1].text) >= 10 for r in partners)
    assert all(r.find_elements(By.CSS_SELECTOR, "td.svc-cell")[0].get_attribute("data-value") == "" for r in partners)
    full_screenshot(cockpit, "service-school-BJ-U01")
    open_panel(cockpit, "")
    cell = cockpit.wait_for_element("#svc-matrix-table", timeout=60).find_elements(
        By.CSS_SELECTOR, "tr[data-key='BJ-U01'] td.svc-cell")
    headers = [h.text for h in cockpit.driver.find_elements(By.CSS_SELECTOR, "#svc-matrix-table thead th")]
    venue = headers.index("场馆") - 1
    assert cell[venue].text == SUPPRESSED
    assert_no_console_errors(cockpit)


def test_english_trend_line_selection_keeps_scope(cockpit):
    open_panel(cockpit, "school=SH-U01&lang=en")
    cockpit.wait_for_element("#svc-trend-graph", timeout=60)
    click(cockpit, cockpit.driver.find_element(By.LINK_TEXT, "Dining"))
    cockpit.wait_for_text_to_equal("#svc-trend-lines .btn-primary", "Dining", timeout=60)
    q = current_query(cockpit)
    assert q == {**q, "lang": "en", "school": "SH-U01", "line": "dining"}
    cockpit.wait_for_element("#svc-trend-graph .main-svg", timeout=60)
    assert "Satisfaction of students and staff" in cockpit.find_element("#svc-satisfaction").text
    full_screenshot(cockpit, "service-school-en-dining")
    # the scope bar keeps the chosen line when the period changes
    click(cockpit, cockpit.driver.find_element(By.LINK_TEXT, "Last 90 days"))
    cockpit.wait_for_element("#svc-trend-graph", timeout=60)
    q = current_query(cockpit)
    assert q["line"] == "dining" and q["from"] == (TODAY - dt.timedelta(days=90)).isoformat()
    assert_no_console_errors(cockpit)
