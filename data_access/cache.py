"""The query cache: one flask-caching ``Cache`` memoizing data_access query functions.

Keys include every argument (the resolved ``Scope`` with its allowed schools, the ``Period``), so two users with
different scopes never share an entry. SimpleCache per process by default; Redis when configured, so that many
workers and wall screens share one warm cache. Outside a web process (CLIs, tests) ``init_cache()`` binds the
cache to a private Flask app.
"""
from __future__ import annotations

import functools
import logging

from flask import Flask
from flask_caching import Cache

from .config import get_config

logger = logging.getLogger(__name__)

cache = Cache()
_initialised = False


def cache_settings() -> dict:
    cfg = get_config()
    settings = {
        "CACHE_DEFAULT_TIMEOUT": cfg.cache_timeout_s,
        "CACHE_KEY_PREFIX": cfg.cache_key_prefix,
        # A cache outage must degrade to querying, never to an error page.
        "CACHE_IGNORE_ERRORS": True,
    }
    if cfg.cache_redis_url:
        settings.update({"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": cfg.cache_redis_url})
    else:
        settings.update({"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 5000})
    return settings


def init_cache(app: Flask | None = None) -> Cache:
    """Bind the cache to the web server (or to a private Flask app outside one)."""
    global _initialised
    if app is None:
        app = Flask("cockpit-data-access")
    cache.init_app(app, config=cache_settings())
    _initialised = True
    return cache


def ensure_cache() -> None:
    if not _initialised:
        init_cache()


def memoize(timeout: int | None = None):
    """Memoize a query function on all its arguments (they must have stable reprs)."""

    def decorator(fn):
        @functools.wraps(fn)
        def compute(*args, **kwargs):
            # Only runs on a cache miss: at DEBUG level the log shows which worker computed what.
            logger.debug("cache miss: %s.%s", fn.__module__, fn.__qualname__)
            return (fn(*args, **kwargs),)

        # Results are stored boxed in a 1-tuple, so that a stored answer is never None: "no data" (None) is an
        # answer too and is cached like any other, while a None from the store always means "not there".
        # (flask-caching's cache_none=True instead asks has() after a None get(): when another worker stores the
        # key between the two calls, the caller got None for a DataFrame — seen with two workers on Redis.)
        memoized = cache.memoize(timeout=timeout, make_name=_with_data_version, cache_none=False)(compute)

        def wrapper(*args, **kwargs):
            ensure_cache()
            if not _query_cache_on():
                return _per_request(fn, args, kwargs)
            boxed = memoized(*args, **kwargs)
            if not (isinstance(boxed, tuple) and len(boxed) == 1):   # an entry of another version: recompute
                boxed = compute(*args, **kwargs)
            return boxed[0]

        wrapper.__name__ = fn.__name__
        wrapper.__qualname__ = fn.__qualname__
        wrapper.__doc__ = fn.__doc__
        wrapper.__wrapped__ = fn
        wrapper.uncached = fn
        return wrapper

    return decorator


def _query_cache_on() -> bool:
    return get_config().cache_enabled


def _per_request(fn, args, kwargs):
    """With the query cache switched off (``cache.enabled: false``: the benchmark's uncached server, debugging),
    nothing survives a request; within one request a query still runs once (the org tree is read by every
    figure of a page, and no implementation would read it twenty times)."""
    from flask import g, has_request_context

    if not has_request_context():
        return fn(*args, **kwargs)
    memo = g.setdefault("_cockpit_request_memo", {})
    key = (fn.__module__, fn.__qualname__, repr(args), repr(sorted(kwargs.items())))
    if key not in memo:
        memo[key] = fn(*args, **kwargs)
    return memo[key]


# --- rendered views -------------------------------------------------------------------------------------------
# A page callback's whole answer, cached on top of its queries: a warm page then costs one cache read instead of
# one per query (a school's overview reads ~120 memoized results) and no figure building (plotly validates every
# property it is given: ~15 ms a figure). Keys carry everything the answer depends on: the view and its
# arguments, the caller's access, "today", the data version and the code version.

def view_get(key: str):
    if not _query_cache_on():
        return None
    return store_get(f"view:{key}@{_data_version()}")


def view_set(key: str, value) -> None:
    if _query_cache_on():
        store_set(f"view:{key}@{_data_version()}", value)


def _data_version() -> str:
    from .engine import data_version

    return data_version()


def _with_data_version(name: str) -> str:
    # Keys carry the warehouse's data version: after a load, entries computed from the old data are simply never
    # read again (they expire), in every worker sharing a Redis cache. Clearing the cache instead would race: a
    # worker that has not yet seen the new file could store old results right after the clear.
    from .engine import data_version

    return f"{name}@{data_version()}#b"     # b: boxed values (see memoize)


# --- direct use of the shared store (snapshots, locks, counters) ----------------------------------------------
# memoize() already survives a cache outage (CACHE_IGNORE_ERRORS); these do the same for direct reads and
# writes: a Redis outage costs sharing and speed, never a request.

def store_get(key: str):
    ensure_cache()
    try:
        return cache.get(key)
    except Exception as exc:  # noqa: BLE001 - any backend failure reads as a miss
        logger.warning("cache unavailable (get %s): %s", key, exc)
        return None


def store_set(key: str, value, timeout: int | None = None) -> bool:
    ensure_cache()
    try:
        return bool(cache.set(key, value, timeout=timeout))
    except Exception as exc:  # noqa: BLE001
        logger.warning("cache unavailable (set %s): %s", key, exc)
        return False


def store_add(key: str, value, timeout: int | None = None) -> bool:
    """Atomic "set if absent" (a lock across workers). Without a reachable store every caller gets it: work is
    then done once per worker rather than not at all."""
    ensure_cache()
    try:
        return bool(cache.add(key, value, timeout=timeout))
    except Exception as exc:  # noqa: BLE001
        logger.warning("cache unavailable (add %s): %s", key, exc)
        return True


def store_delete(key: str) -> None:
    ensure_cache()
    try:
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001
        logger.warning("cache unavailable (delete %s): %s", key, exc)


def clear() -> None:
    ensure_cache()
    cache.clear()
