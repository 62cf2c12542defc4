"""成熟度评估 Maturity: for one school its score, level with the floor rule explained, radar against its peers,
the cheapest way to the next level, every indicator with source and evidence, and the evidence pack (Excel, PDF); for a
region or the association the ranking, level distribution, dimension heatmap and year-on-year movement.
Everything is selected by the URL (scope, period end, language)."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, dcc, html, no_update

from components import maturity as mc
from components.export import export_bar, export_href, register_report
from components.i18n import pick, t
from components.links import href, scope_params
from components.maturity_pack import evidence_report, evidence_workbook
from components.page import cached_view, guarded, scope_bar
from data_access import maturity, meta
from data_access.config import get_config
from data_access.dims import scope_nav
from data_access.errors import InputError
from data_access.request import parse_request
from export import domain_csv_sections, pdf_status

PATH = "/maturity"
EVIDENCE_VIEW = "maturity-evidence"     # /export/maturity-evidence.pdf: the evidence pack printed (export.py)
dash.register_page(__name__, path=PATH, name="成熟度评估", name_en="Maturity", order=4,
                   title="成熟度评估 · 学校后勤决策驾驶舱")


class ids:
    REQUEST = "maturity-request"
    CONTENT = "maturity-content"
    DOWNLOAD = "maturity-download"
    EXPORT_MSG = "maturity-export-msg"
    EXPORT = "maturity-export"            # pattern-matching: {"type": EXPORT, "index": school_id}
    SUMMARY = "maturity-summary"
    RADAR = "maturity-radar"
    GAP = "maturity-gap"
    INDICATORS = "maturity-indicators"
    DISTRIBUTION = "maturity-distribution"
    LEVELS = "maturity-levels"
    RANKING = "maturity-ranking"
    HEATMAP = "maturity-heatmap"
    YOY = "maturity-yoy"

    @staticmethod
    def export(school_id: str) -> dict:
        return {"type": ids.EXPORT, "index": school_id}


def layout(**params):
    return html.Div([
        dcc.Store(id=ids.REQUEST, data=params),
        dcc.Download(id=ids.DOWNLOAD),
        html.Div(id=ids.EXPORT_MSG),
        dcc.Loading(html.Div(id=ids.CONTENT, className="maturity"), type="dot", delay_show=300),
    ])


@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"))
@guarded
@cached_view
def render(params):
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    scope, period, lang = req.scope, req.period, req.lang
    bar = scope_bar(PATH, scope_nav(scope, lang), scope, period, lang, cfg.today())
    bar = html.Div([bar, html.Div(export_bar(  # exports (export.py)
        "maturity", scope_params(scope.params(), period, lang), lang, pdf_status(lang),
        domain_csv_sections("maturity", scope, lang)), className="mt-2")])
    try:
        fw = maturity.framework()
    except maturity.FrameworkError as exc:
        return [bar, mc.framework_error(str(exc), lang)]
    if scope.level in ("school", "campus", "facility"):
        return [bar, *_school(scope, period, lang, fw, cfg.min_group_size, pdf_status(lang))]
    return [bar, *_group(scope, period, lang, fw)]


def _school(scope, period, lang, fw, min_n, pdf=(True, "")):
    pack = maturity.evidence_pack(scope, period)
    pdf_link = (export_href(EVIDENCE_VIEW, "pdf", scope_params(scope.params(), period, lang)), *pdf)
    rows = pack.indicators.to_dict("records")
    s = pack.summary
    note = []
    if scope.level != "school":
        name = pick(lang, pack.school["school_name"] or "", pack.school["school_name_en"] or "")
        note = [html.Div(t("mat.per_school", lang, school=name), className="small text-muted mb-2")]
    bench = pack.benchmark
    radar_bench = None
    if bench.shown:
        radar_bench = {k: [getattr(bench, k)[d.id] for d in fw.dimensions] for k in ("median", "p75", "best")}
    radar = mc.radar_figure([d.name(lang) for d in fw.dimensions], [float(s[f"dim.{d.id}"]) for d in fw.dimensions],
                            radar_bench, lang)
    graph = dcc.Graph(figure=radar, config={"displayModeBar": False}, id=ids.RADAR)
    return [
        mc.header(fw, period.end, pack.window, pack.data_as_of, lang), *note,
        dbc.Row([
            dbc.Col(mc.school_summary(pack, lang, ids.export(pack.school["school_id"]), ids.SUMMARY, pdf_link),
                    lg=4, className="mb-3"),
            dbc.Col(mc.card(t("mat.radar", lang), graph, className="h-100"), lg=4, className="mb-3"),
            dbc.Col(mc.card(t("mat.gap", lang), mc.gap_list(fw, pack.plan, rows, lang, ids.GAP), "", className="h-100"),
                    lg=4, className="mb-3"),
        ], className="g-3"),
        mc.card(t("mat.indicators", lang), mc.indicator_table(fw, rows, s, lang, ids.INDICATORS, min_n), "p-0",
                className="mb-4"),
    ]


def _group(scope, period, lang, fw):
    header = mc.header(fw, period.end, maturity.assessment_window(period.end),
                       meta.as_of(scope, maturity.evidence_tables(fw)), lang)
    rows = maturity.ranking(scope, period).to_dict("records")
    if not rows:
        return [header, html.Div(t("mat.none", lang), className="text-muted")]
    dist = maturity.scope_distribution(scope, period)
    base = scope_params({}, period, lang)
    ranking = mc.ranking_grid(fw, rows, lang, ids.RANKING, lambda sid: href(PATH, {**base, "school": sid}))
    graph = {"config": {"displayModeBar": False}}
    charts = []
    if dist.shown:
        charts.append(dbc.Col(mc.card(t("mat.levels", lang), dcc.Graph(figure=mc.level_bars(fw, dist.levels, lang),
                                                                      id=ids.LEVELS, **graph), className="h-100"),
                              lg=3, className="mb-3"))
    charts += [
        dbc.Col(mc.card(t("mat.heatmap", lang), dcc.Graph(figure=mc.heatmap_figure(fw, rows, lang), id=ids.HEATMAP,
                                                          **graph), className="h-100"),
                lg=5 if dist.shown else 7, className="mb-3"),
        dbc.Col(mc.card(t("mat.yoy_chart", lang), dcc.Graph(figure=mc.yoy_figure(rows, lang), id=ids.YOY, **graph),
                        className="h-100"),
                lg=4 if dist.shown else 5, className="mb-3"),
    ]
    return [
        header,
        mc.group_summary(dist, mc.yoy_counts(rows), lang, ids.DISTRIBUTION),
        mc.card(t("mat.ranking", lang), ranking, "p-2", className="mb-3"),
        dbc.Row(charts, className="g-3"),
    ]


@callback(Output(ids.DOWNLOAD, "data"), Output(ids.EXPORT_MSG, "children"),
          Input({"type": ids.EXPORT, "index": ALL}, "n_clicks"), State(ids.REQUEST, "data"),
          prevent_initial_call=True)
@mc.guarded_export
def export(clicks, params):
    if not any(clicks or []):
        return no_update, no_update
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    pack = maturity.evidence_pack(req.scope, req.period)
    content = evidence_workbook(pack, req.lang, cfg.min_group_size)
    name = f"maturity-evidence-{pack.school['school_id']}-{req.period.end.isoformat()}.xlsx"
    return dcc.send_bytes(content, name), None


def evidence_pdf_report(params: dict):
    """The evidence pack of the URL's school as a printable report: export.py serves it as
    /export/maturity-evidence.pdf (and .html, the print view) with the page's own parameters."""
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    try:
        pack = maturity.evidence_pack(req.scope, req.period)
    except maturity.FrameworkError as exc:
        raise InputError(f"成熟度评估框架文件不可用：{exc}", f"The maturity framework file cannot be used: {exc}") from None
    return evidence_report(pack, req.lang, cfg.min_group_size)


register_report(EVIDENCE_VIEW, evidence_pdf_report)
