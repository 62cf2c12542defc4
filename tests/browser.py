"""Helpers for browser tests (dash_duo in headless Chromium)."""
from __future__ import annotations

import socket
import urllib.parse

import requests

from .conftest import PASSWORD, SCREENSHOTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(dash_duo, as_user: str | None = "t-assessor"):
    """Serve the cockpit on a free port (several test runs may share the machine) and log in (as the
    association assessor unless said otherwise; None stays logged out)."""
    from app import app

    # Not navigate=True: every page but the login needs an identity, so dash_duo's wait for the app on "/"
    # comes after the login.
    dash_duo.start_server(app, navigate=False, port=free_port())
    dash_duo._url = dash_duo.server.url
    SCREENSHOTS.mkdir(exist_ok=True)
    if as_user:
        login(dash_duo, as_user)
    return dash_duo


def login(duo, name: str, password: str = PASSWORD):
    duo.driver.get(f"{duo.server_url}/logout")
    duo.driver.get(f"{duo.server_url}/login")
    duo.wait_for_element("#username", timeout=30).send_keys(name)
    duo.find_element("#password").send_keys(password)
    duo.find_element("#login-submit").click()
    duo.wait_for_element("#navbar", timeout=30)


def download(duo, href: str) -> requests.Response:
    """GET a download link with the browser's session (its login), as a click on the link would."""
    session = requests.Session()
    for cookie in duo.driver.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    return session.get(href, timeout=120)


def api_session(duo, name: str = "t-assessor") -> requests.Session:
    """A requests session logged in through the login form (for API calls next to the browser)."""
    s = requests.Session()
    page = s.get(f"{duo.server_url}/login", timeout=30).text
    if 'name="csrf"' not in page:   # no login in this build
        return s
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    r = s.post(f"{duo.server_url}/login", data={"csrf": csrf, "username": name, "password": PASSWORD},
               timeout=30)
    assert r.ok and "login-form" not in r.text, r.text[:500]
    return s


def open_page(duo, path: str = "/", query: str = "", wait: str = ".kpi-tile", timeout: int = 30):
    duo.driver.get(f"{duo.server_url}{path}{('?' + query) if query else ''}")
    return duo.wait_for_element(wait, timeout=timeout)


def click(duo, element):
    """Scroll into view and click (a loading overlay or a sticky bar must not intercept the click)."""
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)


def current_query(duo) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(duo.driver.current_url).query))


def assert_no_console_errors(duo):
    errors = [e for e in duo.get_logs() if e.get("level") == "SEVERE"]
    assert errors == [], errors


def screenshot(duo, name: str):
    duo.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def api(duo, query: str, name: str = "t-assessor") -> dict:
    """The API's indicators for a query, by id (as a logged-in user)."""
    body = api_session(duo, name).get(f"{duo.server_url}/api/v1/indicators?{query}", timeout=30).json()
    return {i["id"]: i for i in body["indicators"]}
