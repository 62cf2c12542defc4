"""大屏管理 Screens: every wall screen that reported a heartbeat, flagged when stale or silent, and example links."""
from __future__ import annotations

import datetime as dt

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from components import screen as sc
from components.i18n import t
from components.page import guarded, lang_of
from data_access.screen import screens

dash.register_page(__name__, path="/screens", name="大屏", name_en="Screens", order=7, title="大屏 · 学校后勤")

EXAMPLES = [
    ("association", "views=overview,dining,energy,service&dwell=20"),
    ("SH-U01", "school=SH-U01&views=overview,dining,energy&dwell=30&id=demo-su01&name=申江大学后勤大屏"),
    ("canteen", "facility=SH-U01-C1-CAN1&views=dining&id=demo-canteen&name=第一食堂大屏"),
]


class ids:
    REQUEST = "screens-request"
    CONTENT = "screens-content"
    TICK = "screens-tick"


def layout(**params):
    return html.Div([dcc.Store(id=ids.REQUEST, data=params), dcc.Interval(id=ids.TICK, interval=30000),
                     html.Div(id=ids.CONTENT)])


@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"), Input(ids.TICK, "n_intervals"))
def render(params, _tick):
    return _render(params or {})


@guarded
def _render(params):
    lang = lang_of(params)
    now = dt.datetime.now()
    links = [html.Li(html.A(f"/screen?{q}", href=f"/screen?{q}{'&lang=en' if lang == 'en' else ''}", target="_blank"))
             for _, q in EXAMPLES]
    return dbc.Card([
        dbc.CardHeader(t("screens.title", lang), className="fw-bold"),
        dbc.CardBody([sc.screens_table(screens(now), lang, now),
                      html.H6(t("screens.examples", lang), className="mt-3"), html.Ul(links, className="small")]),
    ], className="mt-2")
