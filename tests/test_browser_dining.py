"""The dining-safety panel in headless Chromium: three levels with tiles equal to the API, a click on the heatmap
drills down (school, then canteen, keeping period and language), the planted demo incidents are on screen, and a
school without a canteen says so. Full-page screenshots go to tests/screenshots/ for a human look."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from data_access.demo import INCIDENTS

from .browser import api, assert_no_console_errors, current_query, open_page, start
from .conftest import END, SCREENSHOTS

pytestmark = pytest.mark.browser

PERIOD = f"from={(END - dt.timedelta(days=29)).isoformat()}&to={END.isoformat()}"


@pytest.fixture
def cockpit(dash_duo):
    return start(dash_duo)


def open_dining(duo, query: str, wait: str = "#dining-checks .kpi-tile"):
    return open_page(duo, "/dining", query, wait, timeout=60)


def full_screenshot(duo, name: str, width: int = 1600):
    """The whole page at desk width (the viewport alone would show only its top)."""
    driver = duo.driver
    height = driver.execute_script("return Math.max(document.body.scrollHeight, 1000)")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def click_heatmap_row(duo, row_name: str, column: int = 0):
    """A real mouse click on the heatmap cell of ``row_name`` (its position from plotly's axes)."""
    driver = duo.driver
    graph = duo.wait_for_element(".dining-heatmap-graph .js-plotly-plot", timeout=30)
    # instant: Bootstrap makes scrolling smooth, and the cell's position must be read after the scroll
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", graph)
    x, y = driver.execute_script("""
        const gd = arguments[0], name = arguments[1], col = arguments[2];
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const row = gd.data[0].y.indexOf(name);
        if (row < 0) { throw new Error('no heatmap row ' + name); }
        const drag = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return [drag.left + xa.l2p(col), drag.top + ya.l2p(row)];
    """, graph, row_name, column)
    ActionChains(driver).move_to_location(int(x), int(y)).click().perform()


def _name(level, key):
    from data_access.dims import org_tree

    return org_tree().name(level, key)


@pytest.mark.parametrize("query, name", [
    ("", "association"),
    ("school=SH-U01", "school"),
    ("facility=SH-K01-C1-CAN1", "facility"),
])
def test_tiles_equal_the_api_at_three_levels(cockpit, query, name):
    query = "&".join(q for q in (query, PERIOD) if q)
    open_dining(cockpit, query)
    cockpit.wait_for_element("#dining-cold", timeout=60)
    expected = api(cockpit, query)
    tiles = cockpit.driver.find_elements(By.CSS_SELECTOR, ".dining-tiles .kpi-tile")
    assert len(tiles) == 16
    for tile in tiles:
        ind = tile.get_attribute("data-indicator")
        shown = tile.find_element(By.CSS_SELECTOR, ".kpi-value").get_attribute("data-value")
        assert tile.get_attribute("data-status") == expected[ind]["status"], ind
        if expected[ind]["value"] is None:
            assert shown == "", ind
        else:
            assert float(shown) == pytest.approx(expected[ind]["value"]), ind
    if name == "facility":
        # the canteen's daily checklist replaces the heatmap; the planted missed retention is marked missing
        cockpit.wait_for_element("#dining-checklist", timeout=30)
        missing = cockpit.driver.find_elements(
            By.CSS_SELECTOR, "#dining-checklist td[data-state='missing'][data-check='sample_retention']")
        assert len(missing) == INCIDENTS["sample_retention_missed"]["missing_rows"]
        assert not cockpit.driver.find_elements(By.CSS_SELECTOR, ".dining-heatmap-graph")
    else:
        cockpit.wait_for_element(".dining-heatmap-graph .js-plotly-plot", timeout=30)
    full_screenshot(cockpit, f"dining-{name}")
    if name == "facility":   # close-ups of the checklist and the curves, at desk size
        for section in ("dining-checklist-card", "dining-cold"):
            element = cockpit.find_element(f"#{section}")
            cockpit.driver.execute_script("arguments[0].scrollIntoView({block: 'start', behavior: 'instant'});",
                                          element)
            element.screenshot(str(SCREENSHOTS / f"dining-facility-{section.split('-')[1]}.png"))
    assert_no_console_errors(cockpit)


def test_heatmap_click_drills_to_school_then_canteen(cockpit):
    open_dining(cockpit, PERIOD + "&lang=en")
    click_heatmap_row(cockpit, _name_en("school", "SH-U01"), column=2)
    cockpit.wait_for_text_to_equal("#scope-current", _name_en("school", "SH-U01"), timeout=60)
    query = current_query(cockpit)
    assert query["school"] == "SH-U01" and query["lang"] == "en"
    assert (query["from"], query["to"]) == ((END - dt.timedelta(days=29)).isoformat(), END.isoformat())
    cockpit.wait_for_element("#dining-checks .kpi-tile", timeout=60)
    click_heatmap_row(cockpit, _name("facility", "SH-U01-C1-CAN1"))   # canteen names have no English form
    cockpit.wait_for_element("#dining-checklist", timeout=60)
    query = current_query(cockpit)
    assert query["facility"] == "SH-U01-C1-CAN1" and query["lang"] == "en" and query["to"] == END.isoformat()
    full_screenshot(cockpit, "dining-drilled-facility-en")
    assert_no_console_errors(cockpit)


def _name_en(level, key):
    from data_access.dims import org_tree

    return org_tree().name(level, key, "en")


def test_injected_incidents_are_on_screen(cockpit):
    open_dining(cockpit, PERIOD)
    cockpit.wait_for_element("#dining-hazards-table", timeout=60)
    driver = cockpit.driver
    # the overdue high-severity hazard, flagged overdue, listed first
    high = INCIDENTS["hazard_overdue_high"]
    row = driver.find_element(By.CSS_SELECTOR, f"#dining-hazards-table tr[data-hazard='{high['hazard_id']}']")
    assert row.get_attribute("data-overdue") == "1" and row.get_attribute("data-severity") == "high"
    first = driver.find_element(By.CSS_SELECTOR, "#dining-hazards-table tbody tr")
    assert first.get_attribute("data-hazard") == high["hazard_id"]
    # the expired health certificates, by pseudonymous ref only
    for ref in INCIDENTS["certificates_expired"]["staff_refs"]:
        row = driver.find_element(By.CSS_SELECTOR, f"#dining-certs-table tr[data-ref='{ref}']")
        assert row.get_attribute("data-expired") == "1"
    # the excursions (chilled 60 min, frozen 130 min, three of 40 min on one device) but not the 20-minute blip
    rows = driver.find_elements(By.CSS_SELECTOR, "#dining-excursions tr[data-device]")
    seen = [(r.get_attribute("data-device"), r.get_attribute("data-minutes")) for r in rows]
    repeated = INCIDENTS["cold_chain_repeated_excursions"]["device_id"]
    assert sorted(seen) == sorted([(INCIDENTS["cold_chain_excursion"]["device_id"], "60"),
                                   (INCIDENTS["cold_chain_frozen_excursion"]["device_id"], "130"),
                                   *[(repeated, "40")] * 3])
    # three excursions of one device in one ISO week: red (0 green / 1-2 amber / >= 3 red)
    assert driver.find_element(By.CSS_SELECTOR, "#tile-dining-cold_chain_excursions").get_attribute(
        "data-status") == "red"

    # at the school: the excursion's device curve with its red excursion span
    open_dining(cockpit, "school=SH-U01&" + PERIOD)
    curve = cockpit.wait_for_element(
        f"#dining-curves [data-device='{INCIDENTS['cold_chain_excursion']['device_id']}'] .js-plotly-plot", timeout=60)
    shapes = driver.execute_script("return arguments[0].layout.shapes.length", curve)
    assert shapes >= 3   # the band, its edges and the excursion
    full_screenshot(cockpit, "dining-school-incidents")
    assert_no_console_errors(cockpit)


def test_school_without_canteen_says_so(cockpit):
    open_dining(cockpit, "school=SH-V02&" + PERIOD, wait="#dining-empty")
    text = cockpit.find_element("#dining-empty").text
    assert "没有食堂" in text
    assert not cockpit.driver.find_elements(By.CSS_SELECTOR, ".kpi-tile")
    assert_no_console_errors(cockpit)
