"""The maturity evidence pack as an Excel workbook (``evidence_workbook``: pure, an ``EvidencePack`` of
data_access.maturity in, bytes out) and as a printable report (``evidence_report``: the same content as a
components.export ``Report``, which export.py prints to PDF at /export/maturity-evidence.pdf).

Sheets: summary (framework version, school, scope, period, as-of date, windows, data-as-of time, score, level
and the floor rule), indicators (every score with its source, state, evidence and assessor), dimensions, the
derived indicators' underlying figures, the gap plan, the peer group (distribution figures only) and the
framework itself, so that the pack documents which rules produced the numbers. Numbers stay numbers (an
assessor can recompute them); labels follow the language.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
from pathlib import Path

import pandas as pd

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

from .export import Report, Section, fmt_cell, safe_name
from .format import fmt_value
from .i18n import pick, register, t
from .maturity import derived_evidence, floor_text, peer_text, type_label

register({
    "pack.sheet.summary": ("概况", "Summary"),
    "pack.sheet.indicators": ("指标", "Indicators"),
    "pack.sheet.dimensions": ("维度", "Dimensions"),
    "pack.sheet.derived": ("派生指标依据", "Derived figures"),
    "pack.sheet.plan": ("提升路径", "Gap plan"),
    "pack.sheet.peers": ("同类对比", "Peers"),
    "pack.sheet.framework": ("评估框架", "Framework"),
    "pack.item": ("项目", "Item"),
    "pack.value": ("内容", "Value"),
    "pack.title": ("后勤数字化成熟度评估证据包", "Logistics digital-maturity evidence pack"),
    "pack.framework": ("评估框架", "Framework"),
    "pack.framework_id": ("框架标识", "Framework id"),
    "pack.framework_version": ("框架版本", "Framework version"),
    "pack.framework_file": ("框架文件", "Framework file"),
    "pack.school_id": ("学校代码", "School id"),
    "pack.school_name": ("学校名称", "School name"),
    "pack.region": ("地区", "Region"),
    "pack.school_type": ("学校类型", "School type"),
    "pack.scope": ("范围（URL参数）", "Scope (URL parameters)"),
    "pack.period": ("统计期", "Selected period"),
    "pack.as_of": ("评估截至", "Assessed as of"),
    "pack.window": ("派生指标窗口（默认）", "Derived window (default)"),
    "pack.round": ("评估轮次", "Assessment round"),
    "pack.assessors": ("评估方", "Assessors"),
    "pack.data_fact": ("数据截至（范围内最新事实）", "Data as of (newest fact in scope)"),
    "pack.data_loaded": ("最近入库时间", "Last loaded"),
    "pack.generated": ("生成时间", "Generated at"),
    "pack.score": ("总分", "Score"),
    "pack.level_by_score": ("按得分等级", "Level by score"),
    "pack.level": ("等级（下限规则后）", "Level (after the floor rule)"),
    "pack.capped_by": ("封顶维度", "Capped by"),
    "pack.floor": ("等级说明", "Level explained"),
    "pack.floor_rule": ("下限规则", "Floor rule"),
    "pack.prev_as_of": ("上年对比日期", "Last year as of"),
    "pack.prev_score": ("上年总分", "Last year's score"),
    "pack.prev_level": ("上年等级", "Last year's level"),
    "pack.prev_round": ("上年评估轮次", "Last year's round"),
    "pack.peer": ("同类学校组", "Peer group"),
    "pack.peer_size": ("同类组学校数", "Peer group size"),
    "pack.percentile": ("同类百分位（%）", "Peer percentile (%)"),
    "pack.scoring": ("计分方法", "Scoring"),
    "pack.scoring.text": ("总分 = Σ 权重 × 指标得分 ÷ 100；派生指标按 scale 线性折算为 0–100；不适用或样本不足的派生指标不计入、"
                          "维度内重新加权；未评估的评估指标计 0 分",
                          "Score = Σ weight × indicator score ÷ 100; derived indicators scaled linearly to 0–100; a "
                          "derived indicator that does not apply or rests on too few people is left out and its "
                          "dimension re-weighted; an assessed indicator without a score counts 0"),
    "pack.col.dimension_id": ("维度ID", "Dimension id"),
    "pack.col.dimension": ("维度", "Dimension"),
    "pack.col.indicator_id": ("指标ID", "Indicator id"),
    "pack.col.indicator": ("指标", "Indicator"),
    "pack.col.source": ("来源", "Source"),
    "pack.col.weight": ("权重", "Weight"),
    "pack.col.state": ("状态", "State"),
    "pack.col.score": ("得分", "Score"),
    "pack.col.value": ("数值", "Value"),
    "pack.col.unit": ("单位", "Unit"),
    "pack.col.num": ("分子", "Numerator"),
    "pack.col.den": ("分母", "Denominator"),
    "pack.col.n": ("人数/单数 n", "People / orders n"),
    "pack.col.window_start": ("窗口起", "Window from"),
    "pack.col.window_end": ("窗口止", "Window to"),
    "pack.col.evidence": ("证据", "Evidence"),
    "pack.col.assessor": ("评估方", "Assessor"),
    "pack.col.round": ("评估轮次", "Round"),
    "pack.col.assessed_on": ("评估日期", "Assessed on"),
    "pack.col.from": ("来源指标ID", "Registry indicator"),
    "pack.col.from_name": ("来源指标", "Registry indicator name"),
    "pack.col.formula": ("计算公式", "Formula"),
    "pack.col.zero_at": ("折算0分的数值", "Value scoring 0"),
    "pack.col.full_at": ("折算100分的数值", "Value scoring 100"),
    "pack.col.window": ("数据窗口", "Window"),
    "pack.col.scale": ("折算（0分 / 100分的数值）", "Scale (value for 0 / 100)"),
    "pack.col.floor_next": ("下一等级要求的维度下限", "Floor for the next level"),
    "pack.col.median": ("同类中位数", "Peer median"),
    "pack.col.p75": ("同类P75", "Peer P75"),
    "pack.col.best": ("同类最高", "Peer best"),
    "pack.col.school": ("本校", "This school"),
    "pack.col.key": ("项目", "Item"),
    "pack.col.level_name": ("等级", "Level"),
    "pack.col.level_min": ("得分下限", "Lower bound"),
    "pack.col.window_days": ("窗口天数", "Window days"),
    "pack.col.now": ("现得分", "Score now"),
    "pack.col.target": ("目标得分", "Target score"),
    "pack.col.points": ("需提升（指标分）", "Raise by (indicator points)"),
    "pack.col.gain": ("总分增加", "Total gain"),
    "pack.col.value_now": ("现数值", "Value now"),
    "pack.col.value_target": ("目标数值", "Target value"),
    "pack.col.why": ("作用", "Why"),
    "pack.plan.level": ("当前等级", "Level now"),
    "pack.plan.target": ("目标等级", "Target level"),
    "pack.plan.need_total": ("目标等级总分下限", "Score needed"),
    "pack.plan.need_dim": ("各维度需达到", "Every dimension needs"),
    "pack.plan.points": ("合计需提升（指标分）", "Total indicator points"),
    "pack.plan.new_score": ("完成后总分", "Score afterwards"),
    "pack.plan.new_level": ("完成后等级", "Level afterwards"),
    "pack.plan.top": ("已达最高等级", "Already at the top level"),
    "pack.peer.hidden": ("同类组少于 {min} 所学校，不提供分布数据", "Peer group under {min} schools: no distribution"),
    "pack.state.scored": ("已计分", "Scored"),
})

_HEAD_FONT = Font(bold=True)
_HEAD_BORDER = Border(bottom=Side(style="thin"))
_TITLE_FONT = Font(bold=True, size=14)
_SCORE = "0.0"
_VALUE = "0.00"


def _clean(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _table(ws, headers: list[str], rows: list[list], formats: dict[int, str] | None = None, start_row: int = 1):
    for c, h in enumerate(headers, 1):
        cell = ws.cell(start_row, c, h)
        cell.font, cell.border = _HEAD_FONT, _HEAD_BORDER
    for r, row in enumerate(rows, start_row + 1):
        for c, v in enumerate(row, 1):
            cell = ws.cell(r, c, _clean(v))
            if formats and c in formats and isinstance(cell.value, (int, float)):
                cell.number_format = formats[c]
            if isinstance(cell.value, dt.datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
    ws.freeze_panes = ws.cell(start_row + 1, 1)
    _widths(ws)


def _widths(ws, cap: int = 60):
    for col in ws.columns:
        letter = get_column_letter(col[0].column)
        longest = max((_display_len(c.value) for c in col if c.value is not None), default=8)
        ws.column_dimensions[letter].width = min(cap, max(8, longest + 2))


def _display_len(v) -> int:
    text = str(v) if not isinstance(v, float) else f"{v:.2f}"
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _state(row: dict, lang: str) -> str:
    if row["state"] == "scored":
        return t("pack.state.scored", lang)
    if row["state"] == "suppressed":
        return t("mat.state.suppressed", lang, n=row.get("min_n", 10))
    return t(f"mat.state.{row['state']}", lang)


# --- the pack's tables (shared by the workbook and the PDF) ----------------------------------------------------

def _rows(pack, min_n: int) -> list[dict]:
    return [{**r, "min_n": min_n} for r in pack.indicators.to_dict("records")]


def _assessors(rows: list[dict], lang: str) -> str:
    names = sorted({str(r["assessor"]) for r in rows if _clean(r.get("assessor"))})
    return "、".join(names) if lang != "en" else ", ".join(names)


def summary_items(pack, rows: list[dict], lang: str) -> list[tuple[str, object]]:
    """(i18n key of the label, value) of the summary: framework and version, school, scope, period and as-of date,
    window, round and assessors, data as of, score, levels with the floor rule, last year, peers."""
    fw, s, school = pack.framework, pack.summary, pack.school
    bench, prev = pack.benchmark, pack.previous
    return [
        ("pack.framework", fw.title(lang)),
        ("pack.framework_id", fw.id),
        ("pack.framework_version", fw.version),
        ("pack.framework_file", Path(fw.source).name if fw.source else None),
        ("pack.school_id", school["school_id"]),
        ("pack.school_name", pick(lang, school["school_name"] or "",
                                  school["school_name_en"] or school["school_name"] or "")),
        ("pack.region", f"{school['region_name']} ({school['region_code']})"),
        ("pack.school_type", type_label(school["school_type"], lang)),
        ("pack.scope", "&".join(f"{k}={v}" for k, v in sorted(pack.scope.items()))),
        ("pack.period", f"{pack.period.start.isoformat()} – {pack.period.end.isoformat()}"),
        ("pack.as_of", pack.period.end),
        ("pack.window", f"{pack.window.start.isoformat()} – {pack.window.end.isoformat()}"),
        ("pack.round", _clean(s.get("assessed_period"))),
        ("pack.assessors", _assessors(rows, lang)),
        ("pack.data_fact", _clean(pack.data_as_of.get("fact"))),
        ("pack.data_loaded", _clean(pack.data_as_of.get("loaded_at"))),
        ("pack.generated", pack.generated_at),
        ("pack.score", float(s["score"])),
        ("pack.level_by_score", fw.level_name(int(s["level_by_score"]))),
        ("pack.level", fw.level_name(int(s["level"]))),
        ("pack.capped_by", fw.dimension(s["capped_by"]).name(lang) if _clean(s.get("capped_by")) else None),
        ("pack.floor", floor_text(fw, s, lang)),
        ("pack.floor_rule", t("mat.floor.rule", lang)),
        ("pack.scoring", t("pack.scoring.text", lang)),
        ("pack.prev_as_of", prev["as_of"] if prev else None),
        ("pack.prev_score", prev["score"] if prev else None),
        ("pack.prev_level", fw.level_name(prev["level"]) if prev else None),
        ("pack.prev_round", prev["assessed_period"] if prev else None),
        ("pack.peer", peer_text(bench, lang)),
        ("pack.peer_size", bench.size),
        ("pack.percentile", bench.percentile),
    ]


INDICATOR_HEADS = ["dimension_id", "dimension", "indicator_id", "indicator", "source", "weight", "state", "score",
                   "value", "unit", "evidence", "assessor", "round", "assessed_on", "window_start", "window_end",
                   "from"]


def indicator_rows(fw, rows: list[dict], lang: str) -> list[list]:
    """Every indicator (INDICATOR_HEADS): score, source, state, evidence (the derived figure for a derived one),
    assessor, round and date or window."""
    table = []
    for r in rows:
        derived = r["source"] == "derived"
        table.append([
            r["dimension"], fw.dimension(r["dimension"]).name(lang), r["indicator_id"],
            pick(lang, r["name_zh"], r["name_en"]), t(f"mat.source.{r['source']}", lang), r["weight"],
            _state(r, lang), r["score"], r["value"] if derived else None, r.get("unit") if derived else None,
            derived_evidence(r, lang) if derived else r.get("evidence"),
            t("mat.assessor.system", lang) if derived else r.get("assessor"),
            None if derived else r.get("period"), None if derived else r.get("assessed_on"),
            r.get("window_start") if derived else None, r.get("window_end") if derived else None,
            r.get("derived_from") if derived else None,
        ])
    return table


DIMENSION_HEADS = ["dimension_id", "dimension", "weight", "score", "floor_next"]


def dimension_rows(pack, lang: str) -> list[list]:
    fw, s = pack.framework, pack.summary
    level = int(s["level"])
    floor_next = fw.levels[level - 1][1] if level < len(fw.levels) else None
    return [[d.id, d.name(lang), d.weight, float(s[f"dim.{d.id}"]), floor_next] for d in fw.dimensions]


DERIVED_HEADS = ["indicator_id", "indicator", "from", "from_name", "formula", "num", "den", "value", "unit", "n",
                 "window_start", "window_end", "zero_at", "full_at", "score", "state"]


def derived_rows(rows: list[dict], lang: str) -> list[list]:
    """The derived indicators' underlying figures (DERIVED_HEADS); numerator, denominator, value and n only when
    scored (a suppressed figure never leaves the registry)."""
    table = []
    for r in rows:
        if r["source"] != "derived":
            continue
        shown = r["state"] == "scored"
        table.append([
            r["indicator_id"], pick(lang, r["name_zh"], r["name_en"]), r["derived_from"],
            pick(lang, r.get("from_name_zh") or "", r.get("from_name_en") or ""),
            pick(lang, r.get("formula_zh") or "", r.get("formula_en") or ""),
            r["num"] if shown else None, r["den"] if shown else None, r["value"] if shown else None, r.get("unit"),
            r.get("n") if shown else None, r.get("window_start"), r.get("window_end"), r.get("zero_at"),
            r.get("full_at"), r["score"], _state(r, lang),
        ])
    return table


PLAN_HEADS = ["indicator_id", "indicator", "dimension", "source", "now", "target", "points", "gain", "value_now",
              "value_target", "unit", "why"]


def plan_facts(pack) -> list[tuple[str, object]] | None:
    """(i18n key, value) of the gap plan's head; None at the top level."""
    fw, plan = pack.framework, pack.plan
    if plan.target_level is None:
        return None
    return [("pack.plan.level", fw.level_name(plan.level)), ("pack.plan.target", fw.level_name(plan.target_level)),
            ("pack.plan.need_total", plan.need_total), ("pack.plan.need_dim", plan.need_dimension),
            ("pack.plan.points", plan.points), ("pack.plan.new_score", plan.new_score),
            ("pack.plan.new_level", fw.level_name(plan.new_level))]


def plan_rows(pack, rows: list[dict], lang: str) -> list[list]:
    fw = pack.framework
    by_id = {r["indicator_id"]: r for r in rows}
    table = []
    for step in pack.plan.steps:
        ind = fw.indicator(step.indicator_id)
        r = by_id.get(step.indicator_id, {})
        derived = ind.source == "derived" and _clean(r.get("value")) is not None
        table.append([step.indicator_id, ind.name(lang), fw.dimension(ind.dimension).name(lang),
                      t(f"mat.source.{ind.source}", lang), step.score, step.target, step.points, step.total_gain,
                      r.get("value") if derived else None, ind.unscale(step.target) if derived else None,
                      r.get("unit") if derived else None, t(f"mat.gap.{step.reason}", lang)])
    return table


PEER_HEADS = ["key", "school", "median", "p75", "best"]


def peer_rows(pack, lang: str) -> list[list] | None:
    """The school against its peer group's distribution (never another school's row); None under min_group."""
    fw, s, bench = pack.framework, pack.summary, pack.benchmark
    if not bench.shown:
        return None
    keys = [("score", t("pack.score", lang), float(s["score"]))] + \
           [(d.id, d.name(lang), float(s[f"dim.{d.id}"])) for d in fw.dimensions]
    return [[label, mine, bench.median[k], bench.p75[k], bench.best[k]] for k, label, mine in keys]


FRAMEWORK_HEADS = ["dimension_id", "dimension", "indicator_id", "indicator", "weight", "source", "from", "zero_at",
                   "full_at", "window_days"]


def framework_rows(fw, lang: str) -> list[list]:
    return [[ind.dimension, fw.dimension(ind.dimension).name(lang), ind.id, ind.name(lang), ind.weight,
             t(f"mat.source.{ind.source}", lang), ind.derived_from,
             ind.zero_at if ind.source == "derived" else None, ind.full_at if ind.source == "derived" else None,
             (ind.window_days or fw.derived_window_days) if ind.source == "derived" else None]
            for ind in fw.indicators]


def _heads(keys: list[str], lang: str) -> list[str]:
    return [t(f"pack.col.{h}", lang) for h in keys]


# --- the workbook ---------------------------------------------------------------------------------------------

def evidence_workbook(pack, lang: str = "zh", min_n: int = 10) -> bytes:
    """The evidence pack of one school as .xlsx bytes."""
    fw = pack.framework
    rows = _rows(pack, min_n)
    wb = Workbook()

    ws = wb.active
    ws.title = t("pack.sheet.summary", lang)
    ws.cell(1, 1, t("pack.title", lang)).font = _TITLE_FONT
    _table(ws, [t("pack.item", lang), t("pack.value", lang)],
           [[t(k, lang), v] for k, v in summary_items(pack, rows, lang)], {2: _SCORE}, start_row=3)
    ws.column_dimensions["B"].width = 80
    for row in ws.iter_rows(min_row=4, min_col=2, max_col=2):
        row[0].alignment = Alignment(wrap_text=True, vertical="top")

    ws = wb.create_sheet(t("pack.sheet.indicators", lang))
    _table(ws, _heads(INDICATOR_HEADS, lang), indicator_rows(fw, rows, lang), {6: "0", 8: _SCORE, 9: _VALUE})

    ws = wb.create_sheet(t("pack.sheet.dimensions", lang))
    _table(ws, _heads(DIMENSION_HEADS, lang), dimension_rows(pack, lang), {3: "0", 4: _SCORE, 5: "0"})

    ws = wb.create_sheet(t("pack.sheet.derived", lang))
    _table(ws, _heads(DERIVED_HEADS, lang), derived_rows(rows, lang),
           {6: "#,##0.##", 7: "#,##0.##", 8: _VALUE, 15: _SCORE})

    ws = wb.create_sheet(t("pack.sheet.plan", lang))
    facts = plan_facts(pack)
    if facts is None:
        ws.cell(1, 1, t("pack.plan.top", lang)).font = _HEAD_FONT
        ws.cell(1, 2, fw.level_name(pack.plan.level))
    else:
        for i, (k, v) in enumerate(facts, 1):
            ws.cell(i, 1, t(k, lang)).font = _HEAD_FONT
            cell = ws.cell(i, 2, v)
            if isinstance(v, float):
                cell.number_format = _SCORE
        _table(ws, _heads(PLAN_HEADS, lang), plan_rows(pack, rows, lang),
               {5: _SCORE, 6: _SCORE, 7: _SCORE, 8: "0.00", 9: _VALUE, 10: _VALUE}, start_row=len(facts) + 2)

    # Peers (distribution figures only)
    ws = wb.create_sheet(t("pack.sheet.peers", lang))
    ws.cell(1, 1, peer_text(pack.benchmark, lang))
    peers = peer_rows(pack, lang)
    if peers is not None:
        _table(ws, _heads(PEER_HEADS, lang), peers, {2: _SCORE, 3: _SCORE, 4: _SCORE, 5: _SCORE}, start_row=3)
    else:
        ws.cell(2, 1, t("pack.peer.hidden", lang, min=pack.benchmark.min_group))
    ws.column_dimensions["A"].width = max(ws.column_dimensions["A"].width or 0, 30)

    ws = wb.create_sheet(t("pack.sheet.framework", lang))
    ws.cell(1, 1, f"{fw.title(lang)} · {fw.id} · {t('mat.version', lang)} {fw.version}").font = _HEAD_FONT
    _table(ws, [t("pack.col.level_name", lang), t("pack.col.level_min", lang)], [list(lv) for lv in fw.levels],
           {2: "0"}, start_row=3)
    _table(ws, _heads(FRAMEWORK_HEADS, lang), framework_rows(fw, lang), {5: "0"}, start_row=len(fw.levels) + 5)
    ws.freeze_panes = None

    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- the printable pack (PDF) ---------------------------------------------------------------------------------

def _text(v, decimals: int | None = None, unit: str = "") -> str:
    """A cell as print shows it: numbers to ``decimals`` (percentages cut, never rounded up, like on screen),
    dates ISO, nothing as "—"."""
    v = _clean(v)
    if v is None or v == "":
        return "—"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_value(float(v), unit, decimals) if decimals is not None else fmt_cell(v)
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


def _section(key: str, title: str, heads: list[str], rows: list[list], text: tuple[str, ...] = (), **kwargs):
    return Section(key, title, pd.DataFrame(rows, columns=heads), text=text, **kwargs)


def evidence_report(pack, lang: str = "zh", min_n: int = 10):
    """The evidence pack as a printable report (components.export.Report, printed to PDF by export.py): the same
    content as the workbook — framework and version, every indicator's score, source, evidence and assessor, the
    derived indicators' underlying figures, the dimensions (with the radar against the peers), the gap plan, the
    peer group (distribution figures only), the framework's rules, the scope and the data-as-of time. Cells are
    printed text; wide sheets are folded into fewer columns to fit an A4-landscape page."""
    from .maturity import radar_figure

    fw, s, school = pack.framework, pack.summary, pack.school
    rows = _rows(pack, min_n)
    name = pick(lang, school["school_name"] or "", school["school_name_en"] or school["school_name"] or "")
    as_of = pack.period.end.isoformat()
    data_as_of = _text(pack.data_as_of.get("fact") or pack.data_as_of.get("loaded_at"))
    sep = " · "
    score_keys = {"pack.score", "pack.prev_score"}
    summary = [[t(k, lang), _text(v, 1) if k in score_keys else _text(v, 0, "%") if k == "pack.percentile"
                else _text(v)] for k, v in summary_items(pack, rows, lang)]

    # indicators: the workbook's columns folded (value and unit into the evidence, round and date or window
    # into one column)
    heads = [t(f"pack.col.{h}", lang) for h in ("dimension", "indicator_id", "indicator", "source", "weight", "state",
                                                "score", "evidence", "assessor")] + [t("mat.col.when", lang)]
    table = []
    for r in rows:
        derived = r["source"] == "derived"
        if derived:
            when = f"{_text(r.get('window_start'))} – {_text(r.get('window_end'))}"
            evidence = derived_evidence(r, lang)
        else:
            when = f"{_text(r.get('period'))}{sep}{_text(r.get('assessed_on'))}" if _clean(r.get("period")) else "—"
            evidence = _text(r.get("evidence")) if r["state"] == "scored" else t("mat.state.not_assessed", lang)
        table.append([fw.dimension(r["dimension"]).name(lang), r["indicator_id"],
                      pick(lang, r["name_zh"], r["name_en"]), t(f"mat.source.{r['source']}", lang),
                      _text(r["weight"]), _state(r, lang), _text(r["score"], 1), evidence,
                      t("mat.assessor.system", lang) if derived else _text(r.get("assessor")), when])
    indicators = _section("indicators", t("pack.sheet.indicators", lang), heads, table)

    radar_bench = None
    if pack.benchmark.shown:
        radar_bench = {k: [getattr(pack.benchmark, k)[d.id] for d in fw.dimensions] for k in ("median", "p75", "best")}
    radar = radar_figure([d.name(lang) for d in fw.dimensions], [float(s[f"dim.{d.id}"]) for d in fw.dimensions],
                         radar_bench, lang, height=300)
    dims = _section("dimensions", t("pack.sheet.dimensions", lang), _heads(DIMENSION_HEADS[1:], lang),
                    [[n, _text(w), _text(v, 1), _text(f)] for _, n, w, v, f in dimension_rows(pack, lang)],
                    text=(floor_text(fw, s, lang),), figure=radar, figure_height=300)

    # derived figures: windows and scales folded into one column each
    heads = [t(f"pack.col.{h}", lang) for h in ("indicator_id", "indicator", "from", "formula", "num", "den",
                                                "value", "n")] + \
        [t(f"pack.col.{h}", lang) for h in ("window", "scale", "score", "state")]
    table = []
    for (iid, ind_name, src, _src_name, formula, num, den, value, unit, n, w0, w1, zero_at, full_at, score,
         state) in derived_rows(rows, lang):
        table.append([iid, ind_name, src, formula, _text(num), _text(den), _text(value, 2, unit or ""), _text(n),
                      f"{_text(w0)} – {_text(w1)}", f"{_text(zero_at)} / {_text(full_at)}", _text(score, 1), state])
    derived = _section("derived", t("pack.sheet.derived", lang), heads, table)

    facts = plan_facts(pack)
    if facts is None:
        plan = _section("plan", t("pack.sheet.plan", lang), [], [],
                        text=(f"{t('pack.plan.top', lang)}: {fw.level_name(pack.plan.level)}",))
    else:
        scores = {"pack.plan.points", "pack.plan.new_score"}     # the bounds print as the framework gives them
        line = ("; " if lang == "en" else "；").join(
            f"{t(k, lang)} {_text(v, 1) if k in scores else _text(v)}" for k, v in facts)
        table = [[iid, ind_name, dim, src, _text(now, 1), _text(target, 1), _text(points, 1), _text(gain, 2),
                  _text(v0, 2, unit or ""), _text(v1, 2, unit or ""), why]
                 for iid, ind_name, dim, src, now, target, points, gain, v0, v1, unit, why
                 in plan_rows(pack, rows, lang)]
        plan = _section("plan", t("pack.sheet.plan", lang), _heads([h for h in PLAN_HEADS if h != "unit"], lang),
                        table, text=(line,))

    peers = peer_rows(pack, lang)
    peer_lines = (peer_text(pack.benchmark, lang),)
    if peers is None:
        peer = _section("peers", t("pack.sheet.peers", lang), [], [],
                        text=peer_lines + (t("pack.peer.hidden", lang, min=pack.benchmark.min_group),))
    else:
        peer = _section("peers", t("pack.sheet.peers", lang), _heads(PEER_HEADS, lang),
                        [[label, *(_text(v, 1) for v in values)] for label, *values in peers], text=peer_lines)

    levels = sep.join(f"{lv} ≥ {low:g}" for lv, low in fw.levels)
    frame = _section(
        "framework", t("pack.sheet.framework", lang), _heads(FRAMEWORK_HEADS[1:], lang),
        [[_text(v) for v in row[1:]] for row in framework_rows(fw, lang)],
        text=(f"{fw.title(lang)}{sep}{fw.id}{sep}{t('mat.version', lang)} {fw.version}",
              f"{t('pack.col.level_name', lang)}: {levels}", t("mat.floor.rule", lang), t("pack.scoring.text", lang)))

    sections = (Section("summary", t("pack.sheet.summary", lang),
                        pd.DataFrame(summary, columns=[t("pack.item", lang), t("pack.value", lang)])),
                indicators, dims, derived, plan, peer, frame)
    sections = tuple(dataclasses.replace(x, table=None) if x.table is not None and x.table.columns.empty else x
                     for x in sections)
    title = f"{t('pack.title', lang)}{sep}{name}{sep}{as_of}"
    meta = ((t("pack.school_name", lang), f"{name} ({school['school_id']})"),
            (t("pack.framework", lang), f"{fw.title(lang)}{sep}{t('mat.version', lang)} {fw.version}"),
            (t("pack.as_of", lang), as_of),
            (t("pack.data_fact", lang), data_as_of),
            (t("pack.generated", lang), _text(pack.generated_at)),
            ("", t("ex.suppressed_note", lang, n=min_n)))
    return Report("maturity-evidence", title, lang, meta, sections,
                  safe_name(f"maturity-evidence-{school['school_id']}-{as_of}"), running_head=title,
                  running_foot=f"{t('pack.framework_version', lang)} {fw.version}{sep}"
                               f"{t('pack.data_fact', lang)} {data_as_of}")
