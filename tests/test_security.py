"""Accounts, scope enforcement and the tampering suite: as the school leader of SH-U01, try SH-V01 through the
URL, a forged Dash callback payload, the API, exports and a screen token — and get nothing of it. Plus lockout,
session timeout, CAS against a fake server, tokens, audit rows, security headers."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from data_access import accounts, appdb
from data_access.config import get_config, override, set_config
from data_access.dims import org_tree

from .conftest import PASSWORD

OTHER = "SH-V01"


@pytest.fixture(scope="module")
def server():
    from app import server

    assert "auth" in server.blueprints
    return server


def client_as(server, name: str | None):
    client = server.test_client()
    if name:
        page = client.get("/login").get_data(as_text=True)
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        r = client.post("/login", data={"csrf": csrf, "username": name, "password": PASSWORD})
        assert r.status_code == 302, r.get_data(as_text=True)[:300]
    return client


def dash_render(client, output_id: str, store_id: str, params: dict):
    """A hand-made /_dash-update-component call: what a browser (or an attacker) posts."""
    body = {"output": f"{output_id}.children", "outputs": {"id": output_id, "property": "children"},
            "inputs": [{"id": store_id, "property": "data", "value": params}],
            "changedPropIds": [f"{store_id}.data"], "state": []}
    return client.post("/_dash-update-component", json=body)


def other_school_markers() -> list[str]:
    tree = org_tree()
    return [OTHER, tree.name("school", OTHER), tree.name("school", OTHER, "en")]


# --- login, lockout, timeout --------------------------------------------------------------------------------

def test_everything_needs_a_login(server):
    c = server.test_client()
    assert c.get("/").status_code == 302 and "/login" in c.get("/").headers["Location"]
    assert c.get("/api/v1/indicators").status_code == 401
    assert dash_render(c, "overview-content", "overview-request", {}).status_code == 401
    assert c.get("/api/v1/health").status_code in (200, 503)        # health is public: no figures in it
    assert c.get("/assets/cockpit.css").status_code == 200


def test_wrong_password_then_lockout(server):
    accounts.add("t-lock", "school_leader", school="SH-U01", password=PASSWORD, actor="tests")
    c = server.test_client()
    max_failures = int(get_config().auth["max_failures"])
    for _ in range(max_failures):
        page = c.get("/login").get_data(as_text=True)
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        r = c.post("/login", data={"csrf": csrf, "username": "t-lock", "password": "wrong-password"})
        assert r.status_code in (401, 403)
    page = c.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = c.post("/login", data={"csrf": csrf, "username": "t-lock", "password": PASSWORD})
    assert r.status_code == 403 and "锁定" in r.get_data(as_text=True)    # even the right password now
    rows = accounts.audit_rows(50, action="login")
    assert sum(1 for r in rows if r["target"] == "t-lock" and r["outcome"] == "failed") >= max_failures


def _post_login(client, name, password):
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    return client.post("/login", data={"csrf": csrf, "username": name, "password": password})


def test_failed_logins_per_ip_are_rate_limited(server):
    before = get_config()
    override(auth={**before.auth, "failed_logins_per_ip": 3})
    try:
        guesser = server.test_client()
        guesser.environ_base["REMOTE_ADDR"] = "10.9.8.7"
        # a forged X-Forwarded-For does not give the guesser a new address (no proxy configured)
        guesser.environ_base["HTTP_X_FORWARDED_FOR"] = "1.2.3.4"
        for i in range(3):
            assert _post_login(guesser, f"nobody-{i}", "guess").status_code == 401
        refused = _post_login(guesser, "t-leader", PASSWORD)     # even the right password, from that IP
        assert refused.status_code == 429
        # successful logins from one address (a school's NAT) never count
        colleague = server.test_client()
        colleague.environ_base["REMOTE_ADDR"] = "10.9.8.8"
        for _ in range(5):
            assert _post_login(colleague, "t-leader", PASSWORD).status_code == 302
        assert any(r["outcome"] == "refused" and r["detail"] == "rate limit"
                   for r in accounts.audit_rows(20, action="login"))
    finally:
        set_config(before)


def test_login_form_needs_its_csrf_token(server):
    c = server.test_client()
    r = c.post("/login", data={"username": "t-leader", "password": PASSWORD})
    assert r.status_code == 400


def test_session_idle_timeout(server):
    c = client_as(server, "t-leader")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 200
    with c.session_transaction() as s:
        s["seen_at"] = time.time() - 60 * float(get_config().auth["session_idle_minutes"]) - 5
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 401
    assert any(r["actor"] == "t-leader" for r in accounts.audit_rows(20, action="session_timeout"))


def test_disabled_account_is_out_at_once(server):
    accounts.add("t-gone", "assessor", password=PASSWORD, actor="tests")
    c = client_as(server, "t-gone")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 200
    accounts.set_disabled("t-gone", True, actor="tests")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 401


# --- the tampering suite --------------------------------------------------------------------------------------

def test_tamper_url_and_forged_callback(server):
    c = client_as(server, "t-leader")
    for params in ({"school": OTHER}, {"facility": "SH-V01-C1-CAN1"}, {"region": "310000"}, {}):
        r = dash_render(c, "overview-content", "overview-request", params)
        assert r.status_code == 200
        text = r.get_data(as_text=True)
        for marker in other_school_markers():
            assert marker not in text, (params, marker)
    denied = dash_render(c, "overview-content", "overview-request", {"school": OTHER}).get_data(as_text=True)
    assert "超出您的数据权限范围" in denied


def test_tamper_api(server):
    c = client_as(server, "t-leader")
    r = c.get(f"/api/v1/indicators?school={OTHER}")
    assert r.status_code == 403
    assert OTHER not in r.get_data(as_text=True).replace(f"school={OTHER}", "")
    # the association view of a school leader is their school only
    mine = c.get("/api/v1/indicators?ids=service.csi,energy.total_kgce&school=SH-U01").get_json()["indicators"]
    wide = c.get("/api/v1/indicators?ids=service.csi,energy.total_kgce").get_json()["indicators"]
    assert [i["value"] for i in mine] == [i["value"] for i in wide]
    assert any(r["action"] == "scope_denied" and r["actor"] == "t-leader" for r in accounts.audit_rows(50))


def test_tamper_with_a_token(server):
    token = accounts.issue_token("t-leader", actor="tests")
    c = server.test_client()
    ok = c.get("/api/v1/indicators?ids=dining.cold_chain", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert c.get(f"/api/v1/indicators?school={OTHER}", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert c.get("/api/v1/indicators", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert any(r["action"] == "api_call" and r["actor"] == "t-leader" for r in accounts.audit_rows(50))


def test_tamper_with_a_screen_token(server):
    token = accounts.issue_screen_token(school="SH-U01", label="食堂大屏", actor="tests")
    c = server.test_client()
    assert c.get(f"/screen?school=SH-U01&token={token}").status_code == 200
    body = {"output": "..screen-header.children...screen-body.children...screen-ticker.children..",
            "outputs": [{"id": i, "property": "children"} for i in ("screen-header", "screen-body", "screen-ticker")],
            "inputs": [{"id": "screen-refresh", "property": "n_intervals", "value": 1},
                       {"id": "screen-scale", "property": "data", "value": 1}],
            "changedPropIds": ["screen-scale.data"],
            "state": [{"id": "screen-params", "property": "data", "value": {"school": OTHER}},
                      {"id": "screen-state", "property": "data", "value": {"index": 0}}]}
    r = c.post("/_dash-update-component", json=body)
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and "超出您的数据权限范围" in text
    for marker in other_school_markers():
        assert marker not in text
    # a screen session opens screens only: no pages, no API
    assert c.get("/").status_code == 403
    assert c.get("/api/v1/indicators").status_code in (401, 403)
    assert c.get("/api/v1/indicators", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_canteen_manager_sees_one_facility(server):
    c = client_as(server, "t-canteen")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain&facility=SH-U01-C1-CAN1").status_code == 200
    assert c.get("/api/v1/indicators?ids=dining.cold_chain&facility=SH-U01-C1-CAN2").status_code == 403
    assert c.get("/api/v1/indicators?ids=dining.cold_chain&school=SH-U01").status_code == 403


@pytest.mark.parametrize("name, level, key", [
    ("t-canteen", "facility", "SH-U01-C1-CAN1"), ("t-leader", "school", "SH-U01"),
    ("t-region", "region", "310000"), ("t-assessor", "association", None)])
def test_a_url_without_a_place_opens_the_callers_own(server, name, level, key):
    from data_access.request import acting_as, parse_request

    c = client_as(server, name)
    text = dash_render(c, "overview-content", "overview-request", {}).get_data(as_text=True)
    assert "超出您的数据权限范围" not in text
    account = accounts.get(name)
    with acting_as(accounts.access_for(account), name):
        scope = parse_request({}).scope
    assert (scope.level, scope.key()) == (level, key)
    if key:
        assert org_tree().name(level, key) in text


def test_admin_sees_no_warehouse_data(server):
    c = client_as(server, "t-admin")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain&school=SH-U01").status_code == 403


# --- CAS ------------------------------------------------------------------------------------------------------

class FakeCAS(BaseHTTPRequestHandler):
    """/login redirects back with a ticket; /p3/serviceValidate answers CAS 3.0 XML for known tickets."""

    tickets: dict[str, str] = {}

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/cas/login":
            ticket = f"ST-{len(self.tickets) + 1}"
            self.tickets[ticket] = self.server.next_user
            self.send_response(302)
            self.send_header("Location", q["service"] + ("&" if "?" in q["service"] else "?") + "ticket=" + ticket)
            self.end_headers()
            return
        if url.path == "/cas/p3/serviceValidate":
            user = self.tickets.pop(q.get("ticket", ""), None)
            if user:
                xml = (f'<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>'
                       f'<cas:user>{user}</cas:user><cas:attributes><cas:employeeNumber>E-{user}</cas:employeeNumber>'
                       f'</cas:attributes></cas:authenticationSuccess></cas:serviceResponse>')
            else:
                xml = ('<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure '
                       'code="INVALID_TICKET">bad</cas:authenticationFailure></cas:serviceResponse>')
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.end_headers()
            self.wfile.write(xml.encode())
            return
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_cas():
    httpd = HTTPServer(("127.0.0.1", 0), FakeCAS)
    httpd.next_user = "zhang.teacher"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    before = get_config()
    override(auth={**before.auth, "cas": {"server_url": f"http://127.0.0.1:{httpd.server_port}/cas",
                                           "attribute": None, "timeout_s": 5}})
    yield httpd
    set_config(before)
    httpd.shutdown()


def _follow_cas(client, httpd):
    import requests

    r = client.get("/cas/login?next=/dining")
    assert r.status_code == 302
    back = requests.get(r.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
    url = urllib.parse.urlparse(back)
    return client.get(f"{url.path}?{url.query}")


def test_cas_login_maps_to_a_local_account(server, fake_cas):
    accounts.add("t-cas", "school_leader", school="SH-U01", cas_user="zhang.teacher", actor="tests")
    c = server.test_client()
    assert "cas-login" in c.get("/login").get_data(as_text=True)
    r = _follow_cas(c, fake_cas)
    assert r.status_code == 302 and r.headers["Location"].endswith("/dining")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain&school=SH-U01").status_code == 200
    assert c.get(f"/api/v1/indicators?school={OTHER}").status_code == 403
    assert any(r["actor"] == "t-cas" and r["detail"] == "cas" for r in accounts.audit_rows(20, action="login"))


def test_cas_user_without_account_is_refused(server, fake_cas):
    fake_cas.next_user = "stranger"
    c = server.test_client()
    r = _follow_cas(c, fake_cas)
    assert r.status_code == 403
    assert c.get("/api/v1/indicators").status_code == 401
    # a replayed or invented ticket fails too
    assert c.get("/cas/callback?ticket=ST-999&next=/").status_code == 401


# --- headers, audit, CLI ---------------------------------------------------------------------------------------

def test_security_headers_and_cookie(server):
    c = server.test_client()
    page = c.get("/login")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    csrf = page.get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    r = c.post("/login", data={"csrf": csrf, "username": "t-leader", "password": PASSWORD})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_account_cli(capsys):
    from data_access.accounts import main

    assert main(["add", "t-cli", "--role", "region_officer", "--region", "110000"]) == 0
    out = capsys.readouterr().out
    assert "password (shown once):" in out
    generated = out.split("password (shown once): ")[1].strip()
    assert accounts.verify_password("t-cli", generated).role == "region_officer"
    assert main(["add", "t-bad", "--role", "school_leader"]) == 2          # a school leader needs --school
    assert main(["add", "t-bad", "--role", "school_leader", "--school", "NOPE"]) == 2
    assert main(["token", "t-cli"]) == 0 and "ck_" in capsys.readouterr().out
    assert main(["screen-token", "--school", "SH-U01"]) == 0 and "sc_" in capsys.readouterr().out
    assert main(["disable", "t-cli"]) == 0
    with pytest.raises(accounts.LoginRefused):
        accounts.verify_password("t-cli", generated)
    # nothing stored in clear
    with appdb.app_engine().connect() as conn:
        stored = json.dumps([dict(r) for r in conn.execute(appdb.account.select()).mappings()], default=str)
        tokens = json.dumps([dict(r) for r in conn.execute(appdb.api_token.select()).mappings()], default=str)
    assert generated not in stored and "ck_" not in tokens and "sc_" not in tokens
    actions = {r["action"] for r in accounts.audit_rows(200)}
    assert {"account_add", "token_issue", "screen_token_issue", "account_disable"} <= actions
