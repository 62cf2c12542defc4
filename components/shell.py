"""The application shell: navigation bar (pages that exist, language switch, demo badge) around page content.

The bar is built once; a callback keeps its links carrying the current scope, period and language, and
translates its labels, whenever the URL changes.
"""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, callback, dcc, html

from .i18n import t
from .links import carried, href, params_from_search

NAV_LINK = "nav-link"
URL = "url"
BRAND = "brand-title"
LANG_SWITCH = "lang-switch"
USER = "nav-user"


def navbar(pages: list[dict], title: str, demo: bool) -> dbc.Navbar:
    """pages: [{"path", "name", "name_en"}] in display order."""
    links = [
        dbc.NavItem(dcc.Link(p["name"], href=p["path"], className="nav-link",
                             id={"type": NAV_LINK, "index": p["path"]}))
        for p in pages
    ]
    right = [html.Span(id=USER, className="navbar-text me-3 small nav-user"),
             html.A(t("nav.logout", "zh"), href="/logout", id="nav-logout", className="nav-link me-2"),
             dcc.Link(t("nav.lang", "zh"), href="/?lang=en", id=LANG_SWITCH, className="nav-link lang-switch")]
    if demo:
        right.insert(0, dbc.Badge(t("demo.badge", "zh"), color="warning", className="me-2 demo-badge",
                                  id="demo-badge", text_color="dark"))
    return dbc.Navbar(
        dbc.Container([
            html.Span(title, className="navbar-brand fw-bold", id=BRAND),
            dbc.Nav(links, navbar=True, className="me-auto"),
            html.Div(right, className="d-flex align-items-center"),
        ], fluid=True),
        color="dark", dark=True, className="mb-2 cockpit-navbar", id="navbar",
    )


def shell(navbar_component, pages_container) -> html.Div:
    return html.Div([
        dcc.Location(id=URL, refresh=False),
        navbar_component,
        dbc.Container(pages_container, fluid=True, className="page-body"),
    ], id="shell")


def register_shell_callbacks(pages: list[dict], titles: tuple[str, str], who=None) -> None:
    """Keep nav links, brand and language switch in step with the URL (scope, period, language), and show who
    is logged in. ``who()`` returns {"label", "role", "role_name"} or None; pages with "roles" show only to them."""

    @callback(
        Output({"type": NAV_LINK, "index": ALL}, "href"),
        Output({"type": NAV_LINK, "index": ALL}, "children"),
        Output({"type": NAV_LINK, "index": ALL}, "className"),
        Output(LANG_SWITCH, "href"),
        Output(LANG_SWITCH, "children"),
        Output(BRAND, "children"),
        Output(USER, "children"),
        Input(URL, "pathname"),
        Input(URL, "search"),
    )
    def _sync(pathname, search):
        params = params_from_search(search)
        lang = "en" if params.get("lang") == "en" else "zh"
        keep = carried(params)
        hrefs = [href(p["path"], keep) for p in pages]
        names = [p["name_en"] if lang == "en" else p["name"] for p in pages]
        user = who() if who else None
        role = user["role"] if user else None
        classes = []
        for p in pages:
            hidden = p.get("roles") and role not in p["roles"]
            classes.append("d-none" if hidden else "nav-link active" if (pathname or "/") == p["path"] else "nav-link")
        other = "zh" if lang == "en" else "en"
        switch = href(pathname or "/", params, lang=None if other == "zh" else other)
        label = f"{user['label']} · {user['role_name'][1 if lang == 'en' else 0]}" if user else ""
        return (hrefs, names, classes, switch, t("nav.lang", lang), titles[1] if lang == "en" else titles[0],
                label)
