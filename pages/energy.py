"""能源 Energy: every energy indicator for the scope and period in the URL, at every level.

Tiles (use, standard coal, CO₂, intensities, quota, operations), the daily load curve, one building's hourly
profile and day × hour heatmap, breakdowns by building type and end use, top-N buildings, the quota projection,
the peer ranking and the anomaly list. The energy type (``etype``) and the building (``building``) are URL
parameters too, so every view is a permalink. The header callback reports bad input; the sections render in
their own callbacks (in parallel, each cached at the data layer) and stay empty when the header has a message.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from components import energy as view
from components.export import export_bar
from components.format import fmt_number
from components.i18n import t
from components.links import carried, href, scope_params
from components.page import cached_view, guarded, lang_of, scope_bar
from data_access import energy, registry
from data_access.config import get_config
from data_access.dims import scope_nav
from data_access.request import parse_request
from export import domain_csv_sections, pdf_status

PATH = "/energy"
dash.register_page(__name__, path=PATH, name="能源", name_en="Energy", order=2, title="能源 · 学校后勤决策驾驶舱")

DEFAULT_TYPE = "electricity"
TYPE_TILES = {"electricity": "energy.electricity_kwh", "water": "energy.water_m3", "gas": "energy.gas_m3",
              "heat": "energy.heat_gj"}
USE_TILES = ("energy.total_kgce", "energy.co2_t", "energy.yoy")
INTENSITY_TILES = ("energy.per_area", "energy.per_capita", "energy.water_per_capita", "energy.quota_use")
OPS_TILES = ("energy.night_ratio", "energy.holiday_ratio", "energy.leak_suspect", "energy.anomalies",
             "energy.meter_coverage", "energy.data_completeness")
INTENSITY_KEYS = {"energy.per_area": "per_area", "energy.per_capita": "per_capita",
                  "energy.water_per_capita": "water_per_capita"}


class ids:
    REQUEST = "energy-request"
    HEADER = "energy-header"
    CURVES = "energy-curves"
    BUILDING = "energy-building-body"
    PICK = "energy-building-pick"
    PICKED = "energy-building-picked"
    NAV = "energy-nav"
    BREAKDOWN = "energy-breakdown"
    QUOTA = "energy-quota"
    INTENSITY = "energy-intensity"
    ANOMALIES = "energy-anomalies"


def layout(**params):
    lang = lang_of(params)

    def slot(slot_id):
        return dcc.Loading(html.Div(id=slot_id), type="dot", delay_show=300)

    building = view.section(t("energy.section.building", lang), slot(ids.BUILDING), "energy-building",
                            extra=dcc.Dropdown(id=ids.PICK, options=[], clearable=False, searchable=True,
                                               placeholder=t("energy.building.pick", lang),
                                               className="energy-pick"))
    return html.Div([
        dcc.Store(id=ids.REQUEST, data=params),
        dcc.Store(id=ids.PICKED),
        dcc.Location(id=ids.NAV, refresh="callback-nav"),
        slot(ids.HEADER),
        html.Div([
            slot(ids.CURVES),
            building,
            slot(ids.BREAKDOWN),
            dbc.Row([dbc.Col(slot(ids.QUOTA), xs=12, xxl=6), dbc.Col(slot(ids.INTENSITY), xs=12, xxl=6)],
                    className="g-3"),
            slot(ids.ANOMALIES),
        ], className="energy-page"),
    ])


# --- request ------------------------------------------------------------------------------------------------

def _request(params):
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    etype = params.get("etype") if params.get("etype") in view.TYPES else DEFAULT_TYPE
    base = scope_params(req.scope.params(), req.period, req.lang)
    if etype != DEFAULT_TYPE:
        base["etype"] = etype
    return req, etype, base, cfg


def _has_meters(scope) -> bool:
    return bool(energy.meter_types(scope))


def _place(level: str, facility_id: str, lang: str, labels: dict | None = None) -> str:
    """A building's name; with its school's name above school level (every school has a 第一教学楼)."""
    labels = labels if labels is not None else energy.building_labels(lang)
    name = labels.get(facility_id)
    if name is None:
        return facility_id
    return name[1] if level in ("association", "region") else name[0]


def _building_link(base: dict, facility_id: str, etype: str | None = None, labels: dict | None = None) -> str:
    """This page at the building's school, with the building opened (etype of the finding when given)."""
    labels = labels if labels is not None else energy.building_labels("zh")
    school = labels[facility_id][2] if facility_id in labels else None
    keep = {k: v for k, v in base.items() if k in ("from", "to", "lang", "etype")}
    if etype:
        keep["etype"] = etype
    return href(PATH, {**keep, "school": str(school), "building": facility_id}) + "#energy-building"


# --- header -------------------------------------------------------------------------------------------------

@callback(Output(ids.HEADER, "children"), Input(ids.REQUEST, "data"))
@guarded
@cached_view
def render_header(params):
    req, etype, base, cfg = _request(params)
    scope, period, lang = req.scope, req.period, req.lang
    bar = scope_bar(PATH, scope_nav(scope, lang), scope, period, lang, cfg.today(),
                    extra={"etype": etype} if etype != DEFAULT_TYPE else None)
    bar = html.Div([bar, html.Div(export_bar(  # exports (export.py)
        "energy", scope_params(scope.params(), period, lang), lang, pdf_status(lang),
        domain_csv_sections("energy", scope, lang)), className="mt-2")])
    available = energy.meter_types(scope)
    if not available:
        return [bar, dbc.Alert(t("energy.empty.scope", lang), color="secondary", className="mt-3",
                               id="energy-empty")]
    use_ids = tuple(TYPE_TILES[e] for e in ("electricity", "water", "gas", "heat") if e in available) + USE_TILES
    figures = energy.tile_figures(scope, period, use_ids + INTENSITY_TILES + OPS_TILES)
    overview = {k: v for k, v in base.items() if k != "etype"}

    def make(ind_id):
        item = figures.get(ind_id)
        if item is None:
            return None
        ind = registry.get(ind_id)
        data = registry.Tile(ind, item["current"], None, item["change"])
        return view.tile(data, item["as_of"], lang, _details(ind, item, lang), href("/", overview, ind=ind_id),
                         cfg.min_group_size)

    groups = [("energy.group.use", [x for x in map(make, use_ids) if x is not None]),
              ("energy.group.intensity", [x for x in map(make, INTENSITY_TILES) if x is not None]),
              ("energy.group.ops", [x for x in map(make, OPS_TILES) if x is not None])]
    return [bar, view.type_switch(PATH, overview, etype, lang, available), view.tile_groups(groups, lang)]


def _details(ind, item, lang) -> list[str]:
    cur = item["current"]
    if cur.value is None:
        if ind.id == "energy.holiday_ratio":
            return [t("energy.detail.no_off", lang)]
        return [t("energy.detail.night_scope", lang)] if ind.id == "energy.night_ratio" else []
    if ind.kind == "sum" and ind.unit != "个":
        if not item["covered"]:
            return [t("energy.detail.yoy_na", lang)]
        return [] if item["yoy"] is None else [t("energy.detail.yoy", lang, value=view.fmt_pct(item["yoy"], sign=True))]
    if ind.id in INTENSITY_KEYS:
        out = []
        if item["peer"] is not None:
            out.append(t("energy.detail.peer", lang, value=fmt_number(item["peer"], ind.decimals)))
        elif item.get("peers"):    # a peer group too small to show: the status says what it compares with
            key = "energy.detail.few_peers_ly" if item.get("basis") == "last_year" else "energy.detail.few_peers"
            out.append(t(key, lang, n=energy.PEER_MIN_GROUP))
        if item["last_year"] is not None:
            out.append(t("energy.detail.last_year", lang, value=fmt_number(item["last_year"], ind.decimals)))
        return out
    if ind.id == "energy.quota_use":
        ytd = 100.0 * cur.extra["ytd"] / cur.den if cur.den else None
        lo, hi = cur.extra.get("lo"), cur.extra.get("hi")
        if lo is None or hi is None:
            return [t("energy.detail.quota_noband", lang, ytd=view.fmt_pct(ytd, 0))]
        out = [t("energy.detail.quota", lang, ytd=view.fmt_pct(ytd, 0), lo=f"{100.0 * lo / cur.den:.0f}",
                 hi=view.fmt_pct(100.0 * hi / cur.den, 0))]
        if cur.extra.get("unbanded"):
            out.append(t("energy.detail.quota_unbanded", lang, n=int(cur.extra["unbanded"])))
        return out
    if ind.id == "energy.night_ratio":
        return [t("energy.detail.workdays", lang)]
    return []


# --- load curve ---------------------------------------------------------------------------------------------

@callback(Output(ids.CURVES, "children"), Input(ids.REQUEST, "data"))
@view.section_guard(None)
@cached_view
def render_curves(params):
    req, etype, base, cfg = _request(params)
    scope, period, lang = req.scope, req.period, req.lang
    if not _has_meters(scope):
        return None
    data = energy.panel_daily(scope, period, etype)
    frame = data["daily"]
    unit = view.UNITS[etype]
    title = f"{t('energy.section.curves', lang)} · {view.type_name(etype, lang)}"
    if frame.empty:
        return view.section(title, view.empty(t("energy.curves.none", lang)), "energy-curves-card")
    series = {e: (list(g["day"]), list(g["value"])) for e, g in frame.groupby("energy_type", sort=False)}
    spans = data["spans"]
    note = t("energy.curves.shaded", lang) if spans else None
    figure = view.daily_figure(series, unit, lang, spans)
    return view.section(title, view.graph(figure, "energy-daily-graph"), "energy-curves-card", extra=note)


# --- one building -------------------------------------------------------------------------------------------

@callback(Output(ids.BUILDING, "children"), Output(ids.PICK, "options"), Output(ids.PICK, "value"),
          Output(ids.PICKED, "data"), Input(ids.REQUEST, "data"))
@view.section_guard((None, [], None, None))
@cached_view
def render_building(params):
    req, etype, base, cfg = _request(params)
    scope, period, lang = req.scope, req.period, req.lang
    if not _has_meters(scope):
        return view.empty(t("energy.building.none", lang)), [], None, None
    data = energy.panel_building(scope, period, etype, params.get("building"))
    if data is None:
        return view.empty(t("energy.building.none", lang)), [], None, None
    labels = energy.building_labels(lang)
    chosen = data["chosen"]
    options = view.building_picker_options([(fid, _place(scope.level, fid, lang, labels)) for fid in data["options"]])
    unit = view.UNITS[etype]
    if data["empty"]:
        body = view.empty(t("energy.building.nodata", lang))
    else:
        weekly = data["weekly"]
        heat_title = t("energy.building.heatmap_weekly" if weekly else "energy.building.heatmap", lang)
        if not weekly:
            heat_title += f" · {t('energy.building.offday', lang)}"
        body = html.Div(dbc.Row([
            dbc.Col([view.subtitle(t("energy.building.profile", lang)),
                     view.graph(view.profile_figure(data["profile"], unit, lang), "energy-profile-graph")],
                    xs=12, xl=5),
            dbc.Col([view.subtitle(heat_title),
                     view.graph(view.heatmap_figure(data["columns"], data["z"], unit, lang, data["off_days"], weekly),
                                "energy-heatmap-graph")], xs=12, xl=7),
        ], className="g-3"), id="energy-building-charts", **{"data-building": chosen})
    return body, options, chosen, chosen


@callback(Output(ids.NAV, "href"), Input(ids.PICK, "value"), State(ids.PICKED, "data"), State(ids.REQUEST, "data"),
          prevent_initial_call=True)
def pick_building(value, picked, params):
    """Choosing another building navigates to the same view with ``building`` set (a permalink)."""
    if not value or value == picked:
        return no_update
    params = params or {}
    keep = carried(params)
    if params.get("etype") in view.TYPES:
        keep["etype"] = params["etype"]
    return href(PATH, {**keep, "building": value})


# --- breakdowns and top-N -----------------------------------------------------------------------------------

@callback(Output(ids.BREAKDOWN, "children"), Input(ids.REQUEST, "data"))
@view.section_guard(None)
@cached_view
def render_breakdown(params):
    req, etype, base, cfg = _request(params)
    scope, period, lang = req.scope, req.period, req.lang
    if not _has_meters(scope):
        return None
    unit = view.UNITS[etype]
    data = energy.panel_breakdown(scope, period, etype)
    types = data["types"]
    by_type = (view.empty(t("energy.breakdown.none", lang)) if types.empty else view.graph(
        view.hbar_figure([t(f"energy.ftype.{x}", lang) for x in types["facility_type"]], list(types["value"]),
                         unit, lang), "energy-type-graph"))
    uses = data["end_use"]
    by_use = (view.empty(t("energy.breakdown.none", lang)) if uses.empty else view.graph(
        view.hbar_figure([t(f"energy.enduse.{x}", lang) for x in uses["end_use"]], list(uses["value"]), "kWh",
                         lang, view.TYPE_COLORS["electricity"]), "energy-enduse-graph"))
    largest, growing, kind = data["largest"], data["growing"], data["kind"]
    labels = energy.building_labels(lang)

    def rows(frame):
        return [{"facility_id": r.facility_id, "name": _place(scope.level, r.facility_id, lang, labels),
                 "href": _building_link(base, r.facility_id, labels=labels), "value": r.value,
                 "growth": None if pd.isna(r.growth) else float(r.growth)} for r in frame.itertuples()]

    growth_title = t("energy.top.growth_yoy" if kind == "yoy" else "energy.top.growth_prev", lang)
    body = [
        dbc.Row([
            dbc.Col([view.subtitle(f"{t('energy.breakdown.type', lang)} · {view.type_name(etype, lang)}"), by_type],
                    xs=12, lg=6),
            dbc.Col([view.subtitle(t("energy.breakdown.end_use", lang)), by_use], xs=12, lg=6),
        ], className="g-3 mb-2"),
        dbc.Row([
            dbc.Col([view.subtitle(f"{t('energy.top.use', lang)} · {view.type_name(etype, lang)}"),
                     view.top_table(rows(largest), unit, lang, False, "energy-top-use")], xs=12, lg=6),
            dbc.Col([view.subtitle(f"{growth_title} · {view.type_name(etype, lang)}"),
                     view.top_table(rows(growing), unit, lang, True, "energy-top-growth")], xs=12, lg=6),
        ], className="g-3"),
    ]
    return view.section(t("energy.section.breakdown", lang), body, "energy-breakdown-card")


# --- quota --------------------------------------------------------------------------------------------------

@callback(Output(ids.QUOTA, "children"), Input(ids.REQUEST, "data"))
@view.section_guard(None)
@cached_view
def render_quota(params):
    req, etype, base, cfg = _request(params)
    scope, period, lang = req.scope, req.period, req.lang
    if not _has_meters(scope):
        return None
    title = f"{t('energy.section.quota', lang)} · {period.end.year}"
    if scope.level not in registry.get("energy.quota_use").levels:
        return view.section(title, view.empty(t("energy.quota.not_level", lang)), "energy-quota-card")
    data = energy.panel_quota(scope, period, etype)
    if data is None:
        return view.section(title, view.empty(t("energy.quota.none", lang, year=period.end.year)),
                            "energy-quota-card")
    table = [{**r, "unit": view.UNITS[r["energy_type"]]} for r in data["rows"]]
    chart_type, path = data["chart_type"], data["path"]
    chart = None
    if path is not None:
        p = path["path"]
        drawn = None if p is None else {"days": list(p["day"]), "mid": list(p["mid"]),
                                        "lo": list(p["lo"]) if "lo" in p else None,
                                        "hi": list(p["hi"]) if "hi" in p else None}
        chart = [view.subtitle(view.type_name(chart_type, lang)),
                 view.graph(view.quota_figure(list(path["actual"].index), list(path["actual"].to_numpy()), drawn,
                                              path["quota"], view.UNITS[chart_type], lang), "energy-quota-graph")]
        if not path["complete"]:
            chart.append(html.Div(t("energy.quota.partial", lang), className="small text-muted"))
    body = [*(chart or []), view.quota_table(table, lang),
            html.Div(t("energy.quota.note", lang), className="small text-muted mt-2")]
    return view.section(title, body, "energy-quota-card")


# --- intensity ----------------------------------------------------------------------------------------------

@callback(Output(ids.INTENSITY, "children"), Input(ids.REQUEST, "data"))
@view.section_guard(None)
@cached_view
def render_intensity(params):
    req, etype, base, cfg = _request(params)
    scope, period, lang = req.scope, req.period, req.lang
    if not _has_meters(scope):
        return None
    title = t("energy.section.intensity", lang)
    if scope.level in ("campus", "facility"):
        return view.section(title, view.empty(t("energy.int.not_level", lang)), "energy-intensity-card")
    data = energy.panel_intensity(scope, period)
    if scope.level == "school":
        rows = []
        for r in data["rows"]:
            ind = registry.get(r["id"])
            rows.append({**r, "name": ind.name(lang), "unit": ind.unit, "decimals": ind.decimals})
        return view.section(title, view.intensity_table(rows, lang, energy.PEER_MIN_GROUP), "energy-intensity-card")
    body = []
    keep = {k: v for k, v in base.items() if k in ("from", "to", "lang", "etype")}
    schools = energy.school_labels(lang)
    for what, ranking in data["rankings"].items():
        ind = energy.INTENSITY[what]
        if ranking.empty:
            continue
        names = [schools.get(s, s) for s in ranking["school_id"]]
        figure = view.ranking_figure(names, list(ranking["value"]), list(ranking["status"]),
                                     list(ranking["peer_median"]), list(ranking["p25"]), list(ranking["p75"]),
                                     ind.unit, lang)
        rows = [{"school_id": r.school_id, "name": n, "href": href(PATH, {**keep, "school": r.school_id}),
                 "type": r.school_type, "value": r.value, "peer_median": r.peer_median, "p25": r.p25, "p75": r.p75,
                 "peers": r.peers, "last_year": r.last_year, "basis": r.basis, "status": r.status}
                for r, n in zip(ranking.itertuples(), names)]
        body.append(html.Div([
            view.subtitle(t("energy.rank.title", lang, name=ind.name(lang))),
            html.Div(view.graph(figure, f"energy-rank-{what}-graph"), className="energy-rank-scroll"),
            view.ranking_grid(rows, ind.unit, lang, f"energy-rank-{what}"),
        ], className="mb-3"))
    if not body:
        return view.section(title, view.empty(t("energy.breakdown.none", lang)), "energy-intensity-card")
    body.append(html.Div(t("energy.rank.few", lang, n=energy.PEER_MIN_GROUP), className="small text-muted"))
    return view.section(title, body, "energy-intensity-card")


# --- anomaly list -------------------------------------------------------------------------------------------

@callback(Output(ids.ANOMALIES, "children"), Input(ids.REQUEST, "data"))
@view.section_guard(None)
@cached_view
def render_anomalies(params):
    req, etype, base, cfg = _request(params)
    scope, period, lang = req.scope, req.period, req.lang
    if not _has_meters(scope):
        return None
    found = energy.panel_anomalies(scope, period)
    limit = int(energy.setting("anomaly_list_max_rows", 60))
    counts = {rule: len(frame) for rule, frame in found.items()}
    shown, rows = {}, []
    labels = energy.building_labels(lang)
    for rule in energy.ANOMALY_RULES:
        frame = _ordered(rule, found[rule]).head(limit)
        shown[rule] = len(frame)
        rows.extend(_finding(rule, r, scope, base, lang, labels) for r in frame.to_dict("records"))
    return view.section(t("energy.section.anomalies", lang), view.anomaly_table(rows, counts, shown, lang),
                        "energy-anomalies-card")


def _ordered(rule: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Most severe first."""
    if frame.empty:
        return frame
    key = {"spike": lambda f: -f["z"].abs(), "leak": lambda f: -f["max_share"], "missing": lambda f: f["readings"],
           "night": lambda f: -f["ratio"], "holiday": lambda f: -f["ratio"]}[rule]
    return frame.assign(_k=key(frame)).sort_values(["_k"], kind="stable").drop(columns="_k")


def _finding(rule: str, r: dict, scope, base: dict, lang: str, labels: dict) -> dict:
    fid = r["facility_id"]
    out = {"rule": rule, "facility_id": fid, "meter_id": r.get("meter_id"),
           "where": _place(scope.level, fid, lang, labels)}

    def link(etype=None):
        return _building_link(base, fid, etype, labels)

    if rule == "spike":
        unit = view.UNITS[r["energy_type"]]
        out.update(day=r["day"], figure=f"z = {r['z']:+.1f}", href=link(r["energy_type"]),
                   why=t("energy.why.spike", lang, z=f"{r['z']:+.1f}", value=view.fmt_amount(r["consumption"], unit, lang, 1),
                         base=view.fmt_amount(r["expected"], unit, lang, 1), n=int(r["baseline_days"]),
                         dow=t(f"energy.dow.{pd.Timestamp(r['day']).isoweekday()}", lang)))
    elif rule == "leak":
        limit = float(energy.setting("leak_night_share", 0.10))
        out.update(day=r["first_day"], figure=view.fmt_pct(100.0 * r["max_share"], 0),
                   href=link("water"),
                   why=t("energy.why.leak", lang, share=view.fmt_pct(100.0 * r["max_share"], 0),
                         limit=view.fmt_pct(100.0 * limit, 0), nights=int(r["nights"]), first=r["first_day"]))
    elif rule == "missing":
        key = "energy.why.missing_whole" if r["whole"] else "energy.why.missing"
        out.update(day=r["day"], figure=f"{int(r['readings'])}/{int(r['expected'])}", href=link(),
                   why=t(key, lang, meters=int(r["meters"]), readings=int(r["readings"]), expected=int(r["expected"])))
    elif rule == "night":
        limit = get_config().threshold("energy.night_ratio").amber
        out.update(day=r["worst_day"], figure=f"{r['ratio']:.2f}", href=link("electricity"),
                   why=t("energy.why.night", lang, ratio=f"{r['ratio']:.2f}", limit=f"{limit:g}",
                         over=int(r["days_over"]), days=int(r["days"]), worst=f"{r['worst']:.2f}"))
    else:
        limit = get_config().threshold("energy.holiday_ratio").amber
        etype = energy.setting("holiday_ratio_energy_type", "electricity")
        unit = view.UNITS[etype]
        out.update(day=r["worst_day"], figure=f"{r['ratio']:.2f}", href=link(etype),
                   why=t("energy.why.holiday", lang, off=view.fmt_amount(r["off_mean"], unit, lang),
                         term=view.fmt_amount(r["term_mean"], unit, lang), ratio=f"{r['ratio']:.2f}", limit=f"{limit:g}",
                         over=int(r["days_over"]), days=int(r["days"])))
    return out
