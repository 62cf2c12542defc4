"""Exports (components.export, export.py): the Excel workbook (openpyxl), CSV, the self-contained print page, and
the PDF printed by the system Chromium (page count, text extracted with pdftotext, every page rendered to an
image with pdftoppm and checked not blank; the images go to tests/screenshots/ for a human look)."""
from __future__ import annotations

import datetime as dt
import io
import math
import re
import shutil
import subprocess
import time

import pandas as pd
import plotly.graph_objects as go
import pytest
from openpyxl import load_workbook

from components import export as ex
from data_access import config, notes, review
from data_access.review import IsoWeek

from .conftest import SCREENSHOTS, TODAY
from .helpers import scope

HAVE_PDF = bool(shutil.which("pdftotext") and shutil.which("pdftoppm") and shutil.which("pdfinfo"))


@pytest.fixture(scope="module")
def server():
    from app import server

    return server


def login(client, name: str = "review-test-assessor", role: str = "assessor", **scope_kwargs):
    """Log a test client in (when the cockpit has accounts): an account of the role, a fresh session."""
    try:
        from data_access import accounts
    except ImportError:      # no accounts: everyone may see everything
        return client
    if accounts.get(name) is None:
        accounts.add(name, role, display_name="周例会测试", cas_user=f"test:{name}", actor="test", **scope_kwargs)
    with client.session_transaction() as session:
        now = time.time()
        session.update(user=name, login_at=now, seen_at=now)
    return client


@pytest.fixture(scope="module")
def client(server):
    return login(server.test_client())


def _pdf_ready():
    from export import pdf_status

    ok, reason = pdf_status("en")
    if not ok or not HAVE_PDF:
        pytest.skip(f"PDF printing needs chromium and poppler-utils (bin/test installs them): {reason}")


def _sample_report(rows: int = 12) -> ex.Report:
    table = pd.DataFrame({
        "学校": [f"学校 {i:03d}" for i in range(rows)],
        "留样合规率 (%)": [99.5 - i * 0.01 for i in range(rows)],
        "综合能耗 (kgce)": [12345.678 + i for i in range(rows)],
        "满意度指数 (分)": ["样本不足 (n < 10)" if i % 5 == 0 else 80.0 + i / 10 for i in range(rows)],
        "日期": [dt.date(2026, 11, 9) + dt.timedelta(days=i % 7) for i in range(rows)],
        "备注": ["较长的说明文字，" * (1 + i % 4) for i in range(rows)],
    })
    fig = go.Figure(go.Scatter(x=["2026-11-02", "2026-11-09"], y=[1.0, 2.0], mode="lines+markers"))
    return ex.Report(
        view="sample", title="周例会 · 测试学校 · 2026-W46", lang="zh",
        meta=(("范围", "测试学校"), ("周次", "2026-W46"), ("数据截至", "2026-11-15 23:50")),
        sections=(ex.Section("schools", "各校指标", table, decimals={"留样合规率 (%)": 1, "综合能耗 (kgce)": 0},
                             row_status=["red" if i % 3 == 0 else "green" for i in range(rows)],
                             text=("一段说明。",)),
                  ex.Section("trend", "趋势", pd.DataFrame({"周": ["2026-W45", "2026-W46"], "值 (kgce)": [1.0, 2.0]}),
                             figure=fig, figure_height=220)),
        filename="sample", running_head="周例会 · 测试学校 · 2026-W46", running_foot="数据截至 2026-11-15 23:50")



# --- pure builders ------------------------------------------------------------------------------------------

def test_excel_one_sheet_per_section_numbers_as_numbers():
    book = load_workbook(io.BytesIO(ex.excel_bytes(_sample_report())))
    assert book.sheetnames == ["说明", "各校指标", "趋势"]
    cover = book["说明"]
    assert cover["A1"].value == "周例会 · 测试学校 · 2026-W46"
    assert ("数据截至", "2026-11-15 23:50") in [(r[0].value, r[1].value) for r in cover.iter_rows(min_row=3)]
    sheet = book["各校指标"]
    assert [c.value for c in sheet[1]] == ["学校", "留样合规率 (%)", "综合能耗 (kgce)", "满意度指数 (分)", "日期",
                                           "备注"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:F13"
    assert isinstance(sheet["B2"].value, float) and sheet["B2"].value == pytest.approx(99.5)
    assert sheet["B2"].number_format == "#,##0.0" and sheet["C2"].number_format == "#,##0"
    assert sheet["D2"].value == "样本不足 (n < 10)" and sheet["D3"].value == pytest.approx(80.1)   # withheld stays text
    assert isinstance(sheet["E2"].value, dt.datetime) and sheet["E2"].number_format == "yyyy-mm-dd"
    assert sheet.cell(15, 1).value == "一段说明。"       # the section's text below its table


def test_sheet_names_are_valid_and_unique():
    sections = tuple(ex.Section(f"s{i}", "趋势 · 综合能耗/用电[kWh]*?:", pd.DataFrame({"a": [1]})) for i in range(3))
    report = ex.Report("x", "t", "zh", (), sections, "x")
    names = load_workbook(io.BytesIO(ex.excel_bytes(report))).sheetnames
    assert len(set(names)) == 4 and all(len(n) <= 31 and not re.search(r"[\[\]:*?/\\]", n) for n in names)


def test_csv_is_utf8_with_bom_and_unformatted_numbers():
    section = _sample_report().section("schools")
    body = ex.csv_bytes(section)
    assert body.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig")
    assert list(back.columns) == list(section.table.columns)
    assert back["综合能耗 (kgce)"].iloc[0] == pytest.approx(12345.678)
    assert back["满意度指数 (分)"].iloc[0] == "样本不足 (n < 10)" and back["日期"].iloc[0] == "2026-11-09"


def test_print_html_is_self_contained():
    page = ex.print_html(_sample_report(), css="@page { size: A4 landscape; }\n/* page-furniture:start */ X "
                                               "/* page-furniture:end */", plotly_js="/*plotly*/", margin_boxes=True)
    assert "<script src" not in page and "<link" not in page            # nothing fetched: prints offline
    assert 'id="fig-trend"' in page and "Plotly.newPlot" in page
    assert "@bottom-right" in page and "counter(pages)" in page and "X" in page
    assert "样本不足 (n &lt; 10)" in page and "<thead>" in page and "st-red" in page
    assert "12,346" in page            # the column's decimals
    bare = ex.print_html(_sample_report(), css="/* page-furniture:start */ X /* page-furniture:end */",
                         plotly_js=None, margin_boxes=False)
    assert "counter(pages)" not in bare and " X " not in bare and "fig-trend" not in bare
    assert "data-ready" in bare
    evil = ex.Report("x", "</script><script>alert(1)</script>", "zh", (("a", "<b>"),),
                     (ex.Section("s", "<i>", pd.DataFrame({"<c>": ["</td>"]})),), "x")
    text = ex.print_html(evil, plotly_js=None)
    assert "<script>alert" not in text and "&lt;/td&gt;" in text


def test_export_bar_without_chromium_says_why():
    bar = ex.export_bar("review", {"school": "SH-U01"}, "zh", (False, "未找到 Chromium"), [("notes", "纪要")])
    text = str(bar)
    assert "未找到 Chromium" in text and "Excel 和 CSV 仍可导出" in text
    assert "/export/review.xlsx?school=SH-U01" in text and "/export/review/notes.csv?school=SH-U01" in text


# --- routes -------------------------------------------------------------------------------------------------

def test_review_excel_matches_the_review(client):
    response = client.get("/export/review.xlsx?school=SH-U01&week=2026-W46")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="review-SH-U01-2026-W46.xlsx"'
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[:5] == ["说明", "关键指标", "变化最大的指标（较上周）", "新增红色指标", "本周告警变化"]
    assert book.sheetnames[-1] == "纪要与待办"
    sheet = book["关键指标"]
    head = [c.value for c in sheet[1]]
    assert head[:3] == ["领域", "指标", "单位"] and head[3].startswith("本周 (2026-11-09")
    assert head[5].startswith("上周 (2026-11-02") and head[-1] == "变化单位"
    data = review.build(scope(school="SH-U01"), IsoWeek(2026, 46), TODAY, with_alerts=False, with_trends=False)
    rows = [r for d in ("dining", "energy", "service", "maturity") for r in data.rows[d]]
    assert sheet.cell(len(rows) + 1, 2).value and sheet.cell(len(rows) + 2, 2).value is None   # then a note
    for i, row in enumerate(rows, start=2):
        assert sheet.cell(i, 2).value == row.indicator.name_zh
        assert sheet.cell(i, 3).value == (row.indicator.unit or None)
        for col, key in ((4, "this"), (6, "last_week"), (8, "last_year"), (10, "last_term")):
            value, cell = row.results[key].value, sheet.cell(i, col).value
            if value is None:
                assert cell is None
                continue
            assert isinstance(cell, (int, float))
            if row.indicator.unit == "%":       # cut to the shown precision, never rounded up
                d = row.indicator.decimals
                assert cell == pytest.approx(math.trunc(value * 10 ** d) / 10 ** d) and abs(cell) <= abs(value) + 1e-9
            else:
                assert cell == pytest.approx(value)


def test_withheld_figures_stay_withheld_in_every_format(client):
    query = "facility=SH-U01-C1-CAN1&week=2026-W46"
    book = load_workbook(io.BytesIO(client.get(f"/export/review.xlsx?{query}").data))
    sheet = book["关键指标"]
    by_name = {r[1].value: r for r in sheet.iter_rows(min_row=2)}
    assert by_name["满意度指数"][3].value == "样本不足 (n < 10)"
    assert by_name["满意度指数"][4].value == "样本不足 (n < 10)"          # the status column too
    assert by_name["满意度指数"][6].value is None                         # no change computed from it
    csv = client.get(f"/export/review/indicators.csv?{query}")
    assert csv.status_code == 200 and "样本不足 (n < 10)" in csv.data.decode("utf-8-sig")
    page = client.get(f"/export/review.html?{query}").data.decode()
    assert "样本不足 (n &lt; 10)" in page
    data = review.build(scope(facility="SH-U01-C1-CAN1"), IsoWeek(2026, 46), TODAY, with_alerts=False)
    csi = next(r for r in data.rows["service"] if r.indicator.id == "service.csi")
    hidden = csi.results["this"]
    assert hidden.status == "suppressed" and hidden.n < 10
    # the withheld number appears nowhere: the value itself is not even computed (Result.value is None)
    assert hidden.value is None and hidden.num is None


def test_csv_of_each_review_table(client):
    for key in ("indicators", "movements", "new-red", "alerts", "notes", "trend-energy"):
        response = client.get(f"/export/review/{key}.csv?school=SH-U01&week=2026-W46")
        assert response.status_code == 200, key
        assert response.mimetype == "text/csv" and response.data.startswith(b"\xef\xbb\xbf")
        frame = pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig")
        assert len(frame.columns) >= 2
    assert client.get("/export/review/nope.csv?school=SH-U01&week=2026-W46").status_code == 404


def test_overview_export(client):
    from data_access import overview, registry
    from data_access.period import Period

    response = client.get("/export/overview.xlsx?school=SH-U01&from=2026-10-17&to=2026-11-15")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[:3] == ["说明", "各领域指标", "当前告警"]
    period = Period(dt.date(2026, 10, 17), dt.date(2026, 11, 15))
    tiles = [d.tile for dom in overview.DOMAINS for d in overview.domain_tiles(dom, scope(school="SH-U01"), period)]
    sheet = book["各领域指标"]
    assert sheet.max_row == len(tiles) + 1
    for i, tile in enumerate(tiles, start=2):
        assert sheet.cell(i, 2).value == tile.indicator.name_zh
        value = tile.current.value
        if value is not None and tile.indicator.unit != "%":
            assert sheet.cell(i, 4).value == pytest.approx(value)
    alerts = overview.alerts(scope(school="SH-U01"), period)
    assert book["当前告警"].max_row == len(alerts) + 1
    assert registry.get("dining.cold_chain")   # the registry is the one source of both
    csv = client.get("/export/overview/tiles.csv?school=SH-U01&from=2026-10-17&to=2026-11-15")
    assert csv.status_code == 200


@pytest.mark.parametrize("url, status, text", [
    ("/export/nope.xlsx", 404, "该页面不支持导出"),
    ("/export/review.doc?school=SH-U01", 404, "该页面不支持导出"),
    ("/export/review.xlsx?school=SH-U01&week=2026-W99", 400, "没有第 99 周"),
    ("/export/review.xlsx?school=NOPE", 400, "未找到学校"),
    ("/export/review.xlsx?school=SH-U01&week=2027-W10&lang=en", 400, "has not begun"),
])
def test_export_errors_are_messages(client, url, status, text):
    response = client.get(url)
    assert response.status_code == status and response.mimetype == "text/html"
    body = response.data.decode()
    assert text in body and "Traceback" not in body


def test_pdf_unavailable_without_chromium(client):
    from export import pdf_status

    before = config.get_config()
    config.override(export={**before.export, "chromium": "/nonexistent/chromium"})
    try:
        ok, reason = pdf_status("zh")
        assert not ok and "/nonexistent/chromium" in reason
        response = client.get("/export/review.pdf?school=SH-U01&week=2026-W46")
        assert response.status_code == 503 and "PDF 不可用" in response.data.decode()
        assert client.get("/export/review.xlsx?school=SH-U01&week=2026-W46").status_code == 200
        import app  # noqa: F401
        from pages import review as page

        content = str(page.render({"school": "SH-U01", "week": "2026-W46"}))
        assert "PDF 不可用" in content and "disabled" in content
    finally:
        config.set_config(before)


# --- PDF ----------------------------------------------------------------------------------------------------

def _pages(path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    w, h = (float(x) for x in re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert abs(w - 842) < 2 and abs(h - 595) < 2     # A4 landscape (points)
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


def _ink(pgm: bytes) -> float:
    """Share of non-white pixels of a binary PGM (P5) image."""
    parts = pgm.split(b"\n", 3)
    assert parts[0] == b"P5"
    pixels = parts[3]
    return sum(1 for b in pixels[::7] if b < 200) / max(1, len(pixels[::7]))


def _look_at_every_page(path, name: str, pages: int):
    """Render each page (pdftoppm) and check that it shows something; PNGs kept for a human look."""
    for page in range(1, pages + 1):
        pgm = subprocess.run(["pdftoppm", "-r", "30", "-gray", "-f", str(page), "-l", str(page), str(path)],
                             capture_output=True, check=True).stdout
        assert _ink(pgm) > 0.002, f"page {page} of {name} is blank"
    SCREENSHOTS.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(SCREENSHOTS / name)], check=True)


def test_pdf_long_table_breaks_across_pages(tmp_path):
    _pdf_ready()
    from export import plotly_js, print_css, render_pdf

    report = _sample_report(rows=160)
    pdf = render_pdf(ex.print_html(report, print_css(), plotly_js(), margin_boxes=False), report.running_head,
                     report.running_foot)
    path = tmp_path / "long.pdf"
    path.write_bytes(pdf)
    pages = _pages(path)
    assert pages > 1
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    per_page = text.split("\f")
    for number, page in enumerate(per_page[:pages], start=1):
        assert f"{number}/{pages}" in page.replace(" ", "")           # page numbers in the footer
        assert "周例会 · 测试学校 · 2026-W46" in page                  # the running head
        assert "数据截至 2026-11-15 23:50" in page
    assert sum("留样合规率" in p for p in per_page) >= 2             # the table's header repeats on the next page
    for i in range(160):                                               # no row lost or cut at a page break
        assert f"学校 {i:03d}" in text
    _look_at_every_page(path, "export-long-table", pages)


def test_review_pdf_has_title_notes_and_charts(client, tmp_path):
    _pdf_ready()
    marker = "核查第二食堂排烟管道（测试）"
    notes.add_item(scope(school="SH-U01"), "2026-W45", "action", marker, indicator_id="dining.cold_chain",
                   owner="后勤处", due_on="2026-11-12")
    response = client.get("/export/review.pdf?school=SH-U01&week=2026-W46")
    assert response.status_code == 200 and response.data[:4] == b"%PDF"
    assert response.headers["Content-Disposition"] == 'attachment; filename="review-SH-U01-2026-W46.pdf"'
    path = tmp_path / "review.pdf"
    path.write_bytes(response.data)
    pages = _pages(path)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    first = text.split("\f")[0]
    assert "周例会 · 沪澜大学 · 2026-W46" in first and "第 10 教学周" in first and "数据截至" in first
    for heading in ("关键指标", "变化最大的指标", "新增红色指标", "本周告警变化", "趋势 · 综合能耗", "纪要与待办"):
        assert heading in text
    assert marker in text and "后勤处" in text and "2026-W45" in text      # the carried action item
    assert f"1/{pages}" in first.replace(" ", "")
    # charts are vector: the PDF carries no raster image for them
    images = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True).stdout \
        if shutil.which("pdfimages") else ""
    assert len([ln for ln in images.splitlines()[2:] if ln.strip()]) == 0
    _look_at_every_page(path, "review-pdf", pages)


def test_english_review_pdf(client, tmp_path):
    _pdf_ready()
    response = client.get("/export/review.pdf?school=SH-U01&week=2026-W46&lang=en")
    path = tmp_path / "review-en.pdf"
    path.write_bytes(response.data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Weekly review" in text and "Key indicators" in text and "Teaching week 10" in text


@pytest.mark.parametrize("domain", ["dining", "energy", "service", "maturity"])
def test_domain_panel_default_export(client, domain):
    from data_access import registry
    from data_access.period import Period

    query = "school=SH-U01&from=2026-10-17&to=2026-11-15"
    response = client.get(f"/export/{domain}.xlsx?{query}")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[:2] == ["说明", "指标"]
    sheet = book["指标"]
    assert [c.value for c in sheet[1]][:5] == ["指标", "单位", "统计期", "状态", "上期"]
    period = Period(dt.date(2026, 10, 17), dt.date(2026, 11, 15))
    s = scope(school="SH-U01")
    inds = [i for i in registry.all_indicators() if i.domain == domain and s.level in i.levels]
    assert sheet.cell(len(inds) + 1, 1).value and sheet.cell(len(inds) + 2, 1).value is None
    for row, ind in enumerate(inds, start=2):
        res = registry.evaluate(ind.id, s, period)
        assert sheet.cell(row, 1).value == ind.name_zh
        cell = sheet.cell(row, 3).value
        if res.status == "suppressed":
            assert cell == "样本不足 (n < 10)"
        elif res.value is None:
            assert cell is None
        elif ind.unit == "%":
            assert cell == pytest.approx(math.trunc(res.value * 10 ** ind.decimals) / 10 ** ind.decimals)
        else:
            assert cell == pytest.approx(res.value)
    if domain != "maturity":     # maturity is assessed per school: nothing one level down
        assert "按校区" in book.sheetnames
    csv = client.get(f"/export/{domain}/indicators.csv?{query}")
    assert csv.status_code == 200


# --- spreadsheet formula injection ----------------------------------------------------------------------------

# Typed text that a spreadsheet would run: each must arrive as the same text, never as a formula
FORMULAS = ['=HYPERLINK("http://evil.example","点我")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


def test_formula_like_text_stays_text_numbers_stay_numbers():
    import csv

    texts = FORMULAS + ["复查冷链", "3 - 1 = 2"]
    numbers = [-5.0, -0.25, 0.0, 1.5, 2.0, 3.0, 4.0, 5.0]
    table = pd.DataFrame({"内容": texts, "负责人": ["=cmd|' /C calc'!A0"] * len(texts), "数值 (%)": numbers})
    report = ex.Report("x", "=1+1", "zh", (("范围", "@risky"),),
                       (ex.Section("notes", "纪要", table, text=("-1+1 说明",)),), "x")
    book = load_workbook(io.BytesIO(ex.excel_bytes(report)))
    sheet = book["纪要"]
    for row, text in enumerate(texts, start=2):
        assert sheet.cell(row, 1).value == text and sheet.cell(row, 1).data_type == "s", text
        assert sheet.cell(row, 2).value == "=cmd|' /C calc'!A0" and sheet.cell(row, 2).data_type == "s"
        number = sheet.cell(row, 3)
        assert number.value == numbers[row - 2] and number.data_type == "n"      # -5 stays the number -5
    assert sheet.cell(len(texts) + 3, 1).value == "-1+1 说明" and sheet.cell(len(texts) + 3, 1).data_type == "s"
    cover = book["说明"]
    assert (cover["A1"].value, cover["A1"].data_type, cover["B3"].value, cover["B3"].data_type) == \
        ("=1+1", "s", "@risky", "s")
    formulas = [c.coordinate for ws in book.worksheets for r in ws.iter_rows() for c in r if c.data_type == "f"]
    assert formulas == []
    # a control character pasted into a note does not break the workbook (it cannot be stored: dropped)
    pasted = ex.Report("x", "t", "zh", (), (ex.Section("notes", "纪要", pd.DataFrame({"内容": ["换\x0b封条"]})),), "x")
    assert load_workbook(io.BytesIO(ex.excel_bytes(pasted)))["纪要"]["A2"].value == "换封条"
    # CSV: the same texts behind an apostrophe (written out by hand), numbers as they are, every row intact
    rows = list(csv.reader(io.StringIO(ex.csv_bytes(report.sections[0]).decode("utf-8-sig"), newline="")))
    assert rows[0] == ["内容", "负责人", "数值 (%)"]
    assert [r[0] for r in rows[1:]] == ['\'=HYPERLINK("http://evil.example","点我")', "'+1+1", "'-2+3",
                                        "'@SUM(A1:A9)", "'\t=1+1", "'\r=1+1", "复查冷链", "3 - 1 = 2"]
    assert {r[1] for r in rows[1:]} == {"'=cmd|' /C calc'!A0"}
    assert [float(r[2]) for r in rows[1:]] == numbers and rows[1][2] == "-5.0"


def test_a_note_typed_as_a_formula_exports_as_text(client):
    """The path a user's text takes: a note and an owner typed in the review, exported as Excel and CSV."""
    text, owner = "=HYPERLINK(\"http://evil.example\",\"复核\")", "@后勤处"
    notes.add_item(scope(school="SH-K01"), "2026-W46", "action", text, owner=owner, due_on="2026-11-20")
    query = "school=SH-K01&week=2026-W46"
    book = load_workbook(io.BytesIO(client.get(f"/export/review.xlsx?{query}").data))
    sheet = book["纪要与待办"]
    head = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[head.index("内容")].value == text)
    assert row[head.index("内容")].data_type == "s"
    assert row[head.index("负责人")].value == owner and row[head.index("负责人")].data_type == "s"
    body = client.get(f"/export/review/notes.csv?{query}").data.decode("utf-8-sig")
    assert "'=HYPERLINK" in body and "'@后勤处" in body and "\n=HYPERLINK" not in body


# --- every table of a panel, as CSV ---------------------------------------------------------------------------

def _walk(node):
    """Every component (as its JSON: type, props) of a page callback's answer, components or plain data."""
    import json

    import plotly

    def visit(item):        # depth first, in document order
        if isinstance(item, dict):
            if "props" in item and "type" in item:
                yield item
            for value in item.values():
                yield from visit(value)
        elif isinstance(item, list):
            for value in item:
                yield from visit(value)

    yield from visit(json.loads(json.dumps(node, cls=plotly.utils.PlotlyJSONEncoder)))


PANEL_RENDER = {"dining": "render", "energy": "render_header", "service": "render", "maturity": "render"}
PERIOD = {"from": "2026-10-17", "to": "2026-11-15"}


ALL_TABLES = ["indicators", "breakdown", "alerts", "trend"]


# (panel, scope, its tables): a trend for every domain but maturity (overview.TREND); a breakdown where the domain
# has indicators one level down — not below a canteen, and maturity (assessed per school) only above schools
@pytest.mark.parametrize("domain, where, tables", [
    ("dining", {"school": "SH-U01"}, ALL_TABLES), ("energy", {"school": "SH-U01"}, ALL_TABLES),
    ("service", {"school": "SH-U01"}, ALL_TABLES), ("maturity", {"school": "SH-U01"}, ["indicators", "alerts"]),
    ("dining", {}, ALL_TABLES), ("energy", {"region": "310000"}, ALL_TABLES),
    ("service", {"facility": "SH-U01-C1-CAN1"}, ["indicators", "alerts", "trend"]),
    ("maturity", {}, ["indicators", "breakdown", "alerts"]),
])
def test_every_csv_a_panel_lists_downloads(client, domain, where, tables):
    """The panel's CSV menu lists every table of its export (breakdown and trend included), and each listed
    link downloads a non-empty UTF-8 CSV with a byte-order mark."""
    import importlib

    import app  # noqa: F401  (pages register with the app)
    from components.export import REPORTS

    params = {**where, **PERIOD}
    page = importlib.import_module(f"pages.{domain}")
    content = getattr(page, PANEL_RENDER[domain])(params)
    links = [c["props"]["href"] for c in _walk(content)
             if isinstance(c["props"].get("id"), dict) and c["props"]["id"].get("type") == "export-csv"]
    listed = [re.search(rf"/export/{domain}/([a-z0-9_-]+)\.csv\?", h).group(1) for h in links]
    report = REPORTS[domain](params)
    assert listed == [s.key for s in report.sections if s.table is not None]
    assert listed == tables
    for link in links:
        response = client.get(link)
        assert response.status_code == 200, link
        assert response.mimetype == "text/csv" and response.data.startswith(b"\xef\xbb\xbf"), link
        frame = pd.read_csv(io.BytesIO(response.data), encoding="utf-8-sig")
        assert len(frame.columns) >= 2, link
        if not link.split("?")[0].endswith("/alerts.csv"):   # a place without alerts has the header only
            assert len(frame) >= 1, link
