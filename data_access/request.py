"""Turning request parameters (URL query, API query) into a scope and a period, safely — and knowing who asks.

The web tier (auth.py) registers a provider that returns the logged-in user's ``Access`` (from the session, a
bearer token or a screen token). Code outside a request — tests, CLIs, the screen warm-up thread — states whose
access it acts with through ``acting_as``. Anything else gets no access at all (default deny).
"""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Callable

from .period import Period, period_from_params
from .errors import ScopeDenied
from .scope import Access, Scope, resolve_scope

LANGS = ("zh", "en")


_acting: contextvars.ContextVar[tuple[Access, str] | None] = contextvars.ContextVar("cockpit_acting", default=None)
_provider: Callable[[], tuple[Access, str] | None] | None = None
_who: Callable[[], tuple[str, str | None] | None] | None = None


def set_access_provider(provider: Callable[[], tuple[Access, str] | None] | None,
                        who: Callable[[], tuple[str, str | None] | None] | None = None) -> None:
    """Register the web tier's function returning (access, user name) for the current request, or None; and
    optionally one returning (account name, client IP) for the audit log."""
    global _provider, _who
    _provider = provider
    _who = who


@contextlib.contextmanager
def acting_as(access: Access, name: str = "system"):
    """Run a block with this access (outside a web request: tests, CLIs, background jobs)."""
    token = _acting.set((access, name))
    try:
        yield
    finally:
        _acting.reset(token)


def _identity() -> tuple[Access, str] | None:
    # Inside a web request the request's caller decides; ``acting_as`` covers code outside requests.
    found = _provider() if _provider is not None else None
    return found if found is not None else _acting.get()


def access_for_request() -> Access:
    """The access of whoever the current code acts for; nothing at all when nobody is known."""
    found = _identity()
    return found[0] if found else Access()


def current_user_name() -> str:
    """The display name recorded as "who" (notes, audit); "anonymous" when nobody is known."""
    found = _identity()
    return found[1] if found else "anonymous"


def audit_request(action: str, outcome: str, target: str | None = None, detail: str | None = None) -> None:
    """Write an audit row for the current caller: the account name (unique, unlike display names) and IP the
    web tier knows, else the acting name of ``acting_as``."""
    from .accounts import audit

    found = _who() if _who is not None else None
    actor, ip = found if found else (current_user_name(), None)
    audit(actor, action, outcome, target, ip, detail)


def resolve_audited(params: dict, access: Access | None = None) -> Scope:
    """``resolve_scope`` with the caller's access (unless given); a refusal is written to the audit log
    (who asked for what) before it propagates."""
    try:
        return resolve_scope(params, access if access is not None else access_for_request())
    except ScopeDenied:
        audit_request("scope_denied", "refused",
                      ",".join(f"{k}={v}" for k, v in params.items() if v and isinstance(v, str))[:300])
        raise


@dataclass(frozen=True)
class Request:
    scope: Scope
    period: Period
    lang: str


def first(params: dict, name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return None if value is None else str(value)


def parse_lang(params: dict, default: str = "zh") -> str:
    lang = (first(params, "lang") or default).lower()
    return lang if lang in LANGS else default


def parse_request(params: dict, access: Access | None = None, default_lang: str = "zh") -> Request:
    """Scope and period from parameters; raises InputError / ScopeDenied with a bilingual message."""
    clean = {k: first(params, k) for k in ("region", "school", "campus", "facility", "level")}
    scope = resolve_audited(clean, access)   # every refused scope is on record
    period = period_from_params(first(params, "from"), first(params, "to"))
    return Request(scope, period, parse_lang(params, default_lang))
