"""总览 Overview: headline tiles of the four domains, the alert list, a trend per domain, and the breakdown of a
chosen indicator one level down. Everything is selected by the URL."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from components import charts
from components.alerts import alert_table
from components.export import export_bar, register_report
from components.i18n import pick, t
from components.links import href, scope_params
from components.page import cached_view, guarded, scope_bar
from components.tiles import kpi_tile
from data_access import maturity, overview, registry
from data_access.config import get_config
from data_access.dims import scope_nav
from data_access.overview import DOMAIN_NAMES, DOMAINS
from data_access.request import parse_request
from export import pdf_status

PATH = "/"
dash.register_page(__name__, path=PATH, name="总览", name_en="Overview", order=0, title="总览 · 学校后勤决策驾驶舱")


class ids:
    REQUEST = "overview-request"
    CONTENT = "overview-content"


DOMAIN_PATHS = {"dining": "/dining", "energy": "/energy", "service": "/service", "maturity": "/maturity"}


def layout(**params):
    return html.Div([
        dcc.Store(id=ids.REQUEST, data=params),
        dcc.Loading(html.Div(id=ids.CONTENT, className="overview"), type="dot", delay_show=300),
    ])


def _panel_exists(domain: str) -> bool:
    return any(p["path"] == DOMAIN_PATHS[domain] for p in dash.page_registry.values())


@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"))
@guarded
@cached_view
def render(params):
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    scope, period, lang = req.scope, req.period, req.lang
    base = scope_params(scope.params(), period, lang)
    selected = params.get("ind") if params.get("ind") in {i.id for i in registry.all_indicators()} else None

    columns = [_domain_card(d, scope, period, lang, base, cfg.min_group_size) for d in DOMAINS]
    body = [
        scope_bar(PATH, scope_nav(scope, lang), scope, period, lang, cfg.today()),
        html.Div(export_bar("overview", base, lang, pdf_status(lang), csv_sections=_csv(lang)), className="mt-2"),
        # the breakdown of the tile just clicked comes first, where the eye is after the click
        _breakdown(selected, scope, period, lang, base) if selected else None,
        dbc.Row([dbc.Col(c, xs=12, md=6, xxl=3, className="mb-3") for c in columns], className="g-3 mt-1"),
        _alerts(scope, period, lang, base),
    ]
    return body


def _domain_card(domain, scope, period, lang, base, min_n):
    tiles = []
    for data in overview.domain_tiles(domain, scope, period):
        ind = data.tile.indicator
        # A tile drills one level down (the breakdown below); where the scope has no level below for this
        # indicator, it opens the domain's panel instead.
        if scope.child_level in ind.levels or not _panel_exists(domain):
            link = href(PATH, base, ind=ind.id)
        else:
            link = href(DOMAIN_PATHS[domain], base)
        tiles.append(dbc.Col(kpi_tile(ind, data.tile.current, data.tile.change, data.as_of, lang, link, min_n),
                             xs=6, className="mb-2"))
    header = [html.Span(pick(lang, *DOMAIN_NAMES[domain]), className="domain-title")]
    if _panel_exists(domain):
        header.append(dcc.Link(t("tile.open_panel", lang) + " →", href=href(DOMAIN_PATHS[domain], base),
                               className="small ms-auto"))
    return dbc.Card([
        dbc.CardHeader(header, className="d-flex align-items-center"),
        dbc.CardBody([dbc.Row(tiles, className="g-2"), _trend(domain, scope, period, lang)]),
    ], className=f"domain-card domain-{domain} h-100", id=f"domain-{domain}")


def _trend(domain, scope, period, lang):
    if domain == "maturity":
        return _maturity_profile(scope, period, lang)
    found = overview.trend(domain, scope, period)
    if found is None:
        return None
    ind_id, freq, points = found
    ind = registry.get(ind_id)
    title = f"{t('trend.title', lang)} · {ind.name(lang)} {t('trend.weekly' if freq == 'W' else 'trend.daily', lang)}"
    values = [p.value for p in points]
    if not any(v is not None for v in values):
        return html.Div([html.Div(title, className="trend-title"), html.Div(t("trend.none", lang), className="small text-muted")])
    figure = charts.sparkline([p.key for p in points], values, ind.unit)
    return html.Div([html.Div(title, className="trend-title"),
                     dcc.Graph(figure=figure, config={"displayModeBar": False}, className="trend-graph",
                               id=f"trend-{domain}")])


def _maturity_profile(scope, period, lang):
    if scope.level in ("campus", "facility"):
        # Maturity is assessed per school: below it, point to the school's figures instead of repeating them.
        school_link = href(PATH, {**scope_params({"school": scope.school}, period, lang)})
        return html.Div([t("maturity.per_school", lang), " ", dcc.Link(t("maturity.see_school", lang), href=school_link)],
                        className="small text-muted mt-2")
    try:
        frame = maturity.school_scores(scope, period)
        fw = maturity.framework()
    except maturity.FrameworkError:   # the maturity page names the problem; the overview carries on
        return None
    if frame.empty:
        return None
    if 1 < len(frame) < fw.min_group:
        return html.Div(t("tile.too_few_schools", lang, n=len(frame)), className="small text-muted mt-2")
    if len(frame) == 1:
        labels = [pick(lang, d.name_zh, d.name_en) for d in fw.dimensions]
        values = [float(frame.iloc[0][f"dim.{d.id}"]) for d in fw.dimensions]
        title, figure = t("maturity.dimensions", lang), charts.hbars(labels, values)
    else:
        counts = frame["level"].value_counts()
        labels = [name for name, _ in fw.levels]
        values = [int(counts.get(i + 1, 0)) for i in range(len(labels))]
        title, figure = t("maturity.levels", lang), charts.bars(labels, values)
    return html.Div([html.Div(title, className="trend-title"),
                     dcc.Graph(figure=figure, config={"displayModeBar": False}, className="trend-graph",
                               id="trend-maturity")])


def _breakdown(indicator_id, scope, period, lang, base):
    ind = registry.get(indicator_id)
    level, results = overview.children(indicator_id, scope, period)
    close = dcc.Link(t("breakdown.close", lang), href=href(PATH, base), className="small ms-3")
    domain = indicator_id.split(".")[0]
    panel = (dcc.Link(t("tile.open_panel", lang) + " →", href=href(DOMAIN_PATHS[domain], base),
                      className="small ms-auto", id="breakdown-panel")
             if domain in DOMAIN_PATHS and _panel_exists(domain) else html.Span(className="ms-auto"))
    if level is None or not results:
        body = html.Div(t("breakdown.none", lang), className="text-muted small")
        title = ind.name(lang)
    else:
        names = scope_nav(scope, lang)["children"]
        name_of = dict(names)
        rows = [(r, name_of.get(str(r.key), str(r.key))) for r in results]
        figure = charts.breakdown_bar([n for _, n in rows], [r.value for r, _ in rows], [r.status for r, _ in rows],
                                      ind.unit, ind.decimals)
        child_links = html.Div([
            dcc.Link(n, href=href(PATH, {**base, level: str(r.key)}, ind=indicator_id),
                     className="btn btn-sm btn-outline-primary me-1 mb-1 drill-link",
                     id={"type": "drill", "index": str(r.key)})
            for r, n in rows
        ], className="mt-2")
        body = html.Div([dcc.Graph(figure=figure, config={"displayModeBar": False}, id="breakdown-graph"),
                         html.Div(t("breakdown.click", lang, level=t(f"level.{level}", lang)), className="small text-muted"),
                         child_links])
        title = t("breakdown.title", lang, name=ind.name(lang), level=t(f"level.{level}", lang))
    return dbc.Card([dbc.CardHeader([html.Span(title, className="fw-bold"), panel, close], className="d-flex"),
                     dbc.CardBody(body)], className="mt-3", id="breakdown")


def _alerts(scope, period, lang, base):
    rows = []
    for a in overview.alerts(scope, period, lang):
        ind = registry.get(a.indicator_id)
        rows.append({"id": a.indicator_id, "indicator": ind.name(lang), "level": a.level,
                     "domain_name": pick(lang, *DOMAIN_NAMES.get(a.domain, (a.domain, a.domain))),
                     "key": a.key, "where": a.name or t(f"level.{a.level}", lang),
                     "href": href(PATH, {**{k: v for k, v in base.items() if k in ('from', 'to', 'lang')}, **a.params}),
                     "value": a.result.value, "unit": ind.unit, "decimals": ind.decimals, "status": a.result.status})
    return dbc.Card([dbc.CardHeader(html.Span([t("alerts.title", lang), dbc.Badge(str(len(rows)), color="danger",
                                                                                 className="ms-2", id="alerts-count")]),
                                    className="fw-bold"),
                     dbc.CardBody(alert_table(rows, lang), className="p-0")], className="mb-4", id="alerts")


# --- export (components.export; served by export.py) ------------------------------------------------------------

def _csv(lang):
    return [("tiles", t("ex.tiles", lang)), ("alerts", t("alerts.title", lang))]


def report(params: dict):
    """The overview as an export: every domain's tiles, the alert list and the trends (the page's figures)."""
    import datetime as _dt

    import pandas as pd

    from components.export import Report, Section, change_decimals_of, change_unit, change_value, result_cell, safe_name
    from components.format import fmt_datetime, status_label
    from data_access.overview import place_name

    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    scope, period, lang, min_n = req.scope, req.period, req.lang, cfg.min_group_size
    col = lambda k: t(k, lang)  # noqa: E731
    rows, decimals, statuses, change_dec, newest = [], [], [], [], []
    for domain in DOMAINS:
        for data in overview.domain_tiles(domain, scope, period):
            ind, cur = data.tile.indicator, data.tile.current
            as_of = data.as_of.get("fact") or data.as_of.get("loaded_at")
            newest.append(data.as_of.get("fact"))
            rows.append({col("alerts.domain"): pick(lang, *DOMAIN_NAMES[domain]), col("alerts.indicator"): ind.name(lang),
                         col("ex.unit"): ind.unit, col("ex.period"): result_cell(ind, cur, lang, min_n),
                         col("ex.status"): status_label(cur.status, lang, cur.n, min_n),
                         col("ex.previous"): result_cell(ind, data.tile.previous, lang, min_n),
                         col("ex.change"): change_value(ind, data.tile.change),
                         col("ex.change_unit"): change_unit(ind, lang), col("tile.as_of"): fmt_datetime(as_of)})
            decimals.append(ind.decimals)
            change_dec.append(change_decimals_of(ind))
            statuses.append(cur.status)
    sections = [Section("tiles", col("ex.tiles"), pd.DataFrame(rows), row_decimals=decimals, row_status=statuses,
                        decimals={col("ex.change"): change_dec})]
    alert_rows, alert_dec = [], []
    for a in overview.alerts(scope, period, lang):
        ind = registry.get(a.indicator_id)
        alert_rows.append({col("alerts.domain"): pick(lang, *DOMAIN_NAMES.get(a.domain, (a.domain, a.domain))),
                           col("alerts.indicator"): ind.name(lang), col("alerts.where"): a.name or col(f"level.{a.level}"),
                           col("alerts.level"): col(f"level.{a.level}"), col("ex.unit"): ind.unit,
                           col("alerts.value"): result_cell(ind, a.result, lang, min_n)})
        alert_dec.append(ind.decimals)
    alert_cols = [col(k) for k in ("alerts.domain", "alerts.indicator", "alerts.where", "alerts.level", "ex.unit",
                                   "alerts.value")]
    sections.append(Section("alerts", col("alerts.title"), pd.DataFrame(alert_rows, columns=alert_cols),
                            row_decimals=alert_dec, row_status=["red"] * len(alert_rows)))
    for domain in DOMAINS:
        found = overview.trend(domain, scope, period)
        if found is None:
            continue
        ind_id, _freq, points = found
        ind = registry.get(ind_id)
        value_col = f"{ind.name(lang)} ({ind.unit})" if ind.unit else ind.name(lang)
        table = pd.DataFrame([{col("ex.date"): _dt.date.fromisoformat(p.key), value_col: result_cell(ind, p, lang, min_n)}
                              for p in points], columns=[col("ex.date"), value_col])
        figure = charts.sparkline([p.key for p in points], [p.value for p in points], ind.unit, height=240)
        sections.append(Section(f"trend-{domain}", t("ex.trend", lang, name=ind.name(lang)), table,
                                decimals={value_col: ind.decimals}, figure=figure, figure_height=240))
    where = place_name(scope.level, scope.key(), lang) if scope.key() else t("scope.all", lang)
    as_of = fmt_datetime(max([a for a in newest if a is not None], default=None))
    dates = f"{period.start.isoformat()} – {period.end.isoformat()}"
    title = f"{t('nav.overview', lang)} · {where} · {dates}"
    meta = ((col(f"level.{scope.level}"), where), (col("ex.period"), dates), (col("tile.as_of"), as_of),
            (col("ex.generated"), _dt.datetime.now().strftime("%Y-%m-%d %H:%M")),
            ("", t("ex.suppressed_note", lang, n=min_n)))
    return Report("overview", title, lang, meta, tuple(sections),
                  safe_name(f"overview-{scope.key() or 'all'}-{period.start.isoformat()}-{period.end.isoformat()}"),
                  running_head=title, running_foot=f"{col('tile.as_of')} {as_of}")


register_report("overview", report)
