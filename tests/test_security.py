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


def test_a_screen_token_is_read_only_and_opens_screens_only(server):
    token = accounts.issue_screen_token(school="SH-U01", label="只读大屏", actor="tests")
    c = server.test_client()
    assert c.get(f"/screen?school=SH-U01&views=dining&id=ro-wall&name=只读大屏&token={token}").status_code == 200
    assert c.get("/screens").status_code == 403            # not the heartbeat list ("/screens" ≠ "/screen")
    # another page's callback, forged: a review note's save — refused before it runs
    body = {"output": "..review-note-message.children...review-notes-version.data...review-note-text.value..",
            "outputs": [{"id": "review-note-message", "property": "children"},
                        {"id": "review-notes-version", "property": "data"},
                        {"id": "review-note-text", "property": "value"}],
            "inputs": [{"id": "review-note-save", "property": "n_clicks", "value": 1}],
            "changedPropIds": ["review-note-save.n_clicks"],
            "state": [{"id": "review-note-kind", "property": "value", "value": "note"},
                      {"id": "review-note-indicator", "property": "value", "value": None},
                      {"id": "review-note-text", "property": "value", "value": "written by a screen"},
                      {"id": "review-note-owner", "property": "value", "value": None},
                      {"id": "review-note-due", "property": "date", "value": None},
                      {"id": "review-request", "property": "data", "value": {"school": "SH-U01"}},
                      {"id": "review-notes-version", "property": "data", "value": 0}]}
    assert c.post("/_dash-update-component", json=body).status_code == 403
    assert c.post("/_dash-update-component", data="not json", content_type="application/json").status_code == 403
    # the screen's own callback still answers
    own = {"output": "..screen-header.children...screen-body.children...screen-ticker.children..",
           "outputs": [{"id": i, "property": "children"} for i in ("screen-header", "screen-body", "screen-ticker")],
           "inputs": [{"id": "screen-refresh", "property": "n_intervals", "value": 1},
                      {"id": "screen-scale", "property": "data", "value": 1}],
           "changedPropIds": ["screen-scale.data"],
           "state": [{"id": "screen-params", "property": "data",
                      "value": {"school": "SH-U01", "views": "dining", "id": "ro-wall", "name": "只读大屏",
                                "token": token}},
                     {"id": "screen-state", "property": "data", "value": {"index": 0}}]}
    assert c.post("/_dash-update-component", json=own).status_code == 200
    # its heartbeat is listed without the token (a credential), and only to those who may see the school
    from data_access import screen
    from data_access.scope import Access

    rows = {r["screen_id"]: r for r in screen.screens(access=Access.everything())}
    assert "ro-wall" in rows and token not in rows["ro-wall"]["url"]
    assert "ro-wall" in {r["screen_id"] for r in screen.screens(access=Access(frozenset({"SH-U01"})))}
    assert "ro-wall" not in {r["screen_id"] for r in screen.screens(access=Access(frozenset({OTHER})))}
    assert "ro-wall" not in {r["screen_id"] for r in screen.screens(access=Access(None, "SH-U01-C1-CAN1"))}


def test_screens_page_by_role(server):
    def screens_page(name):
        body = {"output": "screens-content.children", "outputs": {"id": "screens-content", "property": "children"},
                "inputs": [{"id": "screens-request", "property": "data", "value": {}},
                           {"id": "screens-tick", "property": "n_intervals", "value": 0}],
                "changedPropIds": ["screens-request.data"], "state": []}
        return json.dumps(client_as(server, name).post("/_dash-update-component", json=body).get_json(),
                          ensure_ascii=False)

    leader = screens_page("t-leader")
    assert "screen?" not in leader and "screens-table" not in leader   # a school leader manages no screens
    director = screens_page("t-director")
    assert "/screen?school=SH-U01" in director                         # examples for the director's own school
    for marker in other_school_markers():
        assert marker not in director


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


# --- issue 10, second round: region denial, exports, audit of every action, revoke, CAS attribute, demo ------

def test_a_region_without_overlap_is_refused_and_audited(server):
    leader = client_as(server, "t-leader")
    r = leader.get("/api/v1/indicators?ids=dining.cold_chain&region=110000")       # 北京: no school of theirs
    assert r.status_code == 403
    text = dash_render(leader, "overview-content", "overview-request", {"region": "110000"}).get_data(as_text=True)
    assert "超出您的数据权限范围" in text and "BJ-U01" not in text
    officer = client_as(server, "t-region")                                        # 上海's officer
    assert officer.get("/api/v1/indicators?ids=dining.cold_chain&region=110000").status_code == 403
    assert officer.get("/api/v1/indicators?ids=dining.cold_chain&school=BJ-U01").status_code == 403
    assert officer.get("/api/v1/indicators?ids=dining.cold_chain&region=310000").status_code == 200
    # a region that overlaps is answered, limited to the caller's schools (the leader's region: one school)
    assert leader.get("/api/v1/indicators?ids=dining.cold_chain&region=310000").status_code == 200
    denied = [(r["actor"], r["target"]) for r in accounts.audit_rows(50, action="scope_denied")]
    assert ("t-leader", "region=110000") in denied and ("t-region", "region=110000") in denied


def _other_markers() -> list[str]:
    """Ids and names (zh, en) of every school but SH-U01, and the other schools' facility ids."""
    tree = org_tree()
    others = [s for s in tree.schools.school_id if s != "SH-U01"]
    marks = [m for s in others for m in (s, tree.name("school", s), tree.name("school", s, "en"))]
    return marks + [f for f in tree.facilities.facility_id if not f.startswith("SH-U01")]


def _workbook_text(body: bytes) -> str:
    import io

    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    return "\n".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row
                     if v is not None)


EXPORT_VIEWS = ("overview", "dining", "energy", "service", "maturity", "review")


@pytest.mark.parametrize("query", [
    f"school={OTHER}", f"school={OTHER}&level=school", "facility=SH-V01-C1-CAN1", "campus=SH-V01-C1",
    "region=110000", "region=110000&level=region", f"school={OTHER}&lang=en"])
def test_tamper_exports_of_another_school_are_refused(server, query):
    c = client_as(server, "t-leader")
    marks = _other_markers()
    for view in EXPORT_VIEWS:
        for path in (f"/export/{view}.xlsx", f"/export/{view}.html", f"/export/{view}.pdf",
                     f"/export/{view}/alerts.csv"):
            r = c.get(f"{path}?{query}")
            assert r.status_code == 403, (path, query, r.status_code)
            assert r.mimetype == "text/html" and "attachment" not in r.headers.get("Content-Disposition", "")
            text = r.get_data(as_text=True)
            assert "超出您的数据权限范围" in text or "outside your data scope" in text
            assert not [m for m in marks if m in text], (path, query)
    rows = accounts.audit_rows(200, action="export")
    assert any(r["actor"] == "t-leader" and r["outcome"] == "403" and query in r["target"] for r in rows)


@pytest.mark.parametrize("query", ["region=310000", "level=association", "", "region=310000&level=region"])
def test_tamper_exports_through_wider_scopes_hold_only_the_own_school(server, query):
    """A school leader asking for their region or the association gets their school only: not a row, name or
    id of another school in any workbook (nor in a CSV or the print view of the overview)."""
    c = client_as(server, "t-leader")
    marks = _other_markers()
    own = org_tree().name("school", "SH-U01")
    for view in EXPORT_VIEWS:
        r = c.get(f"/export/{view}.xlsx?{query}")
        assert r.status_code == 200, (view, query, r.get_data(as_text=True)[:300])
        text = _workbook_text(r.get_data())
        assert not [m for m in marks if m in text], (view, query, [m for m in marks if m in text])
        if view in ("overview", "dining"):
            assert own in text            # the breakdown (or the cover's scope) names the leader's own school
    for path in ("/export/overview/alerts.csv", "/export/dining/breakdown.csv", "/export/overview.html"):
        r = c.get(f"{path}?{query}")
        if r.status_code == 404:           # a section a scope does not have (no breakdown at school level)
            continue
        assert r.status_code == 200, (path, query)
        text = r.get_data().decode("utf-8-sig")
        assert not [m for m in marks if m in text], (path, query)


def test_every_audited_action_writes_a_row(server):
    """Login ok and failed, export (a download route and a Dash download), API call, scope denial (page, API,
    screen), account change, token issue and revoke: one row each, with who did it."""
    def rows(action):
        return accounts.audit_rows(500, action=action)

    c = server.test_client()
    c.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert _post_login(c, "t-director", "not-the-password").status_code == 401
    assert any(r["target"] == "t-director" and r["outcome"] == "failed" and r["ip"] == "10.1.2.3"
               for r in rows("login"))
    assert _post_login(c, "t-director", PASSWORD).status_code == 302
    assert any(r["target"] == "t-director" and r["outcome"] == "ok" and r["ip"] == "10.1.2.3" for r in rows("login"))
    assert c.get("/api/v1/indicators?ids=service.csi&school=SH-U01").status_code == 200
    assert any(r["actor"] == "t-director" and "ids=service.csi" in r["target"] and r["outcome"] == "ok"
               for r in rows("api_call"))
    assert c.get("/export/overview.xlsx?school=SH-U01").status_code == 200
    assert any(r["actor"] == "t-director" and r["target"].startswith("/export/overview.xlsx?school=SH-U01")
               and r["outcome"] == "ok" and r["ip"] == "10.1.2.3" for r in rows("export"))
    # a Dash download (the service panel's Excel): audited with its file name and scope
    body = {"output": "..service-download.data...service-export-msg.children..",
            "outputs": [{"id": "service-download", "property": "data"},
                        {"id": "service-export-msg", "property": "children"}],
            "inputs": [{"id": "service-export", "property": "n_clicks", "value": 1}],
            "changedPropIds": ["service-export.n_clicks"],
            "state": [{"id": "service-request", "property": "data", "value": {"school": "SH-U01"}}]}
    r = c.post("/_dash-update-component", json=body)
    assert r.status_code == 200 and ".xlsx" in r.get_data(as_text=True)
    assert any(r["actor"] == "t-director" and r["target"].startswith("service-SH-U01-") and "school=SH-U01" in r["detail"]
               for r in rows("export"))
    # the same download forged for another school: a message, no file, a scope_denied row
    body["state"][0]["value"] = {"school": OTHER}
    r = c.post("/_dash-update-component", json=body)
    assert '"filename"' not in r.get_data(as_text=True) and "超出您的数据权限范围" in r.get_data(as_text=True)
    assert any(r["actor"] == "t-director" and r["target"] == f"school={OTHER}" and r["ip"] == "10.1.2.3"
               for r in rows("scope_denied"))
    # a screen token tried on another school
    token = accounts.issue_screen_token(school="SH-U01", label="审计大屏", actor="t-admin")
    assert any(r["actor"] == "t-admin" and r["detail"] == "审计大屏" for r in rows("screen_token_issue"))
    s = server.test_client()
    assert s.get(f"/screen?school=SH-U01&token={token}").status_code == 200
    screen_body = {"output": "..screen-header.children...screen-body.children...screen-ticker.children..",
                   "outputs": [{"id": i, "property": "children"} for i in ("screen-header", "screen-body", "screen-ticker")],
                   "inputs": [{"id": "screen-refresh", "property": "n_intervals", "value": 1},
                              {"id": "screen-scale", "property": "data", "value": 1}],
                   "changedPropIds": ["screen-scale.data"],
                   "state": [{"id": "screen-params", "property": "data", "value": {"school": "BJ-U01"}},
                             {"id": "screen-state", "property": "data", "value": {"index": 0}}]}
    assert "超出您的数据权限范围" in s.post("/_dash-update-component", json=screen_body).get_data(as_text=True)
    assert any(r["actor"] == "screen:审计大屏" and r["target"] == "school=BJ-U01" for r in rows("scope_denied"))
    # account changes and tokens
    accounts.add("t-audited", "canteen_manager", facility="SH-U01-C1-CAN2", password=PASSWORD, actor="t-admin")
    accounts.set_disabled("t-audited", True, actor="t-admin")
    accounts.set_disabled("t-audited", False, actor="t-admin")
    api_token = accounts.issue_token("t-audited", label="报表", actor="t-admin")
    assert accounts.revoke_tokens("t-audited", actor="t-admin") == 1
    assert accounts.lookup_token(api_token) is None
    for action in ("account_add", "account_disable", "account_enable", "token_issue", "token_revoke"):
        assert any(r["actor"] == "t-admin" and r["target"] == "t-audited" for r in rows(action)), action
    assert "facility=SH-U01-C1-CAN2" in next(r for r in rows("account_add") if r["target"] == "t-audited")["detail"]


def test_revoke_commands(server, capsys):
    from data_access.accounts import main

    accounts.add("t-revoke", "school_leader", school="SH-U01", password=PASSWORD, actor="tests")
    api_tokens = [accounts.issue_token("t-revoke", label=f"脚本{i}", actor="tests") for i in range(2)]
    screen_a = [accounts.issue_screen_token(school="SH-U01", label="撤销测试A", actor="tests") for _ in range(2)]
    screen_b = accounts.issue_screen_token(facility="SH-U01-C1-CAN1", label="撤销测试B", actor="tests")
    c = server.test_client()
    assert c.get("/api/v1/indicators?ids=dining.cold_chain", headers={"Authorization": f"Bearer {api_tokens[0]}"}
                 ).status_code == 200
    wall = server.test_client()                           # a screen already showing with token A
    assert wall.get(f"/screen?school=SH-U01&token={screen_a[0]}").status_code == 200

    # list-tokens: id, kind, owner, label, created — never a token
    assert main(["list-tokens"]) == 0
    listing = capsys.readouterr().out
    assert "撤销测试A" in listing and "脚本1" in listing and "t-revoke" in listing
    assert not [tok for tok in api_tokens + screen_a + [screen_b] if tok in listing or tok[3:15] in listing]
    mine = [r for r in accounts.list_tokens() if r["account"] == "t-revoke" or (r["label"] or "").startswith("撤销测试")]
    assert len(mine) == 5 and all(len(r["id"]) == accounts.TOKEN_ID_LENGTH for r in mine)

    # revoke NAME: every API token of the account, nothing else
    assert main(["revoke", "t-revoke"]) == 0 and "revoked 2 API token(s)" in capsys.readouterr().out
    for tok in api_tokens:
        assert c.get("/api/v1/indicators", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    assert client_as(server, "t-revoke").get("/api/v1/indicators?ids=dining.cold_chain").status_code == 200
    assert main(["revoke", "nobody-here"]) == 2

    # revoke-screen --label: both screens of that label; the showing screen stops at its next request
    assert main(["revoke-screen", "--label", "撤销测试A"]) == 0 and "revoked 2" in capsys.readouterr().out
    assert all(accounts.lookup_token(tok) is None for tok in screen_a)
    assert wall.get("/screen?school=SH-U01").status_code in (302, 401)
    assert accounts.lookup_token(screen_b) is not None
    assert main(["revoke-screen", "--label", "撤销测试A"]) == 2             # nothing left to revoke: an error
    # revoke-screen --id, as list-tokens shows it; a too-short id is refused
    b_id = next(r["id"] for r in accounts.list_tokens() if r["label"] == "撤销测试B")
    assert main(["revoke-screen", "--id", b_id[:3]]) == 2
    assert main(["revoke-screen", "--id", b_id]) == 0
    assert accounts.lookup_token(screen_b) is None
    assert main(["revoke-screen"]) == 2                                      # which one?
    assert main(["list-tokens", "--all"]) == 0 and "revoked" in capsys.readouterr().out
    assert {"token_revoke", "screen_token_revoke"} <= {r["action"] for r in accounts.audit_rows(50)}


def test_session_max_length_even_when_active(server):
    c = client_as(server, "t-leader")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 200
    max_s = 3600 * float(get_config().auth["session_max_hours"])
    with c.session_transaction() as s:
        s["login_at"] = time.time() - max_s + 60          # a minute left: still in
        s["seen_at"] = time.time()
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 200
    with c.session_transaction() as s:
        s["login_at"] = time.time() - max_s - 5           # used a second ago, but logged in too long ago
        s["seen_at"] = time.time() - 1
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 401
    assert c.get("/").status_code == 302                  # and the session is gone: back to the login
    assert sum(1 for r in accounts.audit_rows(50, action="session_timeout") if r["actor"] == "t-leader") >= 1


def test_cas_login_by_attribute(server, fake_cas):
    """auth.cas.attribute: the CAS user is read from that attribute (the fake server sends employeeNumber =
    E-<user>) and mapped to the account whose cas_user it is — the plain CAS user name no longer matches."""
    before = get_config()
    override(auth={**before.auth, "cas": {**before.auth["cas"], "attribute": "employeeNumber"}})
    accounts.add("t-cas-attr", "region_officer", region="310000", cas_user="E-wang.officer", actor="tests")
    accounts.add("wang.officer", "assessor", password=PASSWORD, actor="tests")   # the plain user's namesake
    fake_cas.next_user = "wang.officer"
    c = server.test_client()
    r = _follow_cas(c, fake_cas)
    assert r.status_code == 302 and r.headers["Location"].endswith("/dining")
    assert c.get("/api/v1/indicators?ids=dining.cold_chain&region=310000").status_code == 200
    assert c.get("/api/v1/indicators?ids=dining.cold_chain&region=110000").status_code == 403   # not the assessor
    assert any(r["actor"] == "t-cas-attr" and r["detail"] == "cas" for r in accounts.audit_rows(20, action="login"))
    # a CAS user whose attribute maps to no account is refused
    fake_cas.next_user = "li.nobody"
    c2 = server.test_client()
    assert _follow_cas(c2, fake_cas).status_code == 403
    assert any(r["actor"] == "E-li.nobody" and r["outcome"] == "failed" for r in accounts.audit_rows(20, action="login"))


def _config_with(tmp_path, url: str, demo: bool) -> str:
    import yaml

    from data_access.config import PROJECT_DIR

    raw = yaml.safe_load((PROJECT_DIR / "config.yaml").read_text(encoding="utf-8"))
    raw["warehouse"] = {**raw["warehouse"], "url": url, "demo": demo}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_demo_mode_only_on_the_embedded_demo_warehouse(tmp_path):
    from data_access.config import PROJECT_DIR, load_config

    env = {"COCKPIT_SECRET_KEY": "x" * 32}
    demo_file = PROJECT_DIR / "data" / "demo.duckdb"
    pg = "postgresql+psycopg://u:p@db/warehouse"
    assert load_config(_config_with(tmp_path, "duckdb:///data/demo.duckdb", True), env).demo is True
    assert load_config(_config_with(tmp_path, f"duckdb:///{demo_file}", True), env).demo is True
    # the gap: a real warehouse in config.yaml with `demo: true` left in
    assert load_config(_config_with(tmp_path, pg, True), env).demo is False
    assert load_config(_config_with(tmp_path, "duckdb:///data/school.duckdb", True), env).demo is False
    assert load_config(_config_with(tmp_path, "duckdb:///data/demo.duckdb", False), env).demo is False
    # the environment's warehouse decides, whatever config.yaml says
    on_demo = _config_with(tmp_path, "duckdb:///data/demo.duckdb", True)
    assert load_config(on_demo, {**env, "COCKPIT_WAREHOUSE_URL": pg}).demo is False
    assert load_config(on_demo, {**env, "COCKPIT_WAREHOUSE_URL": f"duckdb:///{tmp_path}/demo.duckdb"}).demo is False
    assert load_config(on_demo, {**env, "COCKPIT_WAREHOUSE_URL": f"duckdb:///{demo_file}"}).demo is True


def test_demo_accounts_appear_in_demo_mode_only(server):
    assert get_config().demo is False                     # the test warehouse is not the embedded demo file
    c = server.test_client()
    page = c.get("/login").get_data(as_text=True)
    assert "/login/demo" not in page and 'id="demo-' not in page
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    assert c.post("/login/demo", data={"csrf": csrf, "role": "admin"}).status_code == 404
    assert accounts.get("demo-admin") is None

    before = get_config()
    override(demo=True)
    try:
        page = c.get("/login").get_data(as_text=True)
        assert "/login/demo" in page and 'id="demo-school_leader"' in page and 'id="demo-admin"' in page
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        r = c.post("/login/demo", data={"csrf": csrf, "role": "school_leader", "next": "/dining"})
        assert r.status_code == 302 and r.headers["Location"].endswith("/dining")
        assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 200
        assert c.get(f"/api/v1/indicators?school={OTHER}").status_code == 403      # a demo leader is a leader
        assert accounts.get("demo-leader").created_by == "demo"
    finally:
        set_config(before)
    # demo mode off again (a real warehouse configured): the demo session and account are dead
    assert c.get("/api/v1/indicators?ids=dining.cold_chain").status_code == 401
    assert accounts.access_for(accounts.get("demo-leader")).schools == frozenset()
    # and a real account that happens to carry a demo name is never entered without its password
    override(demo=True)
    try:
        accounts.add("demo-assessor", "assessor", password=PASSWORD, actor="t-admin")
        d = server.test_client()
        page = d.get("/login").get_data(as_text=True)
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        assert d.post("/login/demo", data={"csrf": csrf, "role": "assessor"}).status_code == 403
        assert d.get("/api/v1/indicators").status_code == 401
    finally:
        set_config(before)


def _table_rows(payload, table_id: str) -> list[list[str]]:
    """The body rows of a dbc.Table in a Dash callback response, as text cells."""
    def find(node):
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == table_id:
                return node
            for v in node.values():
                hit = find(v)
                if hit is not None:
                    return hit
        elif isinstance(node, list):
            for v in node:
                hit = find(v)
                if hit is not None:
                    return hit
        return None

    def text(node) -> str:
        if isinstance(node, dict):
            return text(node.get("props", {}).get("children"))
        if isinstance(node, list):
            return "".join(text(v) for v in node)
        return "" if node is None else str(node)

    table = find(payload)
    assert table is not None, table_id
    body = table["props"]["children"][1]                                  # Thead, Tbody
    return [[text(td) for td in tr["props"]["children"]] for tr in body["props"]["children"]]


def test_admin_reads_the_audit_log_and_others_are_refused(server):
    admin = client_as(server, "t-admin")
    page = json.dumps(dash_render(admin, "admin-content", "admin-request", {}).get_json(), ensure_ascii=False)
    assert "admin-audit" in page and "admin-accounts" in page and "admin-tokens" in page
    assert "t-leader" in page and "login" in page                    # accounts and audit rows are listed
    only = dash_render(admin, "admin-content", "admin-request", {"action": "account_add"}).get_json()
    actions = {row[2] for row in _table_rows(only, "admin-audit")}         # the action column
    assert actions == {"account_add"}
    assert {row[1] for row in _table_rows(only, "admin-audit")} >= {"tests"}   # conftest added the accounts
    bad = dash_render(admin, "admin-content", "admin-request", {"action": "drop table"}).get_data(as_text=True)
    assert "未知的审计动作" in bad and "admin-audit" not in bad
    for name in ("t-leader", "t-assessor", "t-director"):
        text = dash_render(client_as(server, name), "admin-content", "admin-request", {}).get_data(as_text=True)
        assert "需要管理员权限" in text and "admin-audit" not in text and "admin-accounts" not in text, name
    # the admin has no warehouse data, even at the association level
    assert admin.get("/api/v1/indicators?ids=dining.cold_chain&region=310000").status_code == 403


@pytest.fixture(params=["sqlite", "duckdb", "pg", "mysql"])
def scratch_app_db(request, tmp_path):
    """The app database on each engine: a file for SQLite and DuckDB, a fresh database (created here, dropped
    after) on the PostgreSQL / MariaDB server of COCKPIT_TEST_PG_URL / COCKPIT_TEST_MYSQL_URL."""
    import os

    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    server_url = {"pg": os.environ.get("COCKPIT_TEST_PG_URL"), "mysql": os.environ.get("COCKPIT_TEST_MYSQL_URL")}
    name = f"cockpit_acc_{os.getpid()}_{int(time.time())}"
    if request.param in server_url:
        if not server_url[request.param]:
            pytest.skip(f"set COCKPIT_TEST_{request.param.upper()}_URL to run against a server")
        admin = sa.create_engine(server_url[request.param], isolation_level="AUTOCOMMIT")
        quoted = admin.dialect.identifier_preparer.quote_identifier(name)
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
        url = make_url(server_url[request.param]).set(database=name).render_as_string(hide_password=False)
    else:
        url = {"sqlite": f"sqlite:///{tmp_path / 'app.db'}", "duckdb": f"duckdb:///{tmp_path / 'app.duckdb'}"}[
            request.param]
    before = get_config()
    override(app_db_url=url)
    appdb.reset()
    try:
        if request.param == "duckdb":
            try:
                appdb.app_engine()
            except Exception as exc:   # another module's table with an autoincrement key DuckDB cannot create
                if "SERIAL" in str(exc):
                    pytest.skip("a table of appdb.metadata has an Integer autoincrement key (SERIAL)")
                raise
        yield url
    finally:
        appdb.reset()
        set_config(before)
        if request.param in server_url:
            with admin.connect() as conn:
                if request.param == "pg":
                    conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": name})
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
            admin.dispose()


def test_accounts_tokens_and_audit_on_every_app_database(scratch_app_db):
    """The account store is SQLAlchemy Core on the app database: the same behaviour on SQLite, DuckDB,
    PostgreSQL and MariaDB (lockout, tokens by digest, revocation by account, label and id prefix, audit)."""
    max_failures = int(get_config().auth["max_failures"])
    assert accounts.add("x-leader", "school_leader", school="SH-U01", password=PASSWORD, actor="tests") is None
    assert accounts.verify_password("x-leader", PASSWORD, "10.0.0.1").school_id == "SH-U01"
    for _ in range(max_failures):
        with pytest.raises(accounts.LoginRefused):
            accounts.verify_password("x-leader", "wrong-password")
    with pytest.raises(accounts.LoginRefused) as locked:
        accounts.verify_password("x-leader", PASSWORD)
    assert locked.value.locked_until is not None
    api_token = accounts.issue_token("x-leader", label="脚本", actor="tests")
    screens = [accounts.issue_screen_token(school="SH-U01", label=label, actor="tests") for label in ("甲", "甲", "乙")]
    assert accounts.lookup_token(api_token).access.schools == frozenset({"SH-U01"})
    listed = accounts.list_tokens()
    assert sorted((r["kind"], r["label"]) for r in listed) == [("api", "脚本"), ("screen", "乙"), ("screen", "甲"),
                                                                ("screen", "甲")]
    assert accounts.revoke_tokens("x-leader", actor="tests") == 1 and accounts.lookup_token(api_token) is None
    assert accounts.revoke_screen_tokens(label="甲", actor="tests") == 2
    other = next(r["id"] for r in listed if r["label"] == "乙")
    assert accounts.revoke_screen_tokens(token_id=other, actor="tests") == 1
    assert all(accounts.lookup_token(tok) is None for tok in screens)
    assert accounts.list_tokens() == [] and len(accounts.list_tokens(include_revoked=True)) == 4
    actions = [r["action"] for r in accounts.audit_rows(100)]
    assert actions.count("login") == 1 + max_failures + 1
    assert {"account_add", "token_issue", "screen_token_issue", "token_revoke", "screen_token_revoke"} <= set(actions)
    assert accounts.audit_rows(100, action="login")[-1]["ip"] == "10.0.0.1"        # the oldest: the first login
