"""餐饮安全 Dining safety: every dining indicator for the scope and period in the URL.

Association, region, school and campus: the compliance tiles, a heatmap of the checks per school or canteen (a
click drills into that row), cold chain, hazards, certificates, inspections and meals served. One canteen
(facility level): the same tiles, and its daily checklist instead of the heatmap.
"""
from __future__ import annotations

import datetime as dt

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, callback, dcc, html, no_update

from components import dining as view
from components.export import export_bar
from components.i18n import t
from components.links import href, scope_params
from components.page import cached_view, guarded, scope_bar
from data_access import dining, meta, registry
from data_access.config import get_config
from data_access.dims import scope_nav
from data_access.period import Period
from data_access.request import parse_request
from export import domain_csv_sections, pdf_status

PATH = "/dining"
dash.register_page(__name__, path=PATH, name="餐饮安全", name_en="Dining safety", order=1,
                   title="餐饮安全 · 学校后勤决策驾驶舱")

CHECK_TILES = tuple(f"dining.{c}" for c in dining.CHECKS)
SAFETY_TILES = ("dining.cold_chain", "dining.cold_chain_excursions", "dining.cold_chain_online",
                "dining.hazards_overdue", "dining.hazard_closure", "dining.certificates_expiring",
                "dining.inspection", "dining.covers")
CHECKLIST_DAYS = 62     # the checklist shows at most this many (latest) days of the period
CURVES_MAX = 4          # temperature curves drawn above facility level (devices with excursions)


class ids:
    REQUEST = "dining-request"
    CONTENT = "dining-content"
    NAV = "dining-nav"


def layout(**params):
    return html.Div([
        dcc.Store(id=ids.REQUEST, data=params),
        dcc.Location(id=ids.NAV, refresh="callback-nav"),
        dcc.Loading(html.Div(id=ids.CONTENT, className="dining-page"), type="dot", delay_show=300),
    ])


@callback(Output(ids.NAV, "href"), Input({"type": view.HEATMAP_TYPE, "index": ALL}, "clickData"),
          prevent_initial_call=True)
def drill(clicks):
    """A click on a heatmap cell navigates to that row's scope (the link is the cell's customdata)."""
    for click in clicks or []:
        points = (click or {}).get("points") or []
        link = points[0].get("customdata") if points else None
        if isinstance(link, str) and link.startswith(PATH + "?"):
            return link
    return no_update


@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"))
@guarded
@cached_view
def render(params):
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    scope, period, lang = req.scope, req.period, req.lang
    bar = scope_bar(PATH, scope_nav(scope, lang), scope, period, lang, cfg.today())
    bar = html.Div([bar, html.Div(export_bar(  # exports (export.py)
        "dining", scope_params(scope.params(), period, lang), lang, pdf_status(lang),
        domain_csv_sections("dining", scope, lang)), className="mt-2")])
    if dining.canteens(scope).empty:
        return [bar, view.empty_scope(lang, facility=scope.level == "facility")]
    keep = scope_params({}, period, lang)   # period and language: what a drill-down link keeps
    places = {fid: (label, href(PATH, {**keep, "facility": fid}))
              for fid, label in dining.canteen_labels(scope, lang).items()}
    bands = {zone: dining.band(zone) for zone in cfg.dining.get("cold_chain", {})}
    min_n = cfg.min_group_size

    detail = (_checklist(scope, period, lang) if scope.level == "facility"
              else _heatmap(scope, period, lang, keep))
    overdue = registry.evaluate("dining.hazards_overdue", scope, period)
    return [
        bar,
        view.section(t("dining.section.checks", lang),
                     view.tile_grid(_tiles(CHECK_TILES, scope, period), lang, min_n, "dining-check-tiles"),
                     "dining-checks"),
        view.section(t("dining.section.safety", lang),
                     view.tile_grid(_tiles(SAFETY_TILES, scope, period), lang, min_n, "dining-safety-tiles"),
                     "dining-safety"),
        detail,
        _cold_chain(scope, period, lang, places, bands),
        dbc.Row([
            dbc.Col(view.section(t("dining.section.hazards", lang), [
                view.hazard_summary(dining.open_hazard_count(scope, period), overdue, lang),
                view.hazard_table(dining.open_hazards(scope, period), places, lang, dining.LIST_LIMIT),
                view.hazard_flow(dining.hazard_flow(scope, period), lang),
            ], "dining-hazards"), xs=12, xl=7),
            dbc.Col(view.section(t("dining.section.certs", lang), [
                view.certificate_summary(registry.evaluate("dining.certificates_expiring", scope, period),
                                         int(cfg.dining.get("certificate_warning_days", 30)), lang),
                view.certificate_table(dining.certificate_list(scope, period), places, lang, dining.LIST_LIMIT),
            ], "dining-certs"), xs=12, xl=5),
        ], className="g-3"),
        dbc.Row([
            dbc.Col(view.section(t("dining.section.inspection", lang),
                                 view.inspection_table(dining.inspection_list(scope, period), places, lang),
                                 "dining-inspection"), xs=12, xl=5),
            dbc.Col(view.section(t("dining.section.covers", lang), _covers(scope, period, lang), "dining-covers"),
                    xs=12, xl=7),
        ], className="g-3"),
    ]


def _tiles(indicator_ids, scope, period):
    return [(registry.tile(i, scope, period), meta.as_of(scope, registry.get(i).tables)) for i in indicator_ids]


def _heatmap(scope, period, lang, keep):
    level, rows = dining.heatmap(scope, period)
    names = dining.canteen_labels(scope, lang) if level == "facility" else None
    data = []
    for key, cells in rows:
        if level == "facility":
            name, link = names.get(key, key), href(PATH, {**keep, "facility": key})
        else:
            name, link = dining.place_name("school", key, lang), href(PATH, {**keep, "school": key})
        data.append({"key": key, "name": name, "href": link, "cells": cells})
    listed = {key for key, _ in rows}
    unlisted = dining.unlisted(scope, level, listed, lang)
    columns = [(i, t(f"dining.check.{i.split('.', 1)[1]}", lang) if i != "dining.cold_chain"
                else t("dining.heatmap.col.cold_chain", lang)) for i in dining.HEATMAP]
    decimals = {i: registry.get(i).decimals for i in dining.HEATMAP}
    return view.heatmap_card(data, columns, level, lang, unlisted, decimals)


def _checklist(scope, period, lang):
    shown = Period(max(period.start, period.end - dt.timedelta(days=CHECKLIST_DAYS - 1)), period.end)
    slots = dining.checklist(scope, shown)
    covers = dining.meals_served(scope, shown)
    return view.checklist_card(slots, covers, shown, period, list(dining.CHECKS), lang)


def _cold_chain(scope, period, lang, places, bands):
    min_minutes = int(get_config().dining.get("excursion_minutes", 30))
    runs = dining.excursions(scope, period)
    body = [view.excursion_table(runs, places, bands, lang, min_minutes)]
    devices, chosen = None, []
    if scope.level in ("school", "campus", "facility"):     # above a school the device list would be too long
        devices = dining.device_summary(scope, period)
        body.append(view.device_table(devices, places, bands, lang))
        chosen = (list(devices["device_id"]) if scope.level == "facility"
                  else list(runs["device_id"].value_counts().index[:CURVES_MAX]))
    curves = [(device, dining.device_curve(scope, period, device)) for device in chosen]
    span = (dt.datetime.combine(period.start, dt.time()), dt.datetime.combine(period.end_exclusive, dt.time()))
    body.append(view.curves(curves, devices, runs, places, bands, lang, scope.level, CURVES_MAX, span))
    return view.section(t("dining.section.cold", lang), body, "dining-cold")


def _covers(scope, period, lang):
    freq = "D" if period.days <= 92 else "W"
    points = registry.series("dining.covers", scope, period, freq)
    return view.covers_panel(points, freq, lang)
