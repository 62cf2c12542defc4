"""The scope bar: breadcrumb of the management levels, a drill-down selector and the period picker.

All-in-One component: its callback only computes the next URL and navigates there (client-side, so the page
re-renders from the URL: every view stays a permalink).
"""
from __future__ import annotations

import datetime as dt

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, ctx, dcc, html, no_update

from .i18n import t
from .links import href


class ScopeBar(html.Div):
    class ids:
        @staticmethod
        def child(aio_id):
            return {"component": "ScopeBar", "subcomponent": "child", "aio_id": aio_id}

        @staticmethod
        def dates(aio_id):
            return {"component": "ScopeBar", "subcomponent": "dates", "aio_id": aio_id}

        @staticmethod
        def apply(aio_id):
            return {"component": "ScopeBar", "subcomponent": "apply", "aio_id": aio_id}

        @staticmethod
        def base(aio_id):
            return {"component": "ScopeBar", "subcomponent": "base", "aio_id": aio_id}

        @staticmethod
        def location(aio_id):
            return {"component": "ScopeBar", "subcomponent": "location", "aio_id": aio_id}

    def __init__(self, *, path: str, params: dict, crumbs: list[tuple[str, str | None]],
                 child_level: str | None, children: list[tuple[str, str]], start: dt.date, end: dt.date,
                 presets: list[tuple[str, str, bool]], lang: str, max_date: dt.date, aio_id: str = "scope"):
        """crumbs: (label, href or None for the current level); children: (id, name) one level down;
        presets: (label, href, active)."""
        crumb_items = []
        for i, (label, link) in enumerate(crumbs):
            if i:
                crumb_items.append(html.Span("›", className="crumb-sep"))
            crumb_items.append(dcc.Link(label, href=link, className="crumb") if link
                               else html.Span(label, className="crumb crumb-current", id="scope-current"))
        drill = dcc.Dropdown(
            id=self.ids.child(aio_id), options=[{"label": n, "value": k} for k, n in children],
            placeholder=f"{t('scope.drill', lang)} ({t(f'level.{child_level}', lang)})" if child_level else "",
            clearable=False, searchable=True, className="scope-drill", disabled=not children,
        ) if child_level else None
        period = html.Div([
            html.Span(t("period.label", lang), className="me-2 small text-muted"),
            dbc.ButtonGroup([
                dcc.Link(label, href=link, className=f"btn btn-sm {'btn-primary' if active else 'btn-outline-secondary'}")
                for label, link, active in presets
            ], size="sm", className="me-2"),
            dcc.DatePickerRange(id=self.ids.dates(aio_id), start_date=start.isoformat(), end_date=end.isoformat(),
                                max_date_allowed=max_date.isoformat(), display_format="YYYY-MM-DD",
                                first_day_of_week=1, minimum_nights=0, className="scope-dates"),
            dbc.Button(t("period.apply", lang), id=self.ids.apply(aio_id), size="sm", color="secondary",
                       className="ms-1"),
        ], className="d-flex align-items-center flex-wrap gap-1")
        super().__init__([
            dcc.Location(id=self.ids.location(aio_id), refresh="callback-nav"),
            dcc.Store(id=self.ids.base(aio_id), data={"path": path, "params": params, "child_level": child_level}),
            html.Div([html.Div(crumb_items, className="crumbs", id="scope-crumbs"), drill],
                     className="d-flex align-items-center gap-3 flex-wrap"),
            period,
        ], className="scope-bar d-flex justify-content-between align-items-center flex-wrap gap-2")


@callback(
    Output(ScopeBar.ids.location(MATCH), "href"),
    Input(ScopeBar.ids.child(MATCH), "value"),
    Input(ScopeBar.ids.apply(MATCH), "n_clicks"),
    State(ScopeBar.ids.dates(MATCH), "start_date"),
    State(ScopeBar.ids.dates(MATCH), "end_date"),
    State(ScopeBar.ids.base(MATCH), "data"),
    prevent_initial_call=True,
)
def _navigate(child, _clicks, start, end, base):
    if not base or not ctx.triggered_id:
        return no_update
    params = dict(base.get("params") or {})
    if ctx.triggered_id["subcomponent"] == "child":
        if not child or not base.get("child_level"):
            return no_update
        params[base["child_level"]] = child
        params.pop("ind", None)
    else:
        if not start or not end:
            return no_update
        params["from"], params["to"] = str(start)[:10], str(end)[:10]
    return href(base["path"], params)
