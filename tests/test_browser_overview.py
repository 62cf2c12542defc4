"""The overview in headless Chromium: three levels, drill-down by clicking, tiles equal to the API, no console
errors. Screenshots go to tests/screenshots/ for a human look."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from .browser import api, assert_no_console_errors, click, current_query, start
from .browser import open_page as _open
from .conftest import SCREENSHOTS

pytestmark = pytest.mark.browser


@pytest.fixture
def cockpit(dash_duo):
    return start(dash_duo)


def open_page(duo, query: str = "", wait: str = ".kpi-tile"):
    return _open(duo, "/", query, wait)


@pytest.mark.parametrize("query, name", [
    ("", "association"),
    ("school=SH-U01", "school"),
    ("facility=SH-U01-C1-CAN1", "facility"),
])
def test_tiles_equal_the_api_at_three_levels(cockpit, query, name):
    open_page(cockpit, query)
    cockpit.wait_for_element("#alerts", timeout=30)
    expected = api(cockpit, query)
    checked = 0
    for tile in cockpit.driver.find_elements(By.CSS_SELECTOR, ".kpi-tile"):
        ind = tile.get_attribute("data-indicator")
        shown = tile.find_element(By.CSS_SELECTOR, ".kpi-value").get_attribute("data-value")
        value = expected[ind]["value"]
        assert tile.get_attribute("data-status") == expected[ind]["status"], ind
        if value is None:
            assert shown == ""
        else:
            assert float(shown) == pytest.approx(value), ind
            checked += 1
    assert checked >= 6
    cockpit.driver.save_screenshot(str(SCREENSHOTS / f"overview-{name}.png"))
    assert_no_console_errors(cockpit)


def test_drill_down_by_clicking_from_association_to_facility(cockpit):
    open_page(cockpit, "")
    path = [("region", "310000"), ("school", "SH-U01"), ("campus", "SH-U01-C1"), ("facility", "SH-U01-C1-CAN1")]
    for level, key in path:
        click(cockpit, cockpit.find_element(".kpi-tile[data-indicator='dining.cold_chain']"))
        cockpit.wait_for_element("#breakdown", timeout=30)
        link = cockpit.wait_for_element(f"#breakdown a[id*='\"index\":\"{key}\"']", timeout=30)
        click(cockpit, link)
        cockpit.wait_for_text_to_equal("#scope-current", _name(cockpit, level, key), timeout=30)
        assert current_query(cockpit)[level] == key
    cockpit.driver.save_screenshot(str(SCREENSHOTS / "overview-drilled-facility.png"))
    # the breadcrumb goes back up to the school
    click(cockpit, cockpit.driver.find_element(By.LINK_TEXT, _name(cockpit, "school", "SH-U01")))
    cockpit.wait_for_text_to_equal("#scope-current", _name(cockpit, "school", "SH-U01"), timeout=30)
    assert "facility" not in current_query(cockpit)
    assert_no_console_errors(cockpit)


def _name(duo, level, key):
    from data_access.dims import org_tree

    return org_tree().name(level, key)


def test_alerts_list_shows_injected_incidents_with_links(cockpit):
    open_page(cockpit, "")
    table = cockpit.wait_for_element("#alerts-table", timeout=30)
    rows = table.find_elements(By.CSS_SELECTOR, "tr[data-indicator]")
    keys = {(r.get_attribute("data-indicator"), r.get_attribute("data-key")) for r in rows}
    assert ("dining.hazards_overdue", "BJ-U01-C1-CAN1") in keys
    assert ("service.csi", "SH-V01") in keys
    # the incidents planted to reach red (demo INCIDENTS): repeated excursions, spikes, two days without readings
    assert ("dining.cold_chain_excursions", "SH-V01-C1-CAN1") in keys
    assert ("energy.anomalies", "SH-U01") in keys and ("energy.data_completeness", "SH-K01") in keys
    row = next(r for r in rows if r.get_attribute("data-key") == "SH-V01")
    click(cockpit, row.find_element(By.TAG_NAME, "a"))
    cockpit.wait_for_text_to_equal("#scope-current", _name(cockpit, "school", "SH-V01"), timeout=30)
    assert_no_console_errors(cockpit)


def test_bad_url_shows_message_not_traceback(cockpit):
    open_page(cockpit, "school=NOPE&from=2026-99-01", wait="#input-error")
    assert "未找到学校" in cockpit.find_element("#error-message").text or "日期" in cockpit.find_element("#error-message").text
    cockpit.driver.get(f"{cockpit.server_url}/no/such/page")
    cockpit.wait_for_element("#not-found", timeout=30)
    assert_no_console_errors(cockpit)


def test_english_switch_keeps_scope(cockpit):
    open_page(cockpit, "school=SH-U01")
    click(cockpit, cockpit.find_element("#lang-switch"))
    cockpit.wait_for_text_to_equal(".domain-dining .domain-title", "Dining safety", timeout=30)
    q = current_query(cockpit)
    assert q.get("lang") == "en" and q.get("school") == "SH-U01"
    cockpit.driver.save_screenshot(str(SCREENSHOTS / "overview-school-en.png"))
    assert_no_console_errors(cockpit)


def test_scope_bar_dropdown_and_period(cockpit):
    open_page(cockpit, "")
    cockpit.select_dcc_dropdown(".scope-drill", value="北京市")
    cockpit.wait_for_text_to_equal("#scope-current", "北京市", timeout=30)
    assert current_query(cockpit)["region"] == "110000"
    click(cockpit, cockpit.driver.find_element(By.LINK_TEXT, "近7天"))
    cockpit.wait_for_element(".btn-primary", timeout=30)
    q = current_query(cockpit)
    assert q["region"] == "110000" and q["from"] == "2026-11-09" and q["to"] == "2026-11-15"
    assert_no_console_errors(cockpit)
