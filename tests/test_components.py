"""Components and formatting: pure functions, checked on hand-made inputs."""
from __future__ import annotations

import datetime as dt

import pytest

from components.format import fmt_change, fmt_compact, fmt_datetime, fmt_value
from components.links import href, params_from_search
from components.tiles import kpi_tile
from data_access import registry
from data_access.registry import Result

pytestmark = pytest.mark.engine_free   # no warehouse at all: one run of CI is enough


def _text(component) -> str:
    """All text inside a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def test_formatting():
    assert fmt_value(98.567, "%", 1) == "98.5%"            # rates are cut, never rounded up
    assert fmt_value(99.97, "%", 1) == "99.9%" and fmt_value(100.0, "%", 1) == "100.0%"
    assert fmt_value(1234.5, "kgce", 0) == "1,234 kgce"
    assert fmt_value(None, "%") == "—"
    assert fmt_compact(1977433, "zh") == "197.7万" and fmt_compact(45678, "zh") == "4.57万"
    assert fmt_compact(1977433, "en") == "1.98 M"
    assert fmt_change(1.26, "abs", "%", "zh") == "+1.3 个百分点"
    assert fmt_change(-3.4, "rel", "kgce", "en") == "-3.4%"
    # a tiny change never reads "-0.0"; a rate's change has the rate's own decimals
    assert fmt_change(-0.04, "abs", "%", "zh") == "-<0.1 个百分点"
    assert fmt_change(-0.04, "abs", "%", "zh", decimals=2) == "-0.04 个百分点"
    assert fmt_change(0.0, "abs", "%", "en", decimals=2) == "±0.00 pp"
    assert fmt_change(0.001, "rel", "kgce", "en") == "+<0.1%"
    assert fmt_change(0, "abs", "个", "zh", decimals=0) == "±0"
    assert fmt_change(-2, "abs", "个", "zh", decimals=0) == "-2"
    assert fmt_datetime(dt.datetime(2026, 11, 15, 0, 0)) == "2026-11-15"
    assert fmt_datetime(dt.datetime(2026, 11, 15, 23, 50)) == "2026-11-15 23:50"


def test_links_round_trip():
    url = href("/", {"school": "SH-U01", "from": "2026-10-01"}, lang="en", ind=None)
    assert url == "/?from=2026-10-01&lang=en&school=SH-U01"
    assert params_from_search(url.split("?")[1]) == {"from": "2026-10-01", "lang": "en", "school": "SH-U01"}


def test_tile_shows_suppression_and_status_label():
    ind = registry.get("service.csi")
    tile = kpi_tile(ind, Result(ind.id, None, "suppressed", n=4), None, {}, "zh")
    text = _text(tile)
    assert "样本不足 (n < 10)" in text and "满意度指数" in text
    tile = kpi_tile(ind, Result(ind.id, 81.94, "amber", n=120), 1.5, {"fact": dt.datetime(2026, 11, 15)}, "en")
    text = _text(tile)
    assert "81.9" in text and "Warning" in text and "2026-11-15" in text and "Satisfaction" in text


def test_tile_no_data_says_so():
    ind = registry.get("dining.sample_retention")
    text = _text(kpi_tile(ind, Result(ind.id, None, "nodata"), None, {}, "zh"))
    assert "本范围内无数据" in text and "0%" not in text
