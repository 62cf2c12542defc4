"""The browser side of the benchmark: open each page in headless Chromium (the system one, driven by Playwright),
time it until it is fully rendered, and record every callback request the page made, so that the timing phase
replays exactly what a browser sends.

"Fully rendered" = no Dash callback request in flight, no component marked as loading, every graph's code loaded
(dcc.Graph arrives lazily: a pending placeholder counts as not drawn) and every plotly graph on the page drawn (it
has its SVG), and all of that still true 400 ms later (a chained callback would have started by
then). The time is from the navigation's start to the first moment of that quiet state.
"""
from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
QUIET_S = 0.4
TIMEOUT_S = 120.0

READY_JS = """() => {
  const content = document.getElementById('_pages_content');
  if (!content || !content.children.length) return false;
  if (document.querySelector('[data-dash-is-loading="true"]')) return false;
  // dcc.Graph is loaded lazily: until its code has arrived it is a pending placeholder, not yet a plotly graph
  if (document.querySelector('.dash-graph--pending')) return false;
  const holders = [...document.querySelectorAll('.dash-graph')];
  if (!holders.every(h => h.classList.contains('js-plotly-plot') || h.querySelector('.js-plotly-plot'))) return false;
  const graphs = [...document.querySelectorAll('.js-plotly-plot')];
  return graphs.every(g => g._fullLayout && g.querySelector('.main-svg'));
}"""


@dataclass
class Visit:
    """One page load: its render time, the callback requests it made (bodies as sent) and their answers' sizes."""
    url: str
    render_s: float | None
    requests: list[dict] = field(default_factory=list)     # {"body": str, "outputs": str, "bytes": int, "figures": [int]}
    console_errors: list[str] = field(default_factory=list)
    graphs: int = 0


def outputs_of(body: str) -> str:
    """A short name for a callback request: its output ids and properties."""
    try:
        outputs = json.loads(body).get("outputs")
    except ValueError:
        return "?"
    outputs = outputs if isinstance(outputs, list) else [outputs]
    names = []
    for out in outputs:
        out = out[0] if isinstance(out, list) and out else out
        if isinstance(out, dict):
            oid = out.get("id")
            oid = oid.get("type", json.dumps(oid)) if isinstance(oid, dict) else oid
            names.append(f"{oid}.{out.get('property')}")
    return "+".join(names)


def figure_sizes(payload) -> list[int]:
    """JSON bytes of every plotly figure inside a callback answer (a Graph's ``figure`` prop, or a figure
    returned straight to one)."""
    sizes = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Graph" and isinstance(node.get("props"), dict) and "figure" in node["props"]:
                sizes.append(len(json.dumps(node["props"]["figure"], separators=(",", ":")).encode()))
                return
            if "data" in node and "layout" in node and isinstance(node.get("data"), list):
                sizes.append(len(json.dumps(node, separators=(",", ":")).encode()))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    return sizes


class Browser:
    """A logged-in headless Chromium."""

    def __init__(self, base_url: str, user: str, password: str, chromium: str = "/usr/bin/chromium",
                 viewport=(1600, 1000)):
        from playwright.sync_api import sync_playwright

        self.base = base_url.rstrip("/")
        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        self._context = self._browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.page = self._context.new_page()
        self.page.goto(f"{self.base}/login")
        self.page.fill("#username", user)
        self.page.fill("#password", password)
        self.page.click("#login-submit")
        self.page.wait_for_selector("#navbar", timeout=60_000)

    def visit(self, path_and_query: str, screenshot: str | None = None) -> Visit:
        page = self.page
        pending: set = set()
        seen: list = []
        errors: list[str] = []
        last_activity = [time.perf_counter()]

        def is_callback(req) -> bool:
            # Dash 4 posts to /_dash-update-component?endId=…
            return req.method == "POST" and urllib.parse.urlsplit(req.url).path.endswith("/_dash-update-component")

        def on_request(req):
            if is_callback(req):
                pending.add(req)
                seen.append(req)
                last_activity[0] = time.perf_counter()

        def on_done(req):
            if req in pending:
                pending.discard(req)
                last_activity[0] = time.perf_counter()

        def on_console(msg):
            if msg.type == "error":
                errors.append(msg.text[:300])

        page.on("request", on_request)
        page.on("requestfinished", on_done)
        page.on("requestfailed", on_done)
        page.on("console", on_console)
        try:
            start = time.perf_counter()
            page.goto(self.base + path_and_query, wait_until="domcontentloaded")
            ready_since = None
            rendered = None
            while time.perf_counter() - start < TIMEOUT_S:
                page.wait_for_timeout(25)
                quiet = not pending and page.evaluate(READY_JS)
                now = time.perf_counter()
                if quiet and ready_since is None:
                    ready_since = now
                elif not quiet:
                    ready_since = None
                if ready_since is not None and last_activity[0] > ready_since:
                    ready_since = None       # a request started (or ended) after we thought it was done
                if ready_since is not None and now - ready_since >= QUIET_S:
                    rendered = ready_since - start
                    break
            graphs = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
            if screenshot:
                try:        # a very long page may not fit a full-page capture in time: then the first screen
                    page.screenshot(path=screenshot, full_page=True, timeout=60_000)
                except Exception:  # noqa: BLE001 - a missing picture must not cost the measurements
                    try:
                        page.screenshot(path=screenshot, timeout=60_000)
                    except Exception:  # noqa: BLE001
                        pass
            visit = Visit(path_and_query, rendered, console_errors=errors, graphs=graphs)
            for req in seen:
                response = req.response()
                body = req.post_data or ""
                try:
                    content = response.body() if response is not None else b""
                except Exception:   # noqa: BLE001 - the body of a superseded request may be gone
                    content = b""
                try:
                    figures = figure_sizes(json.loads(content)) if content else []
                except ValueError:
                    figures = []
                parts = urllib.parse.urlsplit(req.url)
                visit.requests.append({"body": body, "outputs": outputs_of(body), "bytes": len(content),
                                       "path": parts.path + (f"?{parts.query}" if parts.query else ""),
                                       "status": response.status if response is not None else None,
                                       "figures": figures})
            return visit
        finally:
            page.remove_listener("request", on_request)
            page.remove_listener("requestfinished", on_done)
            page.remove_listener("requestfailed", on_done)
            page.remove_listener("console", on_console)

    def close(self) -> None:
        try:
            self._context.close()
            self._browser.close()
        finally:
            self._pw.stop()
