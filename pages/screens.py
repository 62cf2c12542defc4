"""大屏管理 Screens: every wall screen that reported a heartbeat, flagged when stale or silent, and example links."""
from __future__ import annotations

import datetime as dt

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

import auth
from components import screen as sc
from components.i18n import t
from components.page import guarded, lang_of
from data_access.request import parse_request
from data_access.screen import screens

# Screens are the logistics office's (and the assessors' and region officers' across their schools); a
# canteen manager or a school leader has no screens to manage.
ROLES = ["logistics_director", "assessor", "region_officer", "admin"]
dash.register_page(__name__, path="/screens", name="大屏", name_en="Screens", order=7, roles=ROLES,
                   title="大屏 · 学校后勤")


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


def _examples(lang: str) -> list[str]:
    """Screen URLs for the caller's own place: its overview rotation, and the dining view of a canteen."""
    import urllib.parse

    scope = parse_request({}).scope
    home = {scope.level: scope.key()} if scope.key() else {}
    out = [urllib.parse.urlencode({**home, "views": "overview,dining,energy,service", "dwell": 30, "id": "screen-1",
                                   "name": t("screens.example_name", lang, n=1)}, safe=",")]
    if scope.level != "facility":
        out.append(urllib.parse.urlencode({**home, "views": "dining,energy", "dwell": 20, "refresh": 60}, safe=","))
    return out


@guarded
def _render(params):
    lang = lang_of(params)
    auth.require_role(*ROLES)
    now = dt.datetime.now()
    links = [html.Li(html.A(f"/screen?{q}", href=f"/screen?{q}{'&lang=en' if lang == 'en' else ''}", target="_blank"))
             for q in _examples(lang)]
    return dbc.Card([
        dbc.CardHeader(t("screens.title", lang), className="fw-bold"),
        dbc.CardBody([sc.screens_table(screens(now), lang, now),
                      html.H6(t("screens.examples", lang), className="mt-3"), html.Ul(links, className="small"),
                      html.P(t("screens.tokens", lang), className="small text-muted")]),
    ], className="mt-2")
