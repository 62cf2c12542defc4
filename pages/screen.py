"""大屏 Wall screen: everything set in the URL, zero clicks.

/screen?school=SH-U01&views=overview,dining,energy&dwell=30&refresh=60&reload=6&theme=dark&id=canteen-3&name=食堂大屏3
Views rotate in the browser (no server round trip); data refresh reads the shared snapshot (never the
warehouse); a full reload every ``reload`` hours keeps long-running screens healthy.
"""
from __future__ import annotations

import logging
import time
import urllib.parse

import dash
from dash.exceptions import PreventUpdate
from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, dcc, html

from components import screen as sc
from components.i18n import t
from components.messages import input_error
from components.page import guarded, lang_of
from data_access import registry
from data_access.config import get_config
from data_access.dims import org_tree
from data_access.errors import InputError
from data_access.screen import heartbeat, parse_target, screen_settings, snapshot_for_screen

logger = logging.getLogger(__name__)

dash.register_page(__name__, path="/screen", name="大屏", name_en="Screen", nav=False, title="大屏 · 学校后勤")


class ids:
    PARAMS = "screen-params"
    STATE = "screen-state"
    ROTATE = "screen-rotate"
    REFRESH = "screen-refresh"
    CLOCK = "screen-clock-tick"
    RELOAD = "screen-reload"
    HEADER = "screen-header"
    BODY = "screen-body"
    TICKER = "screen-ticker"
    SCALE = "screen-scale"


def layout(**params):
    lang = lang_of(params)
    try:
        settings = screen_settings(params)
    except InputError as exc:
        return html.Div(input_error(exc.message(lang), lang), className="screen-root screen-error")
    return html.Div([
        dcc.Store(id=ids.PARAMS, data=params),
        dcc.Store(id=ids.STATE, data={"index": 0, "views": []}),
        dcc.Store(id=ids.SCALE),
        dcc.Interval(id=ids.ROTATE, interval=settings["dwell"] * 1000),
        dcc.Interval(id=ids.REFRESH, interval=settings["refresh"] * 1000),
        dcc.Interval(id=ids.CLOCK, interval=1000),
        dcc.Interval(id=ids.RELOAD, interval=settings["reload_h"] * 3600 * 1000),
        html.Div([html.Div(id=ids.HEADER, className="screen-header-main"),
                  html.Span(id=sc.CLOCK, className="sh-clock")], className="screen-header"),
        html.Div(html.Div(t("screen.loading", lang), className="screen-loading"), id=ids.BODY, className="screen-body"),
        html.Div(id=ids.TICKER, className="screen-footer"),
    ], className=f"screen-root theme-{settings['theme']}", **{"data-bs-theme": settings["theme"]})


def _scope_name(params: dict, lang: str) -> str:
    tree = org_tree()
    for level in ("facility", "campus", "school", "region"):
        if params.get(level):
            return tree.name(level, params[level], lang)
    return t("scope.all", lang)


@callback(
    Output(ids.HEADER, "children"),
    Output(ids.BODY, "children"),
    Output(ids.TICKER, "children"),
    Input(ids.REFRESH, "n_intervals"),
    Input(ids.SCALE, "data"),
    State(ids.PARAMS, "data"),
    State(ids.STATE, "data"),
)
def refresh(_n, scale, params, state):
    if not scale:
        raise PreventUpdate  # the browser reports its size first (figures are drawn to scale)
    try:
        out = _render(params or {}, state or {}, float(scale))
    except Exception:   # a screen never shows an error: it keeps what it shows and tries again next interval
        logger.exception("screen refresh failed; keeping the last render")
        raise PreventUpdate from None
    if isinstance(out, tuple):
        return out
    # guarded() turned a failure into one message component. A wrong URL (unknown view or place, a scope outside
    # the token) will not fix itself: say so. Anything else (an internal error, the warehouse) passes: the last
    # good render stays, marked stale by its age, and the next refresh tries again.
    if getattr(out, "id", None) == "input-error":
        return [], out, []
    logger.warning("screen refresh failed (%s); keeping the last render", getattr(out, "id", type(out).__name__))
    raise PreventUpdate


@guarded
def _render(params, state, scale=1.0):
    cfg = get_config()
    lang = lang_of(params)
    settings = screen_settings(params)
    target = parse_target(params)
    snap = snapshot_for_screen(target, settings["refresh"])
    index = int(state.get("index") or 0) % len(target.views)
    screen_id = str(params.get("id") or "")[:64]
    if screen_id:
        # the listed URL never carries the screen's token (the token is a credential)
        shown = {k: v for k, v in params.items() if k != "token"}
        try:
            heartbeat(screen_id, str(params.get("name") or screen_id), "/screen?" + urllib.parse.urlencode(shown),
                      target.views, target.views[index], settings["refresh"], snap)
        except Exception as exc:  # the app database (SQLite "database is locked"…): the next refresh reports again
            logger.warning("screen %s: heartbeat not recorded: %s", screen_id, exc)
    dark = settings["theme"] == "dark"
    now = time.time()
    data = snap.get("data")
    # stale when the warehouse failed, and also when nothing refreshed the snapshot for three intervals (the
    # warm-up stopped): old figures never pass for current ones
    computed = snap.get("computed_at")
    stale = snap.get("stale_since") is not None or (
        data is not None and computed is not None and now - computed > 3 * settings["refresh"])
    if data is None:
        status = t("screen.unavailable" if snap.get("error") else "screen.loading", lang)
    elif stale:
        status = t("screen.stale", lang, age=sc.age_text(now - snap["computed_at"], lang))
    else:
        status = f"{t('screen.updated', lang)} {time.strftime('%H:%M', time.localtime(snap['computed_at']))}"
    view_names = [sc.view_label(v, lang) for v in target.views]
    head = sc.header(cfg.title_en if lang == "en" else cfg.title_zh, _scope_name(params, lang), view_names, index,
                     status, stale or data is None)
    if data is None:
        return head, html.Div(status, className="screen-loading"), sc.ticker([], {}, lang)
    panels = []
    for i, view in enumerate(target.views):
        vd = data["views"].get(view, {"tiles": []})
        tiles = [(registry.get(tile["id"]), tile) for tile in vd["tiles"]]
        trend = vd.get("trend")
        panels.append(sc.view_panel(view, tiles, trend, registry.get(trend["id"]) if trend else None, lang,
                                    i == index, dark, cfg.min_group_size, scale))
    names = {i.id: i.name(lang) for i in registry.all_indicators()}
    return head, panels, sc.ticker(data["alerts"], names, lang)


# Rotation, clock and periodic reload run in the browser (assets/screen.js): no server round trip.
clientside_callback(
    ClientsideFunction(namespace="screen", function_name="scale"),
    Output(ids.SCALE, "data"),
    Input(ids.PARAMS, "data"),
)
clientside_callback(
    ClientsideFunction(namespace="screen", function_name="rotate"),
    Output(ids.STATE, "data"),
    Output({"type": sc.VIEW_TYPE, "index": ALL}, "className"),
    Input(ids.ROTATE, "n_intervals"),
    State(ids.STATE, "data"),
    State({"type": sc.VIEW_TYPE, "index": ALL}, "id"),
    prevent_initial_call=True,
)
clientside_callback(
    ClientsideFunction(namespace="screen", function_name="clock"),
    Output(sc.CLOCK, "children"),
    Input(ids.CLOCK, "n_intervals"),
)
clientside_callback(
    ClientsideFunction(namespace="screen", function_name="reload"),
    Output(ids.RELOAD, "disabled"),
    Input(ids.RELOAD, "n_intervals"),
    prevent_initial_call=True,
)
