"""What every page shares: the scope bar built from plain data, and a guard that turns failures into messages.

A page callback decorated with ``guarded`` never shows a traceback: bad input becomes a message, a scope outside
the caller's rights a refusal, an unreachable warehouse a banner, anything else a logged internal error.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging

from data_access.engine import WarehouseUnavailable
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
