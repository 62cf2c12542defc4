"""Wall screens in headless Chromium at 1920×1080 and 3840×2160: no navigation, no overflow, rotation in order,
stale marking while the warehouse is away and recovery, heartbeat listing."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By

from data_access import cache, screen

from .browser import assert_no_console_errors, open_page, screenshot, start
from .test_screen import warehouse_down

pytestmark = pytest.mark.browser


@pytest.fixture
def wall(dash_duo):
    screen.stop_warmer()
    screen.AUTO_START = False      # the test drives refreshes itself
    cache.clear()
    duo = start(dash_duo)
    yield duo
    duo.driver.get("about:blank")   # stop the screen's timers before the server stops
    time.sleep(0.5)
    screen.AUTO_START = True


def set_viewport(duo, width, height):
    duo.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def active_view(duo) -> str:
    return duo.find_element(".screen-view.active").get_attribute("id")


@pytest.mark.parametrize("width, height", [(1920, 1080), (3840, 2160)])
def test_layout_fits_without_overflow(wall, width, height):
    set_viewport(wall, width, height)
    open_page(wall, "/screen", "school=SH-U01&views=dining,energy&dwell=600", wait=".screen-tile")
    wall.wait_for_element(".st-trend-graph .main-svg", timeout=30)
    time.sleep(1)
    assert not wall.driver.find_elements(By.CSS_SELECTOR, "#navbar") or \
        not wall.driver.find_element(By.CSS_SELECTOR, "#navbar").is_displayed()
    page = wall.driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight,"
        " window.innerWidth, window.innerHeight]")
    assert page[0] <= page[2] and page[1] <= page[3], page
    overflowing = wall.driver.execute_script("""
        const tiles = Array.from(document.querySelectorAll('.screen-view.active .screen-tile'))
          .filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1);
        const values = Array.from(document.querySelectorAll('.screen-view.active .st-value, .st-name'))
          .filter(e => e.scrollWidth > e.clientWidth + 1);
        return tiles.concat(values).map(e => e.textContent.slice(0, 40));""")
    assert overflowing == []
    tiles = wall.driver.find_elements(By.CSS_SELECTOR, ".screen-view.active .screen-tile")
    assert len(tiles) == 6 and all("数据截至" in t.text for t in tiles)
    screenshot(wall, f"screen-{width}x{height}")
    assert_no_console_errors(wall)


def test_rotation_order_and_dwell(wall):
    open_page(wall, "/screen", "school=SH-U01&views=overview,dining,energy&dwell=3", wait=".screen-tile")
    seen, changed_at = [active_view(wall)], []
    started = time.time()
    while len(seen) < 4 and time.time() - started < 20:
        current = active_view(wall)
        if current != seen[-1]:
            seen.append(current)
            changed_at.append(time.time())
        time.sleep(0.1)
    views = ["overview", "dining", "energy"]
    order = [s.split('"index":"')[1].split('"')[0] for s in seen]
    assert len(order) == 4
    for a, b in zip(order, order[1:]):
        assert b == views[(views.index(a) + 1) % 3], order
    assert 5.0 <= changed_at[2] - changed_at[0] <= 7.5     # two dwells of 3 s between the 1st and 3rd change
    dots = [d.get_attribute("class") for d in wall.driver.find_elements(By.CSS_SELECTOR, ".sh-dot")]
    assert sum("active" in d for d in dots) == 1
    assert_no_console_errors(wall)


def test_stale_then_recovers_and_heartbeat_listed(wall):
    query = "school=SH-U01&views=dining&refresh=5&id=wall-test&name=食堂大屏3"
    open_page(wall, "/screen", query, wait=".screen-tile")
    wall.wait_for_contains_text("#screen-status", "更新于", timeout=30)
    value = wall.find_element(".screen-tile[data-indicator='dining.cold_chain'] .st-value").get_attribute("data-value")
    target = screen.parse_target({"school": "SH-U01", "views": "dining"})
    with warehouse_down():
        screen.refresh(target)                      # what the warm-up job does on its interval
        wall.wait_for_contains_text("#screen-status", "数据未刷新", timeout=20)
        # last good values stay on screen
        assert wall.find_element(".screen-tile[data-indicator='dining.cold_chain'] .st-value")\
            .get_attribute("data-value") == value
        screenshot(wall, "screen-stale")
    screen.refresh(target)
    wall.wait_for_contains_text("#screen-status", "更新于", timeout=20)
    wall.driver.get(f"{wall.server_url}/screens")
    row = wall.wait_for_element("tr[data-screen='wall-test']", timeout=30)
    assert "食堂大屏3" in row.text
    assert_no_console_errors(wall)


def test_bad_screen_url_shows_a_message(wall):
    open_page(wall, "/screen", "views=overview,casino", wait="#input-error")
    assert "casino" in wall.find_element("#error-message").text
