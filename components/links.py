"""Permalinks: every view is a URL carrying scope, period and language."""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode

KEEP = ("region", "school", "campus", "facility", "from", "to", "lang")
"""Parameters that travel between pages (scope, period, language); page-specific ones do not."""


def href(path: str, params: dict | None = None, **changes) -> str:
    """``path?query`` from params with changes applied (None removes a parameter); empty values dropped."""
    merged = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
    for k, v in changes.items():
        if v in (None, ""):
            merged.pop(k, None)
        else:
            merged[k] = v
    query = urlencode({k: merged[k] for k in sorted(merged)})
    return f"{path}?{query}" if query else path


def params_from_search(search: str | None) -> dict:
    """Query string → {name: first value}."""
    raw = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
    return {k: v[0] for k, v in raw.items() if v}


def carried(params: dict) -> dict:
    """Only the parameters that travel between pages."""
    return {k: v for k, v in params.items() if k in KEEP and v not in (None, "")}


def scope_params(scope_params: dict, period, lang: str) -> dict:
    """URL parameters for a scope (its params()), a period and a language (zh is the default, so omitted)."""
    out = dict(scope_params)
    out["from"], out["to"] = period.start.isoformat(), period.end.isoformat()
    if lang != "zh":
        out["lang"] = lang
    return out
