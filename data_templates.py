"""Template downloads for the loader (the data page links here): a Flask blueprint.

GET /data/templates/<table>.csv | <table>.xlsx   one template (data_access.templates)
GET /data/templates.zip                          every template
"""
from __future__ import annotations

import functools

from flask import Blueprint, Flask, Response, abort

from data_access import templates

bp = Blueprint("data_templates", __name__)

TEMPLATE_PATH = "/data/templates/"
ZIP_PATH = "/data/templates.zip"
MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "zip": "application/zip",
}


@functools.lru_cache(maxsize=64)
def _cached(name: str) -> bytes | None:
    # Templates depend only on the contract, which is fixed for the process.
    return templates.zip_bytes() if name == "templates.zip" else templates.template_bytes(name)


def _send(name: str) -> Response:
    body = _cached(name)
    if body is None:
        abort(404)
    return Response(body, mimetype=MIMETYPES[name.rsplit(".", 1)[1]],
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-cache"})


@bp.get(f"{TEMPLATE_PATH}<name>")
def template(name: str):
    return _send(name)


@bp.get(ZIP_PATH)
def all_templates():
    return _send("templates.zip")


def href(name: str) -> str:
    return f"{TEMPLATE_PATH}{name}"


def init_app(server: Flask) -> None:
    server.register_blueprint(bp)
