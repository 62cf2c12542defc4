"""The query cache's memoize: answers (None included) are cached once, and a miss is never mistaken for an answer."""
from __future__ import annotations

import itertools

from data_access import cache

_ids = itertools.count()


def test_none_is_an_answer_cached_like_any_other():
    calls = []
    tag = next(_ids)

    @cache.memoize()
    def nothing(x):
        calls.append(x)
        return None

    assert nothing(tag) is None and nothing(tag) is None
    assert calls == [tag]


def test_a_concurrent_store_between_get_and_has_is_no_answer(monkeypatch):
    """Two workers on one Redis: this one reads the key (absent), the other stores it, then a has() says yes.
    flask-caching's cache_none=True returned None for the DataFrame then; the value must be computed instead."""
    tag = next(_ids)

    @cache.memoize()
    def frame(x):
        return {"x": x}

    cache.ensure_cache()
    backend = cache.cache.cache
    monkeypatch.setattr(backend, "get", lambda key: None)
    monkeypatch.setattr(backend, "has", lambda key: True)
    assert frame(tag) == {"x": tag}


def test_an_entry_written_by_an_older_version_is_recomputed(monkeypatch):
    tag = next(_ids)

    @cache.memoize()
    def value(x):
        return x * 2

    cache.ensure_cache()
    backend = cache.cache.cache
    monkeypatch.setattr(backend, "get", lambda key: 999)      # an unboxed value from before the boxing
    assert value(tag) == tag * 2
