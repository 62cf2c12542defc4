"""Dining-safety panel (餐饮安全) factories: plain data in, components and figures out, no I/O.

The check heatmap, the canteen's daily checklist, the cold-chain temperature curve with its allowed band, and the
hazard, certificate, inspection and excursion tables. People appear only as pseudonymous refs.
"""
from __future__ import annotations

import datetime as dt
import math

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from .format import STATUS_SHAPES, fmt_datetime, fmt_number, fmt_value, status_label
from .i18n import pick, register, t
from .theme import ACCENT, STATUS_COLORS, template
from .tiles import kpi_tile, status_badge

HEATMAP_TYPE = "dining-heatmap"
"""Pattern-matching id type of the heatmap graph (it exists only after the page has rendered)."""

MEALS = ("breakfast", "lunch", "dinner", "day")

register({
    "dining.section.checks": ("每日检查", "Daily checks"),
    "dining.section.safety": ("冷链 · 隐患 · 证照 · 监督检查", "Cold chain · hazards · certificates · inspections"),
    "dining.section.cold": ("冷链温度", "Cold chain"),
    "dining.section.hazards": ("食品安全隐患", "Food-safety hazards"),
    "dining.section.certs": ("从业人员健康证", "Staff health certificates"),
    "dining.section.inspection": ("最近监督检查", "Latest official inspections"),
    "dining.section.covers": ("就餐人次（背景）", "Meals served (context)"),
    "dining.empty.scope": ("本范围内没有食堂，餐饮安全指标不适用。",
                           "There is no canteen in this scope: dining-safety figures do not apply."),
    "dining.empty.facility": ("所选设施不是食堂，餐饮安全指标不适用。",
                              "The selected facility is not a canteen: dining-safety figures do not apply."),
    "dining.heatmap.title": ("检查合规：{level} × 检查项", "Check compliance: {level} × check"),
    "dining.heatmap.click": ("点击某一行下钻到该{level}；颜色按各检查项的阈值（形状同义）。",
                             "Click a row to drill into that {level}; colours follow each check's thresholds "
                             "(the shapes say the same)."),
    "dining.heatmap.none": ("本期没有检查数据。", "No check data in this period."),
    "dining.heatmap.unlisted": ("未列出（无餐饮数据）：{names}", "Not listed (no dining data): {names}"),
    "dining.heatmap.col.cold_chain": ("冷链", "Cold chain"),
    "dining.check.sample_retention": ("留样", "Samples"),
    "dining.check.morning_check": ("晨检", "Morning check"),
    "dining.check.tableware_disinfection": ("餐具消毒", "Disinfection"),
    "dining.check.pesticide_test": ("农残快检", "Pesticide test"),
    "dining.check.supplier_docs": ("索证索票", "Supplier docs"),
    "dining.check.accompany_meal": ("陪餐", "Accompanied meal"),
    "dining.check.self_check": ("自查", "Self-check"),
    "dining.check.video_online": ("明厨亮灶", "Kitchen video"),
    "dining.meal.breakfast": ("早餐", "Breakfast"),
    "dining.meal.lunch": ("午餐", "Lunch"),
    "dining.meal.dinner": ("晚餐", "Dinner"),
    "dining.meal.day": ("全天", "Daily"),
    "dining.checklist.title": ("每日检查清单", "Daily checklist"),
    "dining.checklist.range": ("{start} 至 {end}", "{start} to {end}"),
    "dining.checklist.truncated": ("仅显示最近 {days} 天；选择更短的统计期可查看更早的日期。",
                                   "Only the latest {days} days are shown; choose a shorter period to see "
                                   "earlier days."),
    "dining.checklist.summary": ("应检 {due} 项：合格 {ok} · 不合格 {failed} · 缺失 {missing}",
                                 "{due} checks due: {ok} OK · {failed} failed · {missing} missing"),
    "dining.checklist.date": ("日期", "Date"),
    "dining.checklist.covers": ("就餐人次", "Covers"),
    "dining.checklist.ok": ("合格", "OK"),
    "dining.checklist.failed": ("不合格", "Failed"),
    "dining.checklist.missing": ("缺失", "Missing"),
    "dining.checklist.notdue": ("未供餐，无需检查", "Not served: nothing due"),
    "dining.checklist.noservice": ("未供餐 · 无需检查（不计为违规）", "No service · nothing due (not a violation)"),
    "dining.checklist.none": ("统计期内没有供餐记录。", "No meals served in this period."),
    "dining.zone.chilled": ("冷藏", "Chilled"),
    "dining.zone.frozen": ("冷冻", "Frozen"),
    "dining.zone.hot_holding": ("热保温", "Hot holding"),
    "dining.cold.excursions": ("温度超标事件（连续超出温区 ≥ {minutes} 分钟）",
                               "Excursions (out of range for ≥ {minutes} min)"),
    "dining.cold.excursions.none": ("统计期内没有温度超标事件。", "No excursion in this period."),
    "dining.cold.col.device": ("设备", "Device"),
    "dining.cold.col.canteen": ("食堂", "Canteen"),
    "dining.cold.col.zone": ("温区", "Zone"),
    "dining.cold.col.start": ("开始", "Start"),
    "dining.cold.col.duration": ("持续", "Duration"),
    "dining.cold.col.peak": ("峰值", "Peak"),
    "dining.cold.col.readings": ("超标读数", "Readings out"),
    "dining.cold.col.compliance": ("达标率", "In range"),
    "dining.cold.col.range": ("最低 / 最高", "Min / max"),
    "dining.cold.col.last": ("最近读数", "Last reading"),
    "dining.cold.minutes": ("{m} 分钟", "{m} min"),
    "dining.cold.open": ("（未见回落）", " (no return seen)"),
    "dining.cold.devices": ("设备", "Devices"),
    "dining.cold.no_devices": ("本范围内没有冷链读数。", "No cold-chain readings in this scope."),
    "dining.cold.curves": ("温度曲线（绿色为允许范围，红色为超标事件）",
                           "Temperature curves (green: allowed band, red: excursions)"),
    "dining.cold.curves.hint": ("显示有超标事件的设备（最多 {n} 台）；进入食堂可查看其全部设备。",
                                "Devices with excursions (at most {n}); open a canteen to see all its devices."),
    "dining.cold.curves.none": ("统计期内没有温度超标事件；进入食堂可查看其设备的温度曲线。",
                                "No excursion in this period; open a canteen to see its devices' curves."),
    "dining.cold.curves.drill": ("进入学校或食堂查看设备的温度曲线。",
                                 "Open a school or a canteen to see its devices' curves."),
    "dining.cold.high": ("最高", "max"),
    "dining.cold.low": ("最低", "min"),
    "dining.cold.band": ("允许范围", "allowed"),
    "dining.hazards.open": ("未关闭隐患 {n} 项，其中逾期 {overdue} 项",
                            "Open hazards: {n}, of which overdue: {overdue}"),
    "dining.hazards.none": ("没有未关闭的隐患。", "No open hazard."),
    "dining.hazards.col.id": ("编号", "ID"),
    "dining.hazards.col.found": ("发现日期", "Found"),
    "dining.hazards.col.source": ("来源", "Source"),
    "dining.hazards.col.severity": ("等级", "Severity"),
    "dining.hazards.col.category": ("类别", "Category"),
    "dining.hazards.col.due": ("整改期限", "Due"),
    "dining.hazards.col.age": ("已开放(天)", "Age (days)"),
    "dining.hazards.col.overdue": ("逾期(天)", "Overdue (days)"),
    "dining.hazards.flow": ("发现与整改关闭（按周）", "Found and closed (weekly)"),
    "dining.hazards.flow.none": ("统计期内没有发现或关闭隐患。", "No hazard found or closed in this period."),
    "dining.hazards.found": ("发现", "Found"),
    "dining.hazards.closed": ("整改关闭", "Closed"),
    "dining.severity.high": ("高", "High"),
    "dining.severity.medium": ("中", "Medium"),
    "dining.severity.low": ("低", "Low"),
    "dining.source.self_check": ("自查", "Self-check"),
    "dining.source.inspection": ("检查", "Inspection"),
    "dining.source.complaint": ("投诉", "Complaint"),
    "dining.source.iot": ("物联网", "IoT"),
    "dining.certs.summary": ("已过期 {expired} 人 · {days} 天内到期 {expiring} 人",
                             "{expired} expired · {expiring} expiring within {days} days"),
    "dining.certs.none": ("没有已过期或即将到期的健康证。", "No certificate expired or expiring."),
    "dining.certs.col.ref": ("人员编号（化名）", "Staff ref (pseudonymous)"),
    "dining.certs.col.until": ("有效期至", "Valid until"),
    "dining.certs.col.state": ("状态", "State"),
    "dining.certs.expired": ("已过期 {n} 天", "expired {n} days ago"),
    "dining.certs.expires": ("{n} 天后到期", "expires in {n} days"),
    "dining.certs.today": ("今日到期", "expires today"),
    "dining.inspection.col.date": ("检查日期", "Inspected on"),
    "dining.inspection.col.result": ("结果", "Result"),
    "dining.inspection.col.grade": ("等级", "Grade"),
    "dining.inspection.pass": ("符合", "Pass"),
    "dining.inspection.basic_pass": ("基本符合", "Basic pass"),
    "dining.inspection.fail": ("不符合", "Fail"),
    "dining.inspection.never": ("无检查记录", "No inspection on record"),
    "dining.inspection.counts": ("符合 {passed} · 基本符合 {basic} · 不符合 {fail}",
                                 "pass {passed} · basic {basic} · fail {fail}"),
    "dining.inspection.latest": ("最近一次：{date}", "latest: {date}"),
    "dining.excursions.detail": ("设备 {devices} 台 · 单台单周最多 {worst} 次",
                                 "{devices} devices · worst device-week {worst}"),
    "dining.covers.daily": ("就餐人次（按日）", "Meals served (daily)"),
    "dining.covers.weekly": ("就餐人次（按周）", "Meals served (weekly)"),
    "dining.covers.note": ("无供餐日没有应检项目，不计为违规。",
                           "Days without service have no checks due and are not violations."),
    "dining.list.more": ("仅显示前 {n} 行。", "Only the first {n} rows are shown."),
})

RESULT_STATUS = {"pass": "green", "basic_pass": "amber", "fail": "red"}
_Z = {"green": 0, "amber": 1, "red": 2}


def _status_of(res) -> str:
    return res.status if res is not None else "nodata"


def section(title: str, children, section_id: str, extra=None) -> dbc.Card:
    header = [html.Span(title, className="fw-bold")]
    if extra is not None:
        header.append(html.Span(extra, className="ms-auto small text-muted"))
    return dbc.Card([dbc.CardHeader(header, className="d-flex align-items-center gap-2"), dbc.CardBody(children)],
                    className="mb-3 dining-section", id=section_id)


def empty_scope(lang: str, facility: bool = False) -> dbc.Alert:
    return dbc.Alert(t("dining.empty.facility" if facility else "dining.empty.scope", lang), color="secondary",
                     className="mt-3", id="dining-empty")


# --- tiles --------------------------------------------------------------------------------------------------

def _detail(text: str) -> html.Div:
    return html.Div(text, className="kpi-detail")


def dining_tile(tile, as_of: dict, lang: str, min_n: int = 10) -> html.Div:
    """A registry tile (value, status, change, data as of), with a detail line for the indicators whose
    number alone does not say enough (excursions: devices and worst device-week; inspections: results)."""
    ind, cur = tile.indicator, tile.current
    card = kpi_tile(ind, cur, tile.change, as_of, lang, None, min_n)
    detail = None
    if ind.id == "dining.cold_chain_excursions" and cur.value is not None:
        detail = t("dining.excursions.detail", lang, devices=int(cur.extra.get("devices") or 0),
                   worst=int(cur.extra.get("worst") or 0))
    elif ind.id == "dining.inspection" and cur.value is not None:
        passed = int(cur.num or 0)
        detail = t("dining.inspection.counts", lang, passed=passed, basic=int(cur.extra.get("basic") or 0),
                   fail=int(cur.extra.get("fail") or 0))
        if cur.extra.get("latest_on"):
            detail += " · " + t("dining.inspection.latest", lang, date=fmt_datetime(cur.extra["latest_on"]))
    if detail:
        card.children.insert(len(card.children) - 1, _detail(detail))
    return card


def tile_grid(tiles: list, lang: str, min_n: int = 10, grid_id: str | None = None) -> html.Div:
    """tiles: [(registry Tile, as_of)], laid out in a grid that fits eight tiles across a desk screen."""
    return html.Div([dining_tile(tile, as_of, lang, min_n) for tile, as_of in tiles], className="dining-tiles",
                    id=grid_id)


# --- heatmap ------------------------------------------------------------------------------------------------

def heatmap_figure(rows: list[dict], columns: list[tuple[str, str]], lang: str, decimals: dict | None = None,
                   dark: bool = False) -> go.Figure:
    """rows: [{"key", "name", "href", "cells": {column id: Result}}]; columns: [(indicator id, label)].

    Colour = the cell's status under its own indicator's thresholds (99 % is green for pesticide tests but
    amber for sample retention); the text carries the value and the status shape as well."""
    decimals = decimals or {}
    z, text, links = [], [], []
    for row in rows:
        zr, tr, lr = [], [], []
        for col_id, label in columns:
            res = row["cells"].get(col_id)
            status = _status_of(res)
            value = None if res is None else res.value
            zr.append(_Z.get(status, 3))
            shown = fmt_value(value, "%", decimals.get(col_id, 1)) if value is not None else "—"
            tr.append(f"{STATUS_SHAPES.get(status, '–')} {shown}" if value is not None else "—")
            lr.append(row["href"])
        z.append(zr)
        text.append(tr)
        links.append(lr)
    colors = [STATUS_COLORS["green"], STATUS_COLORS["amber"], STATUS_COLORS["red"], STATUS_COLORS["nodata"]]
    scale = []
    for i, c in enumerate(colors):
        scale += [[i / 4, c], [(i + 1) / 4, c]]
    fig = go.Figure(go.Heatmap(
        z=z, x=[label for _, label in columns], y=[r["name"] for r in rows], text=text, customdata=links,
        # the hover names the cell from its axes (not a hover text per cell: 100 schools made the figure 153 KB)
        hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>", texttemplate="%{text}", textfont=dict(size=13),
        colorscale=scale, zmin=-0.5, zmax=3.5, showscale=False, xgap=3, ygap=3,
    ))
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix="  ", fixedrange=True)
    fig.update_xaxes(side="top", automargin=True, fixedrange=True)
    fig.update_layout(template=template(dark), height=60 + 36 * max(1, len(rows)), margin=dict(l=8, r=8, t=8, b=8),
                      font=dict(family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"),
                      dragmode=False)
    return fig


def heatmap_card(rows: list[dict], columns, level: str, lang: str, unlisted: list[str], decimals=None):
    level_name = t(f"level.{level}", lang) if level != "facility" else pick(lang, "食堂", "canteen")
    title = t("dining.heatmap.title", lang, level=level_name)
    if not rows:
        return section(title, html.Div(t("dining.heatmap.none", lang), className="text-muted small"), "dining-heatmap")
    body = [
        dcc.Graph(id={"type": HEATMAP_TYPE, "index": "main"}, figure=heatmap_figure(rows, columns, lang, decimals),
                  config={"displayModeBar": False}, className="dining-heatmap-graph"),
        html.Div(t("dining.heatmap.click", lang, level=level_name), className="small text-muted"),
        html.Div([dcc.Link(r["name"], href=r["href"], className="btn btn-sm btn-outline-primary me-1 mb-1",
                           id={"type": "dining-drill", "index": r["key"]}) for r in rows], className="mt-2"),
    ]
    if unlisted:
        body.append(html.Div(t("dining.heatmap.unlisted", lang, names="、".join(unlisted) if lang == "zh"
                                else ", ".join(unlisted)), className="small text-muted mt-1", id="dining-unlisted"))
    return section(title, body, "dining-heatmap")


# --- checklist ----------------------------------------------------------------------------------------------

def _cell_state(due, ok) -> str:
    if due is None or (isinstance(due, float) and math.isnan(due)):
        return "missing"
    return "ok" if ok >= due else "failed"


def checklist_table(slots, covers: dict, days: list[dt.date], check_order: list[str], lang: str):
    """The canteen's checklist: one row per day (newest first), one column per (meal, check) due in the period.

    slots: data_access.dining.checklist (items_* empty when the check is missing); covers: {date: Σ covers};
    days: the days to show. A day without any check due is a no-service day, shown as such."""
    if slots is None or slots.empty:
        return html.Div(t("dining.checklist.none", lang), className="text-muted small", id="dining-checklist")
    rows = [dict(d=_day(r.d), meal=r.meal, check_type=r.check_type, items_due=r.items_due, items_ok=r.items_ok)
            for r in slots.itertuples(index=False)]
    by_key = {(s["d"], s["meal"], s["check_type"]): s for s in rows}
    rank = {c: i for i, c in enumerate(check_order)}
    columns = sorted({(s["meal"], s["check_type"]) for s in rows},
                     key=lambda mc: (MEALS.index(mc[0]) if mc[0] in MEALS else 9, rank.get(mc[1], 99)))
    meals = []
    for meal, _ in columns:
        if not meals or meals[-1][0] != meal:
            meals.append([meal, 0])
        meals[-1][1] += 1
    head = html.Thead([
        html.Tr([html.Th(t("dining.checklist.date", lang), rowSpan=2),
                 html.Th(t("dining.checklist.covers", lang), rowSpan=2, className="text-end")]
                + [html.Th(t(f"dining.meal.{m}", lang), colSpan=n, className="text-center meal-head")
                   for m, n in meals]),
        html.Tr([html.Th(t(f"dining.check.{c}", lang), className="text-center check-head") for _, c in columns]),
    ])
    served_days = {s["d"] for s in rows}
    body = []
    for day in days:
        cells = [html.Td(day.isoformat(), className="num text-nowrap"),
                 html.Td(fmt_number(covers[day], 0) if covers.get(day) is not None else "—", className="num text-end")]
        if day not in served_days:
            cells.append(html.Td(t("dining.checklist.noservice", lang), colSpan=len(columns),
                                 className="cl-noservice text-center"))
            body.append(html.Tr(cells, className="cl-row-noservice", **{"data-date": day.isoformat()}))
            continue
        for meal, check in columns:
            slot = by_key.get((day, meal, check))
            if slot is None:
                cells.append(html.Td("–", className="cl-cell cl-notdue", title=t("dining.checklist.notdue", lang)))
                continue
            state = _cell_state(slot["items_due"], slot["items_ok"])
            if state == "ok":
                content = "✓"
            elif state == "failed":
                content = f"✗ {int(slot['items_ok'])}/{int(slot['items_due'])}"
            else:
                content = "? " + t("dining.checklist.missing", lang)
            cells.append(html.Td(content, className=f"cl-cell cl-{state}", title=t(f"dining.checklist.{state}", lang),
                                 **{"data-state": state, "data-check": check, "data-meal": meal}))
        body.append(html.Tr(cells, **{"data-date": day.isoformat()}))
    legend = html.Div([
        html.Span("✓ " + t("dining.checklist.ok", lang), className="cl-legend cl-ok"),
        html.Span("✗ " + t("dining.checklist.failed", lang) + " (" + pick(lang, "合格/应检", "ok/due") + ")",
                  className="cl-legend cl-failed"),
        html.Span("? " + t("dining.checklist.missing", lang), className="cl-legend cl-missing"),
        html.Span("– " + t("dining.checklist.notdue", lang), className="cl-legend cl-notdue"),
    ], className="d-flex flex-wrap gap-2 small mb-2")
    return html.Div([legend, html.Div(dbc.Table([head, html.Tbody(body)], size="sm", bordered=True,
                                                className="checklist-table mb-0"),
                                      className="table-responsive checklist-scroll")], id="dining-checklist")


def checklist_summary(slots, lang: str) -> str:
    """'应检 N 项：合格 a · 不合格 b · 缺失 c' over the slots shown."""
    states = [_cell_state(r.items_due, r.items_ok) for r in slots.itertuples(index=False)] if slots is not None else []
    return t("dining.checklist.summary", lang, due=len(states), ok=states.count("ok"),
             failed=states.count("failed"), missing=states.count("missing"))


def checklist_card(slots, covers, shown, period, check_order: list[str], lang: str) -> dbc.Card:
    """slots: data_access.dining.checklist over ``shown`` (the latest days of ``period``); covers:
    data_access.dining.meals_served over the same days."""
    per_day = {}
    if covers is not None and not covers.empty:
        for d, total in covers.groupby("d")["covers"].sum().items():
            per_day[_day(d)] = float(total)
    days = [shown.end - dt.timedelta(days=i) for i in range(shown.days)]
    body = [checklist_table(slots, per_day, days, check_order, lang)]
    if shown.start > period.start:
        body.insert(0, html.Div(t("dining.checklist.truncated", lang, days=shown.days),
                                className="small text-muted mb-1"))
    title = (t("dining.checklist.title", lang) + " · "
             + t("dining.checklist.range", lang, start=shown.start.isoformat(), end=shown.end.isoformat()))
    return section(title, body, "dining-checklist-card", extra=checklist_summary(slots, lang))


# --- cold chain ---------------------------------------------------------------------------------------------

def band_text(band: tuple[float | None, float | None]) -> str:
    lo, hi = band
    if lo is not None and hi is not None:
        return f"{lo:g}–{hi:g} °C"
    if hi is not None:
        return f"≤ {hi:g} °C"
    if lo is not None:
        return f"≥ {lo:g} °C"
    return ""


def _minutes(m: float, lang: str) -> str:
    m = float(m)
    if m >= 120:
        return pick(lang, f"{m / 60:.1f} 小时", f"{m / 60:.1f} h")
    return t("dining.cold.minutes", lang, m=f"{m:.0f}")


def _place(places: dict, fid: str):
    label, link = places.get(fid, (fid, None))
    return dcc.Link(label, href=link) if link else label


def excursion_table(frame, places: dict, bands: dict, lang: str, min_minutes: int):
    """frame: data_access.dining.excursions; places: {facility_id: (label, href)}; bands: {zone: (min, max)}."""
    title = html.Div(t("dining.cold.excursions", lang, minutes=min_minutes), className="fw-semibold mb-1")
    if frame is None or frame.empty:
        return html.Div([title, html.Div(t("dining.cold.excursions.none", lang), className="text-muted small")],
                        id="dining-excursions")
    head = html.Thead(html.Tr([html.Th(t(f"dining.cold.col.{c}", lang), className=cls) for c, cls in (
        ("device", ""), ("canteen", ""), ("zone", ""), ("start", ""), ("duration", "text-end"),
        ("peak", "text-end"), ("readings", "text-end"))]))
    body = []
    rows = frame.sort_values(["start_ts", "device_id"], ascending=[False, True])
    for r in rows.itertuples(index=False):
        ended = r.end_ts is not None and not (isinstance(r.end_ts, float) and math.isnan(r.end_ts)) \
            and str(r.end_ts) != "NaT"
        duration = _minutes(r.minutes, lang) + ("" if ended else t("dining.cold.open", lang))
        body.append(html.Tr([
            html.Td(r.device_id, className="text-nowrap"),
            html.Td(_place(places, r.facility_id)),
            html.Td(f"{t('dining.zone.' + r.zone, lang)} ({band_text(bands.get(r.zone, (None, None)))})",
                    className="text-nowrap"),
            html.Td(fmt_datetime(_py(r.start_ts)), className="num text-nowrap"),
            html.Td(duration, className="num text-end text-nowrap"),
            html.Td(f"{r.peak_c:.1f} °C", className="num text-end"),
            html.Td(str(int(r.readings)), className="num text-end"),
        ], **{"data-device": r.device_id, "data-minutes": f"{float(r.minutes):g}"}))
    return html.Div([title, dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                                      className="mb-0 dining-table")],
                    id="dining-excursions", className="dining-scroll")


def device_table(frame, places: dict, bands: dict, lang: str):
    """frame: data_access.dining.device_summary (with each device's status); shown worst first."""
    if frame is None or frame.empty:
        return html.Div(t("dining.cold.no_devices", lang), className="text-muted small", id="dining-devices")
    head = html.Thead(html.Tr([html.Th(t(f"dining.cold.col.{c}", lang), className=cls) for c, cls in (
        ("device", ""), ("canteen", ""), ("zone", ""), ("compliance", "text-end"), ("range", "text-end"),
        ("last", "ps-4"))] + [html.Th("")]))
    body = []
    rank = {"red": 0, "amber": 1, "green": 2}
    frame = frame.assign(_rank=frame["status"].map(rank).fillna(3),
                         _rate=frame["in_range"] / frame["readings"].where(frame["readings"] > 0))
    for r in frame.sort_values(["_rank", "_rate", "device_id"]).itertuples(index=False):
        rate = 100.0 * r.in_range / r.readings if r.readings else None
        body.append(html.Tr([
            html.Td(r.device_id, className="text-nowrap"),
            html.Td(_place(places, r.facility_id)),
            html.Td(f"{t('dining.zone.' + r.zone, lang)} ({band_text(bands.get(r.zone, (None, None)))})",
                    className="text-nowrap"),
            html.Td(fmt_value(rate, "%", 2), className="num text-end"),
            html.Td(f"{r.min_c:.1f} / {r.max_c:.1f} °C", className="num text-end text-nowrap"),
            html.Td(fmt_datetime(_py(r.last_ts)), className="num text-nowrap ps-4"),
            html.Td(status_badge(r.status, lang, size="badge-sm")),
        ], **{"data-device": r.device_id}))
    return html.Div([html.Div(t("dining.cold.devices", lang), className="fw-semibold mb-1 mt-3"),
                     dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                               className="mb-0 dining-table")], id="dining-devices", className="dining-scroll")


def _py(value):
    """A pandas timestamp as a plain datetime (or None)."""
    if value is None or str(value) == "NaT":
        return None
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _with_gaps(ts: list, *series: list) -> tuple[list, ...]:
    """Break the lines where the device was silent (a gap over three times the usual spacing and over an hour):
    hot-holding probes report only during service, and an offline device must not look like a straight line."""
    if len(ts) < 3:
        return (list(ts), *[list(s) for s in series])
    steps = sorted((b - a).total_seconds() for a, b in zip(ts, ts[1:]))
    limit = max(3 * steps[len(steps) // 2], 3600.0)
    out_ts, outs = [ts[0]], [[s[0]] for s in series]
    for i in range(1, len(ts)):
        if (ts[i] - ts[i - 1]).total_seconds() > limit:
            out_ts.append(ts[i - 1] + (ts[i] - ts[i - 1]) / 2)
            for o in outs:
                o.append(None)
        out_ts.append(ts[i])
        for o, s in zip(outs, series):
            o.append(s[i])
    return (out_ts, *outs)


def temperature_figure(ts: list, low: list[float], high: list[float], band: tuple[float | None, float | None],
                       events: list[dict], lang: str, dark: bool = False, height: int = 230,
                       x_range: tuple | None = None) -> go.Figure:
    """One device's temperature over time: the lowest and highest reading per time bucket (one line when a
    bucket holds one reading), the allowed band shaded green, and each excursion ({start, end, peak, minutes})
    shaded red with a marker at its peak (a one-hour excursion is too thin to see on a month otherwise).

    Shapes go straight into the layout: plotly's add_hrect / add_vrect copy the figure on every call (a second
    per curve on a year)."""
    x, lows, highs = _with_gaps(list(ts), list(low), list(high))
    values = [v for v in list(low) + list(high) if v is not None]
    lo, hi = band
    edges = [v for v in (lo, hi) if v is not None]
    y_min = min(values + edges) if values or edges else 0.0
    y_max = max(values + edges) if values or edges else 10.0
    pad = max(1.0, (y_max - y_min) * 0.08)
    y0, y1 = y_min - pad, y_max + pad
    green, red = STATUS_COLORS["green"], STATUS_COLORS["red"]
    shapes = [dict(type="rect", xref="paper", x0=0, x1=1, yref="y", y0=lo if lo is not None else y0,
                   y1=hi if hi is not None else y1, fillcolor=green, opacity=0.12, line=dict(width=0), layer="below")]
    shapes += [dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=e, y1=e,
                    line=dict(color=green, width=1, dash="dot")) for e in edges]
    shapes += [dict(type="rect", xref="x", x0=e["start"], x1=e["end"], yref="paper", y0=0, y1=1, fillcolor=red,
                    opacity=0.3, line=dict(width=0), layer="below") for e in events]
    # No fill between the two lines: plotly's tonexty bridges the silences that the gaps leave open.
    traces = [
        go.Scatter(x=x, y=highs, mode="lines", line=dict(color=ACCENT, width=1.5), connectgaps=False,
                   name=t("dining.cold.high", lang),
                   hovertemplate="%{x|%m-%d %H:%M} · %{y:.1f} °C<extra>" + t("dining.cold.high", lang) + "</extra>"),
        go.Scatter(x=x, y=lows, mode="lines", line=dict(color=ACCENT, width=1.5), connectgaps=False,
                   name=t("dining.cold.low", lang),
                   hovertemplate="%{x|%m-%d %H:%M} · %{y:.1f} °C<extra>" + t("dining.cold.low", lang) + "</extra>"),
    ]
    if events:
        traces.append(go.Scatter(
            x=[e["start"] + (e["end"] - e["start"]) / 2 for e in events], y=[e["peak"] for e in events],
            mode="markers", marker=dict(color=red, size=10, symbol="square", line=dict(width=1, color="white")),
            text=[f"{fmt_datetime(e['start'])} · {_minutes(e['minutes'], lang)} · {e['peak']:.1f} °C" for e in events],
            hovertemplate="%{text}<extra>" + pick(lang, "超标", "excursion") + "</extra>", name="excursion"))
    return go.Figure(data=traces, layout=dict(
        template=template(dark), height=height, margin=dict(l=8, r=8, t=8, b=8), showlegend=False,
        hovermode="x unified", shapes=shapes,
        font=dict(family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"),
        yaxis=dict(range=[y0, y1], ticksuffix=" °C", nticks=5, fixedrange=True),
        xaxis=dict(showgrid=False, tickformat="%m-%d", nticks=8, range=list(x_range) if x_range else None),
    ))


def curves(curve_data: list, devices, runs, places: dict, bands: dict, lang: str, level: str, most: int,
           x_range: tuple | None = None):
    """Temperature curves: curve_data [(device_id, data_access.dining.device_curve frame)], devices the
    device summary (zone, canteen), runs the excursions (shaded red on their device's curve); x_range the
    period, so that every curve spans the same days."""
    title = html.Div(t("dining.cold.curves", lang), className="fw-semibold mb-1 mt-3")
    if not curve_data:
        hint = ("dining.cold.curves.drill" if level in ("association", "region")
                else "dining.cold.no_devices" if level == "facility" else "dining.cold.curves.none")
        return html.Div([title, html.Div(t(hint, lang), className="small text-muted")], id="dining-curves")
    info = devices.set_index("device_id") if devices is not None and not devices.empty else None
    boxes = []
    for device_id, frame in curve_data:
        zone = str(info.loc[device_id, "zone"]) if info is not None and device_id in info.index else ""
        fid = str(info.loc[device_id, "facility_id"]) if info is not None and device_id in info.index else ""
        band = bands.get(zone, (None, None))
        own = runs.loc[runs["device_id"] == device_id] if runs is not None and not runs.empty else None
        events = [] if own is None else [
            {"start": _py(r.start_ts), "end": _py(r.end_ts) or _py(r.last_ts), "peak": float(r.peak_c),
             "minutes": float(r.minutes)} for r in own.itertuples(index=False)]
        figure = temperature_figure([_py(x) for x in frame["ts"]], list(frame["low"]), list(frame["high"]), band,
                                    events, lang, x_range=x_range)
        label = places.get(fid, (fid, None))[0]
        caption = (f"{label} · {device_id} · {t('dining.zone.' + zone, lang) if zone else ''} "
                   f"({t('dining.cold.band', lang)} {band_text(band)})")
        boxes.append(dbc.Col(html.Div([
            html.Div(caption, className="small fw-semibold"),
            dcc.Graph(figure=figure, config={"displayModeBar": False}, className="dining-curve",
                      id={"type": "dining-curve", "index": device_id}),
        ], className="dining-curve-box", **{"data-device": device_id}), xs=12, lg=6))
    hint = None
    if level not in ("facility",):
        hint = html.Div(t("dining.cold.curves.hint", lang, n=most), className="small text-muted")
    return html.Div([title, hint, dbc.Row(boxes, className="g-2")], id="dining-curves")


# --- hazards ------------------------------------------------------------------------------------------------

def hazard_table(frame, places: dict, lang: str, limit: int | None = None):
    """frame: data_access.dining.open_hazards (overdue first)."""
    if frame is None or frame.empty:
        return html.Div(t("dining.hazards.none", lang), className="text-muted small", id="dining-hazards-table")
    cols = (("id", ""), ("canteen", ""), ("found", ""), ("source", ""), ("severity", ""), ("category", ""),
            ("due", ""), ("age", "text-end"), ("overdue", "text-end"))
    head = html.Thead(html.Tr([html.Th(t("dining.cold.col.canteen" if c == "canteen" else f"dining.hazards.col.{c}",
                                         lang), className=cls) for c, cls in cols]))
    body = []
    for r in frame.itertuples(index=False):
        sev_status = {"high": "red", "medium": "amber", "low": "none"}.get(r.severity, "none")
        body.append(html.Tr([
            html.Td(r.hazard_id, className="text-nowrap"),
            html.Td(_place(places, r.facility_id)),
            html.Td(fmt_datetime(_day(r.found_on)), className="num text-nowrap"),
            html.Td(t(f"dining.source.{r.source}", lang)),
            html.Td(html.Span([STATUS_SHAPES[sev_status], " ", t(f"dining.severity.{r.severity}", lang)],
                              className=f"status-badge status-{sev_status} badge-sm")),
            html.Td(r.category),
            html.Td(fmt_datetime(_day(r.due_on)), className="num text-nowrap"),
            html.Td(str(int(r.age_days)), className="num text-end"),
            html.Td(str(int(r.overdue_days)) if r.overdue else "—", className="num text-end"),
        ], className="hazard-overdue" if r.overdue else None,
            **{"data-hazard": r.hazard_id, "data-overdue": "1" if r.overdue else "0", "data-severity": r.severity}))
    table = dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True, className="mb-0 dining-table")
    more = (html.Div(t("dining.list.more", lang, n=limit), className="small text-muted")
            if limit and len(frame) >= limit else None)
    return html.Div([table, more], id="dining-hazards-table", className="dining-scroll")


def _day(value):
    """A date from a pandas timestamp, a date or None."""
    value = _py(value)
    return value.date() if isinstance(value, dt.datetime) else value


def hazard_summary(open_total: int, overdue, lang: str) -> html.Div:
    """overdue: the registry Result of dining.hazards_overdue (its status: any high is red)."""
    n_overdue = int(overdue.value or 0) if overdue is not None else 0
    return html.Div([
        html.Span(t("dining.hazards.open", lang, n=open_total, overdue=n_overdue), className="me-2"),
        status_badge(overdue.status if overdue is not None else "nodata", lang, size="badge-sm"),
    ], className="mb-2", id="dining-hazards-summary")


def hazard_flow_figure(weeks: list, found: list[int], closed: list[int], lang: str, dark: bool = False) -> go.Figure:
    fig = go.Figure([
        go.Bar(x=weeks, y=found, name=t("dining.hazards.found", lang), marker=dict(color=STATUS_COLORS["amber"]),
               hovertemplate="%{x|%Y-%m-%d}: %{y}<extra>" + t("dining.hazards.found", lang) + "</extra>"),
        go.Bar(x=weeks, y=closed, name=t("dining.hazards.closed", lang), marker=dict(color=STATUS_COLORS["green"]),
               hovertemplate="%{x|%Y-%m-%d}: %{y}<extra>" + t("dining.hazards.closed", lang) + "</extra>"),
    ])
    fig.update_layout(template=template(dark), height=200, margin=dict(l=8, r=8, t=28, b=8), barmode="group",
                      legend=dict(orientation="h", y=1.18, x=0), hovermode="x unified",
                      font=dict(family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"))
    fig.update_yaxes(rangemode="tozero", nticks=4, fixedrange=True)
    fig.update_xaxes(tickformat="%m-%d", fixedrange=True)
    return fig


def weekly(frame, columns: list[str]):
    """Daily counts (column d) summed per week starting Monday: the small frame behind a weekly chart."""
    if frame is None or frame.empty:
        return frame
    out = frame.set_index("d")[columns].resample("W-MON", label="left", closed="left").sum()
    return out.reset_index()


def hazard_flow(frame, lang: str) -> html.Div:
    """frame: data_access.dining.hazard_flow (found and closed per day)."""
    title = html.Div(t("dining.hazards.flow", lang), className="fw-semibold mt-3 mb-1")
    if frame is None or frame.empty:
        return html.Div([title, html.Div(t("dining.hazards.flow.none", lang), className="small text-muted")])
    weeks = weekly(frame, ["found", "closed"])
    figure = hazard_flow_figure([_py(x) for x in weeks["d"]], list(weeks["found"]), list(weeks["closed"]), lang)
    return html.Div([title, dcc.Graph(figure=figure, config={"displayModeBar": False}, id="dining-hazard-flow")])


# --- certificates, inspections, covers -----------------------------------------------------------------------

def certificate_table(frame, places: dict, lang: str, limit: int | None = None):
    """frame: data_access.dining.certificate_list (pseudonymous refs only; no names)."""
    if frame is None or frame.empty:
        return html.Div(t("dining.certs.none", lang), className="text-muted small", id="dining-certs-table")
    head = html.Thead(html.Tr([html.Th(t("dining.certs.col.ref", lang)), html.Th(t("dining.cold.col.canteen", lang)),
                               html.Th(t("dining.certs.col.until", lang)), html.Th(t("dining.certs.col.state", lang))]))
    body = []
    for r in frame.itertuples(index=False):
        days = int(r.days_left)
        if r.expired:
            state, status = t("dining.certs.expired", lang, n=-days), "red"
        else:
            state = t("dining.certs.today", lang) if days == 0 else t("dining.certs.expires", lang, n=days)
            status = "amber"
        body.append(html.Tr([
            html.Td(r.staff_ref, className="text-nowrap"),
            html.Td(_place(places, r.facility_id)),
            html.Td(fmt_datetime(_day(r.valid_until)), className="num text-nowrap"),
            html.Td(html.Span([STATUS_SHAPES[status], " ", state], className=f"status-badge status-{status} badge-sm")),
        ], **{"data-ref": r.staff_ref, "data-expired": "1" if r.expired else "0"}))
    more = (html.Div(t("dining.list.more", lang, n=limit), className="small text-muted")
            if limit and len(frame) >= limit else None)
    return html.Div([dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                               className="mb-0 dining-table"), more],
                    id="dining-certs-table", className="dining-scroll")


def inspection_table(frame, places: dict, lang: str):
    """frame: data_access.dining.inspection_list (result empty: never inspected)."""
    head = html.Thead(html.Tr([html.Th(t("dining.cold.col.canteen", lang)),
                               html.Th(t("dining.inspection.col.date", lang)),
                               html.Th(t("dining.inspection.col.result", lang)),
                               html.Th(t("dining.inspection.col.grade", lang), className="text-center")]))
    body = []
    for r in frame.itertuples(index=False):
        result = r.result if isinstance(r.result, str) else None
        if result:
            status = RESULT_STATUS.get(result, "nodata")
            shown = html.Span([STATUS_SHAPES.get(status, "–"), " ", t(f"dining.inspection.{result}", lang)],
                              className=f"status-badge status-{status} badge-sm")
        else:
            shown = html.Span(t("dining.inspection.never", lang), className="text-muted small")
        body.append(html.Tr([
            html.Td(_place(places, r.facility_id)),
            html.Td(fmt_datetime(_day(r.inspected_on)) if result else "—", className="num text-nowrap"),
            html.Td(shown),
            html.Td(r.grade if isinstance(r.grade, str) else "—", className="text-center"),
        ], **{"data-facility": r.facility_id, "data-result": result or ""}))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                              className="mb-0 dining-table"), id="dining-inspections", className="dining-scroll")


def certificate_summary(result, warning_days: int, lang: str) -> html.Div:
    """result: the registry Result of dining.certificates_expiring (expired red, expiring amber)."""
    expired = int(result.extra.get("expired") or 0) if result is not None else 0
    expiring = int(result.extra.get("expiring") or 0) if result is not None else 0
    return html.Div([
        html.Span(t("dining.certs.summary", lang, expired=expired, expiring=expiring, days=warning_days),
                  className="me-2"),
        status_badge(result.status if result is not None else "nodata", lang, size="badge-sm"),
    ], className="mb-2", id="dining-certs-summary")


def covers_figure(dates: list, values: list[float | None], lang: str, dark: bool = False) -> go.Figure:
    fig = go.Figure(go.Bar(x=dates, y=[v if v is not None else 0 for v in values], marker=dict(color=ACCENT),
                           hovertemplate="%{x|%Y-%m-%d}: %{y:,.0f}<extra></extra>"))
    fig.update_layout(template=template(dark), height=220, margin=dict(l=8, r=8, t=8, b=8), showlegend=False,
                      font=dict(family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"))
    fig.update_yaxes(rangemode="tozero", nticks=4, fixedrange=True)
    fig.update_xaxes(tickformat="%m-%d", fixedrange=True)
    return fig


def covers_panel(points: list, freq: str, lang: str) -> html.Div:
    """points: registry.series of dining.covers (daily or weekly)."""
    title = html.Div(t("dining.covers.daily" if freq == "D" else "dining.covers.weekly", lang),
                     className="fw-semibold mb-1")
    note = html.Div(t("dining.covers.note", lang), className="small text-muted")
    if not points:
        return html.Div([title, html.Div(t("trend.none", lang), className="small text-muted"), note])
    figure = covers_figure([p.key for p in points], [p.value for p in points], lang)
    return html.Div([title, dcc.Graph(figure=figure, config={"displayModeBar": False}, id="dining-covers-graph"),
                     note])
