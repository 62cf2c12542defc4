"""Service satisfaction panel (服务满意度与报修): tables, matrix, trend and order figures.

Pure factories: registry Results and small frames in, Dash components and plotly figures out. A suppressed
Result always renders as the suppression label ("样本不足 (n < 10)"), never as a number; a group without data
renders as "—"; counts of orders are shown as counts.
"""
from __future__ import annotations

import functools
import io
import logging

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html, no_update

from data_access.engine import WarehouseUnavailable
from data_access.errors import InputError

from .format import STATUS_SHAPES, fmt_change, fmt_datetime, fmt_number, fmt_value, status_label
from .i18n import register, t
from .messages import input_error, internal_error, warehouse_banner
from .theme import ACCENT, STATUS_COLORS, template

logger = logging.getLogger(__name__)

register({
    "svc.title": ("服务满意度与报修", "Service satisfaction and work orders"),
    "svc.satisfaction": ("师生满意度", "Satisfaction of students and staff"),
    "svc.orders": ("报修与投诉工单", "Repairs, requests and complaints"),
    "svc.responses_n": ("{n} 条评价", "{n} responses"),
    "svc.orders_n": ("{n} 张工单", "{n} orders"),
    "svc.trend": ("满意度趋势", "Satisfaction trend"),
    "svc.trend.all": ("全部服务", "All services"),
    "svc.trend.freq.D": ("按日", "daily"),
    "svc.trend.freq.W": ("按周", "weekly"),
    "svc.trend.freq.M": ("按月", "monthly"),
    "svc.trend.gaps": ("空缺处评价不足 {n} 条（或可由合计反推出不足 {n} 条的数值），不显示数值。",
                       "Gaps: fewer than {n} responses (or a figure that would reveal one on fewer than {n}), no "
                       "value shown."),
    "svc.trend.none": ("该期间无满意度评价。", "No satisfaction responses in this period."),
    "svc.by_line": ("各服务类别满意度", "Satisfaction by service line"),
    "svc.by_type": ("按评价人类型", "By respondent type"),
    "svc.movers": ("变化最大的服务类别", "Biggest movers"),
    "svc.movers.none": ("与上期相比暂无可比较的服务类别（两期均需至少 {n} 条评价）。",
                        "No service line to compare with the previous period (both need at least {n} responses)."),
    "svc.movers.from": ("上期 {prev} → 本期 {now}", "{prev} before → {now} now"),
    "svc.matrix": ("服务类别 × {level}", "Service line × {level}"),
    "svc.matrix.click": ("点击名称或单元格下钻（单元格同时选中该服务类别的趋势）。",
                         "Click a name or a cell to drill down (a cell also selects that line's trend)."),
    "svc.matrix.more": ("仅显示最差的 {shown} 个（共 {total} 个），全部见导出。",
                        "Showing the {shown} worst of {total}; the export has them all."),
    "svc.matrix.none": ("本范围内没有可按下级展示的评价。", "No responses to show by lower level in this scope."),
    "svc.matrix.unattributed": ("另有 {n} 条评价未关联到设施（如交通、快递），只计入学校合计。",
                                "{n} further responses name no facility (transport, parcels …): they count in the "
                                "school's totals only."),
    "svc.col.line": ("服务类别", "Service line"),
    "svc.col.type": ("评价人", "Respondent"),
    "svc.col.responses": ("评价数", "Responses"),
    "svc.col.change": ("指数较上期", "Δ CSI"),
    "svc.col.service.csi": ("满意度指数", "CSI"),
    "svc.col.service.satisfied_rate": ("满意率", "Satisfied"),
    "svc.col.service.nps": ("净推荐值", "NPS"),
    "svc.col.trend": ("趋势", "Trend"),
    "svc.col.total": ("合计", "Total"),
    "svc.col.orders": ("工单数", "Orders"),
    "svc.col.priority": ("优先级", "Priority"),
    "svc.col.sla": ("时限（响应 / 完工）", "SLA (response / completion)"),
    "svc.col.resp_ok": ("按时响应", "Responded in SLA"),
    "svc.col.comp_ok": ("按时完工", "Completed in SLA"),
    "svc.col.resp_p": ("响应时长 P50 / P90", "Response P50 / P90"),
    "svc.col.comp_p": ("完工时长 P50 / P90", "Completion P50 / P90"),
    "svc.show": ("查看", "show"),
    "svc.sla_by_priority": ("按优先级的时限达成", "SLA by priority"),
    "svc.sla_by_line": ("各服务类别工单时效", "Work orders by service line"),
    "svc.volume": ("工单量（按服务类别与类型）", "Orders by service line and kind"),
    "svc.volume.none": ("该期间无工单。", "No work orders in this period."),
    "svc.open": ("未完结与超时工单", "Open and overdue orders"),
    "svc.open.counts": ("截至 {at}：未完结 {open} 张，其中超完工时限 {overdue} 张，超响应时限未响应 {late} 张",
                        "At {at}: {open} open, {overdue} past the completion SLA, {late} unanswered past the "
                        "response SLA"),
    "svc.open.limit": ("仅列出超时最久的 {shown} 张（共 {total} 张）。", "Showing the {shown} most overdue of {total}."),
    "svc.open.none": ("本范围内没有未完结工单。", "No open orders in this scope."),
    "svc.col.order": ("工单号", "Order"),
    "svc.col.where": ("位置", "Where"),
    "svc.col.kind": ("类型", "Kind"),
    "svc.col.created": ("创建时间", "Created"),
    "svc.col.age": ("已历时", "Age"),
    "svc.col.state": ("状态", "State"),
    "svc.col.over": ("超时", "Overdue by"),
    "svc.state.unanswered": ("未响应", "Not answered"),
    "svc.state.in_progress": ("处理中", "In progress"),
    "svc.overdue": ("已超时", "Overdue"),
    "svc.not_due": ("未到期", "Not yet due"),
    "svc.hours": ("{h} 小时", "{h} h"),
    "svc.days": ("{d} 天", "{d} d"),
    "svc.no_facility": ("未指明设施", "no facility given"),
    "svc.export": ("导出 Excel", "Export to Excel"),
    "svc.export.hint": ("本页全部数据（样本不足的数值同样不导出）", "Every figure of this page (withheld figures stay withheld)"),
    "svc.sheet.about": ("说明", "About"),
    "svc.sheet.indicators": ("指标", "Indicators"),
    "svc.sheet.lines": ("服务类别", "Service lines"),
    "svc.sheet.types": ("评价人类型", "Respondents"),
    "svc.sheet.matrix": ("矩阵", "Matrix"),
    "svc.sheet.trend": ("趋势", "Trend"),
    "svc.sheet.priority": ("按优先级", "By priority"),
    "svc.sheet.order_lines": ("各类别工单", "Orders by line"),
    "svc.sheet.volume": ("工单量", "Volume"),
    "svc.sheet.open": ("未完结工单", "Open orders"),
    "svc.col.indicator": ("指标", "Indicator"),
    "svc.col.value": ("数值", "Value"),
    "svc.col.unit": ("单位", "Unit"),
    "svc.col.status": ("状态", "Status"),
    "svc.col.n": ("样本量", "n"),
    "svc.col.formula": ("口径", "Definition"),
    "svc.col.period": ("时段", "Period"),
    "svc.col.age_h": ("已历时（小时）", "Age (h)"),
    "svc.col.over_h": ("超完工时限（小时）", "Past completion SLA (h)"),
    "svc.about.scope": ("范围", "Scope"),
    "svc.about.period": ("统计期", "Period"),
    "svc.about.as_of": ("数据截至", "Data as of"),
    "svc.about.open_at": ("未完结工单读取时点", "Open orders read at"),
    "svc.about.sla": ("时限（紧急 / 一般）", "SLA (urgent / normal)"),
    "svc.privacy": ("不显示评价文字、姓名或评价人编号；少于 {n} 条评价或工单的数值不予显示。",
                    "No comment text, names or respondent ids are shown; figures on fewer than {n} responses or "
                    "orders are withheld."),
    "svc.privacy.complementary": ("为防止由合计与其他数值反推出不足 {n} 条的数值，部分数值一并隐去（标为“已隐去”）。",
                                  "So that no figure on fewer than {n} can be worked out from a total and the "
                                  "figures beside it, some further figures are withheld (marked “Withheld”)."),
    "svc.withheld": ("已隐去 (防反推)", "Withheld (protects n < {n})"),
    "svc.withheld.title": ("该数值本身不少于 {n} 条，但与合计、相邻数值一起可反推出样本不足的数值，故一并隐去。",
                           "This figure rests on {n} or more, but with the total and the figures beside it would "
                           "reveal one on fewer than {n}; it is withheld as well."),
    "svc.line.dining": ("餐饮", "Dining"),
    "svc.line.dormitory": ("公寓", "Dormitory"),
    "svc.line.property": ("物业", "Property"),
    "svc.line.repair": ("维修", "Repairs"),
    "svc.line.energy": ("能源", "Energy"),
    "svc.line.transport": ("交通", "Transport"),
    "svc.line.parcel": ("快递", "Parcels"),
    "svc.line.commerce": ("商超", "Shops"),
    "svc.line.venue": ("场馆", "Venues"),
    "svc.line.other": ("其他", "Other"),
    "svc.type.student": ("学生", "Students"),
    "svc.type.staff": ("教职工", "Staff"),
    "svc.type.other": ("其他", "Others"),
    "svc.kind.repair": ("报修", "Repair"),
    "svc.kind.complaint": ("投诉", "Complaint"),
    "svc.kind.request": ("服务申请", "Request"),
    "svc.priority.urgent": ("紧急", "Urgent"),
    "svc.priority.normal": ("一般", "Normal"),
})


def _template(dark: bool) -> dict:
    # The light template is plotly's default already (components.theme); naming it again costs a deep copy of
    # the template per figure (~0.1 s on a busy server) for the same JSON.
    return {"template": template(True)} if dark else {}


def _name(prefix: str, code, lang: str) -> str:
    key = f"svc.{prefix}.{code}"
    text = t(key, lang)
    return str(code) if text == key else text


def line_name(code, lang: str) -> str:
    return _name("line", code, lang)


def type_name(code, lang: str) -> str:
    return _name("type", code, lang)


def kind_name(code, lang: str) -> str:
    return _name("kind", code, lang)


def priority_name(code, lang: str) -> str:
    return _name("priority", code, lang)


def hours_text(hours: float | None, lang: str) -> str:
    """'5.2 小时' below two days, '3.4 天' above."""
    if hours is None:
        return "—"
    if abs(hours) >= 48:
        return t("svc.days", lang, d=fmt_number(hours / 24.0, 1))
    return t("svc.hours", lang, h=fmt_number(hours, 1))


def withheld_label(result, lang: str, min_n: int = 10) -> str:
    """The label of a suppressed Result: "样本不足 (n < 10)", or "已隐去 (防反推)" when it was withheld only so that a
    smaller group cannot be worked out by subtraction (data_access.service.protect)."""
    if result is not None and (result.extra or {}).get("complementary"):
        return t("svc.withheld", lang, n=min_n)
    return status_label("suppressed", lang, None, min_n)


def cell_text(indicator, result, lang: str, min_n: int = 10) -> str:
    """What a table cell shows for a Result: the value with its unit, the suppression label, or '—'."""
    if result is None or result.status == "nodata" or (result.value is None and result.status != "suppressed"):
        return "—"
    if result.status == "suppressed":
        return withheld_label(result, lang, min_n)
    return fmt_value(result.value, indicator.unit, indicator.decimals)


def value_cell(indicator, result, lang: str, min_n: int = 10, link: str | None = None) -> html.Td:
    """A table cell tinted by status, with the status shape drawn by CSS (assets/service.css) so that a big matrix
    stays a small payload; suppressed cells show the label in muted text, never a number."""
    status = "nodata" if result is None else result.status
    text = cell_text(indicator, result, lang, min_n)
    content = dcc.Link(text, href=link, className="svc-cell-link") if link else text
    if status == "suppressed" and (result.extra or {}).get("complementary"):
        content = html.Span(content, title=t("svc.withheld.title", lang, n=min_n))
    return html.Td(content, className=f"svc-cell num status-{status}",
                   **{"data-status": status, "data-value": "" if result is None or result.value is None
                      else f"{result.value:.6g}"})


def _table(head: list, rows: list, table_id: str, extra_class: str = "") -> html.Div:
    return html.Div(dbc.Table([html.Thead(html.Tr(head)), html.Tbody(rows)], size="sm", hover=True,
                              className=f"svc-table align-middle mb-0 {extra_class}".strip()), id=table_id,
                    className="table-responsive")


# --- satisfaction -------------------------------------------------------------------------------------------

def satisfaction_table(rows, indicators: dict, lang: str, min_n: int, trend_href=None, by: str = "service_line",
                       table_id: str = "svc-lines") -> html.Div:
    """rows: data_access.service.LineRow; indicators: id → Indicator; trend_href(key) → link for the trend."""
    if not rows:
        return html.Div(t("svc.trend.none", lang), className="text-muted small empty-state", id=table_id)
    csi = indicators["service.csi"]
    name = line_name if by == "service_line" else type_name
    head = [html.Th(t("svc.col.line" if by == "service_line" else "svc.col.type", lang)),
            html.Th(t("svc.col.responses", lang), className="text-end"),
            *[html.Th(t(f"svc.col.{i}", lang), className="text-end", title=indicators[i].formula(lang))
              for i in ("service.csi", "service.satisfied_rate", "service.nps")],
            html.Th(t("svc.col.change", lang), className="text-end")]
    if trend_href:
        head.append(html.Th(t("svc.col.trend", lang)))
    body = []
    for r in rows:
        cells = [html.Td(name(r.key, lang)), html.Td(fmt_number(r.responses, 0), className="text-end num")]
        cells += [value_cell(indicators[i], r.results.get(i), lang, min_n)
                  for i in ("service.csi", "service.satisfied_rate", "service.nps")]
        cells.append(html.Td(change_span(r.change, csi, lang), className="text-end num"))
        if trend_href:
            cells.append(html.Td(dcc.Link(t("svc.show", lang), href=trend_href(r.key), className="small")))
        body.append(html.Tr(cells, **{"data-key": str(r.key)}))
    return _table(head, body, table_id)


def change_span(change: float | None, indicator, lang: str) -> html.Span:
    if change is None:
        return html.Span("—", className="kpi-change")
    good = change > 0 if indicator.direction == "higher" else change < 0
    cls = "change-neutral" if change == 0 else "change-good" if good else "change-bad"
    arrow = "↑" if change > 0 else "↓" if change < 0 else ""
    return html.Span(f"{arrow} {fmt_change(change, indicator.change, indicator.unit, lang, indicator.decimals)}".strip(),
                     className=f"kpi-change {cls}")


def movers_list(rows, indicator, lang: str, min_n: int) -> html.Div:
    """The service lines whose CSI moved most, biggest first."""
    if not rows:
        return html.Div(t("svc.movers.none", lang, n=min_n), className="text-muted small", id="svc-movers")
    items = []
    for r in rows:
        now = fmt_value(r.results["service.csi"].value, "", indicator.decimals)
        prev = fmt_value(r.previous.value, "", indicator.decimals)
        items.append(html.Li([
            html.Span(line_name(r.key, lang), className="svc-mover-name"),
            change_span(r.change, indicator, lang),
            html.Span(t("svc.movers.from", lang, prev=prev, now=now), className="small text-muted ms-auto"),
        ], className="list-group-item d-flex align-items-center gap-2", **{"data-key": str(r.key)}))
    return html.Ul(items, className="list-group list-group-flush svc-movers", id="svc-movers")


def pill_links(options: list[tuple[str, str, bool]], group_id: str) -> html.Div:
    """Small link buttons (label, href, active) that select a page option through the URL."""
    return html.Div([
        dcc.Link(label, href=link, className=f"btn btn-sm {'btn-primary' if active else 'btn-outline-secondary'} "
                                             "svc-pill")
        for label, link, active in options
    ], className="d-flex flex-wrap gap-1", id=group_id)


def trend_figure(freq: str, points: dict, indicators: dict, lang: str, min_n: int, dark: bool = False) -> go.Figure:
    """CSI and satisfied rate over time (0–100 scales); suppressed periods are gaps with a marker on the axis
    whose hover says why."""
    fig = go.Figure()
    shown = [p.value for pts in points.values() for p in pts if p.value is not None]
    low = max(0.0, (min(shown) // 10) * 10 - 10) if shown else 0.0   # room below the lowest value, 0 at least
    styles = {"service.csi": dict(color=ACCENT, width=2.5), "service.satisfied_rate": dict(width=1.8, dash="dot")}
    suppressed: list = []
    for ind_id in ("service.csi", "service.satisfied_rate"):
        ind, pts = indicators[ind_id], points.get(ind_id, [])
        x = [p.key for p in pts]
        y = [p.value for p in pts]
        text = [cell_text(ind, p, lang, min_n) for p in pts]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=ind.name(lang), line=styles[ind_id],
                                 marker=dict(size=5), text=text, connectgaps=False,
                                 hovertemplate="%{text}<extra>" + ind.name(lang) + "</extra>"))
        if ind_id == "service.csi":
            suppressed = [p for p in pts if p.status == "suppressed"]
    if suppressed:
        labels = [withheld_label(p, lang, min_n) for p in suppressed]
        fig.add_trace(go.Scatter(x=[p.key for p in suppressed], y=[low + 2] * len(suppressed), mode="markers+text",
                                 name=status_label("suppressed", lang, None, min_n), text=labels,
                                 textposition="top center",
                                 textfont=dict(size=10, color=STATUS_COLORS["suppressed"]),
                                 marker=dict(symbol="circle-open", size=8, color=STATUS_COLORS["suppressed"]),
                                 hovertemplate="%{x}: %{text}<extra></extra>", showlegend=False))
    fig.update_layout(**_template(dark), height=260, margin=dict(l=8, r=8, t=8, b=8),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0, xanchor="left"),
                      hovermode="x unified", font=dict(family="Noto Sans CJK SC, Microsoft YaHei, sans-serif"))
    fig.update_xaxes(showgrid=False, tickformat="%m-%d" if freq != "M" else "%Y-%m", automargin=True)
    fig.update_yaxes(range=[low, 102], nticks=6, automargin=True)
    return fig


MATRIX_ROWS = 40
"""Rows the matrix shows on screen (worst first); the export has them all. Keeps an association of 100 schools
to a small payload."""


def matrix_table(mat, indicator, names: dict, lang: str, min_n: int, row_href, cell_href,
                 max_rows: int = MATRIX_ROWS) -> html.Div:
    """Rows: children (schools or facilities) with their total; columns: service lines. names: (level, id) →
    name; row_href(key) and cell_href(key, line) are the drill-down links."""
    level_name = t(f"level.{mat.level}", lang)
    head = [html.Th(level_name), html.Th(t("svc.col.total", lang), className="text-end")]
    head += [html.Th(line_name(line, lang), className="text-end") for line in mat.lines]
    body = []
    for key, cells, total in mat.rows[:max_rows]:
        row = [html.Td(dcc.Link(names.get((mat.level, key), key), href=row_href(key), className="svc-drill",
                                id={"type": "svc-drill", "index": str(key)})),
               value_cell(indicator, total, lang, min_n)]
        row += [value_cell(indicator, cells.get(line), lang, min_n,
                           link=cell_href(key, line) if line in cells else None)
                for line in mat.lines]
        body.append(html.Tr(row, **{"data-key": str(key)}))
    foot = [html.Td(html.Strong(t("svc.col.total", lang))), html.Td("")]
    foot += [value_cell(indicator, mat.totals.get(line), lang, min_n) for line in mat.lines]
    body.append(html.Tr(foot, className="svc-total-row"))
    return _table(head, body, "svc-matrix-table", "svc-matrix")


# --- work orders --------------------------------------------------------------------------------------------

def _pair(indicators: dict, results: dict, a: str, b: str, lang: str, min_n: int) -> html.Td:
    """Two duration results in one cell ('3.2 h / 12.9 h'); suppressed as one label."""
    ra, rb = results.get(a), results.get(b)
    if ra is not None and ra.status == "suppressed":
        return html.Td(cell_text(indicators[a], ra, lang, min_n), className="svc-cell num status-suppressed text-end",
                       **{"data-status": "suppressed"})
    text = f"{cell_text(indicators[a], ra, lang, min_n)} / {cell_text(indicators[b], rb, lang, min_n)}"
    return html.Td(text, className="svc-cell num text-end", **{"data-status": "none" if ra is not None else "nodata"})


def order_table(rows, indicators: dict, lang: str, min_n: int, by: str, sla: dict | None = None,
                table_id: str = "svc-order-table") -> html.Div:
    """rows: (group, orders, indicator id → Result) per priority or service line; sla: priority → (resp h, comp h)."""
    if not rows:
        return html.Div(t("svc.volume.none", lang), className="text-muted small empty-state", id=table_id)
    first = t("svc.col.priority" if by == "priority" else "svc.col.line", lang)
    head = [html.Th(first), html.Th(t("svc.col.orders", lang), className="text-end")]
    if sla:
        head.append(html.Th(t("svc.col.sla", lang), className="text-end"))
    head += [html.Th(t("svc.col.resp_ok", lang), className="text-end"),
             html.Th(t("svc.col.comp_ok", lang), className="text-end"),
             html.Th(t("svc.col.resp_p", lang), className="text-end"),
             html.Th(t("svc.col.comp_p", lang), className="text-end")]
    name = priority_name if by == "priority" else line_name
    body = []
    for key, orders, results in rows:
        cells = [html.Td(name(key, lang)), html.Td(fmt_number(orders, 0), className="text-end num")]
        if sla:
            resp_h, comp_h = sla.get(key, (None, None))
            cells.append(html.Td(f"{hours_text(resp_h, lang)} / {hours_text(comp_h, lang)}", className="text-end num"))
        cells += [value_cell(indicators["service.response_on_time"], results.get("service.response_on_time"), lang, min_n),
                  value_cell(indicators["service.completion_on_time"], results.get("service.completion_on_time"), lang,
                             min_n),
                  _pair(indicators, results, "service.response_p50", "service.response_p90", lang, min_n),
                  _pair(indicators, results, "service.completion_p50", "service.completion_p90", lang, min_n)]
        body.append(html.Tr(cells, **{"data-key": str(key)}))
    return _table(head, body, table_id)


def volume_figure(frame, kinds, lang: str, dark: bool = False) -> go.Figure:
    """Horizontal stacked bars: orders per service line (most first), split by kind (in the order of ``kinds``)."""
    totals = frame.groupby("service_line")["orders"].sum().sort_values(ascending=False, kind="stable")
    present = list(totals.index)
    labels = [line_name(ln, lang) for ln in present]
    fig = go.Figure()
    for kind in [k for k in kinds if k in set(frame["kind"])]:
        part = frame.loc[frame["kind"] == kind].set_index("service_line")["orders"]
        values = [int(part.get(ln, 0)) for ln in present]
        fig.add_trace(go.Bar(y=labels, x=values, orientation="h", name=kind_name(kind, lang),
                             text=[v if v else "" for v in values], textposition="inside", insidetextanchor="middle",
                             textangle=0,
                             hovertemplate="%{y} · " + kind_name(kind, lang) + ": %{x}<extra></extra>"))
    fig.update_layout(**_template(dark), barmode="stack", height=max(180, 26 * len(present) + 70),
                      margin=dict(l=8, r=8, t=8, b=8),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0, traceorder="normal"),
                      font=dict(family="Noto Sans CJK SC, Microsoft YaHei, sans-serif"))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True, rangemode="tozero")
    return fig


def open_orders_table(frame, counts: dict, at, names: dict, lang: str, show_school: bool = True) -> html.Div:
    """The open-order list (most overdue first) with the open / overdue counts above it."""
    summary = html.Div(t("svc.open.counts", lang, at=fmt_datetime(at), open=counts["open"], overdue=counts["overdue"],
                         late=counts["unanswered_late"]), className="small mb-2", id="svc-open-counts",
                       **{"data-open": str(counts["open"]), "data-overdue": str(counts["overdue"])})
    if frame.empty:
        return html.Div([summary, html.Div(t("svc.open.none", lang), className="text-muted small")], id="svc-open")
    head = [html.Th(t(k, lang), className=c) for k, c in (
        ("svc.col.order", ""), ("svc.col.where", ""), ("svc.col.line", ""), ("svc.col.kind", ""),
        ("svc.col.priority", ""), ("svc.col.created", ""), ("svc.col.age", "text-end"), ("svc.col.state", ""),
        ("svc.col.over", "text-end"))]
    body = []
    for r in frame.itertuples(index=False):
        overdue = bool(r.overdue)
        state = t("svc.state.in_progress" if r.answered else "svc.state.unanswered", lang)
        state_cls = "status-red" if r.unanswered_late else ""
        over = (html.Span([html.Span(STATUS_SHAPES["red"], className="svc-shape"), " ", t("svc.overdue", lang), " ",
                           hours_text(r.over_h, lang)], className="svc-overdue")
                if overdue else html.Span(t("svc.not_due", lang), className="text-muted"))
        body.append(html.Tr([
            html.Td(r.order_id, className="num svc-order-id"),
            html.Td(place_name(r.school_id, r.facility_id, names, lang, show_school)),
            html.Td(line_name(r.service_line, lang)),
            html.Td(kind_name(r.kind, lang)),
            html.Td(priority_name(r.priority, lang), className="fw-bold" if r.priority == "urgent" else ""),
            html.Td(fmt_datetime(r.created_at), className="num"),
            html.Td(hours_text(r.age_h, lang), className="text-end num"),
            html.Td(state, className=f"svc-state {state_cls}".strip()),
            html.Td(over, className="text-end num"),
        ], className="svc-open-overdue" if overdue else "", **{"data-order": r.order_id,
                                                                "data-overdue": "1" if overdue else "0"}))
    shown = len(frame)
    note = html.Div(t("svc.open.limit", lang, shown=shown, total=counts["open"]), className="small text-muted mt-1") \
        if counts["open"] > shown else None
    return html.Div([summary, html.Div(_table(head, body, "svc-open-table"), className="svc-open-scroll"), note],
                    id="svc-open")


def place_name(school_id, facility_id, names: dict, lang: str, show_school: bool = True) -> str:
    """'school · facility' (or the facility alone inside one school); names: (level, id) → name."""
    fid = facility_id if isinstance(facility_id, str) and facility_id else None
    facility = names.get(("facility", fid), fid) if fid else t("svc.no_facility", lang)
    return f"{names.get(('school', school_id), school_id)} · {facility}" if show_school else facility


def section(title: str, children, section_id: str, subtitle: str | None = None) -> dbc.Card:
    header = [html.Span(title, className="domain-title")]
    if subtitle:
        header.append(html.Span(subtitle, className="small text-muted ms-auto", id=f"{section_id}-n"))
    return dbc.Card([dbc.CardHeader(header, className="d-flex align-items-center"), dbc.CardBody(children)],
                    className="mb-3 svc-section", id=section_id)


def block(title, body, block_id: str, tools=None) -> html.Div:
    """A titled block inside a section."""
    head = [html.Div(title, className="svc-block-title")]
    if tools is not None:
        head.append(html.Div(tools, className="ms-auto"))
    return html.Div([html.Div(head, className="d-flex align-items-center flex-wrap gap-2 mb-1"), body],
                    className="svc-block", id=block_id)


def privacy_note(lang: str, min_n: int) -> html.Div:
    return html.Div([html.I(className="bi bi-shield-lock me-1"), t("svc.privacy", lang, n=min_n), " ",
                     t("svc.privacy.complementary", lang, n=min_n)],
                    className="small text-muted mb-2", id="svc-privacy")


# --- blocks the page assembles ------------------------------------------------------------------------------

def trend_block(freq: str, points: dict, indicators: dict, lang: str, min_n: int, line: str | None, selector):
    """The trend with its line selector; gaps explained; 'no responses' instead of an empty chart."""
    which = line_name(line, lang) if line else t("svc.trend.all", lang)
    when = t(f"svc.trend.freq.{freq}", lang)
    title = f"{t('svc.trend', lang)} · {which}（{when}）" if lang == "zh" else f"{t('svc.trend', lang)} · {which} ({when})"
    shown = any(p.value is not None or p.status == "suppressed" for pts in points.values() for p in pts)
    if not shown:
        body = html.Div(t("svc.trend.none", lang), className="text-muted small empty-state")
    else:
        gaps = any(p.status == "suppressed" for p in points.get("service.csi", []))
        body = html.Div([dcc.Graph(figure=trend_figure(freq, points, indicators, lang, min_n),
                                   config={"displayModeBar": False}, id="svc-trend-graph"),
                         html.Div(t("svc.trend.gaps", lang, n=min_n), className="small text-muted") if gaps else None])
    return block(title, html.Div([selector, body]), "svc-trend")


def matrix_block(mat, level: str, indicator, names: dict, lang: str, min_n: int, selector, row_href, cell_href):
    title = t("svc.matrix", lang, level=t(f"level.{level}", lang))
    if mat is None or not mat.rows:
        return block(title, html.Div(t("svc.matrix.none", lang), className="text-muted small empty-state"),
                     "svc-matrix", selector)
    body = [matrix_table(mat, indicator, names, lang, min_n, row_href, cell_href),
            html.Div(t("svc.matrix.click", lang), className="small text-muted mt-1")]
    if len(mat.rows) > MATRIX_ROWS:
        body.append(html.Div(t("svc.matrix.more", lang, shown=MATRIX_ROWS, total=len(mat.rows)),
                             className="small text-muted", id="svc-matrix-more"))
    if level == "facility" and mat.unattributed:
        body.append(html.Div(t("svc.matrix.unattributed", lang, n=mat.unattributed), className="small text-muted"))
    return block(title, html.Div(body), "svc-matrix", selector)


def volume_block(frame, kinds, lang: str):
    if frame.empty:
        body = html.Div(t("svc.volume.none", lang), className="text-muted small empty-state")
    else:
        body = dcc.Graph(figure=volume_figure(frame, kinds, lang), config={"displayModeBar": False},
                         id="svc-volume-graph")
    return block(t("svc.volume", lang), body, "svc-volume")


def guarded_export(fn):
    """Decorate an export callback returning (download data, message): failures become a message next to the
    button, never a traceback; the download stays untouched."""

    @functools.wraps(fn)
    def wrapper(clicks, params, *args):
        lang = "en" if (params or {}).get("lang") == "en" else "zh"
        try:
            return fn(clicks, params or {}, *args)
        except InputError as exc:
            return no_update, input_error(exc.message(lang), lang)
        except WarehouseUnavailable as exc:
            return no_update, warehouse_banner(str(exc), lang)
        except Exception:  # never a traceback in the browser; the log has it
            logger.exception("export %s failed", fn.__name__)
            return no_update, internal_error(lang)

    return wrapper


# --- the Excel export ---------------------------------------------------------------------------------------

def export_value(indicator, result, lang: str, min_n: int):
    """A figure for a spreadsheet cell: the number (rounded as shown), the suppression label, or empty."""
    if result is None or result.status == "nodata" or (result.value is None and result.status != "suppressed"):
        return None
    if result.status == "suppressed":
        return withheld_label(result, lang, min_n)
    return round(float(result.value), indicator.decimals)


def export_sheets(data, indicators: dict, lang: str, min_n: int) -> dict[str, pd.DataFrame]:
    """The panel (data_access.service.Panel) as named tables; what is withheld on screen is withheld here."""
    v = lambda i, r: export_value(indicators[i], r, lang, min_n)   # noqa: E731
    col = lambda key: t(key, lang)                                  # noqa: E731
    sat = ("service.csi", "service.satisfied_rate", "service.nps")
    where = data.names.get(("scope", None)) or t("scope.all", lang)
    sla = " ; ".join(f"{priority_name(p, lang)} {hours_text(a, lang)} / {hours_text(b, lang)}"
                     for p, (a, b) in data.sla.items())
    sheets = {t("svc.sheet.about", lang): pd.DataFrame({"": [
        col("svc.about.scope"), col("svc.about.period"), col("svc.about.as_of"), col("svc.about.open_at"),
        col("svc.about.sla"), ""], " ": [
        where, f"{data.period.start.isoformat()} – {data.period.end.isoformat()}",
        fmt_datetime(max([d for d in (data.as_of["survey"].get("fact"), data.as_of["orders"].get("fact")) if d],
                         default=None)),
        fmt_datetime(data.state_at), sla, t("svc.privacy", lang, n=min_n)]})}
    rows = []
    for ind_id, tile in data.tiles.items():
        ind = indicators[ind_id]
        rows.append({col("svc.col.indicator"): ind.name(lang), col("svc.col.value"): v(ind_id, tile.current),
                     col("svc.col.unit"): ind.unit, col("svc.col.status"): status_label(tile.current.status, lang,
                                                                                        tile.current.n, min_n),
                     col("svc.col.n"): tile.current.n, col("tile.vs_prev"): None if tile.change is None else round(
                         tile.change, ind.decimals), col("svc.col.formula"): ind.formula(lang)})
    sheets[t("svc.sheet.indicators", lang)] = pd.DataFrame(rows)

    def sat_rows(items, first, name):
        return pd.DataFrame([{col(first): name(r.key, lang), col("svc.col.responses"): r.responses,
                              **{col(f"svc.col.{i}"): v(i, r.results.get(i)) for i in sat},
                              col("svc.col.change"): None if r.change is None else round(r.change, 1)}
                             for r in items])

    sheets[t("svc.sheet.lines", lang)] = sat_rows(data.lines, "svc.col.line", line_name)
    sheets[t("svc.sheet.types", lang)] = sat_rows(data.types, "svc.col.type", type_name)
    mat = data.matrix
    if mat is not None and mat.rows:
        level = t(f"level.{mat.level}", lang)
        m_rows = [{level: data.names.get((mat.level, k), k), col("svc.col.total"): v(data.metric, total),
                   **{line_name(ln, lang): v(data.metric, cells.get(ln)) for ln in mat.lines}}
                  for k, cells, total in mat.rows]
        m_rows.append({level: col("svc.col.total"), col("svc.col.total"): None,
                       **{line_name(ln, lang): v(data.metric, mat.totals.get(ln)) for ln in mat.lines}})
        sheets[t("svc.sheet.matrix", lang)] = pd.DataFrame(m_rows)
    keys = sorted({p.key for pts in data.trend.values() for p in pts})
    by_key = {i: {p.key: p for p in pts} for i, pts in data.trend.items()}
    sheets[t("svc.sheet.trend", lang)] = pd.DataFrame([
        {col("svc.col.period"): k, **{indicators[i].name(lang): v(i, by_key[i].get(k)) for i in by_key}} for k in keys])

    def order_rows(items, first, name):
        out = []
        for key, n, res in items:
            out.append({col(first): name(key, lang), col("svc.col.orders"): n,
                        **{f"{indicators[i].name(lang)} ({indicators[i].unit})": v(i, res.get(i))
                           for i in ("service.response_on_time", "service.completion_on_time", "service.response_p50",
                                     "service.response_p90", "service.completion_p50", "service.completion_p90")}})
        return pd.DataFrame(out)

    sheets[t("svc.sheet.priority", lang)] = order_rows(data.by_priority, "svc.col.priority", priority_name)
    sheets[t("svc.sheet.order_lines", lang)] = order_rows(data.by_line, "svc.col.line", line_name)
    sheets[t("svc.sheet.volume", lang)] = pd.DataFrame([
        {col("svc.col.line"): line_name(r.service_line, lang), col("svc.col.kind"): kind_name(r.kind, lang),
         col("svc.col.orders"): int(r.orders)} for r in data.volume.itertuples(index=False)])
    sheets[t("svc.sheet.open", lang)] = pd.DataFrame([
        {col("svc.col.order"): r.order_id, col("svc.col.where"): place_name(r.school_id, r.facility_id, data.names, lang),
         col("svc.col.line"): line_name(r.service_line, lang), col("svc.col.kind"): kind_name(r.kind, lang),
         col("svc.col.priority"): priority_name(r.priority, lang), col("svc.col.created"): fmt_datetime(r.created_at),
         col("svc.col.age_h"): round(float(r.age_h), 1),
         col("svc.col.state"): t("svc.state.in_progress" if r.answered else "svc.state.unanswered", lang),
         col("svc.col.over_h"): round(float(r.over_h), 1) if r.overdue else None}
        for r in data.open_list.itertuples(index=False)])
    return sheets


def workbook(data, indicators: dict, lang: str, min_n: int) -> bytes:
    """The export sheets as one .xlsx file."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in export_sheets(data, indicators, lang, min_n).items():
            frame.to_excel(writer, sheet_name=name[:31], index=False)
            sheet = writer.sheets[name[:31]]
            for i, column in enumerate(frame.columns, start=1):
                width = max([len(str(column))] + [len(str(x)) for x in frame[column].head(200)]) + 2
                sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = min(60, max(8, width * 1.2))
    return buffer.getvalue()
