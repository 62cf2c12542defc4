"""Administration tables: accounts (with their role and scope) and the audit log."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from .format import fmt_datetime
from .i18n import register, t

register({
    "admin.accounts": ("账号", "Accounts"),
    "admin.audit": ("审计日志（最近500条）", "Audit log (latest 500)"),
    "admin.cli": ("新增账号、停用账号、签发令牌：python -m data_access.accounts --help",
                  "Add or disable accounts and issue tokens: python -m data_access.accounts --help"),
    "admin.col.name": ("账号", "Account"), "admin.col.role": ("角色", "Role"), "admin.col.scope": ("数据范围", "Scope"),
    "admin.col.state": ("状态", "State"), "admin.col.ts": ("时间", "Time"), "admin.col.actor": ("操作人", "Actor"),
    "admin.col.action": ("动作", "Action"), "admin.col.outcome": ("结果", "Outcome"),
    "admin.col.target": ("对象", "Target"), "admin.col.ip": ("IP", "IP"), "admin.col.detail": ("说明", "Detail"),
    "admin.active": ("启用", "active"), "admin.disabled": ("停用", "disabled"),
})

def _table(columns: list[str], rows: list[list], lang: str, table_id: str):
    return dbc.Table([html.Thead(html.Tr([html.Th(t(f"admin.col.{c}", lang)) for c in columns])),
                      html.Tbody([html.Tr([html.Td(v) for v in r]) for r in rows])],
                     size="sm", hover=True, responsive=True, className="mb-0", id=table_id)


def accounts_table(accounts, role_names: dict, lang: str):
    """role_names: role → (zh, en, …)."""
    rows = [[a.name, role_names.get(a.role, (a.role, a.role))[1 if lang == "en" else 0],
             a.school_id or a.region_code or a.facility_id or "—",
             t("admin.disabled" if a.disabled else "admin.active", lang)] for a in accounts]
    return _table(["name", "role", "scope", "state"], rows, lang, "admin-accounts")


def audit_table(rows: list[dict], lang: str):
    body = [[fmt_datetime(r["ts"]), r["actor"], r["action"], r["outcome"], r["target"], r["ip"], r["detail"]]
            for r in rows]
    return _table(["ts", "actor", "action", "outcome", "target", "ip", "detail"], body, lang, "admin-audit")
