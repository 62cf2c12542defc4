"""The weekly review in headless Chromium: figures equal to the API over the week, a note written in the page,
exported, and found in the PDF (pdftotext) and the Excel workbook; the print view; no console errors.
Screenshots and the PDF's pages (pdftoppm) go to tests/screenshots/ for a human look."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from .browser import api, assert_no_console_errors, click, current_query, download, open_page, start
from .conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

QUERY = "school=SH-U01&week=2026-W46"
WEEK = "from=2026-11-09&to=2026-11-15"


@pytest.fixture
def cockpit(dash_duo):
    # a logistics director writes the meeting notes
    return start(dash_duo, as_user="t-director")


def _wait_for_review(duo, query=QUERY):
    open_page(duo, "/review", query, wait="#review-key-table", timeout=60)
    duo.wait_for_element("#review-items, #review-notes-empty", timeout=30)


def test_review_figures_equal_the_api_for_the_week(cockpit):
    _wait_for_review(cockpit)
    expected = api(cockpit, f"school=SH-U01&{WEEK}")
    checked = 0
    for row in cockpit.driver.find_elements(By.CSS_SELECTOR, "#review-key-table tr[data-indicator]"):
        ind = row.get_attribute("data-indicator")
        shown = row.find_elements(By.CSS_SELECTOR, "td")[1].get_attribute("data-value")
        if expected[ind]["value"] is None:
            assert shown == ""
        else:
            assert float(shown) == pytest.approx(expected[ind]["value"]), ind
            checked += 1
    assert checked >= 20
    assert "第 10 教学周" in cockpit.find_element("#review-week").text
    cockpit.driver.save_screenshot(str(SCREENSHOTS / "review-school.png"))
    assert_no_console_errors(cockpit)


def test_write_a_note_export_it_and_find_it_in_the_pdf(cockpit):
    _wait_for_review(cockpit)
    text = f"复查第一食堂冷链 {uuid.uuid4().hex[:6]}"
    # the pencil of an indicator's row picks it in the form
    click(cockpit, cockpit.find_element("#review-key-table tr[data-indicator='dining.cold_chain'] button"))
    cockpit.wait_for_contains_text("#review-note-indicator", "冷链温度达标率", timeout=10)
    click(cockpit, cockpit.driver.find_element(By.CSS_SELECTOR, "#review-note-kind input[value='note']"))
    cockpit.find_element("#review-note-text").send_keys(text)
    cockpit.find_element("#review-note-owner").send_keys("膳食科")
    click(cockpit, cockpit.find_element("#review-note-save"))
    cockpit.wait_for_element("#review-note-saved", timeout=30)
    cockpit.wait_for_contains_text("#review-items", text, timeout=30)
    row = cockpit.driver.find_element(By.XPATH, f"//tr[contains(@class, 'review-item')][contains(., '{text}')]")
    assert "冷链温度达标率" in row.text and "2026-" in row.text      # who and when
    cockpit.driver.save_screenshot(str(SCREENSHOTS / "review-note-written.png"))

    pdf_href = cockpit.find_element("#review-export-pdf").get_attribute("href")
    response = download(cockpit, pdf_href)
    assert response.status_code == 200 and response.content[:4] == b"%PDF"
    assert "attachment" in response.headers["Content-Disposition"]
    path = SCREENSHOTS / "review-export.pdf"
    path.write_bytes(response.content)
    extracted = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                               check=True).stdout
    assert text in extracted and "膳食科" in extracted
    assert "周例会" in extracted and "2026-W46" in extracted and "数据截至" in extracted
    pages = int(next(line.split()[-1] for line in subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.startswith("Pages:")))
    assert pages > 1 and f"1 / {pages}".replace(" ", "") in extracted.replace(" ", "")
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "2", str(path),
                        str(SCREENSHOTS / "review-export-page")], check=True)

    from openpyxl import load_workbook

    xlsx = download(cockpit, cockpit.find_element("#review-export-xlsx").get_attribute("href"))
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    notes_sheet = book["纪要与待办"]
    assert any(text in str(c.value) for row in notes_sheet.iter_rows() for c in row)
    assert_no_console_errors(cockpit)


def test_action_carried_forward_and_closed(cockpit):
    _wait_for_review(cockpit, "school=SH-U01&week=2026-W45")
    text = f"安排节能巡查 {uuid.uuid4().hex[:6]}"
    cockpit.find_element("#review-note-text").send_keys(text)
    cockpit.find_element("#review-note-owner").send_keys("能源中心")
    cockpit.find_element("#review-note-due").send_keys("2026-11-13", Keys.ENTER)
    click(cockpit, cockpit.find_element("#review-note-save"))
    cockpit.wait_for_contains_text("#review-items", text, timeout=30)
    # the next week carries the open action forward, overdue by then
    click(cockpit, cockpit.find_element("#review-next"))
    cockpit.wait_for_contains_text("#review-week", "2026-W46", timeout=60)
    assert current_query(cockpit)["week"] == "2026-W46"
    cockpit.wait_for_contains_text("#review-items", text, timeout=30)
    row = cockpit.driver.find_element(By.XPATH, f"//tr[contains(@class, 'review-item')][contains(., '{text}')]")
    assert "2026-W45" in row.text and "review-item-overdue" in row.get_attribute("class")
    # closed in W46: W46 still lists it, W47 does not
    item_id = row.get_attribute("data-item")
    click(cockpit, cockpit.find_element(f"tr[data-item='{item_id}'] .review-item-status"))
    option = cockpit.driver.find_element(
        By.XPATH, "//*[contains(@class, 'dash-dropdown-option')][normalize-space(.)='已完成']")
    click(cockpit, option)
    cockpit.wait_for_contains_text("#review-status-msg", "状态已更新", timeout=30)
    from data_access import notes

    from .helpers import scope

    items = {i.text: i for i in notes.items_for(scope(school="SH-U01"), "2026-W46")}
    assert items[text].status == "done" and items[text].closed_week == "2026-W46"
    assert text not in {i.text for i in notes.items_for(scope(school="SH-U01"), "2026-W47")}
    cockpit.driver.save_screenshot(str(SCREENSHOTS / "review-carried.png"))
    assert_no_console_errors(cockpit)


def test_print_view_and_english(cockpit):
    _wait_for_review(cockpit, QUERY + "&lang=en")
    assert "Weekly review" in cockpit.find_element("#review-title").text
    print_href = cockpit.find_element("#review-export-print").get_attribute("href")
    cockpit.driver.get(print_href.replace("print=1", "print=0"))
    cockpit.wait_for_element("body[data-ready='1']", timeout=60)
    assert cockpit.driver.find_elements(By.CSS_SELECTOR, ".print-figure .main-svg")   # charts drawn as SVG
    assert "Key indicators" in cockpit.find_element(".print-doc").text
    cockpit.driver.save_screenshot(str(SCREENSHOTS / "review-print-view.png"))
    assert_no_console_errors(cockpit)


def test_panels_and_overview_carry_the_export_bar(cockpit):
    for path, view in (("/", "overview"), ("/dining", "dining"), ("/energy", "energy"), ("/service", "service"),
                       ("/maturity", "maturity")):
        open_page(cockpit, path, "school=SH-U01", wait=f"#{view}-export-pdf", timeout=60)
        link = cockpit.find_element(f"#{view}-export-print").get_attribute("href")
        assert "school=SH-U01" in link and f"/export/{view}.html" in link
    # the overview's workbook, downloaded as a click would
    open_page(cockpit, "/", "school=SH-U01", wait="#overview-export-xlsx", timeout=60)
    response = download(cockpit, cockpit.find_element("#overview-export-xlsx").get_attribute("href"))
    assert response.status_code == 200 and response.content[:2] == b"PK"
    cockpit.driver.save_screenshot(str(SCREENSHOTS / "overview-export-bar.png"))
    assert_no_console_errors(cockpit)


def test_the_browsers_own_print_of_the_page(cockpit, tmp_path):
    """Chromium's print of the live page (DevTools Page.printToPDF, as Ctrl+P does with the page's CSS): A4
    landscape pages, the figures and tables, none of the controls."""
    import base64

    _wait_for_review(cockpit)
    cockpit.wait_for_element("#review-trend-energy .main-svg", timeout=30)
    pdf = base64.b64decode(cockpit.driver.execute_cdp_cmd("Page.printToPDF", {
        "preferCSSPageSize": True, "printBackground": True, "paperWidth": 11.69, "paperHeight": 8.27})["data"])
    path = tmp_path / "print.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    w, h = (float(x) for x in re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert abs(w - 842) < 2 and abs(h - 595) < 2                   # A4 landscape
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "周例会" in text and "关键指标" in text and "留样合规率" in text and "纪要与待办" in text
    for control in ("导出 Excel", "导出 PDF", "下钻到", "上一周", "岗位或姓名"):
        assert control not in text, control
    assert "1/" in text.replace(" ", "")                              # page numbers in the margin
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "2", str(path),
                    str(SCREENSHOTS / "review-browser-print")], check=True)


def test_a_week_in_progress_is_marked(cockpit):
    """Reviewed on a Thursday, W46 compares its three days with the same three days of the other weeks, and says
    so above the figures and in "what changed"."""
    import datetime as dt

    from data_access import config

    before = config.get_config()
    config.override(today_override=dt.date(2026, 11, 12))
    try:
        _wait_for_review(cockpit)
        assert "前 3 天" in cockpit.find_element("#review-week").text
        assert "2026-11-09 至 2026-11-11" in cockpit.find_element("#review-partial").text
        assert "临时结果" in cockpit.find_element("#review-changed-partial").text
        head = cockpit.find_element("#review-key-table thead").text
        assert "11-09–11-11" in head and "11-02–11-04" in head                 # like for like: Mon–Wed
        cockpit.driver.save_screenshot(str(SCREENSHOTS / "review-week-in-progress.png"))
        assert_no_console_errors(cockpit)
    finally:
        config.set_config(before)
