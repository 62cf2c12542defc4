"""The alert list: every red indicator with where it is."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from .format import fmt_level, fmt_value
from .i18n import t
from .tiles import status_badge


def alert_table(rows: list[dict], lang: str) -> html.Div:
    """rows: {id, indicator, domain_name, level, where, href, value, unit, decimals, status}."""
    if not rows:
        return html.Div(t("alerts.none", lang), className="alerts-empty text-muted", id="alerts-empty")
    head = html.Thead(html.Tr([html.Th(t("alerts.domain", lang)), html.Th(t("alerts.indicator", lang)),
                               html.Th(t("alerts.where", lang)),
                               html.Th(t("alerts.level", lang)), html.Th(t("alerts.value", lang), className="text-end"),
                               html.Th("")]))
    body = []
    for r in rows:
        value = fmt_level(r["value"]) if r["unit"] == "级" else fmt_value(r["value"], r["unit"], r["decimals"])
        body.append(html.Tr([
            html.Td(r["domain_name"], className="text-muted"),
            html.Td(r["indicator"]),
            html.Td(dcc.Link(r["where"], href=r["href"]) if r.get("href") else r["where"]),
            html.Td(t(f"level.{r['level']}", lang)),
            html.Td(value, className="text-end num"),
            html.Td(status_badge(r["status"], lang, size="badge-sm")),
        ], **{"data-indicator": r["id"], "data-key": r.get("key") or ""}))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", hover=True, responsive=True,
                              className="alerts-table mb-0"), id="alerts-table")
