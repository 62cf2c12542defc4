"""周例会 Weekly review: for a scope and an ISO week (or a teaching week), every domain's key indicators against
last week, the same week last year and the same teaching week of last term; what changed; the alerts opened and
closed; notes and action items carried forward until closed; exports (Excel, PDF, print view, CSV).

URL parameters: the scope (``region``, ``school``, ``campus``, ``facility``), ``week=2026-W46`` or ``tw=12`` (the
latest teaching week 12 that has begun), ``lang``. Without a week: the last complete week.
"""
from __future__ import annotations

import datetime as dt
import logging

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html, no_update

from components import review as view
from components.export import Report, csv_link, export_bar, register_report, safe_name
from components.format import fmt_datetime
from components.i18n import t
from components.links import href
from components.page import cached_view, guarded, lang_of
from data_access import notes, registry, review
from data_access.config import get_config
from data_access.dims import scope_nav
from data_access.errors import AppDatabaseError, InputError
from data_access.overview import DOMAIN_NAMES, place_name
from data_access.request import parse_request
from export import pdf_status

logger = logging.getLogger(__name__)

PATH = "/review"
dash.register_page(__name__, path=PATH, name="周例会", name_en="Weekly review", order=6,
                   title="周例会 · 学校后勤决策驾驶舱")
CSV_SECTIONS = ("indicators", "movements", "new-red", "alerts", "notes")


class ids:
    REQUEST = "review-request"
    CONTENT = "review-content"
    VERSION = "review-notes-version"
    NOTES = "review-notes-list"
    NOTES_CARD = "review-notes"
    STATUS_MSG = "review-status-msg"
    WEEK_PICK = "review-week-pick"
    LOCATION = "review-location"
    FORM = "review-notes-form"
    KIND = "review-note-kind"
    INDICATOR = "review-note-indicator"
    TEXT = "review-note-text"
    OWNER = "review-note-owner"
    DUE = "review-note-due"
    SAVE = "review-note-save"
    MESSAGE = "review-note-message"


def layout(**params):
    lang = lang_of(params)
    return html.Div([
        dcc.Store(id=ids.REQUEST, data=params),
        dcc.Store(id=ids.VERSION, data=0),
        dcc.Location(id=ids.LOCATION, refresh="callback-nav"),
        html.Div([html.Span(t("rv.week_label", lang), className="small text-muted me-2"),
                  dcc.Dropdown(id=ids.WEEK_PICK, placeholder=t("rv.pick", lang), clearable=False, options=[],
                               className="review-week-dropdown")],
                 className="d-flex align-items-center justify-content-end mb-2 no-print"),
        dcc.Loading(html.Div(id=ids.CONTENT, className="review-page"), type="dot", delay_show=300),
        dbc.Card([
            dbc.CardHeader([html.Span(t("rv.notes", lang), className="domain-title"),
                            html.Span(t("rv.notes.rule", lang), className="small text-muted ms-3"),
                            html.Span(csv_link("review", "notes", _keep(params), lang), className="ms-auto")],
                           className="d-flex align-items-center flex-wrap"),
            dbc.CardBody([html.Div(id=ids.NOTES), html.Div(id=ids.STATUS_MSG, className="small mt-1"),
                          html.Hr(className="no-print"), view.note_form(ids, lang)]),
        ], className="mb-4 review-section", id=ids.NOTES_CARD),
    ])


# --- request ------------------------------------------------------------------------------------------------

def _keep(params: dict) -> dict:
    """The parameters a review link carries (scope, week, language)."""
    out = {}
    for k in ("region", "school", "campus", "facility", "week", "tw", "lang"):
        v = (params or {}).get(k)
        if isinstance(v, list):
            v = v[0] if v else None
        if v not in (None, ""):
            out[k] = str(v)
    return out


def _request(params: dict):
    cfg = get_config()
    req = parse_request(params, default_lang=cfg.default_language)
    week = review.week_from_params(req.scope, params, cfg.today())
    return cfg, req, week


def _link(scope_params: dict, week, lang: str) -> str:
    return href(PATH, {**scope_params, "week": str(week), **({"lang": lang} if lang == "en" else {})})


def _indicators() -> dict:
    return {i.id: i for i in registry.all_indicators()}


def _scope_name(scope, lang: str) -> str:
    key = scope.key()
    if key is None:
        return t("scope.all", lang)
    return place_name(scope.level, key, lang)


def _place_names(items, lang: str) -> dict:
    out = {}
    for item in items:
        level = item.scope_level
        key = item.place.get(level) if level != "association" else None
        out[item.item_id] = place_name(level, key, lang) if key else t("scope.all", lang)
    return out


# --- page ---------------------------------------------------------------------------------------------------

@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"))
@guarded
def render(params):
    _cfg, req, week = _request(params)
    items = notes.items_for(req.scope, str(week), week.end)
    counts: dict[str, int] = {}
    for item in items:
        if item.indicator_id:
            counts[item.indicator_id] = counts.get(item.indicator_id, 0) + 1
    # the notes per indicator (the pencils' badges) are an argument of the cached view: a new note is a new view
    return _review(params, sorted(counts.items()))


@cached_view
def _review(params, note_counts):
    cfg, req, week = _request(params)
    scope, lang, min_n = req.scope, req.lang, cfg.min_group_size
    counts = dict(note_counts)
    data = review.build(scope, week, cfg.today(), lang)
    nav = scope_nav(scope, lang)
    crumbs = []
    for i, (_level, name, p) in enumerate(nav["ancestors"]):
        crumbs.append((name or t("scope.all", lang), None if i == len(nav["ancestors"]) - 1 else _link(p, week, lang)))
    children = [(name, _link({**scope.params(), nav["child_level"]: key}, week, lang)) for key, name in nav["children"]]
    nxt = week.next()
    keep = {**_keep(params), "week": str(week)}
    keep.pop("tw", None)
    bar = export_bar("review", keep, lang, pdf_status(lang),
                     csv_sections=[(k, t(f"rv.csv.{k}", lang)) for k in CSV_SECTIONS])
    indicators = _indicators()
    rel_pct = float(cfg.review.get("relative_band_pct", 10))
    return [
        view.header(data, _scope_name(scope, lang), crumbs, children, nav["child_level"],
                    _link(scope.params(), week.previous(), lang),
                    _link(scope.params(), nxt, lang) if nxt.start < cfg.today() else None, bar, lang),
        view.key_table(data, DOMAIN_NAMES, counts, lang, min_n, csv_link("review", "indicators", keep, lang)),
        view.changes_block(data, DOMAIN_NAMES, lang, min_n, rel_pct, csv_link("review", "movements", keep, lang),
                           csv_link("review", "new-red", keep, lang)),
        view.alerts_block(data, indicators, DOMAIN_NAMES, lambda p: _link(p, week, lang), lang, min_n,
                          csv_link("review", "alerts", keep, lang)),
        view.trends_block(data, lang, min_n, int(cfg.review.get("trend_weeks", 13))),
    ]


@callback(Output(ids.WEEK_PICK, "options"), Output(ids.WEEK_PICK, "value"), Output(ids.INDICATOR, "options"),
          Input(ids.REQUEST, "data"))
def choices(params):
    """The week picker (recent ISO weeks, with their teaching weeks) and the indicators a note can name. Errors
    are shown by ``render``; here they only leave the choices empty."""
    lang = lang_of(params)
    try:
        cfg, req, week = _request(params or {})
        today = cfg.today()
        teaching = {iso: n for n, iso in review.teaching_week_options(req.scope, today)}
        options, w = [], review.last_complete_week(today)
        if review.IsoWeek.of(today - dt.timedelta(days=1)) != w:
            w = review.IsoWeek.of(today - dt.timedelta(days=1))   # the week in progress is reviewable too
        for _ in range(60):
            label = f"{w} · {w.start.strftime('%m-%d')}–{w.end.strftime('%m-%d')}"
            if w in teaching:
                label += f" · {t('rv.tw', lang, n=teaching[w])}"
            options.append({"label": label, "value": str(w)})
            w = w.previous()
        if str(week) not in {o["value"] for o in options}:
            options.insert(0, {"label": str(week), "value": str(week)})
        indicator_options = [{"label": t("rv.notes.general", lang), "value": ""}]
        for domain, ind_ids in review.review_indicators().items():
            for ind_id in ind_ids:
                ind = registry.get(ind_id)
                if req.scope.level in ind.levels:
                    indicator_options.append({"label": f"{view.domain_name(domain, DOMAIN_NAMES, lang)} · "
                                                       f"{ind.name(lang)}", "value": ind_id})
        return options, str(week), indicator_options
    except Exception:  # the page's render shows what went wrong
        logger.debug("review choices unavailable", exc_info=True)
        return [], None, []


@callback(Output(ids.LOCATION, "href"), Input(ids.WEEK_PICK, "value"), State(ids.REQUEST, "data"),
          prevent_initial_call=True)
def pick_week(value, params):
    params = params or {}
    if not value or value == params.get("week"):
        return no_update
    keep = {k: v for k, v in _keep(params).items() if k != "tw"}
    try:
        current = str(review.week_from_params(parse_request(params).scope, params))
    except Exception:
        current = None
    if value == current:
        return no_update
    return href(PATH, {**keep, "week": value})


# --- notes and action items ---------------------------------------------------------------------------------

def _problem(message: str, color: str = "warning") -> dbc.Alert:
    return dbc.Alert(message, color=color, className="py-1 px-2 mb-0 small", id="review-note-problem")


@callback(Output(ids.NOTES, "children"), Input(ids.REQUEST, "data"), Input(ids.VERSION, "data"))
@guarded
def notes_list(params, _version):
    _cfg, req, week = _request(params)
    items = notes.items_for(req.scope, str(week), week.end)
    names = {k: i.name(req.lang) for k, i in _indicators().items()}
    return view.notes_list(items, names, _place_names(items, req.lang), req.lang)


@callback(Output(ids.MESSAGE, "children"), Output(ids.VERSION, "data"), Output(ids.TEXT, "value"),
          Input(ids.SAVE, "n_clicks"), State(ids.KIND, "value"), State(ids.INDICATOR, "value"),
          State(ids.TEXT, "value"), State(ids.OWNER, "value"), State(ids.DUE, "date"), State(ids.REQUEST, "data"),
          State(ids.VERSION, "data"), prevent_initial_call=True)
def save(clicks, kind, indicator_id, text, owner, due, params, version):
    lang = lang_of(params)
    if not clicks:
        return no_update, no_update, no_update
    try:
        _cfg, req, week = _request(params or {})
        notes.add_item(req.scope, str(week), kind or "note", text, indicator_id=indicator_id or None, owner=owner,
                       due_on=due)
    except InputError as exc:
        return _problem(exc.message(lang)), no_update, no_update
    except AppDatabaseError:
        logger.exception("saving a review item failed")
        return _problem(t("rv.notes.db_error", lang), "danger"), no_update, no_update
    except Exception:  # never a traceback in the browser
        logger.exception("saving a review item failed")
        return _problem(t("error.internal", lang), "danger"), no_update, no_update
    return (html.Span(t("rv.notes.saved", lang), className="text-success", id="review-note-saved"),
            (version or 0) + 1, "")


@callback(Output(ids.STATUS_MSG, "children"), Output(ids.VERSION, "data", allow_duplicate=True),
          Input(view.ids.item_status(ALL), "value"), State(ids.REQUEST, "data"), State(ids.VERSION, "data"),
          prevent_initial_call=True)
def set_status(_values, params, version):
    lang = lang_of(params)
    trigger = ctx.triggered_id
    if not trigger or not ctx.triggered or ctx.triggered[0].get("value") is None:
        return no_update, no_update
    try:
        _cfg, req, week = _request(params or {})
        changed = notes.update_item(trigger["index"], str(week), scope=req.scope, status=ctx.triggered[0]["value"])
    except InputError as exc:
        return _problem(exc.message(lang)), no_update
    except AppDatabaseError:
        logger.exception("updating a review item failed")
        return _problem(t("rv.notes.db_error", lang), "danger"), no_update
    except Exception:  # never a traceback in the browser
        logger.exception("updating a review item failed")
        return _problem(t("error.internal", lang), "danger"), no_update
    if not changed:
        return no_update, no_update
    return html.Span(t("rv.notes.updated", lang), className="text-success"), (version or 0) + 1


# A pencil in an indicator's row picks that indicator in the form and brings the form into view.
clientside_callback(
    """
    function(clicks) {
        const ctx = window.dash_clientside.callback_context;
        if (!ctx.triggered_id || !(clicks || []).some(Boolean)) { return window.dash_clientside.no_update; }
        const form = document.getElementById('%s');
        if (form) { form.scrollIntoView({block: 'center'}); }
        return ctx.triggered_id.index;
    }
    """ % ids.FORM,
    Output(ids.INDICATOR, "value"),
    Input(view.ids.note_for(ALL), "n_clicks"),
    prevent_initial_call=True,
)


# --- export -------------------------------------------------------------------------------------------------

def report(params: dict) -> Report:
    """The review as an export: the same figures, the notes and action items of the week."""
    cfg, req, week = _request(params)
    scope, lang, min_n = req.scope, req.lang, cfg.min_group_size
    data = review.build(scope, week, cfg.today(), lang)
    items = notes.items_for(scope, str(week), week.end)
    rel_pct = float(cfg.review.get("relative_band_pct", 10))
    sections = view.sections(data, items, _indicators(), DOMAIN_NAMES, _place_names(items, lang), lang, min_n,
                             rel_pct)
    scope_name = _scope_name(scope, lang)
    as_of = fmt_datetime(data.as_of.get("fact") or data.as_of.get("loaded_at"))
    title = f"{t('rv.title', lang)} · {scope_name} · {week}"
    meta = (
        (t("rv.scope", lang), scope_name),
        (t("rv.week_label", lang), view.week_text(data, lang)),
        (t("rv.col.last_week", lang), view.period_text(data.periods.get("last_week"), lang)),
        (t("rv.col.last_year", lang), view.period_text(data.periods.get("last_year"), lang)),
        (t("rv.col.last_term", lang), view.period_text(data.periods.get("last_term"), lang)),
        (t("rv.as_of", lang), as_of),
        (t("rv.generated", lang), dt.datetime.now().strftime("%Y-%m-%d %H:%M")),
        (t("rv.generated_by", lang), notes.current_user_name()),
        ("", t("ex.suppressed_note", lang, n=min_n)),
    )
    return Report("review", title, lang, meta, tuple(sections),
                  safe_name(f"review-{scope.key() or 'all'}-{week}"),
                  running_head=f"{t('rv.title', lang)} · {scope_name} · {view.week_text(data, lang)}",
                  running_foot=f"{t('rv.as_of', lang)} {as_of}")


register_report("review", report)
