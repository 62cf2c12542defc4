"""The data page's pieces (数据管理): the table inventory, recent batches and the import templates.

Pure factories: data_access.inventory's rows in, Dash components out.
"""
from __future__ import annotations

import datetime as dt

import dash_bootstrap_components as dbc
from dash import html

from .format import STATUS_SHAPES, fmt_datetime, fmt_value
from .i18n import register, t

TABLE_NAMES: dict[str, tuple[str, str]] = {
    "dim_school": ("学校", "Schools"),
    "dim_campus": ("校区", "Campuses"),
    "dim_facility": ("设施", "Facilities"),
    "fact_school_year": ("学校年度规模", "School size per year"),
    "dim_school_calendar": ("校历", "School calendars"),
    "fact_dining_check": ("食安检查", "Dining safety checks"),
    "fact_meals_served": ("就餐人次", "Meals served"),
    "fact_cold_chain_reading": ("冷链温度读数", "Cold-chain readings"),
    "fact_food_hazard": ("食安隐患", "Food-safety hazards"),
    "fact_canteen_inspection": ("监督检查", "Canteen inspections"),
    "fact_staff_certificate": ("健康证", "Health certificates"),
    "dim_meter": ("计量表", "Meters"),
    "fact_meter_reading": ("能耗读数", "Meter readings"),
    "fact_energy_quota": ("能耗定额", "Energy quotas"),
    "fact_survey_response": ("满意度问卷", "Survey responses"),
    "fact_work_order": ("报修工单", "Work orders"),
    "fact_maturity_score": ("成熟度评分", "Maturity scores"),
}

register({f"dm.table.{k}": v for k, v in TABLE_NAMES.items()})
register({
    "dm.tables": ("数据表", "Warehouse tables"),
    "dm.tables.note": ("行数、最新数据和完整率按所选范围统计；批次与来源系统来自导入记录（meta_load），不分学校。",
                       "Rows, newest data and completeness are for the selected scope; batches and source systems "
                       "come from the load records (meta_load), which are not per school."),
    "dm.col.table": ("数据表", "Table"),
    "dm.col.rows": ("行数", "Rows"),
    "dm.col.newest": ("最新数据", "Newest data"),
    "dm.col.fresh": ("及时性", "Freshness"),
    "dm.col.complete": ("完整率", "Completeness"),
    "dm.col.loaded": ("最近入库", "Last loaded"),
    "dm.col.source": ("来源系统", "Source system"),
    "dm.col.last": ("最近批次", "Last batch"),
    "dm.col.rejected": ("累计拒绝行", "Rows rejected"),
    "dm.col.batch": ("批次", "Batch"),
    "dm.col.batch_rejected": ("拒绝", "Rejected"),
    "dm.col.rows_in": ("读入", "Rows in"),
    "dm.col.status": ("状态", "Status"),
    "dm.fresh.green": ("及时", "Up to date"),
    "dm.fresh.red": ("滞后", "Behind"),
    "dm.fresh.nodata": ("无数据", "No data"),
    "dm.fresh.title": ("数据更新到统计期末（或前一天）为及时", "Up to date: data reach the period's last day or the day before"),
    "dm.year": ("{year}年", "{year}"),
    "dm.until": ("至 {date}", "until {date}"),
    "dm.multi": ("多源", "Several sources"),
    "dm.multi.title": ("该表的数据来自多个来源系统，不符合“一数一源”", "More than one source system feeds this table (one source per datum)"),
    "dm.never": ("未导入", "Never loaded"),
    "dm.batch.summary": ("读入 {rows:,} · 拒绝 {rejected:,}", "{rows:,} in · {rejected:,} rejected"),
    "dm.status.ok": ("已入库", "Loaded"),
    "dm.status.rejected": ("已拒绝", "Rejected"),
    "dm.batches": ("最近导入批次", "Recent batches"),
    "dm.batches.none": ("还没有导入记录。", "Nothing has been loaded yet."),
    "dm.templates": ("导入模板", "Import templates"),
    "dm.templates.intro": ("每张表一个模板：第 1 行是列名，第 2 行是中文说明（导入时自动跳过），从第 3 行起填写数据。"
                           "文件名即表名，例如 dim_school.csv；Excel 工作簿也可每个工作表以表名命名。",
                           "One template per table: row 1 holds the column names, row 2 a description (skipped on "
                           "load); fill in data from row 3. The file name is the table name, e.g. dim_school.csv; "
                           "a workbook may also hold one sheet per table, named after it."),
    "dm.templates.all": ("下载全部模板（zip）", "Download all templates (zip)"),
    "dm.templates.rules": ("导入规则：CSV 可为 UTF-8 或 GBK；日期写作 2026-11-03 或 2026/11/3；是否类填写 是/否 或 "
                           "true/false；全角数字和首尾空格会自动规范。有任何错误行的文件整体不导入（或用 --on-error "
                           "skip-rows 只导入正确行），错误明细写入拒绝清单。重复导入同一文件不会产生重复数据。",
                           "Rules: CSV in UTF-8 or GBK; dates as 2026-11-03 or 2026/11/3; yes/no as 是/否 or "
                           "true/false; full-width digits and surrounding spaces are normalised. A file with any bad "
                           "row loads nothing (or, with --on-error skip-rows, only its good rows); every bad row is "
                           "listed in the rejects file. Loading the same file again adds nothing twice."),
    "dm.templates.command": ("在服务器上导入（驾驶舱运行时也可以）：", "Load on the server (also while the cockpit runs):"),
})


def table_name(table: str, lang: str) -> str:
    return t(f"dm.table.{table}", lang) if table in TABLE_NAMES else table


def _badge(status: str, label: str, title: str | None = None) -> html.Span:
    return html.Span([html.Span(STATUS_SHAPES.get(status, "?"), className="status-shape", **{"aria-hidden": "true"}),
                      " ", label], className=f"status-badge status-{status} dm-badge", title=title)


def _newest(value, table: str, lang: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return t("dm.year", lang, year=value)
    if table == "dim_school_calendar":
        return t("dm.until", lang, date=fmt_datetime(value.date() if isinstance(value, dt.datetime) else value))
    return fmt_datetime(value)


def inventory_table(infos: list, lang: str) -> html.Div:
    """One row per table: infos are data_access.inventory.TableInfo."""
    head = html.Thead(html.Tr([
        html.Th(t("dm.col.table", lang)), html.Th(t("dm.col.rows", lang), className="text-end"),
        html.Th(t("dm.col.newest", lang)), html.Th(t("dm.col.fresh", lang), title=t("dm.fresh.title", lang)),
        html.Th(t("dm.col.complete", lang), className="text-end"), html.Th(t("dm.col.loaded", lang)),
        html.Th(t("dm.col.source", lang)), html.Th(t("dm.col.last", lang)),
        html.Th(t("dm.col.rejected", lang), className="text-end"),
    ]))
    body = []
    for info in infos:
        fresh = (_badge(info.fresh, t(f"dm.fresh.{info.fresh}", lang), t("dm.fresh.title", lang))
                 if info.fresh else "")
        complete = ""
        if info.completeness is not None:
            res = info.completeness
            complete = (html.Span(fmt_value(res.value, "%", info.completeness_decimals), className=f"dm-complete status-text-{res.status}",
                                  title=info.completeness_id) if res.value is not None else "—")
        sources = [html.Span(s, className="dm-source") for s in info.sources] or ["—"]
        if len(info.sources) > 1:
            sources.append(_badge("amber", t("dm.multi", lang), t("dm.multi.title", lang)))
        last = info.last
        if last is None:
            loaded, batch = html.Span(t("dm.never", lang), className="text-muted"), ""
        else:
            loaded = fmt_datetime(last["loaded_at"])
            batch = html.Span([
                _badge("green" if last["status"] == "ok" else "red", t(f"dm.status.{last['status']}", lang)),
                " ", html.Span(t("dm.batch.summary", lang, rows=last["rows_in"], rejected=last["rows_rejected"]),
                               className="small"),
            ], title=last["batch_id"])
        body.append(html.Tr([
            html.Td([html.Span(table_name(info.table, lang), className="me-2"), html.Code(info.table, className="dm-code")],
                    className="dm-name"),
            html.Td(f"{info.rows:,}", className="text-end num", **{"data-rows": str(info.rows)}),
            html.Td(_newest(info.newest, info.table, lang), className="num"),
            html.Td(fresh),
            html.Td(complete, className="text-end num"),
            html.Td(loaded, className="num"),
            html.Td(sources),
            html.Td(batch),
            html.Td(f"{info.rejected_total:,}", className="text-end num"),
        ], **{"data-table": info.table}))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                              className="dm-table mb-0"), id="data-tables")


def batches_table(rows: list[dict], lang: str) -> html.Div:
    """rows: meta_load rows (batch_id, table_name, source_system, loaded_at, rows_in, rows_rejected, status)."""
    if not rows:
        return html.Div(t("dm.batches.none", lang), className="text-muted small empty-state", id="data-batches")
    head = html.Thead(html.Tr([
        html.Th(t("dm.col.loaded", lang)), html.Th(t("dm.col.table", lang)), html.Th(t("dm.col.source", lang)),
        html.Th(t("dm.col.rows_in", lang), className="text-end"),
        html.Th(t("dm.col.batch_rejected", lang), className="text-end"), html.Th(t("dm.col.status", lang)),
        html.Th(t("dm.col.batch", lang)),
    ]))
    body = [html.Tr([
        html.Td(fmt_datetime(r["loaded_at"]), className="num"),
        html.Td(table_name(r["table_name"], lang)),
        html.Td(r["source_system"]),
        html.Td(f"{int(r['rows_in']):,}", className="text-end num"),
        html.Td(f"{int(r['rows_rejected']):,}", className="text-end num"),
        html.Td(_badge("green" if r["status"] == "ok" else "red", t(f"dm.status.{r['status']}", lang))),
        html.Td(html.Code(r["batch_id"], className="dm-code")),
    ], **{"data-batch": r["batch_id"]}) for r in rows]
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                              className="dm-table mb-0"), id="data-batches")


def templates_card(tables: list[str], href_of, zip_href: str, lang: str) -> dbc.Card:
    """Download links per table; ``href_of(filename)`` gives a template's URL."""
    items = [html.Li([
        html.Span(table_name(name, lang), className="dm-template-name"),
        html.A("CSV", href=href_of(f"{name}.csv"), className="ms-2", download=f"{name}.csv",
               id={"type": "dm-template", "index": f"{name}.csv"}),
        html.A("Excel", href=href_of(f"{name}.xlsx"), className="ms-2", download=f"{name}.xlsx",
               id={"type": "dm-template", "index": f"{name}.xlsx"}),
    ]) for name in tables]
    return dbc.Card([
        dbc.CardHeader(t("dm.templates", lang), className="fw-bold"),
        dbc.CardBody([
            html.P(t("dm.templates.intro", lang), className="small"),
            html.A(t("dm.templates.all", lang), href=zip_href, className="btn btn-sm btn-primary mb-3",
                   download="templates.zip", id="data-templates-zip"),
            html.Ul(items, className="dm-templates small"),
            html.P(t("dm.templates.rules", lang), className="small text-muted"),
            html.Div(t("dm.templates.command", lang), className="small"),
            html.Pre("python -m data_access.load --url <warehouse-url> <folder>", className="dm-command small"),
        ]),
    ], id="data-templates", className="mb-3")


def section(title: str, body, card_id: str, note: str | None = None) -> dbc.Card:
    header = [html.Span(title, className="fw-bold")]
    if note:
        header.append(html.Div(note, className="small text-muted fw-normal"))
    return dbc.Card([dbc.CardHeader(header), dbc.CardBody(body, className="p-0")], className="mb-3", id=card_id)
