"""What every page shares: the scope bar built from plain data, and a guard that turns failures into messages.

A page callback decorated with ``guarded`` never shows a traceback: bad input becomes a message, a scope outside
the caller's rights a refusal, an unreachable warehouse a banner, anything else a logged internal error.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from pathlib import Path

from plotly.io.json import to_json_plotly

from data_access.cache import view_get, view_set
from data_access.config import get_config
from data_access.engine import WarehouseUnavailable
from data_access.request import access_for_request
from data_access.errors import InputError, ScopeDenied

from .i18n import t
from .links import href, scope_params
from .messages import input_error, internal_error, warehouse_banner
from .scopebar import ScopeBar

logger = logging.getLogger(__name__)

PRESET_DAYS = (7, 30, 90, 365)


def lang_of(params: dict | None) -> str:
    value = (params or {}).get("lang")
    if isinstance(value, list):
        value = value[0] if value else None
    return "en" if value == "en" else "zh"


def guarded(render):
    """Decorate a page callback whose first argument is the page's request parameters."""

    @functools.wraps(render)
    def wrapper(params, *args, **kwargs):
        lang = lang_of(params)
        try:
            return render(params or {}, *args, **kwargs)
        except ScopeDenied as exc:
            return input_error(exc.message(lang), lang, href("/", {"lang": "en"} if lang == "en" else {}), denied=True)
        except InputError as exc:
            return input_error(exc.message(lang), lang, href("/", {"lang": "en"} if lang == "en" else {}))
        except WarehouseUnavailable as exc:
            return warehouse_banner(str(exc), lang)
        except Exception:  # never a traceback in the browser; the log has it
            logger.exception("page callback %s failed", render.__name__)
            return internal_error(lang)

    return wrapper


def _code_version() -> str:
    """Changes when the code that renders views changes (a deploy), so a shared cache never serves a view
    rendered by the previous version."""
    root = Path(__file__).resolve().parent.parent
    stamp = hashlib.sha1()
    for folder in ("components", "pages", "data_access"):
        for path in sorted((root / folder).glob("*.py")):
            st = path.stat()
            stamp.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return stamp.hexdigest()[:12]


_CODE_VERSION = _code_version()
_config_versions: dict[int, tuple[object, str]] = {}


def _config_version() -> str:
    """A digest of the configuration (thresholds, privacy threshold, "today"…): a changed setting is a new view."""
    cfg = get_config()
    held = _config_versions.get(id(cfg))
    if held is None or held[0] is not cfg:
        held = (cfg, hashlib.sha1(repr(cfg).encode()).hexdigest()[:12])
        _config_versions.clear()
        _config_versions[id(cfg)] = held
    return held[1]


def _in_dash_request() -> bool:
    """Whether this runs for the browser's callback endpoint (not a test or a script calling the function)."""
    from flask import has_request_context, request

    return has_request_context() and request.path.endswith("/_dash-update-component")


def cached_view(render):
    """Cache a page callback's whole answer to the browser (below ``guarded``: messages and banners are never
    cached). Only inside a request to Dash's callback endpoint; a direct call computes as usual.

    The key holds the callback, its arguments, the caller's access (two users who may see the same schools share
    an entry; no one ever gets a view rendered for wider access), "today", the configuration, the code version and — in
    data_access.cache — the warehouse's data version. Only for callbacks whose answer depends on nothing else
    (not on notes, the user's name or the clock)."""

    @functools.wraps(render)
    def wrapper(*args):
        if not _in_dash_request():     # called as a function (tests, scripts): Dash components, no view cache
            return render(*args)
        access = access_for_request()
        who = "all" if access.schools is None else ",".join(sorted(access.schools))
        raw = json.dumps([render.__module__, render.__qualname__, args, who, access.facility,
                          get_config().today().isoformat(), _config_version(), _CODE_VERSION], sort_keys=True,
                         default=str)
        key = hashlib.sha1(raw.encode()).hexdigest()
        hit = view_get(key)
        if hit is not None:
            return hit
        # Kept as the JSON tree Dash sends ({"type", "namespace", "props"} dicts): loading it and sending it
        # again cost 6 ms for the dining panel of 100 schools, against 140 ms for its component objects.
        answer = json.loads(to_json_plotly(render(*args)))
        view_set(key, answer)
        return answer

    return wrapper


def scope_bar(path: str, nav: dict, scope, period, lang: str, today: dt.date, extra: dict | None = None) -> ScopeBar:
    """The scope bar for a page at ``path``: crumbs and children from data_access.dims.scope_nav."""
    base = {**scope_params(scope.params(), period, lang), **(extra or {})}   # page options stay with a new period
    period_only = {k: v for k, v in base.items() if k in ("from", "to", "lang")}
    crumbs = []
    chain = nav["ancestors"]
    for i, (level, name, params) in enumerate(chain):
        label = name or t("scope.all", lang)
        crumbs.append((label, None if i == len(chain) - 1 else href(path, {**period_only, **params, **(extra or {})})))
    yesterday = today - dt.timedelta(days=1)
    presets = []
    for days in PRESET_DAYS:
        start = yesterday - dt.timedelta(days=days - 1)
        presets.append((t(f"period.{days}", lang), href(path, {**base, "from": start.isoformat(), "to": yesterday.isoformat()}),
                        period.start == start and period.end == yesterday))
    jan1 = dt.date(yesterday.year, 1, 1)
    presets.append((t("period.ytd", lang), href(path, {**base, "from": jan1.isoformat(), "to": yesterday.isoformat()}),
                    period.start == jan1 and period.end == yesterday))
    return ScopeBar(path=path, params={**base, **(extra or {})}, crumbs=crumbs, child_level=nav["child_level"],
                    children=nav["children"], start=period.start, end=period.end, presets=presets, lang=lang,
                    max_date=yesterday)
