"""The query cache's memoize: answers (None included) are cached once, and a miss is never mistaken for an answer."""
from __future__ import annotations

import itertools
import json

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


# --- the rendered-view cache (components.page.cached_view) --------------------------------------------------

def _statements_during(fn):
    import sqlalchemy as sa

    from data_access.engine import warehouse_engine

    seen = []
    engine = warehouse_engine()

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        result = fn()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return result, seen


def test_a_view_is_rendered_once_per_access_and_served_as_the_same_json():
    from app import server

    from .test_security import client_as, dash_render, other_school_markers

    assessor, leader = client_as(server, "t-assessor"), client_as(server, "t-leader")
    params = {"from": "2026-09-01", "to": "2026-09-30"}      # a period no other test renders
    first, queried = _statements_during(lambda: dash_render(assessor, "dining-content", "dining-request", params))
    assert first.status_code == 200 and queried
    again, queried_again = _statements_during(lambda: dash_render(assessor, "dining-content", "dining-request", params))
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert queried_again == []                 # one cache read, no query
    # the school leader asks for the same URL: a view of their own school, never the association's cached one
    own, _ = _statements_during(lambda: dash_render(leader, "dining-content", "dining-request", params))
    text = json.dumps(own.get_json(), ensure_ascii=False)
    assert own.status_code == 200 and own.get_json() != first.get_json()
    assert not any(m in text for m in other_school_markers())
