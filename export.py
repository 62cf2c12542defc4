"""Downloads of any exportable view (components.export.register_report) and the PDF printer: a Flask blueprint.

GET /export/<view>.xlsx              the view as an Excel workbook (one sheet per section)
GET /export/<view>.pdf               the view as a paged PDF (A4 landscape), printed by the system Chromium
GET /export/<view>.html[?print=1]    the print view: the same pages in the browser (its own print dialog)
GET /export/<view>/<section>.csv     one table as CSV
The query string is the page's own (scope, period or week, language, page options): a download is a permalink.

The PDF is printed from a self-contained HTML page (plotly.js inlined from the installed plotly package, so the
charts are drawn as vector SVG) given to Chromium with ``page.set_content``: the printer never requests anything
from this server, which could deadlock a single synchronous worker. Playwright for Python drives the system
Chromium (config ``export.chromium``, default /usr/bin/chromium; no browser download). When Chromium is missing the
PDF link says so and the route answers 503; Excel, CSV and the print view still work.
"""
from __future__ import annotations

import functools
import html
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from flask import Blueprint, Flask, Response, request

from components.export import REPORTS, Report, csv_bytes, excel_bytes, print_html, script_hashes
from components.i18n import register, t
from data_access.config import PROJECT_DIR, get_config
from data_access.engine import WarehouseUnavailable
from data_access.errors import InputError, ScopeDenied
from data_access.request import audit_request

logger = logging.getLogger(__name__)

register({
    "ex.err.title": ("无法导出", "Export failed"),
    "ex.err.unknown_view": ("该页面不支持导出", "this page cannot be exported"),
    "ex.err.unknown_section": ("没有这个表格", "no such table"),
    "ex.err.busy": ("PDF 生成繁忙，请稍后再试", "the PDF printer is busy; try again shortly"),
    "ex.err.pdf_failed": ("PDF 生成失败（已记录）", "the PDF could not be printed (logged)"),
    "ex.err.internal": ("导出时出现内部错误（已记录）", "an internal error occurred (logged)"),
    "ex.err.warehouse": ("数据仓库暂不可用", "the data warehouse is unavailable"),
    "ex.no_chromium": ("未找到 Chromium（{path}），请安装 chromium 与 fonts-noto-cjk",
                       "Chromium not found ({path}); install chromium and fonts-noto-cjk"),
    "ex.no_playwright": ("未安装 Python 包 playwright", "the Python package playwright is not installed"),
    "ex.domain.dining": ("餐饮安全", "Dining safety"),
    "ex.domain.energy": ("能源", "Energy"),
    "ex.domain.service": ("服务满意度", "Service satisfaction"),
    "ex.domain.maturity": ("成熟度", "Digital maturity"),
})

bp = Blueprint("export", __name__)

MIMETYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
PRINT_CSS = PROJECT_DIR / "assets" / "print.css"
_slots: threading.BoundedSemaphore | None = None
_slots_lock = threading.Lock()


class ExportUnavailable(RuntimeError):
    """The PDF printer cannot run here; the message is safe to show."""


class UnknownView(LookupError):
    """No such exportable view or format."""


# --- resources (read once per process) ----------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def plotly_js() -> str | None:
    """plotly.min.js of the installed plotly package (the same version the app's figures are built for)."""
    try:
        import plotly

        path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        return path.read_text(encoding="utf-8")
    except OSError:
        logger.warning("plotly.min.js not found in the plotly package: printed pages will have no charts")
        return None


@functools.lru_cache(maxsize=1)
def print_css() -> str:
    try:
        return PRINT_CSS.read_text(encoding="utf-8")
    except OSError:
        logger.warning("assets/print.css not found: printed pages are unstyled")
        return ""


def chromium_path() -> str:
    return str(get_config().export.get("chromium") or "/usr/bin/chromium")


def pdf_status(lang: str = "zh") -> tuple[bool, str]:
    """(available, why not): Playwright importable and the configured Chromium executable."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False, t("ex.no_playwright", lang)
    path = chromium_path()
    resolved = path if os.path.isabs(path) else shutil.which(path)
    if not resolved or not os.access(resolved, os.X_OK):
        return False, t("ex.no_chromium", lang, path=path)
    return True, ""


def _semaphore() -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(max(1, int(get_config().export.get("max_parallel_pdf", 2))))
        return _slots


# --- the printer --------------------------------------------------------------------------------------------

def _template(text: str, align: str) -> str:
    # Chromium's header/footer templates have no page styles: everything inline, small, with the CJK font.
    return (f'<div style="font-family: \'Noto Sans CJK SC\', \'Source Han Sans SC\', sans-serif; font-size: 7.5pt;'
            f' color: #555; width: 100%; padding: 0 10mm; text-align: {align};">{text}</div>')


def render_pdf(page_html: str, head: str, foot: str, timeout_s: float | None = None) -> bytes:
    """Print a self-contained page to an A4-landscape PDF with a running head and "page / pages" footer."""
    ok, reason = pdf_status("en")
    if not ok:
        raise ExportUnavailable(reason)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    timeout_s = float(timeout_s or get_config().export.get("pdf_timeout_s", 60))
    slots = _semaphore()
    if not slots.acquire(timeout=timeout_s):
        raise ExportUnavailable("busy")
    started = time.monotonic()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                         timeout=timeout_s * 1000)
            try:
                page = browser.new_page()
                page.set_content(page_html, wait_until="load", timeout=timeout_s * 1000)
                page.wait_for_function("document.body.getAttribute('data-ready') !== null",
                                       timeout=timeout_s * 1000)
                if page.evaluate("document.body.getAttribute('data-ready')") == "error":
                    logger.warning("a chart failed to draw in the PDF: %s",
                                   page.evaluate("document.body.getAttribute('data-error')"))
                pdf = page.pdf(
                    format="A4", landscape=True, print_background=True, display_header_footer=True,
                    header_template=_template(html.escape(head), "left"),
                    footer_template=_template(
                        f'{html.escape(foot)}<span style="float: right;"><span class="pageNumber"></span> / '
                        f'<span class="totalPages"></span></span>', "left"),
                    margin={"top": "14mm", "bottom": "13mm", "left": "10mm", "right": "10mm"},
                )
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise RuntimeError(f"PDF printing failed: {exc}") from exc
    finally:
        slots.release()
    logger.info("printed a PDF of %d bytes in %.1f s", len(pdf), time.monotonic() - started)
    return pdf


# --- default reports of the domain panels -----------------------------------------------------------------------

def _domain_indicators(domain: str, scope):
    """The domain's indicators at the scope, and those that also exist one level down (the breakdown's)."""
    from data_access import registry

    inds = [i for i in registry.all_indicators() if i.domain == domain and scope.level in i.levels]
    level = scope.child_level
    return inds, ([i for i in inds if level in i.levels] if level else [])


def domain_csv_sections(domain: str, scope, lang: str) -> list[tuple[str, str]]:
    """(key, title) of every table of a panel's default export at a scope, in report order: what the panel's CSV
    menu lists (the same conditions as ``domain_report``; no query)."""
    from data_access import overview, registry

    _inds, below = _domain_indicators(domain, scope)
    out = [("indicators", t("ex.indicators", lang))]
    if below:
        out.append(("breakdown", t("ex.breakdown", lang, level=t(f"level.{scope.child_level}", lang))))
    out.append(("alerts", t("ex.alerts", lang)))
    if overview.TREND.get(domain):
        out.append(("trend", t("ex.trend", lang, name=registry.get(overview.TREND[domain]).name(lang))))
    return out


def domain_report(domain: str):
    """A panel's default export (until the panel registers its own): every indicator of the domain for the scope
    and period (value, status, previous period, change, n, data as of, definition), the same one level down,
    the domain's alerts and its trend: the registry's figures, like the panel's tiles."""

    def build(params: dict) -> Report:
        import datetime as dt

        import pandas as pd

        from components.charts import sparkline
        from components.export import Section, breakdown_section, result_cell, safe_name, tiles_section
        from components.format import fmt_datetime, status_label
        from data_access import meta, overview, registry
        from data_access.dims import children_of
        from data_access.request import parse_request

        cfg = get_config()
        req = parse_request(params, default_lang=cfg.default_language)
        scope, period, lang, min_n = req.scope, req.period, req.lang, cfg.min_group_size
        inds, below = _domain_indicators(domain, scope)
        tiles = [(registry.tile(i.id, scope, period), meta.as_of(scope, i.tables)) for i in inds]
        name = t(f"ex.domain.{domain}", lang)
        sections = [tiles_section("indicators", t("ex.indicators", lang), tiles, lang, min_n, fmt_datetime)]
        level = scope.child_level
        if below:
            by_key: dict[str, dict] = {}
            for ind in below:
                for res in registry.breakdown(ind.id, scope, period, level):
                    by_key.setdefault(str(res.key), {})[ind.id] = res
            kids = [(child_name, by_key.get(key, {})) for key, child_name in children_of(scope, lang)]
            level_name = t(f"level.{level}", lang)
            sections.append(breakdown_section("breakdown", t("ex.breakdown", lang, level=level_name), level_name,
                                              kids, below, lang, min_n))
        rows = []
        for a in overview.alerts(scope, period, lang, domains=(domain,)):
            ind = registry.get(a.indicator_id)
            rows.append([ind.name(lang), a.name or t(f"level.{a.level}", lang), t(f"level.{a.level}", lang), ind.unit,
                         result_cell(ind, a.result, lang, min_n),
                         status_label(a.result.status, lang, a.result.n, min_n)])
        sections.append(Section("alerts", t("ex.alerts", lang), pd.DataFrame(rows, columns=[
            t(k, lang) for k in ("ex.indicator", "ex.where", "ex.level", "ex.unit", "ex.value", "ex.status")]),
            row_status=["red"] * len(rows)))
        found = overview.trend(domain, scope, period)
        if found is not None:
            ind_id, _freq, points = found
            ind = registry.get(ind_id)
            col = f"{ind.name(lang)} ({ind.unit})" if ind.unit else ind.name(lang)
            sections.append(Section(
                "trend", t("ex.trend", lang, name=ind.name(lang)),
                pd.DataFrame([[dt.date.fromisoformat(p.key), result_cell(ind, p, lang, min_n)] for p in points],
                             columns=[t("ex.date", lang), col]),
                decimals={col: ind.decimals}, figure=sparkline([p.key for p in points], [p.value for p in points],
                                                               ind.unit, height=240), figure_height=240))
        where = overview.place_name(scope.level, scope.key(), lang) if scope.key() else t("scope.all", lang)
        facts = [a.get("fact") for _tile, a in tiles if a.get("fact")]
        loads = [a.get("loaded_at") for _tile, a in tiles if a.get("loaded_at")]
        as_of = fmt_datetime(max(facts, default=None) or max(loads, default=None))   # the newest fact, else load
        dates = f"{period.start.isoformat()} – {period.end.isoformat()}"
        title = f"{name} · {where} · {dates}"
        meta_rows = ((t(f"level.{scope.level}", lang), where), (t("ex.period", lang), dates),
                     (t("ex.as_of", lang), as_of),
                     (t("ex.generated", lang), dt.datetime.now().strftime("%Y-%m-%d %H:%M")),
                     ("", t("ex.suppressed_note", lang, n=min_n)))
        return Report(domain, title, lang, meta_rows, tuple(sections),
                      safe_name(f"{domain}-{scope.key() or 'all'}-{period.start.isoformat()}-{period.end.isoformat()}"),
                      running_head=title, running_foot=f"{t('ex.as_of', lang)} {as_of}")

    return build


DOMAIN_PANELS = ("dining", "energy", "service", "maturity")


def register_domain_reports() -> None:
    """Give every domain panel the default export, unless its page registered its own."""
    from components.export import register_report

    for domain in DOMAIN_PANELS:
        if domain not in REPORTS:
            register_report(domain, domain_report(domain))


# --- routes -------------------------------------------------------------------------------------------------

def _lang() -> str:
    return "en" if request.args.get("lang") == "en" else "zh"


def _message(status: int, text: str, lang: str) -> Response:
    """A plain page saying what went wrong, never a traceback."""
    body = (f'<!DOCTYPE html><html lang="{"en" if lang == "en" else "zh-CN"}"><head><meta charset="utf-8">'
            f'<title>{html.escape(t("ex.err.title", lang))}</title></head><body style="font-family: sans-serif;'
            f' margin: 2rem;"><h1 style="font-size: 1.2rem;">{html.escape(t("ex.err.title", lang))}</h1>'
            f'<p id="export-error">{html.escape(text)}</p>'
            '<p><a href="javascript:history.back()">←</a></p></body></html>')
    return Response(body, status=status, mimetype="text/html")


def _report(view: str) -> Report:
    builder = REPORTS.get(view)
    if builder is None:
        raise UnknownView(view)
    return builder(request.args.to_dict(flat=True))


def _attachment(body: bytes, name: str, fmt: str) -> Response:
    return Response(body, mimetype=MIMETYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _guarded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        # Every download is on record (issue 10: exports are audited), refused ones with their status.
        response = answer(*args, **kwargs)
        audit_request("export", "ok" if response.status_code < 400 else str(response.status_code),
                      request.full_path[:300])
        return response

    def answer(*args, **kwargs):
        lang = _lang()
        try:
            return fn(*args, **kwargs)
        except UnknownView:
            return _message(404, t("ex.err.unknown_view", lang), lang)
        except ScopeDenied as exc:
            return _message(403, exc.message(lang), lang)
        except InputError as exc:
            return _message(400, exc.message(lang), lang)
        except WarehouseUnavailable as exc:
            return _message(503, f"{t('ex.err.warehouse', lang)}: {exc}", lang)
        except ExportUnavailable as exc:
            reason = t("ex.err.busy", lang) if str(exc) == "busy" else pdf_status(lang)[1] or str(exc)
            return _message(503, t("ex.pdf.unavailable", lang, reason=reason), lang)
        except Exception:  # never a traceback in the browser; the log has it
            logger.exception("export %s failed", request.path)
            return _message(500, t("ex.err.internal", lang), lang)

    return wrapper


@bp.get("/export/<view>.<fmt>")
@_guarded
def export_view(view: str, fmt: str):
    if fmt not in ("xlsx", "pdf", "html"):
        raise UnknownView(fmt)
    report = _report(view)
    if fmt == "xlsx":
        return _attachment(excel_bytes(report), f"{report.filename}.xlsx", "xlsx")
    if fmt == "html":
        page = print_html(report, print_css(), plotly_js(), margin_boxes=True,
                          auto_print=request.args.get("print") == "1")
        # The page is self-contained: its own inline scripts (by hash) and styles, nothing fetched from anywhere.
        csp = (f"default-src 'none'; script-src {' '.join(script_hashes(page))}; style-src 'unsafe-inline'; "
               "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
        return Response(page, mimetype=MIMETYPES["html"], headers={"Cache-Control": "no-store",
                                                                   "Content-Security-Policy": csp})
    page = print_html(report, print_css(), plotly_js(), margin_boxes=False)
    pdf = render_pdf(page, report.running_head or report.title, report.running_foot)
    return _attachment(pdf, f"{report.filename}.pdf", "pdf")


@bp.get("/export/<view>/<section>.csv")
@_guarded
def export_csv(view: str, section: str):
    report = _report(view)
    found = report.section(section)
    if found is None or found.table is None:
        return _message(404, t("ex.err.unknown_section", _lang()), _lang())
    return _attachment(csv_bytes(found), f"{report.filename}-{section}.csv", "csv")


def init_app(server: Flask) -> None:
    server.register_blueprint(bp)
    register_domain_reports()
