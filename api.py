"""Read-only JSON API (/api/v1): the registry's numbers for programs, the same as the tiles show.

GET /api/v1/indicators?ids=a,b&level=…&region=…&school=…&campus=…&facility=…&from=YYYY-MM-DD&to=YYYY-MM-DD
GET /api/v1/health
Errors are JSON with a message in English and Chinese: 400 bad input, 403 outside the caller's scope,
503 warehouse unavailable.
"""
from __future__ import annotations

import logging

import orjson
from flask import Blueprint, Flask, Response, request

from data_access import meta, registry
from data_access.engine import WarehouseUnavailable
from data_access.errors import InputError
from data_access.request import parse_request

logger = logging.getLogger(__name__)

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")


def _json(payload, status: int = 200) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
                                 default=str), status=status, mimetype="application/json")


def _error(status: int, en: str, zh: str) -> Response:
    return _json({"error": en, "message_zh": zh, "status": status}, status)


@bp.errorhandler(InputError)
def _input_error(exc: InputError):
    return _error(exc.status, exc.en, exc.zh)


@bp.errorhandler(WarehouseUnavailable)
def _warehouse(exc: WarehouseUnavailable):
    return _error(503, f"warehouse unavailable: {exc}", f"数据仓库暂不可用：{exc}")


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    # Anything else under /api/v1 is still answered in JSON: the details go to the log, never to the caller.
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, HTTPException):
        return _error(exc.code or 500, exc.description or exc.name, f"请求未能完成（HTTP {exc.code}）")
    logger.exception("API request %s failed", request.full_path)
    return _error(500, "internal error: the request could not be answered (see the server log)",
                  "内部错误：请求未能完成（详见服务器日志）")


@bp.get("/indicators")
def indicators():
    params = request.args.to_dict(flat=True)
    known = {i.id: i for i in registry.all_indicators()}
    ids = [s.strip() for s in (params.get("ids") or "").split(",") if s.strip()] or list(known)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InputError(f"未知指标：{', '.join(unknown)[:200]}", f"unknown indicator ids: {', '.join(unknown)[:200]}")
    req = parse_request(params)
    tables: set[str] = set()
    out = []
    for ind_id in ids:
        ind = known[ind_id]
        res = registry.evaluate(ind_id, req.scope, req.period)
        tables.update(ind.tables)
        item = {"id": ind.id, "name": ind.name_zh, "name_en": ind.name_en, "value": res.value, "unit": ind.unit,
                "status": res.status, "n": res.n}
        if res.extra.get("not_applicable"):
            item["not_applicable"] = True
        if res.status == registry.SUPPRESSED:   # the tiles' words, in both languages like name / name_en
            from components.i18n import t
            from data_access.config import get_config

            min_n = get_config().min_group_size
            item["label"], item["label_en"] = (t("status.suppressed", lang, n=min_n) for lang in ("zh", "en"))
        out.append(item)
    as_of = meta.as_of(req.scope, sorted(tables))
    return _json({
        "scope": {"level": req.scope.level, **req.scope.params()},
        "from": req.period.start.isoformat(),
        "to": req.period.end.isoformat(),
        "as_of": {k: (v.isoformat() if v else None) for k, v in as_of.items()},
        "indicators": out,
    })


@bp.get("/health")
def health():
    report = meta.health()
    return _json(report, 200 if report["warehouse"]["reachable"] else 503)


def _unknown_endpoint(rest: str = ""):
    # Dash routes every other path to its index page; under /api/ an unknown path must say so in JSON.
    return _error(404, f"unknown API endpoint: /api/{rest[:100]}", "未知的接口地址")


def init_app(server: Flask) -> None:
    server.register_blueprint(bp)
    server.add_url_rule("/api/<path:rest>", "api_unknown", _unknown_endpoint)
    server.add_url_rule("/api/", "api_root", _unknown_endpoint)
