"""Who is asking: login (local accounts, CAS 统一身份认证, demo accounts on the demo warehouse), sessions with
idle and absolute timeouts, API bearer tokens, wall-screen tokens, security headers and the audit of API calls.

Every request except the login pages and static assets needs an identity; the identity's ``Access`` is handed
to data_access (request.set_access_provider), where every query intersects it with the requested scope.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import logging
import secrets
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from typing import Callable

from flask import Blueprint, Flask, Response, g, redirect, request, session

from data_access import accounts
from data_access.cache import cache, store_add, store_get, store_set
from data_access.config import get_config
from data_access.request import set_access_provider
from data_access.scope import Access

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

PUBLIC = ("/login", "/cas/", "/assets/", "/_dash-component-suites/", "/_favicon.ico", "/favicon.ico",
          "/api/v1/health")
# What a screen's page may update through /_dash-update-component: its own outputs and the (data-free) shell.
SCREEN_OUTPUT_PREFIX = "screen-"
SHELL_OUTPUTS = {"nav-link", "lang-switch", "brand-title", "nav-user"}
DEMO_ACCOUNTS = {
    # role: (account name, scope kwargs) — exist only on the embedded demo warehouse, without any password
    "assessor": ("demo-assessor", {}),
    "region_officer": ("demo-region", {"region": "310000"}),
    "school_leader": ("demo-leader", {"school": "SH-U01"}),
    "logistics_director": ("demo-director", {"school": "SH-U01"}),
    "canteen_manager": ("demo-canteen", {"facility": "SH-U01-C1-CAN1"}),
    "admin": ("demo-admin", {}),
}


# --- identity of the current request ------------------------------------------------------------------------

def _identity():
    return getattr(g, "identity", None) if _in_request() else None


def _in_request() -> bool:
    try:
        return bool(request)
    except RuntimeError:
        return False


def current_access() -> tuple[Access, str] | None:
    ident = _identity()
    return (ident["access"], ident["label"]) if ident else None


def user_badge() -> dict | None:
    """What the navigation bar shows of the current user."""
    ident = _identity()
    if ident is None:
        return None
    names = accounts.ROLES.get(ident["role"], ("大屏", "Screen", None))
    return {"label": ident["label"], "role": ident["role"], "role_name": names[:2]}


def current_identity() -> dict | None:
    """{"name", "label", "role", "kind", "access"} of the logged-in user, or None."""
    return _identity()


def current_who() -> tuple[str, str | None] | None:
    """(account name, client IP) of the current request, for the audit rows data_access writes."""
    ident = _identity()
    return (ident["name"], _client_ip()) if ident else None


def _client_ip() -> str:
    # X-Forwarded-For is trusted only through ProxyFix (auth.proxy_hops): anyone can send the header.
    return (request.remote_addr or "")[:64]


def _account_identity(name: str) -> dict | None:
    account = accounts.get(name)
    if account is None or not account.active:
        return None
    return {"name": account.name, "label": account.label, "role": account.role, "kind": "session",
            "access": accounts.access_for(account)}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/_dash-update-component"


def _deny(status: int, en: str, zh: str):
    if _wants_json():
        return Response(f'{{"error": "{en}", "message_zh": "{zh}", "status": {status}}}', status,
                        mimetype="application/json")
    if status == 401:
        target = request.full_path if request.query_string else request.path
        return redirect("/login?next=" + urllib.parse.quote(target))
    return Response(_page(zh, f"<p>{html.escape(zh)} · {html.escape(en)}</p><p><a href='/logout'>退出登录 Log out</a></p>"),
                    status, mimetype="text/html")


def authenticate():
    """before_request: find the caller, or refuse."""
    g.identity = None
    path = request.path
    if path.startswith(PUBLIC):
        return None
    cfg = get_config()
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        ident = accounts.lookup_token(header[7:].strip())
        if ident is None:
            accounts.audit("?", "token", "refused", path, _client_ip(), "unknown or revoked token")
            return _deny(401, "invalid token", "令牌无效")
        if ident.kind == "screen" and not _screen_request_allowed():
            return _deny(403, "a screen token only opens screens", "大屏令牌只能用于大屏")
        g.identity = {"name": ident.name, "label": ident.name, "role": ident.kind, "kind": ident.kind,
                      "access": ident.access}
        return None
    token = request.args.get("token")
    if token and path == "/screen":
        ident = accounts.lookup_token(token)
        if ident is None or ident.kind != "screen":
            accounts.audit("?", "screen_token", "refused", path, _client_ip(), "unknown or revoked token")
            return _deny(403, "invalid screen token", "大屏令牌无效")
        session.clear()
        session.update({"screen_token": hashlib.sha256(token.encode()).hexdigest(), "login_at": time.time()})
        session.permanent = True
    if session.get("screen_token"):
        ident = accounts.lookup_token_digest(session["screen_token"])
        if ident is None:
            session.clear()
            return _deny(401, "screen token revoked", "大屏令牌已失效")
        if not _screen_request_allowed():
            return _deny(403, "a screen token only opens screens", "大屏令牌只能用于大屏")
        g.identity = {"name": ident.name, "label": ident.name, "role": "screen", "kind": "screen",
                      "access": ident.access}
        return None
    name = session.get("user")
    if not name:
        return _deny(401, "login required", "请先登录")
    now = time.time()
    auth = cfg.auth
    if now - session.get("seen_at", 0) > 60 * float(auth["session_idle_minutes"]) or \
            now - session.get("login_at", 0) > 3600 * float(auth["session_max_hours"]):
        accounts.audit(name, "session_timeout", "ok", path, _client_ip())
        session.clear()
        return _deny(401, "session expired", "会话已过期，请重新登录")
    ident = _account_identity(name)
    if ident is None:
        session.clear()
        return _deny(401, "account disabled", "账号已停用")
    if now - session.get("seen_at", 0) > 30:
        session["seen_at"] = now
    g.identity = ident
    return None


def _screen_request_allowed() -> bool:
    """A screen token is read-only and opens the wall screen only: its page, Dash's own resources, and the
    callbacks whose every output belongs to the screen (or to the data-free shell) — not /screens, not another
    page's callbacks (a review note's save, say)."""
    path = request.path
    if path in ("/screen", "/_dash-layout", "/_dash-dependencies", "/_reload-hash"):
        return True
    if path != "/_dash-update-component":
        return False
    body = request.get_json(silent=True) or {}
    outputs, flat = body.get("outputs"), []
    for out in outputs if isinstance(outputs, list) else [outputs]:
        flat.extend(out if isinstance(out, list) else [out])   # a wildcard output lists its matches
    outputs = flat
    if not outputs or not all(isinstance(o, dict) for o in outputs):
        return False
    for out in outputs:
        oid = out.get("id")
        name = oid.get("type") if isinstance(oid, dict) else oid
        if not isinstance(name, str):
            return False
        if not (name.startswith(SCREEN_OUTPUT_PREFIX) or name in SHELL_OUTPUTS):
            return False
    return True


def _login(account: accounts.Account, how: str) -> None:
    session.clear()
    now = time.time()
    session.update({"user": account.name, "login_at": now, "seen_at": now, "csrf": secrets.token_urlsafe(24)})
    session.permanent = True
    logger.info("login %s (%s)", account.name, how)


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def _check_csrf() -> bool:
    sent = request.form.get("csrf", "")
    return bool(sent) and secrets.compare_digest(sent, session.get("csrf", ""))


def _failures_key(ip: str) -> str:
    return f"login-failures:{ip}:{int(time.time() // 600)}"


def _rate_limited(ip: str) -> bool:
    """Whether this IP has had auth.failed_logins_per_ip failed logins in the current 10 minutes (shared cache:
    across workers). Only failures count: a school's NAT puts hundreds of colleagues behind one address."""
    return (store_get(_failures_key(ip)) or 0) >= int(get_config().auth["failed_logins_per_ip"])


def _count_failure(ip: str) -> None:
    key = _failures_key(ip)
    store_add(key, 0, timeout=600)
    try:
        cache.inc(key)
    except Exception:  # a backend without inc, or the cache away: count by get/set (account lockout still holds)
        store_set(key, (store_get(key) or 0) + 1, timeout=600)


# --- pages --------------------------------------------------------------------------------------------------

def _page(title: str, body: str) -> str:
    cfg = get_config()
    return f"""<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>{html.escape(title)} · {html.escape(cfg.title_zh)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/vendor/css/bootstrap.min.css"><link rel="stylesheet" href="/assets/login.css"></head>
<body class="login-body"><main class="login-card card shadow-sm"><div class="card-body">
<h1 class="h4 mb-1">{html.escape(cfg.title_zh)}</h1><div class="text-muted small mb-3">{html.escape(cfg.title_en)}</div>
{body}</div></main></body></html>"""


def _login_page(message: str = "", status: int = 200) -> Response:
    cfg = get_config()
    nxt = html.escape(_safe_next(request.values.get("next")), quote=True)
    csrf = _csrf()
    parts = []
    if message:
        parts.append(f'<div class="alert alert-warning py-2" id="login-message">{html.escape(message)}</div>')
    parts.append(f"""<form method="post" action="/login" id="login-form">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{nxt}">
<div class="mb-2"><label class="form-label" for="username">账号 Account</label>
<input class="form-control" id="username" name="username" autocomplete="username" required></div>
<div class="mb-3"><label class="form-label" for="password">密码 Password</label>
<input class="form-control" id="password" name="password" type="password" autocomplete="current-password" required></div>
<button class="btn btn-primary w-100" type="submit" id="login-submit">登录 Log in</button></form>""")
    if (cfg.auth.get("cas") or {}).get("server_url"):
        parts.append(f'<a class="btn btn-outline-secondary w-100 mt-2" id="cas-login" href="/cas/login?next={nxt}">'
                     '统一身份认证登录 Single sign-on</a>')
    if cfg.demo:
        buttons = "".join(
            f'<button class="btn btn-sm btn-outline-primary m-1" name="role" value="{role}" id="demo-{role}">'
            f'{html.escape(accounts.ROLES[role][0])}</button>' for role in DEMO_ACCOUNTS)
        parts.append(f"""<hr><div class="small text-muted mb-1">演示数据：以演示身份进入（无需密码）· Demo: enter as</div>
<form method="post" action="/login/demo"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{nxt}">{buttons}</form>""")
    return Response(_page("登录", "".join(parts)), status, mimetype="text/html")


@bp.get("/login")
def login_form():
    return _login_page()


@bp.post("/login")
def login_post():
    ip = _client_ip()
    if not _check_csrf():
        return _login_page("表单已过期，请重试。 The form expired; try again.", 400)
    if _rate_limited(ip):
        accounts.audit(request.form.get("username", "?")[:64], "login", "refused", None, ip, "rate limit")
        return _login_page("尝试次数过多，请稍后再试。 Too many attempts; try again later.", 429)
    try:
        account = accounts.verify_password(request.form.get("username", "").strip()[:64],
                                           request.form.get("password", ""), ip)
    except accounts.LoginRefused as exc:
        _count_failure(ip)
        if exc.locked_until:
            return _login_page(f"账号已锁定至 {exc.locked_until:%H:%M}。 Account locked until {exc.locked_until:%H:%M}.", 403)
        return _login_page("账号或密码错误。 Wrong account or password.", 401)
    _login(account, "password")
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/login/demo")
def login_demo():
    cfg = get_config()
    if not cfg.demo:
        return Response("not found", 404)
    if not _check_csrf():
        return _login_page("表单已过期，请重试。 The form expired; try again.", 400)
    role = request.form.get("role", "")
    if role not in DEMO_ACCOUNTS:
        return _login_page("未知角色。 Unknown role.", 400)
    name, scope = DEMO_ACCOUNTS[role]
    account = accounts.get(name)
    if account is None:
        accounts.add(name, role, display_name=f"演示·{accounts.ROLES[role][0]}", cas_user=f"demo:{name}",
                     actor="demo", **scope)
        account = accounts.get(name)
    if account.created_by != "demo" or not account.active:   # a real account of that name: never password-free
        accounts.audit(name, "login", "refused", name, _client_ip(), "demo: not a demo account")
        return _login_page("该演示账号不可用。 This demo account is unavailable.", 403)
    accounts.audit(name, "login", "ok", name, _client_ip(), "demo")
    _login(account, "demo")
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    name = session.get("user")
    if name:
        accounts.audit(name, "logout", "ok", name, _client_ip())
    session.clear()
    return redirect("/login")


# --- CAS (统一身份认证) ---------------------------------------------------------------------------------------

def _cas() -> dict:
    return get_config().auth.get("cas") or {}


def _service_url(nxt: str) -> str:
    return request.host_url.rstrip("/") + "/cas/callback?" + urllib.parse.urlencode({"next": nxt})


@bp.get("/cas/login")
def cas_login():
    server = _cas().get("server_url")
    if not server:
        return Response("CAS is not configured", 404)
    nxt = _safe_next(request.args.get("next"))
    return redirect(server.rstrip("/") + "/login?" + urllib.parse.urlencode({"service": _service_url(nxt)}))


def validate_ticket(ticket: str, service: str) -> str | None:
    """Ask the CAS server (protocol 3.0 serviceValidate) whom a ticket belongs to; the mapped user id or None."""
    cas = _cas()
    url = cas["server_url"].rstrip("/") + "/p3/serviceValidate?" + urllib.parse.urlencode(
        {"ticket": ticket, "service": service})
    with urllib.request.urlopen(url, timeout=float(cas.get("timeout_s", 10))) as resp:   # noqa: S310 - configured URL
        body = resp.read()
    ns = {"cas": "http://www.yale.edu/tp/cas"}
    root = ET.fromstring(body)
    success = root.find("cas:authenticationSuccess", ns)
    if success is None:
        return None
    attribute = cas.get("attribute")
    if attribute:
        node = success.find(f"cas:attributes/cas:{attribute}", ns)
        return node.text.strip() if node is not None and node.text else None
    user = success.find("cas:user", ns)
    return user.text.strip() if user is not None and user.text else None


@bp.get("/cas/callback")
def cas_callback():
    if not _cas().get("server_url"):
        return Response("CAS is not configured", 404)
    nxt = _safe_next(request.args.get("next"))
    ticket = request.args.get("ticket", "")
    try:
        user = validate_ticket(ticket, _service_url(nxt)) if ticket else None
    except Exception as exc:  # the CAS server down or answering nonsense
        logger.warning("CAS validation failed: %s", exc)
        accounts.audit("?", "login", "failed", None, _client_ip(), f"cas error: {exc}"[:200])
        return _login_page("统一身份认证暂不可用。 Single sign-on is unavailable.", 502)
    if not user:
        accounts.audit("?", "login", "failed", None, _client_ip(), "cas ticket rejected")
        return _login_page("统一身份认证未通过。 Single sign-on failed.", 401)
    account = accounts.by_cas_user(user)
    if account is None or not account.active:
        accounts.audit(user[:64], "login", "failed", None, _client_ip(), "cas user without an active local account")
        return _login_page("该统一身份认证账号未开通驾驶舱权限。 No cockpit account for this user.", 403)
    accounts.audit(account.name, "login", "ok", account.name, _client_ip(), "cas")
    _login(account, "cas")
    return redirect(nxt)


# --- response headers and API audit --------------------------------------------------------------------------

CSP = ("default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def _headers(response: Response) -> Response:
    hashes = _csp_hashes() if _csp_hashes is not None else []
    response.headers.setdefault("Content-Security-Policy", CSP.format(hashes=" ".join(hashes)))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/api/"):
        ident = _identity()
        if ident is not None:
            accounts.audit(ident["name"], "api_call", "ok" if response.status_code < 400 else str(response.status_code),
                           request.full_path[:300], _client_ip())
    elif request.path == "/_dash-update-component" and response.status_code == 200:
        _audit_dash_downloads(response)
    return response


def _audit_dash_downloads(response: Response) -> None:
    """Audit every file a Dash callback hands to a dcc.Download (the maturity evidence pack, the service
    workbook, …) as an "export": whichever page's callback sends it, the file leaves through this response.
    Only responses that carry a file (a "filename" key, found without parsing) are parsed."""
    ident = _identity()
    data = response.get_data()
    if ident is None or b'"filename"' not in data:
        return
    try:
        outputs = json.loads(data).get("response") or {}
        sent = [(str(cid), val["filename"]) for cid, props in outputs.items() if isinstance(props, dict)
                for val in props.values() if isinstance(val, dict) and "filename" in val and "content" in val]
        body = request.get_json(silent=True) or {}
        params = [s.get("value") for s in (body.get("state") or []) + (body.get("inputs") or [])
                  if isinstance(s, dict) and isinstance(s.get("value"), dict)]
    except Exception:   # never break a response over its audit; the log says why
        logger.warning("could not read a Dash download for the audit", exc_info=True)
        return
    for component, filename in sent:
        query = "&".join(f"{k}={v}" for p in params for k, v in p.items()
                         if k in ("region", "school", "campus", "facility", "from", "to", "lang") and v)
        accounts.audit(ident["name"], "export", "ok", f"{filename}"[:300], _client_ip(),
                       f"dash download {component}; {query}"[:2000])


# Dash adds the inline scripts of clientside callbacks when it sets up its first request, so the hashes are
# read per response (a handful of short strings), not once at start.
_csp_hashes: Callable[[], list[str]] | None = None


def init_app(server: Flask, csp_hashes: Callable[[], list[str]] | None = None) -> None:
    """``csp_hashes``: the Dash app's ``csp_hashes`` method (called per response)."""
    global _csp_hashes
    cfg = get_config()
    hops = int(cfg.auth.get("proxy_hops") or 0)
    if hops:   # behind nginx: the client address is the one the proxies put in X-Forwarded-For
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(cfg.auth.get("cookie_secure")), SESSION_COOKIE_NAME="cockpit_session",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(days=30),
    )
    _csp_hashes = csp_hashes
    server.register_blueprint(bp)
    server.before_request(authenticate)
    server.after_request(_headers)
    set_access_provider(current_access, current_who)


def require_role(*roles: str) -> dict:
    """For page callbacks limited to roles (admin pages): the identity, or InputError-like refusal."""
    ident = _identity()
    if ident is None or ident["role"] not in roles:
        from data_access.errors import ScopeDenied

        raise ScopeDenied("需要管理员权限", "administrators only")
    return ident

