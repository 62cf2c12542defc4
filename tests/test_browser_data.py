"""The data page (数据管理) in headless Chromium: the inventory of every table, recent batches, template links
that download real files, Chinese and English, no console errors. Screenshots go to tests/screenshots/."""
from __future__ import annotations

import io

import openpyxl
import pytest
from selenium.webdriver.common.by import By

from data_access.validate import LOADABLE_TABLES

from .browser import assert_no_console_errors, download, open_page, screenshot, start

pytestmark = pytest.mark.browser


@pytest.fixture
def cockpit(dash_duo):
    return start(dash_duo)


def test_data_page_lists_every_table_with_lineage(cockpit, raw):
    open_page(cockpit, "/data", "", wait="#data-tables")
    rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#data-tables tr[data-table]")
    assert [r.get_attribute("data-table") for r in rows] == LOADABLE_TABLES
    counts = {r.get_attribute("data-table"): int(r.find_element(By.CSS_SELECTOR, "td[data-rows]")
                                                  .get_attribute("data-rows")) for r in rows}
    for table in ("dim_school", "fact_dining_check", "fact_work_order", "fact_meter_reading"):
        assert counts[table] == len(raw(table)), table
    meter_row = cockpit.find_element("#data-tables tr[data-table='fact_meter_reading']")
    assert "%" in meter_row.text            # completeness of the hourly readings
    assert "metering" in meter_row.text     # the demo's source system
    batches = cockpit.driver.find_elements(By.CSS_SELECTOR, "#data-batches tr[data-batch]")
    assert len(batches) == len(LOADABLE_TABLES)   # the demo: one batch per loadable table
    cockpit.wait_for_element("#tile-meta-freshness", timeout=10)
    screenshot(cockpit, "data-association")
    cockpit.driver.set_window_size(1600, 2200)   # the whole page, batches and templates included
    screenshot(cockpit, "data-association-full")
    assert_no_console_errors(cockpit)


def test_template_links_download_real_templates(cockpit):
    open_page(cockpit, "/data", "lang=en", wait="#data-templates")
    assert "Import templates" in cockpit.find_element("#data-templates").text
    link = cockpit.find_element("#data-templates a[href='/data/templates/dim_meter.xlsx']")
    body = download(cockpit, link.get_attribute("href"))
    assert body.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(body.content)).active
    assert sheet.title == "dim_meter"
    assert [c.value for c in sheet[1]] == ["meter_id", "facility_id", "school_id", "energy_type", "end_use",
                                           "parent_meter_id"]
    csv_body = download(cockpit, f"{cockpit.server_url}/data/templates/fact_meter_reading.csv").content
    assert csv_body.startswith(b"\xef\xbb\xbfmeter_id,ts,consumption\r\n")
    zip_href = cockpit.find_element("#data-templates-zip").get_attribute("href")
    assert download(cockpit, zip_href).headers["Content-Type"] == "application/zip"
    screenshot(cockpit, "data-en")
    assert_no_console_errors(cockpit)


def test_data_page_at_school_level(cockpit, raw):
    open_page(cockpit, "/data", "school=SH-U01", wait="#data-tables")
    row = cockpit.find_element("#data-tables tr[data-table='dim_facility']")
    facilities = raw("dim_facility")
    expected = int((facilities.school_id == "SH-U01").sum())
    assert int(row.find_element(By.CSS_SELECTOR, "td[data-rows]").get_attribute("data-rows")) == expected
    screenshot(cockpit, "data-school")
    assert_no_console_errors(cockpit)
