"""Page callbacks called as functions: the content they return for good and bad requests."""
from __future__ import annotations

import pytest

from .helpers import use_warehouse
from .test_components import _text


@pytest.fixture(scope="module")
def overview():
    import app  # noqa: F401  (registers the pages)
    from pages import overview

    return overview


def _find_ids(component, found=None):
    found = set() if found is None else found
    if isinstance(component, (list, tuple)):
        for c in component:
            _find_ids(c, found)
        return found
    cid = getattr(component, "id", None)
    if isinstance(cid, str):
        found.add(cid)
    children = getattr(component, "children", None)
    if children is not None:
        _find_ids(children, found)
    return found


def test_overview_renders_tiles_of_four_domains(overview):
    content = overview.render({"school": "SH-U01"})
    found = _find_ids(content)
    assert {"domain-dining", "domain-energy", "domain-service", "domain-maturity", "alerts"} <= found
    assert "tile-dining-cold_chain" in found and "tile-service-csi" in found


def test_breakdown_of_a_chosen_indicator(overview):
    content = overview.render({"ind": "dining.cold_chain"})
    assert "breakdown" in _find_ids(content)
    assert "上海市" in _text(content)


@pytest.mark.parametrize("params, message", [
    ({"from": "2026-02-30"}, "不是有效日期"),
    ({"school": "NOPE"}, "未找到学校"),
    ({"facility": "SH-U01-C1-CAN1", "school": "SH-V01", "lang": "en"}, "does not contain"),
    ({"from": "0001-01-01", "to": "0001-01-31"}, "超出可查询范围"),
    ({"from": "9999-12-01", "to": "9999-12-31", "lang": "en"}, "out of range"),
])
def test_bad_url_shows_a_message(overview, params, message):
    content = overview.render(params)
    assert "input-error" in _find_ids(content)
    assert message in _text(content)


def test_unreachable_warehouse_shows_a_banner(overview, tmp_path):
    with use_warehouse(f"duckdb:///{tmp_path / 'gone.duckdb'}"):
        content = overview.render({})
    assert "warehouse-banner" in _find_ids(content)


@pytest.mark.parametrize("params, message", [
    ({"from": "0001-01-01", "to": "0001-01-31", "school": "SH-U01"}, "超出可查询范围"),
    ({"from": "9999-12-01", "to": "9999-12-31", "lang": "en"}, "out of range"),
])
def test_dining_page_refuses_dates_out_of_range(overview, params, message):
    from pages import dining

    content = dining.render(params)
    assert "input-error" in _find_ids(content)
    assert message in _text(content)
