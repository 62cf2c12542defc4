"""Three roles in headless Chromium see three scopes: the association assessor the association, the region
officer of 310000 (上海市) that region's schools only, the school leader of SH-U01 their school — and a URL
naming another place gets the leader and the officer a message, never its figures. Plus the admin's audit page.
Screenshots go to tests/screenshots/roles-*.png."""
from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from .browser import assert_no_console_errors, click, login, open_page, screenshot, start

pytestmark = pytest.mark.browser


def _tree():
    from data_access.dims import org_tree

    return org_tree()


def _school_of(key: str) -> str:
    """The school of an alert row's key (a school, campus or facility id), from the org tree."""
    tree = _tree()
    for frame, col in ((tree.schools, "school_id"), (tree.campuses, "campus_id"), (tree.facilities, "facility_id")):
        hit = frame.loc[frame[col] == key, "school_id"]
        if not hit.empty:
            return str(hit.iloc[0])
    raise AssertionError(f"unknown key {key}")


def _drill_options(duo) -> list[str]:
    """The names the scope bar's drill-down offers (one level below the current place)."""
    click(duo, duo.find_element(".scope-drill"))
    menu = duo.wait_for_element(".dash-dropdown-options", timeout=30)
    names = [o.text for o in menu.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option")]
    duo.driver.find_element(By.TAG_NAME, "body").click()   # close the menu again
    return names


def _alert_schools(duo) -> set[str]:
    duo.wait_for_element("#alerts", timeout=30)
    rows = duo.driver.find_elements(By.CSS_SELECTOR, "#alerts-table tr[data-key]")
    return {_school_of(r.get_attribute("data-key")) for r in rows}


def _denied(duo, query: str, name: str):
    """Open the overview for another place: the denial message, and nothing of that place on the page."""
    open_page(duo, "/", query, wait="#input-error")
    duo.wait_for_contains_text("#error-message", "超出您的数据权限范围", timeout=30)
    assert not duo.driver.find_elements(By.CSS_SELECTOR, ".kpi-tile")
    screenshot(duo, name)


@pytest.fixture
def cockpit(dash_duo):
    return start(dash_duo, as_user=None)


def test_three_roles_see_three_scopes(cockpit):
    tree = _tree()
    sh_schools = {str(s) for s in tree.schools.loc[tree.schools.region_code == "310000", "school_id"]}
    assert "BJ-U01" not in sh_schools and len(sh_schools) == 4
    seen = {}

    # the association assessor: the association, both regions below it, alerts from both
    login(cockpit, "t-assessor")
    open_page(cockpit, "/")
    seen["assessor"] = cockpit.wait_for_element("#scope-current", timeout=30).text
    cockpit.wait_for_contains_text("#nav-user", "协会评估员", timeout=30)
    assert sorted(_drill_options(cockpit)) == sorted([tree.name("region", "310000"), tree.name("region", "110000")])
    assessor_alerts = _alert_schools(cockpit)
    assert "BJ-U01" in assessor_alerts and assessor_alerts & sh_schools
    screenshot(cockpit, "roles-assessor")

    # the region officer of 310000: lands on 上海市; its four schools, nothing of 北京
    login(cockpit, "t-region")
    open_page(cockpit, "/")
    cockpit.wait_for_text_to_equal("#scope-current", tree.name("region", "310000"), timeout=30)
    seen["region"] = cockpit.find_element("#scope-current").text
    cockpit.wait_for_contains_text("#nav-user", "地区管理员", timeout=30)
    assert sorted(_drill_options(cockpit)) == sorted(tree.name("school", s) for s in sh_schools)
    officer_alerts = _alert_schools(cockpit)
    assert officer_alerts and officer_alerts <= sh_schools
    assert tree.name("school", "BJ-U01") not in cockpit.driver.find_element(By.TAG_NAME, "body").text
    screenshot(cockpit, "roles-region-officer")
    _denied(cockpit, "school=BJ-U01", "roles-region-officer-denied")
    _denied(cockpit, "region=110000", "roles-region-officer-denied-region")

    # the school leader of SH-U01: lands on the school; another school by URL is refused
    login(cockpit, "t-leader")
    open_page(cockpit, "/")
    cockpit.wait_for_text_to_equal("#scope-current", tree.name("school", "SH-U01"), timeout=30)
    seen["leader"] = cockpit.find_element("#scope-current").text
    cockpit.wait_for_contains_text("#nav-user", "校领导", timeout=30)
    assert _alert_schools(cockpit) <= {"SH-U01"}
    screenshot(cockpit, "roles-school-leader")
    _denied(cockpit, "school=SH-V01", "roles-school-leader-denied")
    body = cockpit.driver.find_element(By.TAG_NAME, "body").text
    assert tree.name("school", "SH-V01") not in body and "SH-V01" not in body
    # their region through the URL: the region's crumb, but below it their school alone
    open_page(cockpit, "/", "region=310000")
    cockpit.wait_for_text_to_equal("#scope-current", tree.name("region", "310000"), timeout=30)
    assert _drill_options(cockpit) == [tree.name("school", "SH-U01")]
    assert _alert_schools(cockpit) <= {"SH-U01"}
    screenshot(cockpit, "roles-school-leader-region")

    assert len(set(seen.values())) == 3, seen
    assert_no_console_errors(cockpit)


def test_admin_audit_page(cockpit):
    login(cockpit, "t-leader")           # a login (and a refusal) to find in the log
    open_page(cockpit, "/", "school=SH-V01", wait="#input-error")
    login(cockpit, "t-admin")
    open_page(cockpit, "/admin", wait="#admin-audit")
    audit = cockpit.find_element("#admin-audit").text
    assert "scope_denied" in audit and "t-leader" in audit and "school=SH-V01" in audit
    assert "t-leader" in cockpit.find_element("#admin-accounts").text
    screenshot(cockpit, "roles-admin-audit")
    # the action filter
    click(cockpit, cockpit.driver.find_element(By.CSS_SELECTOR, "#admin-audit-filter a[href*='action=login']"))
    cockpit.wait_for_element("#admin-audit", timeout=30)
    rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#admin-audit tbody tr")
    assert rows and {r.find_elements(By.TAG_NAME, "td")[2].text for r in rows} == {"login"}
    # a school leader is refused the page
    login(cockpit, "t-leader")
    open_page(cockpit, "/admin", wait="#input-error")
    cockpit.wait_for_contains_text("#error-message", "需要管理员权限", timeout=30)
    assert not cockpit.driver.find_elements(By.CSS_SELECTOR, "#admin-audit")
    assert_no_console_errors(cockpit)
