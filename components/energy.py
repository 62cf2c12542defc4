"""Energy panel (能源监管) factories: plain data in, components and figures out, no I/O.

Tiles with year-on-year and peer details, the energy-type switch, the daily load curve with vacations shaded,
a building's hourly profile per day class and its day × hour heatmap, breakdown bars, top-N tables, the quota
chart and table, the peer ranking and the anomaly list. Buildings are named by their facility names only.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import math

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.io as pio
from dash import dcc, html

from data_access.engine import WarehouseUnavailable
from data_access.errors import InputError

from .format import fmt_compact, fmt_number, fmt_value
from .i18n import register, t
from .links import href
from .grid import STATUS_CELL_CLASS, grid_options, md_link, status_text
from .theme import ACCENT, NEUTRAL, SERIES_COLORS, STATUS_COLORS, TEMPLATES
from .tiles import kpi_tile, status_badge

logger = logging.getLogger(__name__)

TYPES = ("kgce", "electricity", "water", "gas", "heat")
UNITS = {"kgce": "kgce", "electricity": "kWh", "water": "m³", "gas": "m³", "heat": "GJ"}
TYPE_COLORS = {"electricity": SERIES_COLORS[0], "water": SERIES_COLORS[2], "gas": SERIES_COLORS[4],
               "heat": SERIES_COLORS[5], "kgce": ACCENT}
CLASS_COLORS = {"term_workday": SERIES_COLORS[0], "term_weekend": SERIES_COLORS[2],
                "vacation_workday": SERIES_COLORS[4], "vacation_weekend": SERIES_COLORS[1],
                "holiday": SERIES_COLORS[5]}
RULE_COLORS = {"spike": "danger", "leak": "primary", "missing": "secondary", "night": "warning",
               "holiday": "info"}
FONT = "Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"

register({
    "energy.type.kgce": ("综合能耗", "All energy (kgce)"),
    "energy.type.electricity": ("电", "Electricity"),
    "energy.type.water": ("水", "Water"),
    "energy.type.gas": ("气", "Gas"),
    "energy.type.heat": ("热", "Heat"),
    "energy.type.label": ("能源类型", "Energy"),
    "energy.group.use": ("用量与排放", "Use and emissions"),
    "energy.group.intensity": ("强度与定额", "Intensity and quota"),
    "energy.group.ops": ("运行监测与数据质量", "Operations and data quality"),
    "energy.detail.yoy": ("同比 {value}", "YoY {value}"),
    "energy.detail.yoy_na": ("同比 —（无去年同期数据）", "YoY — (no data a year ago)"),
    "energy.detail.peer": ("同类中位数 {value}", "peer median {value}"),
    "energy.detail.last_year": ("去年同期 {value}", "a year ago {value}"),
    "energy.detail.few_peers": ("同类学校不足 {n} 所：不作同类比较", "fewer than {n} peer schools: no peer comparison"),
    "energy.detail.few_peers_ly": ("同类学校不足 {n} 所：状态按本校去年同期判定",
                                   "fewer than {n} peer schools: status against own last year"),
    "energy.detail.quota_unbanded": ("区间未含 {n} 项无区间的预测（线性，或可比月份仅一个）",
                                     "band leaves out {n} projection(s) without one (run rate, or one comparable "
                                     "month)"),
    "energy.detail.quota": ("年初至今 {ytd} · 区间 {lo}–{hi}", "so far {ytd} · band {lo}–{hi}"),
    "energy.detail.quota_noband": ("年初至今 {ytd}", "so far {ytd}"),
    "energy.detail.workdays": ("按教学工作日", "term workdays"),
    "energy.detail.no_off": ("本期无假期", "no vacation days in period"),
    "energy.detail.night_scope": ("仅统计教学楼、办公楼的教学工作日", "teaching and office buildings, term workdays only"),
    "energy.section.curves": ("负荷曲线：每日用量", "Load curve: daily use"),
    "energy.section.building": ("建筑负荷：小时曲线与日历热力图", "Building load: hourly profile and calendar heatmap"),
    "energy.section.breakdown": ("分类分项与排名", "Breakdowns and rankings"),
    "energy.section.quota": ("能耗定额：年初至今与全年预测", "Quota: year to date and year-end projection"),
    "energy.section.intensity": ("能耗强度与同类比较", "Intensity against peers"),
    "energy.section.anomalies": ("用能异常清单", "Anomaly list"),
    "energy.curves.shaded": ("阴影：寒暑假（浅）与节假日（深）", "Shaded: vacations (light) and holidays (dark)"),
    "energy.curves.none": ("本期没有该类能源的计量数据。", "No metered use of this energy type in the period."),
    "energy.building.pick": ("选择建筑", "Building"),
    "energy.building.none": ("本范围内没有该类能源的建筑表计。", "No building meter of this type in this scope."),
    "energy.building.nodata": ("该建筑本期没有读数。", "This building has no readings in the period."),
    "energy.building.profile": ("平均小时负荷（按日类型）", "Mean hourly load by day type"),
    "energy.building.heatmap": ("日 × 时 热力图", "Day × hour heatmap"),
    "energy.building.heatmap_weekly": ("周 × 时 热力图（每周日均）", "Week × hour heatmap (mean day of each week)"),
    "energy.building.offday": ("▼ 假期或节假日", "▼ vacation or holiday"),
    "energy.class.term_workday": ("教学工作日", "Term workday"),
    "energy.class.term_weekend": ("教学周末", "Term weekend"),
    "energy.class.vacation_workday": ("假期工作日", "Vacation weekday"),
    "energy.class.vacation_weekend": ("假期周末", "Vacation weekend"),
    "energy.class.holiday": ("节假日", "Holiday"),
    "energy.hour": ("时", "Hour"),
    "energy.breakdown.type": ("按建筑类型", "By building type"),
    "energy.breakdown.end_use": ("电力按用途（分项计量）", "Electricity by end use (sub-meters)"),
    "energy.breakdown.none": ("本期无数据。", "No data in the period."),
    "energy.top.use": ("用量最大的建筑", "Largest users"),
    "energy.top.growth_yoy": ("同比增长最快的建筑", "Fastest growing (year on year)"),
    "energy.top.growth_prev": ("环比增长最快的建筑", "Fastest growing (vs previous period)"),
    "energy.top.building": ("建筑", "Building"),
    "energy.top.value": ("用量", "Use"),
    "energy.top.growth": ("增长", "Growth"),
    "energy.top.none": ("无可比较数据。", "Nothing to compare."),
    "energy.ftype.canteen": ("食堂", "Canteens"),
    "energy.ftype.dormitory": ("学生公寓", "Dormitories"),
    "energy.ftype.teaching": ("教学楼", "Teaching"),
    "energy.ftype.office": ("行政办公", "Offices"),
    "energy.ftype.lab": ("实验楼", "Labs"),
    "energy.ftype.library": ("图书馆", "Libraries"),
    "energy.ftype.sports": ("体育场馆", "Sports"),
    "energy.ftype.other": ("其他", "Other"),
    "energy.enduse.lighting_socket": ("照明插座", "Lighting & sockets"),
    "energy.enduse.hvac": ("空调", "HVAC"),
    "energy.enduse.power": ("动力", "Power"),
    "energy.enduse.special": ("特殊用电", "Special"),
    "energy.enduse.other": ("分项未覆盖", "Not covered by sub-meters"),
    "energy.enduse.not_submetered": ("无分项计量的建筑", "Buildings without sub-meters"),
    "energy.quota.none": ("本范围内没有 {year} 年的能耗定额。", "No energy quota for {year} in this scope."),
    "energy.quota.not_level": ("定额按学校下达：请在学校及以上层级查看。",
                               "Quotas are set per school: see them at school level or above."),
    "energy.quota.actual": ("实际累计", "Actual, cumulative"),
    "energy.quota.projection": ("预测", "Projection"),
    "energy.quota.band": ("90% 区间", "90 % band"),
    "energy.quota.line": ("定额", "Quota"),
    "energy.quota.type": ("类型", "Type"),
    "energy.quota.quota": ("定额", "Quota"),
    "energy.quota.ytd": ("年初至今", "So far"),
    "energy.quota.projected": ("预计全年", "Projected"),
    "energy.quota.band_col": ("区间", "Band"),
    "energy.quota.method": ("方法", "Method"),
    "energy.quota.method.seasonal": ("季节（去年曲线）", "seasonal (last year's shape)"),
    "energy.quota.method.linear": ("线性（按今年有数据各日的日均用量）", "linear (run rate over this year's days with data)"),
    "energy.quota.method.none": ("无法预测", "no projection"),
    "energy.quota.method.mixed": ("混合：{detail}", "mixed: {detail}"),
    "energy.quota.method.count.seasonal": ("季节 {n} 所", "seasonal {n}"),
    "energy.quota.method.count.linear": ("线性 {n} 所", "linear {n}"),
    "energy.quota.method.count.none": ("无法预测 {n} 所", "none {n}"),
    "energy.quota.unbanded": ("* 区间仅含有区间的预测，未含 {n} 项无区间的预测（线性按日均外推，或与去年可比的月份仅一个）；"
                              "各部分误差按相互独立合成（方差相加）。",
                              "* The band covers the projections that have one and leaves out {n} without one (a run "
                              "rate, or a single month comparable with last year); the parts' errors are combined as "
                              "independent (variances add)."),
    "energy.quota.note": ("预测 = 年初至今 + 去年余下各日 × 今年与去年同日用量之比；区间由各月比值的离散度估计。"
                          "热力按去年采暖季形状外推，不按日均线性外推。",
                          "Projection = use so far + the rest of last year × this year's use ÷ last year's on the "
                          "same dates; the band from the spread of the monthly ratios. Heat follows last year's "
                          "heating season, not a daily run rate."),
    "energy.quota.partial": ("部分学校无法预测，图中仅含其年初至今用量。",
                             "Some schools have no projection: only their use so far is included."),
    "energy.rank.title": ("学校排名：{name}", "Schools by {name}"),
    "energy.rank.median": ("同类中位数", "Peer median"),
    "energy.rank.iqr": ("同类 P25–P75", "Peer P25–P75"),
    "energy.rank.school": ("学校", "School"),
    "energy.rank.type": ("类型", "Type"),
    "energy.rank.value": ("本期（年化）", "This period (annualised)"),
    "energy.rank.last_year": ("去年同期", "A year ago"),
    "energy.rank.peers": ("同类数", "Peers"),
    "energy.rank.few": ("同类学校少于 {n} 所时不显示同类分布（中位数、P25–P75），状态改与本校去年同期比较（标“去年”）。",
                        "Peer groups of fewer than {n} schools show no distribution (median, P25–P75); the status "
                        "then compares with the school's own last year (marked \"last yr\")."),
    "energy.rank.basis_ly": ("去年", "last yr"),
    "energy.int.few": ("同类学校少于 {n} 所：不显示同类中位数，状态与本校去年同期比较（无去年数据则不判定）。",
                       "Fewer than {n} peer schools: no peer median is shown; the status compares with the "
                       "school's own last year (none without last year's data)."),
    "energy.stype.university": ("大学", "University"),
    "energy.stype.vocational": ("职业院校", "Vocational"),
    "energy.stype.k12": ("中小学", "K12"),
    "energy.int.indicator": ("指标", "Indicator"),
    "energy.int.value": ("本期（年化）", "This period (annualised)"),
    "energy.int.peer": ("同类中位数", "Peer median"),
    "energy.int.last_year": ("去年同期", "A year ago"),
    "energy.int.status": ("状态", "Status"),
    "energy.int.not_level": ("能耗强度按学校计算（人口与面积按学校统计）：请在学校及以上层级查看。",
                             "Intensities are per school (population and area are school figures): see them at "
                             "school level or above."),
    "energy.anom.rule": ("规则", "Rule"),
    "energy.anom.where": ("位置", "Where"),
    "energy.anom.day": ("日期", "Day"),
    "energy.anom.figure": ("数值", "Figure"),
    "energy.anom.detail": ("判定", "Why"),
    "energy.anom.none": ("本范围与统计期内没有触发任何规则。", "No rule fired in this scope and period."),
    "energy.anom.more": ("另有 {n} 条未列出（按严重程度排序，仅列前 {shown} 条）。",
                         "{n} more not listed (sorted by severity, the first {shown} shown)."),
    "energy.rule.spike": ("同星期突增", "Same-weekday spike"),
    "energy.rule.leak": ("疑似漏水", "Suspected leak"),
    "energy.rule.missing": ("数据缺失", "Missing data"),
    "energy.rule.night": ("夜间基荷高", "High night base load"),
    "energy.rule.holiday": ("假期能耗高", "High vacation use"),
    "energy.why.spike": ("z = {z}：{value} 对比基线 {base}（前 {n} 个同类{dow}，已按全校同日变化调整）",
                         "z = {z}: {value} against a baseline of {base} (previous {n} {dow}s of the same day "
                         "type, adjusted for the school's common change that day)"),
    "energy.why.leak": ("2–4 时平均流量最高达当日平均小时流量的 {share}（阈值 {limit}），{nights} 个夜晚，"
                        "始于 {first}", "02:00–04:00 mean flow up to {share} of the day's mean hourly flow "
                        "(limit {limit}) on {nights} nights, from {first}"),
    "energy.why.missing": ("{meters} 块表缺少读数：{readings}/{expected} 个小时读数",
                           "{meters} meter(s) short: {readings}/{expected} hourly readings"),
    "energy.why.missing_whole": ("{meters} 块表本期没有任何读数", "{meters} meter(s) without any reading in the period"),
    "energy.why.night": ("夜间基荷比 {ratio}（> {limit}），{over}/{days} 个工作日超限，最高 {worst}",
                         "night ratio {ratio} (> {limit}); {over} of {days} workdays above, worst {worst}"),
    "energy.why.holiday": ("假期日均 {off} 为教学工作日 {term} 的 {ratio}（> {limit}），{over}/{days} 天超限",
                           "vacation mean {off} is {ratio} of the term-workday mean {term} (> {limit}); {over} of "
                           "{days} days above"),
    "energy.dow.1": ("周一", "Monday"), "energy.dow.2": ("周二", "Tuesday"), "energy.dow.3": ("周三", "Wednesday"),
    "energy.dow.4": ("周四", "Thursday"), "energy.dow.5": ("周五", "Friday"), "energy.dow.6": ("周六", "Saturday"),
    "energy.dow.7": ("周日", "Sunday"),
    "energy.section.failed": ("本部分暂时无法显示，已记录。", "This section cannot be shown right now; it was logged."),
    "energy.empty.scope": ("本范围内没有能源计量表，能源指标不适用。",
                           "There is no energy meter in this scope: energy figures do not apply."),
})


# --- guards and frames --------------------------------------------------------------------------------------

def section_guard(fallback):
    """Decorate a section callback of a page whose header callback reports bad input and warehouse outages:
    the section then shows nothing (``fallback``, one value per output) instead of repeating the message; any
    other failure is logged and shown as a short note. Never a traceback in the browser."""

    def decorate(render):
        @functools.wraps(render)
        def wrapper(params, *args, **kwargs):
            lang = "en" if (params or {}).get("lang") == "en" else "zh"
            try:
                return render(params or {}, *args, **kwargs)
            except (InputError, WarehouseUnavailable):
                return fallback
            except Exception:  # never a traceback in the browser; the log has it
                logger.exception("energy section %s failed", render.__name__)
                note = html.Div(t("energy.section.failed", lang), className="text-muted small section-failed")
                return (note, *fallback[1:]) if isinstance(fallback, tuple) else note

        return wrapper

    return decorate


def section(title: str, children, section_id: str, extra=None) -> dbc.Card:
    header = [html.Span(title, className="fw-bold")]
    if extra is not None:
        header.append(html.Span(extra, className="ms-auto small text-muted"))
    return dbc.Card([dbc.CardHeader(header, className="d-flex align-items-center gap-2 flex-wrap"),
                     dbc.CardBody(children)], className="mb-3 energy-section", id=section_id)


def empty(text: str, element_id: str | None = None) -> html.Div:
    props = {"id": element_id} if element_id else {}
    return html.Div(text, className="text-muted small empty-state", **props)


def subtitle(text: str) -> html.Div:
    return html.Div(text, className="energy-subtitle")


@functools.lru_cache(maxsize=1)
def _template() -> dict:
    """The desk theme's figure template (theme.py) as plain JSON, made once per process."""
    return pio.templates[TEMPLATES["light"]].to_plotly_json()


def _figure(traces: list[dict], height: int, legend: bool = False, **layout) -> dict:
    """A figure as a plain dict: graph_objects validation costs 20–60 ms per figure (measured), more than the
    page's callbacks may spend; these figures are simple enough to write as JSON directly."""
    base = {"template": _template(), "height": height, "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
            "showlegend": legend, "font": {"family": FONT},
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0}}
    return {"data": traces, "layout": {**base, **layout}}


def _plain(values) -> list:
    """Numbers for JSON: NaN becomes None (a gap in a line)."""
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]


def _axis_title(text: str) -> dict:
    return {"text": text, "font": {"size": 11}}


def _vrect(x0, x1, color: str, opacity: float) -> dict:
    return {"type": "rect", "xref": "x", "yref": "paper", "x0": x0, "x1": x1, "y0": 0, "y1": 1,
            "fillcolor": color, "opacity": opacity, "line": {"width": 0}, "layer": "below"}


def fmt_amount(value: float | None, unit: str, lang: str, decimals: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = fmt_compact(value, lang, decimals) if abs(value) >= 1e4 else fmt_number(value, decimals)
    return f"{text} {unit}".strip()


def fmt_pct(value: float | None, decimals: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{decimals}f}%" if sign else f"{value:.{decimals}f}%"


def graph(fig: dict, graph_id: str, cls: str = "") -> dcc.Graph:
    return dcc.Graph(figure=fig, id=graph_id, config={"displayModeBar": False},
                     className=cls)


def type_name(energy_type: str, lang: str) -> str:
    return t(f"energy.type.{energy_type}", lang)


# --- header: type switch and tiles --------------------------------------------------------------------------

def type_switch(path: str, base: dict, current: str, lang: str, available) -> html.Div:
    """Links that switch the panel's energy type (a URL parameter: every view stays a permalink)."""
    buttons = []
    for etype in TYPES:
        if etype != "kgce" and etype not in available:
            continue
        active = etype == current
        buttons.append(dcc.Link(type_name(etype, lang), href=href(path, base, etype=etype),
                                className=f"btn btn-sm {'btn-primary' if active else 'btn-outline-secondary'}",
                                id={"type": "energy-type", "index": etype}))
    return html.Div([html.Span(t("energy.type.label", lang), className="me-2 small text-muted"),
                     dbc.ButtonGroup(buttons, size="sm")], className="d-flex align-items-center mt-2 mb-2",
                    id="energy-type-switch")


def detail_line(text: str) -> html.Div:
    return html.Div(text, className="kpi-detail")


def tile(tile_data, as_of: dict, lang: str, details: list[str], link: str | None = None, min_n: int = 10):
    """A registry tile with the panel's detail lines."""
    ind, cur = tile_data.indicator, tile_data.current
    return kpi_tile(ind, cur, tile_data.change, as_of, lang, link, min_n,
                    detail=[detail_line(d) for d in details if d])


def tile_groups(groups: list[tuple[str, list]], lang: str) -> html.Div:
    """groups: (title key, [tile components])."""
    out = []
    for key, tiles in groups:
        if not tiles:
            continue
        out.append(html.Div([html.Div(t(key, lang), className="energy-group-title"),
                             html.Div(tiles, className="energy-tiles")], className="energy-group",
                            id=f"energy-group-{key.split('.')[-1]}"))
    return html.Div(out, id="energy-tiles")


# --- load curves --------------------------------------------------------------------------------------------

def daily_figure(series: dict[str, tuple[list, list]], unit: str, lang: str, spans=()) -> dict:
    """series: {energy type: (days, values)}; several types are stacked (standard coal), one is a line.
    ``spans``: (first, last, "vacation" | "holiday") runs shaded behind the curve."""
    stacked = len(series) > 1
    traces = []
    for etype, (days, values) in series.items():
        trace = {"type": "scatter", "x": [str(d) for d in days], "y": _plain(values), "mode": "lines",
                 "name": type_name(etype, lang),
                 "line": {"color": TYPE_COLORS.get(etype, ACCENT), "width": 1.6 if stacked else 2},
                 "hovertemplate": "%{x|%Y-%m-%d}: %{y:,.0f} " + unit + "<extra>" + type_name(etype, lang) + "</extra>"}
        if stacked:
            trace["stackgroup"] = "one"
        traces.append(trace)
    shapes = [_vrect(str(first), str(last + dt.timedelta(days=1)), NEUTRAL, 0.22 if group == "holiday" else 0.1)
              for first, last, group in list(spans)[:60]]
    n_days = max((len(d) for d, _ in series.values()), default=0)
    return _figure(traces, 260, legend=stacked, shapes=shapes, hovermode="x unified",
                   xaxis={"showgrid": False, "type": "date", "tickformat": "%m-%d" if n_days <= 200 else "%Y-%m"},
                   yaxis={"rangemode": "tozero", "title": _axis_title(unit)})


# --- one building -------------------------------------------------------------------------------------------

def profile_figure(profile: dict[str, list[float | None]], unit: str, lang: str) -> dict:
    """Mean hourly load per day class: {day class: 24 values}. The night (0–5) and working (9–17) windows of
    the night ratio are shaded."""
    traces = [{"type": "scatter", "x": list(range(24)), "y": values, "mode": "lines+markers",
               "name": t(f"energy.class.{cls}", lang), "line": {"color": CLASS_COLORS.get(cls, ACCENT), "width": 2},
               "marker": {"size": 4}, "hovertemplate": "%{x}:00 %{y:,.1f} " + unit + "<extra></extra>"}
              for cls, values in profile.items()]
    shapes = [_vrect(-0.5, 4.5, NEUTRAL, 0.12), _vrect(8.5, 16.5, STATUS_COLORS["amber"], 0.08)]
    return _figure(traces, 300, legend=True, shapes=shapes,
                   xaxis={"range": [-0.5, 23.5], "dtick": 3, "title": _axis_title(t("energy.hour", lang))},
                   yaxis={"rangemode": "tozero", "title": _axis_title(f"{unit}/h")})


def heatmap_figure(columns: list, z: list[list[float | None]], unit: str, lang: str, off_days=(),
                   weekly: bool = False) -> dict:
    """Day (or week) × hour: ``columns`` the dates, ``z`` 24 rows (hour 0 first) of values per column; off days
    (vacation, holiday) are marked above the grid."""
    traces = [{"type": "heatmap", "x": [str(c) for c in columns], "y": list(range(24)), "z": z,
               "colorscale": "Blues", "reversescale": True, "zmin": 0,
               "colorbar": {"title": {"text": unit, "side": "right"}, "thickness": 10, "len": 0.9},
               "hovertemplate": "%{x} %{y}:00 · %{z:,.1f} " + unit + "<extra></extra>"}]
    if off_days and not weekly:
        traces.append({"type": "scatter", "x": [str(d) for d in off_days], "y": [-1.2] * len(off_days),
                       "mode": "markers", "hoverinfo": "skip", "showlegend": False, "cliponaxis": False,
                       "marker": {"symbol": "triangle-down", "size": 6, "color": STATUS_COLORS["amber"]}})
    return _figure(traces, 300,
                   xaxis={"showgrid": False, "type": "date", "tickformat": "%Y-%m" if weekly else "%m-%d"},
                   yaxis={"autorange": False, "range": [23.5, -1.8], "tickvals": list(range(0, 24, 3)),
                          "title": _axis_title(t("energy.hour", lang))})


def building_picker_options(rows: list[tuple[str, str]]) -> list[dict]:
    return [{"label": label, "value": fid} for fid, label in rows]


# --- breakdowns and top-N -----------------------------------------------------------------------------------

def hbar_figure(labels: list[str], values: list[float], unit: str, lang: str, color: str = ACCENT) -> dict:
    total = sum(v for v in values if v and v > 0) or 1.0
    text = [f"{fmt_amount(v, '', lang)} · {100 * v / total:.0f}%" for v in values]
    trace = {"type": "bar", "y": labels, "x": list(values), "orientation": "h", "marker": {"color": color},
             "text": text, "textposition": "auto", "cliponaxis": False,
             "hovertemplate": "%{y}: %{x:,.0f} " + unit + "<extra></extra>"}
    return _figure([trace], max(150, 30 * len(labels) + 50),
                   yaxis={"autorange": "reversed", "automargin": True},
                   xaxis={"automargin": True, "title": _axis_title(unit)})


def top_table(rows: list[dict], unit: str, lang: str, growth: bool, table_id: str) -> html.Div:
    """rows: {facility_id, name, href, value, growth}."""
    if not rows:
        return empty(t("energy.top.none", lang))
    head = html.Thead(html.Tr([html.Th("#"), html.Th(t("energy.top.building", lang)),
                               html.Th(t("energy.top.value", lang), className="text-end"),
                               html.Th(t("energy.top.growth", lang), className="text-end")]))
    body = []
    for i, r in enumerate(rows, 1):
        g = r.get("growth")
        cls = "" if g is None else ("text-danger" if g > 0 else "text-success")
        body.append(html.Tr([
            html.Td(str(i), className="text-muted"),
            html.Td(dcc.Link(r["name"], href=r["href"]) if r.get("href") else r["name"]),
            html.Td(fmt_amount(r["value"], unit, lang), className="text-end num"),
            html.Td(fmt_pct(g, sign=True), className=f"text-end num {cls}" if growth else "text-end num text-muted"),
        ], **{"data-facility": r["facility_id"]}))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, className="energy-table mb-0"),
                    id=table_id)


# --- quota --------------------------------------------------------------------------------------------------

def quota_figure(actual_days: list, actual: list[float], path: dict | None, quota: float, unit: str,
                 lang: str) -> dict:
    """Cumulative use so far, the projected path with its band, and the quota line."""
    traces = []
    hover = "%{x|%Y-%m-%d}: %{y:,.0f} " + unit + "<extra></extra>"
    if path is not None and path.get("lo") is not None:
        days = [str(d) for d in path["days"]]
        traces.append({"type": "scatter", "x": days, "y": path["hi"], "mode": "lines", "line": {"width": 0},
                       "hoverinfo": "skip", "showlegend": False})
        traces.append({"type": "scatter", "x": days, "y": path["lo"], "mode": "lines", "line": {"width": 0},
                       "fill": "tonexty", "fillcolor": "rgba(0,114,178,0.15)", "hoverinfo": "skip",
                       "name": t("energy.quota.band", lang)})
    traces.append({"type": "scatter", "x": [str(d) for d in actual_days], "y": list(actual), "mode": "lines",
                   "name": t("energy.quota.actual", lang), "line": {"color": ACCENT, "width": 2.5},
                   "hovertemplate": hover})
    if path is not None:
        traces.append({"type": "scatter", "x": [str(d) for d in path["days"]], "y": path["mid"], "mode": "lines",
                       "name": t("energy.quota.projection", lang),
                       "line": {"color": ACCENT, "width": 2, "dash": "dash"}, "hovertemplate": hover})
    shapes = [{"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": quota, "y1": quota,
               "line": {"color": STATUS_COLORS["red"], "width": 1.5, "dash": "dot"}}]
    notes = [{"xref": "paper", "yref": "y", "x": 0, "y": quota, "xanchor": "left", "yanchor": "bottom",
              "text": f"{t('energy.quota.line', lang)} {fmt_amount(quota, unit, lang)}", "showarrow": False,
              "font": {"size": 11, "color": STATUS_COLORS["red"]}}]
    return _figure(traces, 300, legend=True, shapes=shapes, annotations=notes,
                   xaxis={"showgrid": False, "type": "date", "tickformat": "%Y-%m"},
                   yaxis={"rangemode": "tozero", "title": _axis_title(unit)})


def method_label(method: str, methods: dict | None, lang: str) -> str:
    """A projection method's name; "mixed" lists how many schools each method covers."""
    if method != "mixed":
        return t(f"energy.quota.method.{method}", lang)
    detail = "、".join(t(f"energy.quota.method.count.{m}", lang, n=n) for m, n in (methods or {}).items())
    return t("energy.quota.method.mixed", lang, detail=detail if lang == "zh" else detail.replace("、", ", "))


def quota_table(rows: list[dict], lang: str) -> html.Div:
    """rows: {energy_type, unit, quota, ytd, ytd_pct, projected, projected_pct, lo_pct, hi_pct, unbanded, method,
    methods, status}. A band that leaves out projections without one is starred and explained below."""
    head = html.Thead(html.Tr([html.Th(t(f"energy.quota.{k}", lang), className="" if k == "type" else "text-end")
                               for k in ("type", "quota", "ytd", "projected", "band_col")] + [html.Th("")]))
    body = []
    unbanded = 0
    for r in rows:
        band = "—" if r.get("lo_pct") is None or math.isnan(r["lo_pct"]) else \
            f"{r['lo_pct']:.0f}–{r['hi_pct']:.0f}%"
        if band != "—" and r.get("unbanded"):
            band += " *"
            unbanded += int(r["unbanded"])
        body.append(html.Tr([
            html.Td([type_name(r["energy_type"], lang), html.Div(method_label(r["method"], r.get("methods"), lang),
                                                                  className="kpi-detail")]),
            html.Td(fmt_amount(r["quota"], r["unit"], lang), className="text-end num"),
            html.Td([fmt_amount(r["ytd"], r["unit"], lang), html.Div(fmt_pct(r.get("ytd_pct")), className="kpi-detail")],
                    className="text-end num"),
            html.Td([fmt_amount(r.get("projected"), r["unit"], lang),
                     html.Div(fmt_pct(r.get("projected_pct")), className="kpi-detail")], className="text-end num"),
            html.Td(band, className="text-end num"),
            html.Td(status_badge(r["status"], lang, size="badge-sm")),
        ], **{"data-type": r["energy_type"], "data-status": r["status"], "data-method": r["method"]}))
    note = [html.Div(t("energy.quota.unbanded", lang, n=unbanded), className="small text-muted",
                     id="energy-quota-unbanded")] if unbanded else []
    return html.Div([dbc.Table([head, html.Tbody(body)], size="sm", className="energy-table mb-0"), *note],
                    id="energy-quota-table")


# --- intensity ----------------------------------------------------------------------------------------------

def ranking_figure(names: list[str], values: list[float], statuses: list[str], medians: list[float | None],
                   p25: list[float | None], p75: list[float | None], unit: str, lang: str) -> dict:
    """Schools' intensity bars (coloured by status against the peer median), the peer median as a diamond and
    the peer P25–P75 as a whisker."""
    def ok(v):
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    bars = {"type": "bar", "y": names, "x": list(values), "orientation": "h", "name": t("energy.rank.value", lang),
            "marker": {"color": [STATUS_COLORS.get(s, STATUS_COLORS["none"]) for s in statuses]},
            "text": [fmt_number(v, 2) for v in values], "textposition": "inside", "insidetextanchor": "start",
            "hovertemplate": "%{y}: %{x:.2f} " + unit + "<extra></extra>"}
    marks = {"type": "scatter", "y": names, "x": [m if ok(m) else None for m in medians], "mode": "markers",
             "name": t("energy.rank.median", lang),
             "marker": {"symbol": "diamond", "size": 10, "color": "#000000", "line": {"color": "#ffffff", "width": 1}},
             "hovertemplate": t("energy.rank.median", lang) + " %{x:.2f} " + unit + "<extra></extra>"}
    if any(ok(a) for a in p25):
        marks["name"] = f"{t('energy.rank.median', lang)} · {t('energy.rank.iqr', lang)}"
        marks["error_x"] = {"type": "data", "symmetric": False, "color": NEUTRAL, "thickness": 2, "width": 6,
                            "array": [(b - m) if ok(b) and ok(m) else 0 for b, m in zip(p75, medians)],
                            "arrayminus": [(m - a) if ok(a) and ok(m) else 0 for a, m in zip(p25, medians)]}
    traces = [bars, marks] if any(ok(m) for m in medians) else [bars]    # no distribution: no empty legend entry
    return _figure(traces, max(180, 26 * len(names) + 70), legend=True,
                   yaxis={"autorange": "reversed", "automargin": True},
                   xaxis={"rangemode": "tozero", "title": _axis_title(unit)})


def ranking_grid(rows: list[dict], unit: str, lang: str, grid_id: str) -> dag.AgGrid:
    """The schools' ranking as an AG Grid (sortable, filterable; one component however many schools).

    rows: {school_id, name, href, type, value, peer_median, p25, p75, peers, last_year, basis, status}."""
    data = []
    for r in rows:
        iqr = None if r["p25"] is None or math.isnan(r["p25"]) else f"{r['p25']:.2f}–{r['p75']:.2f}"
        last = r["last_year"] if r["last_year"] is not None and not math.isnan(r["last_year"]) else None
        median = r["peer_median"] if r["peer_median"] is not None and not math.isnan(r["peer_median"]) else None
        data.append({
            "school_id": r["school_id"], "school": md_link(r["name"], r["href"]), "school_name": r["name"],
            "type": t(f"energy.stype.{r['type']}", lang), "value": r["value"], "median": median, "iqr": iqr or "—",
            "last_year": last, "status": r["status"], "status_text": status_text(r["status"], lang),
            "basis": r.get("basis") or "",
            "basis_text": t("energy.rank.basis_ly", lang) if r.get("basis") == "last_year" else "",
        })
    num = {"type": "numericColumn", "filter": "agNumberColumnFilter", "width": 110,
           "valueFormatter": {"function": "params.value == null ? '—' : d3.format(',.2f')(params.value)"}}
    cols = [
        {"field": "school", "headerName": t("energy.rank.school", lang), "cellRenderer": "markdown", "pinned": "left",
         "width": 220, "filter": "agTextColumnFilter", "filterValueGetter": {"function": "params.data.school_name"},
         "tooltipField": "school_name",
         "comparator": {"function": "(a, b, nodeA, nodeB) => nodeA.data.school_name.localeCompare(nodeB.data.school_name)"}},
        {"field": "type", "headerName": t("energy.rank.type", lang), "filter": "agTextColumnFilter", "width": 110},
        {"field": "value", "headerName": f"{t('energy.rank.value', lang)} ({unit})", **num, "sort": "desc"},
        {"field": "median", "headerName": t("energy.rank.median", lang), **num},
        {"field": "iqr", "headerName": "P25–P75", "type": "numericColumn", "width": 120},
        {"field": "last_year", "headerName": t("energy.rank.last_year", lang), **num},
        {"field": "status_text", "headerName": "", "width": 110, "cellClassRules": STATUS_CELL_CLASS,
         "filter": "agTextColumnFilter"},
        {"field": "basis_text", "headerName": "", "width": 130, "cellClass": "text-muted small"},
    ]
    return dag.AgGrid(id=grid_id, rowData=data, columnDefs=cols, getRowId="params.data.school_id",
                      defaultColDef={"sortable": True, "resizable": True, "floatingFilter": True,
                                     "suppressHeaderMenuButton": True},
                      dashGridOptions=grid_options(lang), className="energy-grid",
                      style={"width": "100%", "height": f"{min(560, 100 + 42 * max(1, len(data)))}px"})


def intensity_table(rows: list[dict], lang: str, min_peers: int = 5) -> html.Div:
    """rows: {id, name, unit, value, peer, peers, basis, last_year, status, decimals} for one school. A row whose
    peer group is too small (peers but no peer median) gets a note: no median, status against last year."""
    head = html.Thead(html.Tr([html.Th(t("energy.int.indicator", lang)),
                               html.Th(t("energy.int.value", lang), className="text-end"),
                               html.Th(t("energy.int.peer", lang), className="text-end"),
                               html.Th(t("energy.int.last_year", lang), className="text-end"), html.Th("")]))
    body = [html.Tr([
        html.Td(r["name"]),
        html.Td(fmt_value(r["value"], r["unit"], r["decimals"]), className="text-end num"),
        html.Td(fmt_value(r["peer"], r["unit"], r["decimals"]), className="text-end num"),
        html.Td(fmt_value(r["last_year"], r["unit"], r["decimals"]), className="text-end num"),
        html.Td(status_badge(r["status"], lang, size="badge-sm")),
    ], **{"data-indicator": r["id"], "data-basis": r.get("basis") or ""}) for r in rows]
    few = any(r.get("peer") is None and r.get("peers") for r in rows)
    note = [html.Div(t("energy.int.few", lang, n=min_peers), className="small text-muted mt-1",
                     id="energy-intensity-few")] if few else []
    return html.Div([dbc.Table([head, html.Tbody(body)], size="sm", className="energy-table mb-0"), *note],
                    id="energy-intensity-table")


# --- anomaly list -------------------------------------------------------------------------------------------

def anomaly_table(rows: list[dict], counts: dict[str, int], shown: dict[str, int], lang: str) -> html.Div:
    """rows: {rule, where, href, day, figure, why, facility_id, meter_id}; counts/shown per rule."""
    badges = html.Div([
        dbc.Badge(f"{t(f'energy.rule.{rule}', lang)} {counts.get(rule, 0)}", color=RULE_COLORS[rule],
                  className="me-1", id=f"energy-count-{rule}", text_color="dark" if rule in ("night", "holiday") else None)
        for rule in RULE_COLORS
    ], className="mb-2")
    if not rows:
        return html.Div([badges, empty(t("energy.anom.none", lang), "energy-anomalies-empty")])
    head = html.Thead(html.Tr([html.Th(t("energy.anom.rule", lang)), html.Th(t("energy.anom.where", lang)),
                               html.Th(t("energy.anom.day", lang)),
                               html.Th(t("energy.anom.figure", lang), className="text-end"),
                               html.Th(t("energy.anom.detail", lang))]))
    body = []
    for r in rows:
        body.append(html.Tr([
            html.Td(dbc.Badge(t(f"energy.rule.{r['rule']}", lang), color=RULE_COLORS[r["rule"]],
                              text_color="dark" if r["rule"] in ("night", "holiday") else None)),
            html.Td(dcc.Link(r["where"], href=r["href"]) if r.get("href") else r["where"]),
            html.Td(str(r["day"]), className="num text-nowrap"),
            html.Td(r["figure"], className="text-end num text-nowrap"),
            html.Td(r["why"], className="small text-muted"),
        ], **{"data-rule": r["rule"], "data-facility": r.get("facility_id") or "", "data-day": str(r["day"]),
              "data-meter": r.get("meter_id") or ""}))
    notes = [html.Div(t("energy.anom.more", lang, n=counts[rule] - shown[rule], shown=shown[rule]) + f" ({t(f'energy.rule.{rule}', lang)})",
                      className="small text-muted")
             for rule in RULE_COLORS if counts.get(rule, 0) > shown.get(rule, 0)]
    return html.Div([badges, html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True,
                                                className="energy-table mb-0"), className="energy-scroll"),
                     *notes], id="energy-anomaly-table")

