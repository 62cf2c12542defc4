"""Any unknown path: a message and a way back, never a blank page."""
from __future__ import annotations

import dash
from dash import dcc, html

from components.i18n import t
from components.page import lang_of

dash.register_page(__name__, path="/404", name="404", nav=False)


def layout(**params):
    lang = lang_of(params)
    return html.Div([html.H3(t("notfound.title", lang)),
                     dcc.Link(t("error.back", lang), href="/?lang=en" if lang == "en" else "/")],
                    className="mt-4", id="not-found")
