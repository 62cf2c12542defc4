"""服务满意度 Service satisfaction and work orders, for the scope and period in the URL.

Satisfaction (CSI, satisfied rate, NPS) overall, per service line and respondent type, with the trend, the
biggest movers and a service line × school (or × facility) matrix whose names and cells drill down; work orders
against the SLA (rates, P50/P90 times, first-time fix, callbacks, complaints) per priority and service line, the
volume by kind and the open / overdue list; an Excel export of the same figures. Page options in the URL besides
scope, period and language: ``line`` (the trend's service line) and ``m`` (the matrix's indicator).
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from components import service as view
from components.export import export_bar
from components.i18n import t
from components.links import href, scope_params
from components.page import cached_view, guarded, lang_of, scope_bar
from components.tiles import kpi_tile
from data_access import registry, service
from data_access.config import get_config
from data_access.dims import scope_nav
from data_access.request import parse_request
from export import domain_csv_sections, pdf_status

PATH = "/service"
dash.register_page(__name__, path=PATH, name="服务满意度", name_en="Service", order=3,
                   title="服务满意度 · 学校后勤决策驾驶舱")

SCOPE_KEYS = ("region", "school", "campus", "facility")


class ids:
    REQUEST = "service-request"
    CONTENT = "service-content"
    EXPORT = "service-export"
    EXPORT_MSG = "service-export-msg"
    DOWNLOAD = "service-download"


def layout(**params):
    lang = lang_of(params)
    return html.Div([
        dcc.Store(id=ids.REQUEST, data=params),
        dcc.Download(id=ids.DOWNLOAD),
        html.Div([
            html.Div(id=ids.EXPORT_MSG, className="me-2"),
            dbc.Button([html.I(className="bi bi-file-earmark-excel me-1"), t("svc.export", lang)], id=ids.EXPORT,
                       size="sm", color="primary", outline=True, title=t("svc.export.hint", lang)),
        ], className="d-flex justify-content-end align-items-center svc-toolbar"),
        dcc.Loading(html.Div(id=ids.CONTENT, className="service-page"), type="dot", delay_show=300),
    ])


def _options(params) -> tuple[str | None, str]:
    line = params.get("line") if params.get("line") in service.SERVICE_LINES else None
    metric = params.get("m") if params.get("m") in service.SATISFACTION else "service.csi"
    return line, metric


@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"))
@guarded
@cached_view
def render(params):
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    scope, period, lang = req.scope, req.period, req.lang
    line, metric = _options(params)
    data = service.panel(scope, period, line, metric, lang)
    options = {k: v for k, v in (("line", line), ("m", None if metric == "service.csi" else metric)) if v}
    base = {**scope_params(scope.params(), period, lang), **options}
    min_n = cfg.min_group_size
    inds = {i.id: i for i in registry.all_indicators() if i.domain == "service"}
    bar = scope_bar(PATH, scope_nav(scope, lang), scope, period, lang, cfg.today(), extra=options)
    bar = html.Div([bar, html.Div(export_bar(  # PDF, print view, CSV (export.py); the page has its own Excel
        "service", scope_params(scope.params(), period, lang), lang, pdf_status(lang),
        domain_csv_sections("service", scope, lang), excel=False), className="mt-2")])
    return [bar, html.Div(className="mb-3"), _satisfaction(data, inds, lang, min_n, base),
            _orders(data, inds, lang, min_n)]


def _tile(data, ind_id, source, lang, min_n):
    tile = data.tiles[ind_id]
    return kpi_tile(tile.indicator, tile.current, tile.change, data.as_of[source], lang, None, min_n)


def _satisfaction(data, inds, lang, min_n, base):
    line = data.line
    trend_options = [(t("svc.trend.all", lang), href(PATH, base, line=None), line is None)]
    trend_options += [(view.line_name(ln, lang), href(PATH, base, line=ln), ln == line) for ln in data.surveyed_lines]
    trend = view.trend_block(data.trend_freq, data.trend, inds, lang, min_n, line,
                             view.pill_links(trend_options, "svc-trend-lines"))
    responses = data.tiles["service.csi"].current.n or 0
    return view.section(t("svc.satisfaction", lang), [
        view.privacy_note(lang, min_n),
        dbc.Row([
            dbc.Col([
                dbc.Row([dbc.Col(_tile(data, i, "survey", lang, min_n), xs=4) for i in service.SATISFACTION],
                        className="g-2 mb-3"),
                view.block(t("svc.movers", lang), view.movers_list(data.movers, inds["service.csi"], lang, min_n),
                           "svc-movers-block"),
            ], lg=5),
            dbc.Col(trend, lg=7),
        ], className="g-3 mb-3"),
        dbc.Row([
            dbc.Col(view.block(t("svc.by_line", lang),
                               view.satisfaction_table(data.lines, inds, lang, min_n,
                                                       trend_href=lambda k: href(PATH, base, line=k)),
                               "svc-lines-block"), lg=7),
            dbc.Col(view.block(t("svc.by_type", lang),
                               view.satisfaction_table(data.types, inds, lang, min_n, by="respondent_type",
                                                       table_id="svc-types"), "svc-types-block"), lg=5),
        ], className="g-3 mb-3"),
        _matrix(data, inds, lang, min_n, base),
    ], "svc-satisfaction", t("svc.responses_n", lang, n=responses))


def _matrix(data, inds, lang, min_n, base):
    level = service.matrix_level(data.scope)
    if level is None:
        return None
    choose = view.pill_links([(inds[i].name(lang), href(PATH, base, m=None if i == "service.csi" else i),
                               i == data.metric) for i in service.SATISFACTION], "svc-matrix-metric")
    # A drill-down keeps period, language and the matrix's indicator, and replaces the scope.
    keep = {k: v for k, v in base.items() if k not in SCOPE_KEYS and k != "line"}
    return view.matrix_block(data.matrix, level, inds[data.metric], data.names, lang, min_n, choose,
                             row_href=lambda k: href(PATH, {**keep, level: k}),
                             cell_href=lambda k, ln: href(PATH, {**keep, level: k, "line": ln}))


def _orders(data, inds, lang, min_n):
    return view.section(t("svc.orders", lang), [
        dbc.Row([dbc.Col(_tile(data, i, "orders", lang, min_n), xs=6, md=4, xl=2) for i in service.ORDER_TILES],
                className="g-2 mb-3", id="svc-order-tiles"),
        dbc.Row([
            dbc.Col([
                view.block(t("svc.sla_by_priority", lang),
                           view.order_table(data.by_priority, inds, lang, min_n, "priority", sla=data.sla,
                                            table_id="svc-priority"), "svc-priority-block"),
                html.Div(className="mb-3"),
                view.block(t("svc.sla_by_line", lang),
                           view.order_table(data.by_line, inds, lang, min_n, "service_line",
                                            table_id="svc-order-lines"), "svc-order-lines-block"),
            ], lg=7),
            dbc.Col(view.volume_block(data.volume, service.ORDER_KINDS, lang), lg=5),
        ], className="g-3 mb-3"),
        view.block(t("svc.open", lang),
                   view.open_orders_table(data.open_list, data.open_counts, data.state_at, data.names, lang,
                                          show_school=len(data.scope.schools) > 1), "svc-open-block"),
    ], "svc-orders", t("svc.orders_n", lang, n=data.orders))


@callback(Output(ids.DOWNLOAD, "data"), Output(ids.EXPORT_MSG, "children"),
          Input(ids.EXPORT, "n_clicks"), State(ids.REQUEST, "data"), prevent_initial_call=True)
@view.guarded_export
def export(clicks, params):
    """The panel's figures as an Excel workbook; suppressed figures carry the label there too."""
    if not clicks:
        return no_update, no_update
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    line, metric = _options(params)
    data = service.panel(req.scope, req.period, line, metric, req.lang, open_limit=5000)
    inds = {i.id: i for i in registry.all_indicators() if i.domain == "service"}
    place = req.scope.key() or "all"
    name = f"service-{place}-{req.period.start.isoformat()}-{req.period.end.isoformat()}.xlsx"
    return dcc.send_bytes(view.workbook(data, inds, req.lang, cfg.min_group_size), name), None
