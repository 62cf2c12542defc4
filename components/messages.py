"""Messages instead of tracebacks: bad input, no access, warehouse down, nothing to show."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from .i18n import t


def input_error(message: str, lang: str, back_href: str = "/", denied: bool = False) -> html.Div:
    return dbc.Alert([
        html.H5(t("error.denied" if denied else "error.input", lang), className="alert-heading"),
        html.P(message, className="mb-2", id="error-message"),
        dcc.Link(t("error.back", lang), href=back_href, className="alert-link"),
    ], color="warning", className="mt-3", id="input-error")


def warehouse_banner(reason: str, lang: str) -> dbc.Alert:
    return dbc.Alert([
        html.Strong(t("error.warehouse", lang)),
        html.Div([t("error.warehouse.detail", lang), ": ", html.Code(reason[:200])], className="small mt-1"),
    ], color="danger", className="mt-2 warehouse-banner", id="warehouse-banner")


def internal_error(lang: str) -> dbc.Alert:
    return dbc.Alert(t("error.internal", lang), color="danger", className="mt-3", id="internal-error")


def empty(text: str) -> html.Div:
    return html.Div(text, className="text-muted small empty-state")
