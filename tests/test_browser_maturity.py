"""The maturity page in headless Chromium, as an assessor: the association's ranking (sorted and filtered in
the grid, a school opened from it), one school with the floor rule, the gap list and the evidence-pack download,
and — on a 12-school demo warehouse where the K12 peer group reaches five — the radar against the peers.
Screenshots go to tests/screenshots/ for a human look."""
from __future__ import annotations

import time
from pathlib import Path

import openpyxl
import pytest
from selenium.webdriver.common.by import By

from .browser import api, api_session, assert_no_console_errors, click, current_query, open_page, screenshot, start
from .conftest import END, TODAY
from .helpers import scope, use_warehouse

pytestmark = pytest.mark.browser

PATH = "/maturity"


@pytest.fixture
def cockpit(dash_duo):
    duo = start(dash_duo)
    duo.driver.set_window_size(1600, 1000)
    return duo


def _grid_rows(duo) -> list[dict]:
    rows = []
    for row in duo.driver.find_elements(By.CSS_SELECTOR, "#maturity-ranking .ag-center-cols-container .ag-row"):
        cells = {c.get_attribute("col-id"): c.text for c in row.find_elements(By.CSS_SELECTOR, ".ag-cell")}
        rows.append({"id": row.get_attribute("row-id"), "index": int(row.get_attribute("row-index")), **cells})
    return sorted(rows, key=lambda r: r["index"])


def test_association_ranking_sort_filter_and_open_a_school(cockpit):
    from data_access import maturity
    from data_access.period import default_period

    open_page(cockpit, PATH, "", wait="#maturity-ranking .ag-row")
    cockpit.wait_for_element("#maturity-heatmap .main-svg", timeout=30)
    cockpit.wait_for_element("#maturity-levels .main-svg", timeout=30)
    expected = maturity.ranking(scope(), default_period())
    rows = _grid_rows(cockpit)
    assert [r["id"] for r in rows] == expected.school_id.tolist()          # rank 1 first
    assert [float(r["score"]) for r in rows] == pytest.approx(expected.score.round(1).tolist(), abs=0.051)
    # the overview's tile and the API read the same median
    assert float(cockpit.find_element("#maturity-distribution [data-stat='median'] strong").text) == \
        pytest.approx(api(cockpit, "ids=maturity.score")["maturity.score"]["value"], abs=0.051)
    screenshot(cockpit, "maturity-association")

    # sort by score ascending (click the header twice: the grid starts sorted by rank)
    header = cockpit.find_element(".ag-header-cell[col-id='score'] .ag-header-cell-label")
    click(cockpit, header)
    time.sleep(0.5)
    rows = _grid_rows(cockpit)
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores) or scores == sorted(scores, reverse=True)
    # filter by type with the floating filter
    box = cockpit.find_element(".ag-floating-filter[aria-colindex] input[aria-label*='类型'], "
                               ".ag-header-row-column-filter .ag-floating-filter:nth-child(4) input")
    box.send_keys("职业")
    time.sleep(1.0)
    rows = _grid_rows(cockpit)
    assert {r["id"] for r in rows} == {"SH-V01", "SH-V02"}

    # open a school from the grid
    link = cockpit.find_element("#maturity-ranking .ag-row[row-id='SH-V01'] a")
    click(cockpit, link)
    cockpit.wait_for_element("#maturity-summary", timeout=30)
    assert current_query(cockpit)["school"] == "SH-V01"
    assert_no_console_errors(cockpit)


def test_one_school_floor_rule_gap_list_and_evidence_download(cockpit):
    from data_access import maturity
    from data_access.period import default_period

    open_page(cockpit, PATH, "school=BJ-U01", wait="#maturity-summary")
    cockpit.wait_for_element("#maturity-radar .main-svg", timeout=30)
    summary = cockpit.find_element("#maturity-summary")
    want = maturity.school_scores(scope(school="BJ-U01"), default_period()).iloc[0]
    assert float(summary.get_attribute("data-score")) == pytest.approx(want["score"])
    assert int(summary.get_attribute("data-level")) == want["level"] < int(summary.get_attribute("data-level-by-score"))
    floor = cockpit.find_element("#maturity-floor-text").text
    assert "战略与组织" in floor and f"封顶为 L{want['level']}" in floor
    assert "少于 5 所" in cockpit.find_element("#maturity-peer-text").text
    gap_rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#maturity-gap tr[data-indicator]")
    assert gap_rows and all(r.get_attribute("data-indicator").startswith("strategy.") for r in gap_rows)
    rows = cockpit.driver.find_elements(By.CSS_SELECTOR, "#maturity-indicators tr[data-indicator]")
    assert len(rows) == len(maturity.framework().indicators)
    assert api(cockpit, "ids=maturity.level&school=BJ-U01")["maturity.level"]["value"] == want["level"]
    screenshot(cockpit, "maturity-school")

    # the evidence pack as PDF, next to the Excel button: a link to the printed pack of the same school and period
    from export import pdf_status

    pdf = cockpit.find_element("#maturity-summary #maturity-evidence-pdf")
    if pdf_status()[0]:
        href = pdf.get_attribute("href")
        assert "/export/maturity-evidence.pdf?" in href and "school=BJ-U01" in href
        response = api_session(cockpit).get(href, timeout=120)
        assert response.status_code == 200 and response.content[:4] == b"%PDF"
    else:
        assert "disabled" in pdf.get_attribute("class")

    # the evidence pack downloads as a workbook holding the same score
    download = Path(cockpit.download_path)
    try:
        cockpit.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download)})
    except Exception:  # older drivers: the profile preference set by dash[testing] applies
        pass
    click(cockpit, cockpit.find_element("#maturity-summary button"))
    name = f"maturity-evidence-BJ-U01-{END.isoformat()}.xlsx"
    deadline = time.time() + 30
    while time.time() < deadline and not (download / name).exists():
        time.sleep(0.3)
    assert (download / name).exists(), list(download.iterdir())
    time.sleep(0.5)
    wb = openpyxl.load_workbook(download / name)
    summary_rows = {r[0]: r[1] for r in wb["概况"].iter_rows(min_row=4, values_only=True)}
    assert summary_rows["学校代码"] == "BJ-U01" and summary_rows["总分"] == pytest.approx(want["score"])
    assert_no_console_errors(cockpit)


@pytest.fixture(scope="module")
def twelve_schools(tmp_path_factory):
    from data_access import demo

    path = tmp_path_factory.mktemp("twelve") / "w.duckdb"
    demo.build(f"duckdb:///{path}", schools=12, days=400, seed=11, end=END, quiet=True)
    return f"duckdb:///{path}"


def test_school_against_its_peers_in_english(cockpit, twelve_schools):
    from data_access import maturity
    from data_access.period import default_period

    with use_warehouse(twelve_schools, today=TODAY):
        open_page(cockpit, PATH, "school=SH-K01&lang=en", wait="#maturity-summary")
        cockpit.wait_for_element("#maturity-radar .main-svg", timeout=30)
        bench = maturity.peer_benchmark(scope(school="SH-K01"), default_period())
        assert bench.shown and bench.size == 5
        peer = cockpit.find_element("#maturity-peer-text").text
        assert "5 schools" in peer and f"ahead of {bench.percentile:.0f}%" in peer
        # school, median, P75 and best: four traces on the radar
        assert len(cockpit.driver.find_elements(By.CSS_SELECTOR, "#maturity-radar .scatterlayer .trace")) == 4
        screenshot(cockpit, "maturity-school-peers-en")
        open_page(cockpit, PATH, "lang=en", wait="#maturity-ranking .ag-row")
        cockpit.wait_for_element("#maturity-heatmap .main-svg", timeout=30)
        assert len(_grid_rows(cockpit)) == 12
        k12 = [r for r in _grid_rows(cockpit) if r["id"].split("-")[1].startswith("K")]
        assert all(r["percentile"].endswith("%") for r in k12)
        screenshot(cockpit, "maturity-association-12-en")
        assert_no_console_errors(cockpit)
