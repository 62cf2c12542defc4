"""The cockpit's shell: create the Dash app with its pages, bind the cache and the API, lay out the shell.

Run ``python app.py`` (bin/run builds the demo warehouse first) or serve ``app:server`` with gunicorn.
Nothing here touches the warehouse at import time.
"""
from __future__ import annotations

import logging

import dash
from dash import html

import api
import auth
import data_templates
import export
from components import theme  # noqa: F401  (registers the figure templates)
from components.shell import navbar, register_shell_callbacks, shell
from data_access.cache import init_cache
from data_access.config import get_config

cfg = get_config()
logging.basicConfig(level=getattr(logging, cfg.log_level, logging.INFO),
                    format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
logger = logging.getLogger(__name__)

app = dash.Dash(
    __name__,
    use_pages=True,
    title=cfg.title_zh,
    update_title=None,
    # Bootstrap (5.3, with its dark colour mode for screens) and its icons are served from assets/vendor:
    # wall screens live on school intranets without internet access.
    assets_ignore=r"vendor/.*",
    external_stylesheets=["/assets/vendor/css/bootstrap.min.css", "/assets/vendor/css/font/bootstrap-icons.min.css"],
    serve_locally=True,
)
server = app.server
server.config["SECRET_KEY"] = cfg.secret_key
init_cache(server)
api.init_app(server)
data_templates.init_app(server)
export.init_app(server)

PAGES = [
    {"path": p["path"], "name": p["name"], "name_en": p.get("name_en", p["name"]), "roles": p.get("roles")}
    for p in sorted(dash.page_registry.values(), key=lambda p: 99 if p.get("order") is None else p["order"])
    if p.get("nav", True)
]
register_shell_callbacks(PAGES, (cfg.title_zh, cfg.title_en), who=auth.user_badge)
app.layout = shell(navbar(PAGES, cfg.title_zh, cfg.demo), dash.page_container)
# Every request needs an identity (login, CAS, bearer or screen token); data_access intersects its access with
# the requested scope. The CSP lists the hashes of Dash's inline scripts.
auth.init_app(server, app.csp_hashes)

# Page layouts are skeletons without I/O, so the validation layout can list them all and Dash checks every
# callback id at start (no suppress_callback_exceptions hiding a typo).
app.validation_layout = html.Div([
    app.layout,
    *[p["layout"]() if callable(p["layout"]) else p["layout"] for p in dash.page_registry.values()],
])


if __name__ == "__main__":
    logger.info("serving on http://%s:%s (warehouse %s)", cfg.host, cfg.port, cfg.warehouse_url)
    app.run(host=cfg.host, port=cfg.port, debug=cfg.debug)
