"""数据管理 Data: what the warehouse holds, from where, how fresh and complete (一数一源), and the import templates.

For the scope and period in the URL: headline tiles of the data-governance indicators, one row per warehouse
table (rows, newest data, freshness, completeness, last batch, source systems, rejects), the recent batches
and the templates to download. Loading itself runs on the server (``python -m data_access.load``).
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

import data_templates
from components import data as view
from components.i18n import t
from components.page import cached_view, guarded, scope_bar
from components.tiles import kpi_tile
from data_access import inventory, meta, registry
from data_access.config import get_config
from data_access.dims import scope_nav
from data_access.request import parse_request
from data_access.validate import LOADABLE_TABLES

PATH = "/data"
dash.register_page(__name__, path=PATH, name="数据管理", name_en="Data", order=8, title="数据管理 · 学校后勤决策驾驶舱")

HEADLINE = ("meta.freshness", "meta.one_source", "energy.data_completeness", "dining.cold_chain_online")


class ids:
    REQUEST = "data-request"
    CONTENT = "data-content"


def layout(**params):
    return html.Div([
        dcc.Store(id=ids.REQUEST, data=params),
        dcc.Loading(html.Div(id=ids.CONTENT, className="data-page"), type="dot", delay_show=300),
    ])


@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"))
@guarded
@cached_view
def render(params):
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    scope, period, lang = req.scope, req.period, req.lang

    tiles = []
    for ind_id in HEADLINE:
        ind = registry.get(ind_id)
        tile = registry.tile(ind_id, scope, period)
        tiles.append(dbc.Col(kpi_tile(ind, tile.current, tile.change, meta.as_of(scope, ind.tables), lang,
                                      min_n=cfg.min_group_size), xs=6, lg=3, className="mb-2"))
    batches = inventory.recent_batches(20)
    return [
        scope_bar(PATH, scope_nav(scope, lang), scope, period, lang, cfg.today()),
        dbc.Row(tiles, className="g-2 mt-1 mb-2", id="data-headline"),
        view.section(t("dm.tables", lang), view.inventory_table(inventory.tables(scope, period), lang),
                     "data-tables-card", note=t("dm.tables.note", lang)),
        dbc.Row([
            dbc.Col(view.section(t("dm.batches", lang), view.batches_table(batches.to_dict("records"), lang),
                                 "data-batches-card"), xs=12, xl=8),
            dbc.Col(view.templates_card(LOADABLE_TABLES, data_templates.href, data_templates.ZIP_PATH, lang),
                    xs=12, xl=4),
        ], className="g-3"),
    ]
