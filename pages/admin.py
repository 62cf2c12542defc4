"""系统管理 Administration (admins only): accounts and the audit log."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

import auth
from components.admin import accounts_table, audit_filter, audit_table, tokens_table
from components.i18n import t
from components.links import href
from components.page import guarded, lang_of
from data_access import accounts
from data_access.errors import InputError

dash.register_page(__name__, path="/admin", name="系统管理", name_en="Admin", order=9, roles=["admin"],
                   title="系统管理 · 学校后勤")


class ids:
    REQUEST = "admin-request"
    CONTENT = "admin-content"


def layout(**params):
    return html.Div([dcc.Store(id=ids.REQUEST, data=params), html.Div(id=ids.CONTENT)])


@callback(Output(ids.CONTENT, "children"), Input(ids.REQUEST, "data"))
@guarded
def render(params):
    lang = lang_of(params)
    auth.require_role("admin")
    action = params.get("action") or None
    if isinstance(action, list):
        action = action[0] if action else None
    if action is not None and action not in accounts.AUDIT_ACTIONS:
        raise InputError(f"未知的审计动作：{str(action)[:32]}", f"unknown audit action: {str(action)[:32]}")
    keep = {"lang": "en"} if lang == "en" else {}
    return [
        dbc.Card([dbc.CardHeader(t("admin.accounts", lang), className="fw-bold"),
                  dbc.CardBody(accounts_table(accounts.all_accounts(), accounts.ROLES, lang), className="p-0")], className="mt-2 mb-3"),
        dbc.Card([dbc.CardHeader(t("admin.tokens", lang), className="fw-bold"),
                  dbc.CardBody(tokens_table(accounts.list_tokens(), lang), className="p-0")], className="mb-3"),
        dbc.Card([dbc.CardHeader(t("admin.audit", lang), className="fw-bold"),
                  audit_filter(list(accounts.AUDIT_ACTIONS), action, lang, lambda a: href("/admin", keep, action=a)),
                  dbc.CardBody(audit_table(accounts.audit_rows(500, action), lang), className="p-0")]),
        html.P(t("admin.cli", lang), className="small text-muted mt-2"),
    ]
