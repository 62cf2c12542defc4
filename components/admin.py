"""Administration tables: accounts (with their role and scope) and the audit log."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from .format import fmt_datetime
from .i18n import register, t

register({
    "admin.accounts": ("账号", "Accounts"),
    "admin.audit": ("审计日志（最近500条）", "Audit log (latest 500)"),
    "admin.cli": ("新增或停用账号、签发或吊销令牌：python -m data_access.accounts --help（见 README「账号与安全」）",
                  "Add or disable accounts, issue or revoke tokens: python -m data_access.accounts --help "
                  "(see README, Accounts and security)"),
    "admin.col.name": ("账号", "Account"), "admin.col.role": ("角色", "Role"), "admin.col.scope": ("数据范围", "Scope"),
    "admin.col.state": ("状态", "State"), "admin.col.ts": ("时间", "Time"), "admin.col.actor": ("操作人", "Actor"),
    "admin.col.action": ("动作", "Action"), "admin.col.outcome": ("结果", "Outcome"),
    "admin.col.target": ("对象", "Target"), "admin.col.ip": ("IP", "IP"), "admin.col.detail": ("说明", "Detail"),
    "admin.active": ("启用", "active"), "admin.disabled": ("停用", "disabled"),
    "admin.tokens": ("有效令牌（API 与大屏；令牌本身不保存）", "Active tokens (API and screens; the tokens themselves are not stored)"),
    "admin.col.id": ("编号", "Id"), "admin.col.kind": ("类型", "Kind"), "admin.col.owner": ("账号/范围", "Account/scope"),
    "admin.col.label": ("标签", "Label"), "admin.col.created": ("签发时间", "Issued"),
    "admin.kind.api": ("API", "API"), "admin.kind.screen": ("大屏", "Screen"),
    "admin.filter": ("仅看动作：", "Only action: "), "admin.filter.all": ("全部", "all"),
    "admin.none": ("（无）", "(none)"),
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


def tokens_table(tokens: list[dict], lang: str):
    """tokens: accounts.list_tokens() rows (an id, never the token)."""
    rows = [[html.Code(r["id"]), t(f"admin.kind.{r['kind']}", lang),
             (r["account"] if r["kind"] == "api" else r["scope"]) or "—", r["label"] or "—",
             fmt_datetime(r["created_at"])] for r in tokens]
    rows = rows or [[t("admin.none", lang), "", "", "", ""]]
    return _table(["id", "kind", "owner", "label", "created"], rows, lang, "admin-tokens")


def audit_filter(actions: list[str], current: str | None, lang: str, href):
    """Links that filter the audit log by action; ``href(action or None)`` builds each link."""
    links = [html.A(t("admin.filter.all", lang), href=href(None),
                    className="me-2" + (" fw-bold" if not current else ""))]
    links += [html.A(a, href=href(a), className="me-2" + (" fw-bold" if a == current else "")) for a in actions]
    return html.Div([html.Span(t("admin.filter", lang), className="text-muted me-1"), *links],
                    className="small px-2 py-1", id="admin-audit-filter")


def audit_table(rows: list[dict], lang: str):
    body = [[fmt_datetime(r["ts"]), r["actor"], r["action"], r["outcome"], r["target"], r["ip"], r["detail"]]
            for r in rows]
    return _table(["ts", "actor", "action", "outcome", "target", "ip", "detail"], body, lang, "admin-audit")
