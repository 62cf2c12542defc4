"""Maturity assessment (成熟度评估) components: pure factories from the plain data of data_access.maturity to
Dash components and plotly figures — the school's summary with the floor rule explained, the radar against peers,
the gap list, the indicator table with evidence, and for regions and the association the ranking grid, the level
distribution, the dimension heatmap and the year-on-year movement."""
from __future__ import annotations

import functools
import logging
import math

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import html, no_update
from plotly.colors import sample_colorscale

from data_access.engine import WarehouseUnavailable
from data_access.errors import InputError

from .format import fmt_datetime, fmt_number, fmt_value
from .grid import grid_options, md_link
from .i18n import pick, register, t
from .messages import input_error, internal_error, warehouse_banner
from .theme import ACCENT, NEUTRAL, SERIES_COLORS, template

logger = logging.getLogger(__name__)

register({
    "mat.title": ("数字化成熟度评估", "Digital maturity assessment"),
    "mat.framework": ("评估框架", "Framework"),
    "mat.version": ("版本", "version"),
    "mat.as_of": ("评估截至", "Assessed as of"),
    "mat.window": ("派生指标数据窗口", "Derived indicators' window"),
    "mat.window_note": ("（截至统计期末的12个月；统计期长度不影响成熟度）",
                        "(the 12 months to the period's end; the period's length does not change maturity)"),
    "mat.data_as_of": ("数据截至", "Data as of"),
    "mat.loaded": ("入库", "loaded"),
    "mat.to": ("至", "to"),
    "mat.score": ("总分", "Score"),
    "mat.points": ("分", "pts"),
    "mat.level": ("等级", "Level"),
    "mat.level_by_score": ("按得分等级", "Level by score"),
    "mat.capped_by": ("封顶维度", "Capped by"),
    "mat.floor.capped": ("按得分为 {by}，因「{dim}」仅 {value} 分（达到 {next} 需各维度 ≥ {floor}），封顶为 {level}",
                         "{by} by score, capped at {level} because {dim} is {value} ({next} needs every dimension "
                         "≥ {floor})"),
    "mat.floor.ok": ("按得分为 {level}；各维度均不低于 {floor} 分，满足下限规则",
                     "{level} by score; every dimension is at least {floor}, so the floor rule holds"),
    "mat.floor.base": ("按得分为 {level}", "{level} by score"),
    "mat.floor.rule": ("下限规则：学校达到某一等级，需每个维度不低于前一等级的下限（GB/T 36073-2018 DCMM 做法）",
                       "Floor rule: a school reaches a level only if every dimension scores at least the lower bound "
                       "of the level below it (DCMM practice, GB/T 36073-2018)"),
    "mat.round": ("评估轮次", "Assessment round"),
    "mat.round.none": ("无评估记录", "no assessment on record"),
    "mat.peer": ("同类学校", "Peer group"),
    "mat.peer.type_region": ("{type}，同地区，{n} 所", "{type}, same region, {n} schools"),
    "mat.peer.type": ("{type}，全部地区，{n} 所", "{type}, all regions, {n} schools"),
    "mat.peer.percentile": ("超过同类 {p} 的学校", "ahead of {p} of its peers"),
    "mat.peer.small": ("少于 {min} 所，不显示分布与百分位", "fewer than {min}: no distribution or percentile"),
    "mat.yoy": ("较上年", "vs last year"),
    "mat.yoy.detail": ("上年（截至 {date}，评估轮次 {round}）{score} 分 · {level}",
                       "last year (as of {date}, round {round}) {score} · {level}"),
    "mat.yoy.none": ("无上年可比数据", "no comparable figure a year earlier"),
    "mat.radar": ("五维度雷达：本校与同类学校", "Dimensions: the school against its peers"),
    "mat.radar.school": ("本校", "This school"),
    "mat.radar.median": ("同类中位数", "Peer median"),
    "mat.radar.p75": ("同类P75", "Peer P75"),
    "mat.radar.best": ("同类各维度最高", "Peer best per dimension"),
    "mat.gap": ("提升到下一等级的最省路径", "Cheapest way to the next level"),
    "mat.gap.top": ("已达最高等级 {level}。", "Already at the top level, {level}."),
    "mat.gap.intro": ("从 {level} 到 {target}：总分需 ≥ {total}，各维度需 ≥ {floor}。按“每提升1个指标分的投入相同”"
                      "计算，最少需提升 {points} 个指标分：",
                      "From {level} to {target}: the score must reach {total} and every dimension {floor}. Counting "
                      "each indicator point as equal effort, the fewest points to raise are {points}:"),
    "mat.gap.result": ("完成后：总分 {score}，等级 {level}", "Afterwards: score {score}, level {level}"),
    "mat.gap.infeasible": ("仅靠可提升的指标无法达到下一等级（有维度的指标均不适用）。",
                           "The next level cannot be reached through the indicators that apply "
                           "(a dimension has none)."),
    "mat.gap.floor": ("补齐维度下限", "lifts a dimension to the floor"),
    "mat.gap.score": ("提升总分", "lifts the total"),
    "mat.gap.indicator": ("指标", "Indicator"),
    "mat.gap.now": ("现得分", "Now"),
    "mat.gap.target": ("目标", "Target"),
    "mat.gap.plus": ("需提升", "Points"),
    "mat.gap.gain": ("总分+", "Total +"),
    "mat.gap.value": ("对应数值", "value"),
    "mat.gap.why": ("作用", "Why"),
    "mat.indicators": ("指标得分、来源与证据", "Indicator scores, sources and evidence"),
    "mat.col.dimension": ("维度", "Dimension"),
    "mat.col.indicator": ("指标", "Indicator"),
    "mat.col.source": ("来源", "Source"),
    "mat.col.weight": ("权重", "Weight"),
    "mat.col.value": ("数值", "Value"),
    "mat.col.score": ("得分", "Score"),
    "mat.col.evidence": ("证据", "Evidence"),
    "mat.col.assessor": ("评估方", "Assessor"),
    "mat.col.when": ("轮次 / 窗口", "Round / window"),
    "mat.source.derived": ("派生", "Derived"),
    "mat.source.assessed": ("评估", "Assessed"),
    "mat.source.derived.tip": ("由驾驶舱根据仓库日常数据计算", "Computed by the cockpit from the warehouse's daily data"),
    "mat.source.assessed.tip": ("来自评估记录（fact_maturity_score）", "From the assessment records (fact_maturity_score)"),
    "mat.assessor.system": ("系统计算", "Computed by the cockpit"),
    "mat.state.not_assessed": ("未评估，计 0 分", "Not assessed: counts 0"),
    "mat.state.not_applicable": ("不适用：不计入，维度内重新加权", "Not applicable: left out, dimension re-weighted"),
    "mat.state.suppressed": ("样本不足 (n < {n})：不计入，维度内重新加权",
                             "Too few people (n < {n}): left out, dimension re-weighted"),
    "mat.state.no_data": ("有食堂但窗口内无设备上报：计 0 分", "A canteen, but no device reported in the window: counts 0"),
    "mat.dim.row": ("{name} · 权重 {weight} · 得分 {score}", "{name} · weight {weight} · score {score}"),
    "mat.export": ("导出证据包（Excel）", "Export evidence pack (Excel)"),
    "mat.export.pdf": ("导出证据包（PDF）", "Export evidence pack (PDF)"),
    "mat.export.pdf.unavailable": ("PDF 不可用：{reason}", "PDF unavailable: {reason}"),
    "mat.export.hint": ("含框架版本、全部指标得分、来源、证据、评估方、派生指标原始数值、范围与数据时间",
                        "Framework version, every indicator's score, source, evidence and assessor, the derived "
                        "figures, the scope and the data-as-of time"),
    "mat.per_school": ("成熟度按学校评估：以下为「{school}」的评估。", "Maturity is assessed per school: this is {school}'s."),
    "mat.group.schools": ("学校数", "Schools"),
    "mat.group.median": ("中位数", "Median"),
    "mat.group.p75": ("P75", "P75"),
    "mat.group.best": ("最高", "Best"),
    "mat.group.worst": ("最低", "Lowest"),
    "mat.group.small": ("本范围仅 {n} 所学校（少于 {min} 所），不显示分布。", "This scope holds {n} schools (fewer than "
                        "{min}): no distribution is shown."),
    "mat.levels": ("等级分布（学校数）", "Level distribution (schools)"),
    "mat.ranking": ("学校排名（可排序、筛选）", "Ranking (sortable, filterable)"),
    "mat.heatmap": ("维度热力图：学校 × 维度", "Heatmap: school × dimension"),
    "mat.yoy_chart": ("同比变化：上年 → 本年总分", "Year on year: last year → this year"),
    "mat.yoy.summary": ("较上年：总分上升 {up} 所，下降 {down} 所；等级上升 {lup} 所，下降 {ldown} 所",
                        "vs last year: score up at {up} schools, down at {down}; level up at {lup}, down at {ldown}"),
    "mat.yoy.last": ("上年", "Last year"),
    "mat.yoy.now": ("本年", "This year"),
    "mat.col.rank": ("排名", "Rank"),
    "mat.col.school": ("学校", "School"),
    "mat.col.region": ("地区", "Region"),
    "mat.col.type": ("类型", "Type"),
    "mat.col.level_note": ("下限说明", "Floor note"),
    "mat.col.percentile": ("同类百分位", "Peer percentile"),
    "mat.col.peer_size": ("同类组学校数", "Peer group size"),
    "mat.col.percentile.tip": ("同类学校中得分低于本校的比例（并列计一半）；同类组少于 {min} 所时不显示",
                               "Share of the peer group's other schools scoring lower (ties count half); not shown "
                               "for groups under {min} schools"),
    "mat.col.prev": ("上年总分", "Last year"),
    "mat.col.change": ("同比", "Change"),
    "mat.col.prev_level": ("上年等级", "Last year's level"),
    "mat.note.capped": ("按分 {by}，受「{dim}」限制", "{by} by score, capped by {dim}"),
    "mat.framework_error": ("成熟度评估框架文件不可用", "The maturity framework file cannot be used"),
    "mat.type.university": ("大学", "University"),
    "mat.type.vocational": ("职业院校", "Vocational college"),
    "mat.type.k12": ("中小学", "K12 school"),
    "mat.none": ("本范围内没有学校。", "No school in this scope."),
})

_FMT1 = {"function": "params.value == null ? '—' : d3.format(',.1f')(params.value)"}
_FMT_SIGNED = {"function": "params.value == null ? '—' : Math.abs(params.value) < 0.05 ? '±0.0' : "
                           "d3.format('+.1f')(params.value)"}
_FMT_PCT = {"function": "params.value == null ? '—' : d3.format('.0f')(params.value) + '%'"}


def type_label(school_type: str, lang: str) -> str:
    key = f"mat.type.{school_type}"
    return t(key, lang) if school_type in ("university", "vocational", "k12") else str(school_type)


def _n(value, decimals: int = 1) -> str:
    return fmt_number(None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value),
                      decimals)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _bound(value) -> str:
    """A level band's lower bound exactly as the framework gives it (40, 39.5), never rounded: a bound printed
    "40" for 39.5 would contradict a dimension of 39.6 meeting it."""
    return f"{float(value):g}"


# --- the school ----------------------------------------------------------------------------------------------

def floor_text(fw, summary: dict, lang: str) -> str:
    """'L3 by score, capped at L2 because 数据治理 is 38 (L3 needs every dimension ≥ 40)' or why no cap applies."""
    by, level = int(summary["level_by_score"]), int(summary["level"])
    if level < by and summary.get("capped_by"):
        dim = fw.dimension(summary["capped_by"])
        return t("mat.floor.capped", lang, by=fw.level_name(by), level=fw.level_name(level), dim=dim.name(lang),
                 value=_n(summary[f"dim.{dim.id}"]), next=fw.level_name(level + 1),
                 floor=_bound(fw.levels[level - 1][1]))
    if level > 1:
        return t("mat.floor.ok", lang, level=fw.level_name(level), floor=_bound(fw.levels[level - 2][1]))
    return t("mat.floor.base", lang, level=fw.level_name(level))


def level_badge(fw, level: int, size: str = "") -> html.Span:
    return html.Span(fw.level_name(level), className=f"mat-level mat-level-{level} {size}".strip(),
                     **{"data-level": str(level)})


def peer_text(bench, lang: str) -> str:
    group = t(f"mat.peer.{bench.basis}", lang, type=type_label(bench.school_type, lang), n=bench.size)
    sep = "; " if lang == "en" else "；"
    if not bench.shown:
        return group + sep + t("mat.peer.small", lang, n=bench.size, min=bench.min_group)
    pct = f"{bench.percentile:.0f}%" if bench.percentile is not None else "—"
    return group + sep + t("mat.peer.percentile", lang, p=pct)


def evidence_buttons(export_id: dict, lang: str, pdf: tuple[str, bool, str] | None = None) -> html.Div:
    """The evidence pack's downloads: the Excel button (a callback) and, when ``pdf`` = (href, available, why not)
    is given, the PDF link next to it — greyed out with the reason when Chromium cannot print."""
    buttons = [dbc.Button([html.I(className="bi bi-file-earmark-excel me-1"), t("mat.export", lang)], id=export_id,
                          color="primary", size="sm", outline=True, title=t("mat.export.hint", lang))]
    if pdf is not None:
        link, ok, reason = pdf
        label = [html.I(className="bi bi-file-earmark-pdf me-1"), t("mat.export.pdf", lang)]
        if ok:
            buttons.append(html.A(label, href=link, target="_blank", rel="noopener", id="maturity-evidence-pdf",
                                  className="btn btn-sm btn-outline-primary", title=t("mat.export.hint", lang)))
        else:
            buttons.append(html.Span(label, id="maturity-evidence-pdf", className="btn btn-sm btn-outline-secondary "
                                     "disabled", title=t("mat.export.pdf.unavailable", lang, reason=reason),
                                     **{"aria-disabled": "true"}))
    return html.Div(buttons, className="d-flex flex-wrap gap-1 no-print mat-evidence-buttons")


def school_summary(pack, lang: str, export_id: dict, card_id: str,
                   pdf: tuple[str, bool, str] | None = None) -> html.Div:
    """Score, level with the floor rule explained, peer position, year-on-year and the evidence-pack downloads
    (Excel, and PDF when ``pdf`` = (href, available, why not) is given)."""
    fw, s = pack.framework, pack.summary
    assessors = sorted({a for a in pack.indicators.assessor.dropna().astype(str)})
    rounds = s.get("assessed_period")
    round_text = (f"{rounds}（{'、'.join(assessors)}）" if lang != "en" else f"{rounds} ({', '.join(assessors)})") \
        if rounds and not _missing(rounds) else t("mat.round.none", lang)
    prev = pack.previous
    if prev:
        change = float(s["score"]) - prev["score"]
        yoy = [html.Span(f"{change:+.1f} {t('mat.points', lang)}",
                         className="change-good" if change > 0 else "change-bad" if change < 0 else ""),
               html.Span(" · " + t("mat.yoy.detail", lang, date=prev["as_of"].isoformat(),
                                   round=prev["assessed_period"], score=_n(prev["score"]),
                                   level=fw.level_name(prev["level"])),
                         className="text-muted")]
    else:
        yoy = [html.Span(t("mat.yoy.none", lang), className="text-muted")]
    body = [
        html.Div([
            html.Div([html.Div(t("mat.score", lang), className="kpi-name"),
                      html.Div([_n(s["score"]), html.Span(t("mat.points", lang), className="kpi-unit")],
                               className="mat-score", **{"data-value": repr(float(s["score"]))})]),
            html.Div([html.Div(t("mat.level", lang), className="kpi-name"),
                      level_badge(fw, int(s["level"]), "mat-level-lg")], className="ms-4"),
        ], className="d-flex align-items-end"),
        html.Div(floor_text(fw, s, lang), className="mat-floor mt-2", id="maturity-floor-text",
                 title=t("mat.floor.rule", lang)),
        html.Dl([
            html.Dt(t("mat.peer", lang)), html.Dd(peer_text(pack.benchmark, lang), id="maturity-peer-text"),
            html.Dt(t("mat.yoy", lang)), html.Dd(yoy, id="maturity-yoy-text"),
            html.Dt(t("mat.round", lang)), html.Dd(round_text),
        ], className="mat-facts mt-2 mb-2"),
        evidence_buttons(export_id, lang, pdf),
    ]
    card = dbc.Card([dbc.CardHeader(html.Span(pick(lang, pack.school["school_name"] or "",
                                                   pack.school["school_name_en"] or pack.school["school_name"] or ""),
                                              className="fw-bold")),
                     dbc.CardBody(body)], className="h-100")
    return html.Div(card, className="h-100", id=card_id,
                    **{"data-score": repr(float(s["score"])), "data-level": str(int(s["level"])),
                       "data-level-by-score": str(int(s["level_by_score"]))})


def _base(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(template=template(False), height=height, margin=dict(l=8, r=8, t=8, b=8),
                      font=dict(family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"))
    return fig


def _wrap(label: str, width: int = 14) -> str:
    """Break a long (English) axis label at the space nearest its middle."""
    if len(label) <= width or " " not in label:
        return label
    mid = len(label) // 2
    cut = min((i for i, ch in enumerate(label) if ch == " "), key=lambda i: abs(i - mid))
    return label[:cut] + "<br>" + label[cut + 1:]


def radar_figure(labels: list[str], school: list[float], bench: dict | None, lang: str, height: int = 340) -> go.Figure:
    """The school's dimension scores (filled) under the peer median, P75 and best lines (when the group is large
    enough). The radial ticks sit between the first two axes, clear of the labels."""
    theta = [_wrap(x) for x in labels]
    theta = theta + theta[:1]
    hover = "%{theta}: %{r:.1f}<extra>%{fullData.name}</extra>"
    fig = go.Figure(go.Scatterpolar(r=school + school[:1], theta=theta, mode="lines+markers", fill="toself",
                                    name=t("mat.radar.school", lang), line=dict(color=ACCENT, width=3),
                                    fillcolor=ACCENT, opacity=0.55, hovertemplate=hover))
    if bench:
        for key, color, dash in (("median", NEUTRAL, "solid"), ("p75", SERIES_COLORS[1], "dash"),
                                 ("best", SERIES_COLORS[3], "dot")):
            vals = bench[key]
            fig.add_trace(go.Scatterpolar(r=vals + vals[:1], theta=theta, mode="lines",
                                          name=t(f"mat.radar.{key}", lang),
                                          line=dict(color=color, dash=dash, width=2.5), hovertemplate=hover))
    step = 360 / max(1, len(labels))
    fig.update_layout(polar=dict(radialaxis=dict(range=[0, 100], tickvals=[20, 40, 60, 80, 100], angle=90 - step / 2,
                                                 tickangle=90 - step / 2, tickfont=dict(size=9), showline=False),
                                 angularaxis=dict(direction="clockwise", rotation=90, tickfont=dict(size=11))),
                      showlegend=True, legend=dict(orientation="h", y=-0.06, x=0.5, xanchor="center", entrywidth=0.5,
                                                   entrywidthmode="fraction"))
    fig = _base(fig, height)
    fig.update_layout(margin=dict(l=80, r=80, t=28, b=10))
    return fig


def gap_list(fw, plan, rows, lang: str, list_id: str) -> html.Div:
    """The gap plan as a compact table: which indicators, from which score to which (and, for a derived one, which
    underlying value), what it adds to the total, and why."""
    if plan.target_level is None:
        return html.Div(t("mat.gap.top", lang, level=fw.level_name(plan.level)), id=list_id, className="text-muted")
    intro = html.P(t("mat.gap.intro", lang, level=fw.level_name(plan.level), target=fw.level_name(plan.target_level),
                     total=_bound(plan.need_total), floor=_bound(plan.need_dimension), points=_n(plan.points)),
                   className="small mb-2")
    by_id = {r["indicator_id"]: r for r in rows}
    body = []
    for step in plan.steps:
        ind = fw.indicator(step.indicator_id)
        r = by_id.get(step.indicator_id, {})
        detail = [fw.dimension(ind.dimension).name(lang), " · ", t(f"mat.gap.{step.reason}", lang)]
        if ind.source == "derived" and not _missing(r.get("value")):
            unit = r.get("unit") or ""
            detail += [html.Br(), f"{t('mat.gap.value', lang)} {fmt_value(r['value'], unit)} → "
                                  f"{fmt_value(ind.unscale(step.target), unit)}"]
        body.append(html.Tr([
            html.Td([html.Div([ind.name(lang), " ", source_badge(ind.source, lang)]),
                     html.Div(detail, className="small text-muted")]),
            html.Td(f"{_n(step.score)} → {_n(step.target)}", className="num text-nowrap"),
            html.Td(f"+{_n(step.points)}", className="num text-end"),
            html.Td(f"+{_n(step.total_gain, 2)}", className="num text-end"),
        ], **{"data-indicator": step.indicator_id, "data-target": repr(step.target)}))
    head = html.Thead(html.Tr([html.Th(t("mat.gap.indicator", lang)),
                               html.Th(f"{t('mat.gap.now', lang)} → {t('mat.gap.target', lang)}",
                                       className="text-nowrap"),
                               html.Th(t("mat.gap.plus", lang), className="text-end text-nowrap"),
                               html.Th(t("mat.gap.gain", lang), className="text-end text-nowrap")]))
    footer = html.Div(t("mat.gap.result", lang, score=_n(plan.new_score), level=fw.level_name(plan.new_level)),
                      className="small fw-bold")
    parts = [intro, dbc.Table([head, html.Tbody(body)], size="sm", responsive=True, className="mat-gap-table mb-1"),
             footer]
    if not plan.feasible:
        parts.append(html.Div(t("mat.gap.infeasible", lang), className="small text-danger"))
    return html.Div(parts, id=list_id)


def source_badge(source: str, lang: str) -> html.Span:
    return html.Span(t(f"mat.source.{source}", lang), className=f"mat-source mat-source-{source}",
                     title=t(f"mat.source.{source}.tip", lang))


def _evidence(text) -> html.Span | str:
    if _missing(text) or not text:
        return "—"
    text = str(text)
    if text.startswith(("http://", "https://")):
        return html.A(text, href=text, target="_blank", rel="noopener noreferrer", className="mat-evidence-link")
    return text


def derived_evidence(r: dict, lang: str) -> str:
    """'23 / 24 = 95.8%' for a derived indicator, or why it does not count."""
    if r["state"] == "not_applicable":
        return t("mat.state.not_applicable", lang)
    if r["state"] == "suppressed":
        return t("mat.state.suppressed", lang, n=r.get("min_n", 10))
    if r["state"] == "no_data":
        return t("mat.state.no_data", lang)
    name = pick(lang, r.get("from_name_zh") or "", r.get("from_name_en") or "")
    return f"{name}: {_n(r['num'], 0)} / {_n(r['den'], 0)} = {fmt_value(r['value'], r.get('unit') or '')}"


def indicator_table(fw, rows: list[dict], summary: dict, lang: str, table_id: str, min_n: int = 10) -> html.Div:
    """Every indicator by dimension: source, weight, value, score, evidence, assessor and round or window."""
    by_dim: dict[str, list[dict]] = {}
    for r in rows:
        by_dim.setdefault(r["dimension"], []).append(r)
    head = html.Thead(html.Tr([html.Th(t(f"mat.col.{k}", lang)) for k in
                               ("indicator", "source", "weight", "score", "evidence", "assessor", "when")]))
    body = []
    for dim in fw.dimensions:
        body.append(html.Tr(html.Td(t("mat.dim.row", lang, name=dim.name(lang), weight=_n(dim.weight, 0),
                                      score=_n(summary.get(f"dim.{dim.id}"))), colSpan=7),
                            className="mat-dim-row", **{"data-dimension": dim.id}))
        for r in by_dim.get(dim.id, []):
            ind = fw.indicator(r["indicator_id"])
            if r["source"] == "derived":
                evidence = derived_evidence({**r, "min_n": min_n}, lang)
                assessor = t("mat.assessor.system", lang)
                when = (f"{r['window_start']} {t('mat.to', lang)} {r['window_end']}"
                        if not _missing(r.get("window_start")) else "—")
            else:
                evidence = _evidence(r.get("evidence")) if r["state"] == "scored" else t("mat.state.not_assessed", lang)
                assessor = r.get("assessor") if not _missing(r.get("assessor")) else "—"
                when = (f"{r['period']} · {r['assessed_on']}" if not _missing(r.get("period")) else "—")
            score = _n(r["score"]) if not _missing(r["score"]) else "—"
            body.append(html.Tr([
                html.Td([ind.name(lang), html.Div(ind.id, className="small text-muted")]),
                html.Td(source_badge(r["source"], lang)),
                html.Td(_n(ind.weight, 0), className="num"),
                html.Td(score, className="num fw-bold"),
                html.Td(evidence, className="small mat-evidence"),
                html.Td(assessor, className="small"),
                html.Td(when, className="small text-nowrap"),
            ], **{"data-indicator": r["indicator_id"], "data-state": r["state"],
                  "data-score": "" if _missing(r["score"]) else repr(float(r["score"]))}))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                              className="mat-indicators mb-0"), id=table_id)


def header(fw, as_of, window, data_as_of: dict, lang: str) -> html.Div:
    """Framework and version, the as-of date, the derived window and the data-as-of time."""
    data_as_of = data_as_of or {}
    return html.Div([
        html.Span([html.Strong(fw.title(lang)), f" · {t('mat.version', lang)} {fw.version}"], className="me-3",
                  id="maturity-framework", **{"data-version": fw.version}),
        html.Span(f"{t('mat.as_of', lang)} {as_of.isoformat()}", className="me-3"),
        html.Span(f"{t('mat.window', lang)} {window.start.isoformat()} {t('mat.to', lang)} {window.end.isoformat()}",
                  title=t("mat.window_note", lang), className="me-3"),
        html.Span(f"{t('mat.data_as_of', lang)} {fmt_datetime(data_as_of.get('fact') or data_as_of.get('loaded_at'))}",
                  title=f"{t('mat.loaded', lang)} {fmt_datetime(data_as_of.get('loaded_at'))}"),
    ], className="mat-header small text-muted my-2")


# --- regions and the association -----------------------------------------------------------------------------

def _level_colors(n: int) -> list[str]:
    return sample_colorscale("Blues", [0.3 + 0.65 * i / max(1, n - 1) for i in range(n)])


def level_bars(fw, counts: dict, lang: str, height: int = 200) -> go.Figure:
    labels = [name for name, _ in fw.levels]
    values = [int(counts.get(i + 1, 0)) for i in range(len(labels))]
    fig = go.Figure(go.Bar(x=labels, y=values, marker=dict(color=_level_colors(len(labels))), text=values,
                           textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.update_yaxes(rangemode="tozero", dtick=max(1, math.ceil(max(values + [1]) / 4)),
                     range=[0, max(values + [1]) * 1.25])
    fig = _base(fig, height)
    fig.update_layout(showlegend=False, margin=dict(l=8, r=8, t=16, b=8))
    return fig


def group_summary(dist, yoy_counts: dict | None, lang: str, summary_id: str) -> html.Div:
    """One line of headline figures: schools, and (for ≥ min_group schools) median, P75, best and lowest;
    the year-on-year counts."""
    facts = [html.Span([t("mat.group.schools", lang), " ", html.Strong(str(dist.size))], className="me-4")]
    if dist.shown:
        for key in ("median", "p75", "best", "worst"):
            facts.append(html.Span([t(f"mat.group.{key}", lang), " ", html.Strong(_n(getattr(dist, key)["score"]))],
                                   className="me-4", **{"data-stat": key}))
    else:
        facts.append(html.Span(t("mat.group.small", lang, n=dist.size, min=dist.min_group),
                               className="text-muted me-4", id=f"{summary_id}-small"))
    if yoy_counts:
        facts.append(html.Span(t("mat.yoy.summary", lang, **yoy_counts), className="text-muted"))
    return html.Div(dbc.Card(dbc.CardBody(facts, className="mat-group-facts py-2")), className="mb-3", id=summary_id,
                    **{"data-size": str(dist.size), "data-shown": "1" if dist.shown else "0"})


def ranking_grid(fw, rows: list[dict], lang: str, grid_id: str, school_href) -> dag.AgGrid:
    """The ranking as an AG Grid (community): sortable and filterable columns, a link per school.

    rows: data_access.maturity.ranking records; school_href(school_id) → the school's permalink."""
    data = []
    for r in rows:
        name = school_label(r, lang)
        capped = r.get("capped_by")
        note = (t("mat.note.capped", lang, by=fw.level_name(int(r["level_by_score"])),
                  dim=fw.dimension(capped).name(lang)) if capped and not _missing(capped) else "")
        item = {
            "school_id": r["school_id"], "rank": int(r["rank"]),
            "school": md_link(name, school_href(r["school_id"])),
            "school_name": name, "region": r.get("region_name"), "type": type_label(r.get("school_type"), lang),
            "score": _float(r["score"]), "level": fw.level_name(int(r["level"])), "note": note,
            "percentile": _float(r.get("percentile")), "peer_size": _int(r.get("peer_size")),
            "score_prev": _float(r.get("score_prev")), "change": _float(r.get("change")),
            "level_prev": fw.level_name(int(r["level_prev"])) if not _missing(r.get("level_prev")) else "—",
        }
        for d in fw.dimensions:
            item[f"dim_{d.id}"] = _float(r.get(f"dim.{d.id}"))
        data.append(item)
    en = lang == "en"     # English words are longer: wider columns
    num = {"type": "numericColumn", "filter": "agNumberColumnFilter", "valueFormatter": _FMT1, "width": 90}
    text = {"filter": "agTextColumnFilter"}
    cols = [
        {"field": "rank", "headerName": t("mat.col.rank", lang), "filter": "agNumberColumnFilter", "width": 96,
         "pinned": "left", "sort": "asc"},
        {"field": "school", "headerName": t("mat.col.school", lang), "cellRenderer": "markdown", "pinned": "left",
         "width": 250 if en else 180, **text, "filterValueGetter": {"function": "params.data.school_name"},
         "tooltipField": "school_name",
         "comparator": {"function": "(a, b, nodeA, nodeB) => "
                                    "nodeA.data.school_name.localeCompare(nodeB.data.school_name)"}},
        {"field": "region", "headerName": t("mat.col.region", lang), **text, "width": 90},
        {"field": "type", "headerName": t("mat.col.type", lang), **text, "width": 150 if en else 100},
        {"field": "score", "headerName": t("mat.score", lang), **num},
        {"field": "level", "headerName": t("mat.level", lang), **text, "width": 80, "tooltipField": "note"},
        *[{"field": f"dim_{d.id}", "headerName": d.name(lang), **num, "width": 124 if en else 104}
          for d in fw.dimensions],
        {"field": "percentile", "headerName": t("mat.col.percentile", lang), "type": "numericColumn",
         "filter": "agNumberColumnFilter", "valueFormatter": _FMT_PCT, "width": 112,
         "headerTooltip": t("mat.col.percentile.tip", lang, min=fw.min_group)},
        {"field": "score_prev", "headerName": t("mat.col.prev", lang), **num},
        {"field": "change", "headerName": t("mat.col.change", lang), **num, "valueFormatter": _FMT_SIGNED,
         "cellClassRules": {"change-good": "params.value >= 0.05", "change-bad": "params.value <= -0.05"}},
        {"field": "level_prev", "headerName": t("mat.col.prev_level", lang), **text, "width": 96},
        {"field": "peer_size", "headerName": t("mat.col.peer_size", lang), "type": "numericColumn",
         "filter": "agNumberColumnFilter", "width": 96},
        {"field": "note", "headerName": t("mat.col.level_note", lang), **text, "width": 250, "tooltipField": "note"},
    ]
    return dag.AgGrid(id=grid_id, rowData=data, columnDefs=cols, getRowId="params.data.school_id",
                      defaultColDef={"sortable": True, "resizable": True, "floatingFilter": True,
                                     "suppressHeaderMenuButton": True, "wrapHeaderText": True,
                                     "autoHeaderHeight": True},
                      dashGridOptions=grid_options(lang, domLayout="autoHeight"), className="mat-grid",
                      style={"width": "100%"})


def _float(v):
    return None if _missing(v) else float(v)


def _int(v):
    return None if _missing(v) else int(v)


def school_label(r: dict, lang: str) -> str:
    return pick(lang, r.get("school_name") or r["school_id"], r.get("school_name_en") or r.get("school_name") or "")


def heatmap_figure(fw, rows: list[dict], lang: str) -> go.Figure:
    """School × dimension scores (ranking rows), the value written in each cell."""
    names = [school_label(r, lang) for r in rows]
    matrix = [[float(r[f"dim.{d.id}"]) for d in fw.dimensions] for r in rows]
    fig = go.Figure(go.Heatmap(
        z=matrix, x=[_wrap(d.name(lang), 16) for d in fw.dimensions], y=names, zmin=0, zmax=100, colorscale="Blues",
        # one decimal, like every score: a 39.96 printed "40" would seem to pass a floor of 40 it misses
        xgap=2, ygap=2, text=[[_n(v) for v in row] for row in matrix], texttemplate="%{text}",
        textfont=dict(size=12), hovertemplate="%{y} · %{x}: %{z:.1f}<extra></extra>",
        colorbar=dict(thickness=10, len=0.8),
    ))
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(side="top", automargin=True)
    return _base(fig, max(180, 30 * len(names) + 80))


def yoy_counts(rows: list[dict]) -> dict | None:
    """How many schools moved up or down (score and level) against last year; None when nobody compares."""
    moved = [r for r in rows if not _missing(r.get("change"))]
    if not moved:
        return None
    return {"up": sum(r["change"] > 0 for r in moved), "down": sum(r["change"] < 0 for r in moved),
            "lup": sum(r["level_change"] > 0 for r in moved), "ldown": sum(r["level_change"] < 0 for r in moved)}


def yoy_figure(rows: list[dict], lang: str) -> go.Figure:
    """A dumbbell per school (ranking rows): last year's score → this year's."""
    names = [school_label(r, lang) for r in rows]
    prev = [None if _missing(r.get("score_prev")) else float(r["score_prev"]) for r in rows]
    now = [float(r["score"]) for r in rows]
    fig = go.Figure()
    xs, ys = [], []
    for name, a, b in zip(names, prev, now):
        if a is not None:
            xs += [a, b, None]
            ys += [name, name, None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=NEUTRAL, width=2), hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=prev, y=names, mode="markers", name=t("mat.yoy.last", lang),
                             marker=dict(color=NEUTRAL, size=9, symbol="circle-open", line=dict(width=2)),
                             hovertemplate="%{y}: %{x:.1f}<extra>%{fullData.name}</extra>"))
    fig.add_trace(go.Scatter(x=now, y=names, mode="markers", name=t("mat.yoy.now", lang),
                             marker=dict(color=ACCENT, size=10),
                             hovertemplate="%{y}: %{x:.1f}<extra>%{fullData.name}</extra>"))
    lo = min([v for v in prev + now if v is not None] + [100])
    fig.update_xaxes(range=[max(0, math.floor(lo / 10) * 10 - 5), 100], title=None)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig = _base(fig, max(180, 30 * len(names) + 80))
    fig.update_layout(legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
                      hovermode="closest")
    return fig


def card(title: str, body, body_class: str = "p-1", card_id: str | None = None, **kwargs) -> dbc.Card:
    """A titled card (the page's panels)."""
    extra = {"id": card_id} if card_id else {}
    return dbc.Card([dbc.CardHeader(title, className="fw-bold"), dbc.CardBody(body, className=body_class)],
                    **extra, **kwargs)


def framework_error(message: str, lang: str) -> dbc.Alert:
    return dbc.Alert([html.H5(t("mat.framework_error", lang), className="alert-heading"),
                      html.Code(message[:600], id="framework-error-message")], color="danger", className="mt-3",
                     id="framework-error")


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
