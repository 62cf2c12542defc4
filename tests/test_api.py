"""The JSON API through Flask's test client: same numbers as the registry, clear 400/403/404/503 answers."""
from __future__ import annotations

import pytest

from data_access import registry
from data_access.period import period_from_params

from .helpers import logged_in, scope, use_warehouse


@pytest.fixture(scope="module")
def client():
    from app import server

    return logged_in(server.test_client())


def test_indicators_match_the_registry(client):
    r = client.get("/api/v1/indicators?ids=dining.cold_chain,service.csi,energy.total_kgce&school=SH-U01"
                   "&from=2026-10-01&to=2026-10-31")
    assert r.status_code == 200
    body = r.get_json()
    assert body["scope"] == {"level": "school", "region": "310000", "school": "SH-U01"}
    assert (body["from"], body["to"]) == ("2026-10-01", "2026-10-31")
    assert body["as_of"]["fact"] and body["as_of"]["loaded_at"]
    period = period_from_params("2026-10-01", "2026-10-31")
    for item in body["indicators"]:
        expected = registry.evaluate(item["id"], scope(school="SH-U01"), period)
        assert item["value"] == pytest.approx(expected.value)
        assert item["status"] == expected.status
        assert set(item) >= {"id", "name", "value", "unit", "status", "n"}


def test_all_indicators_without_ids(client):
    body = client.get("/api/v1/indicators").get_json()
    assert {i["id"] for i in body["indicators"]} == {i.id for i in registry.all_indicators()}
    assert body["scope"]["level"] == "association"


@pytest.mark.parametrize("query, fragment", [
    ("ids=nope.nothing", "unknown indicator"),
    ("from=2026-13-01", "not a valid date"),
    ("to=yesterday", "not a valid date"),
    ("from=2026-11-10&to=2026-11-01", "before start"),
    ("school=XX-NOPE", "unknown school"),
    ("facility=SH-U01-C1-CAN1&school=SH-V01", "does not contain"),
    ("level=school", "does not match"),
    ("level=galaxy", "unknown level"),
    ("from=2000-01-01&to=2026-11-01", "too long"),
    # extreme but well-formed dates: the comparison periods would leave the calendar (year 0 / 10000)
    ("from=0001-01-01&to=0001-01-31", "out of range"),
    ("from=9999-12-01&to=9999-12-31", "out of range"),
    ("to=9999-12-31", "out of range"),
    ("from=1999-12-31&to=2000-01-31", "out of range"),
    ("from=2027-11-16&to=2027-11-17", "out of range"),   # today 2026-11-16 + 1 year = 2027-11-16 is the last date
])
def test_bad_input_is_a_400_with_a_message(client, query, fragment):
    r = client.get(f"/api/v1/indicators?{query}")
    assert r.status_code == 400
    body = r.get_json()
    assert fragment in body["error"] and body["message_zh"]


def test_small_groups_are_suppressed(client):
    # one canteen's dining-line responses over a week: fewer than 10 people
    r = client.get("/api/v1/indicators?ids=service.csi&facility=SH-K01-C1-CAN1&from=2026-11-13&to=2026-11-15")
    item = r.get_json()["indicators"][0]
    assert item["status"] in ("suppressed", "nodata") and item["value"] is None
    if item["status"] == "suppressed":
        assert 0 < item["n"] < 10
        # the label the tiles show, in Chinese and (like name / name_en) English
        assert (item["label"], item["label_en"]) == ("样本不足 (n < 10)", "Too few (n < 10)")
    # a figure on 10 or more has a value and no label
    shown = client.get("/api/v1/indicators?ids=service.csi&school=SH-K01").get_json()["indicators"][0]
    assert shown["value"] is not None and shown["n"] >= 10 and "label" not in shown


def test_health_and_unknown_endpoint(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200 and r.get_json()["warehouse"]["reachable"] is True
    assert any(t["table"] == "fact_meter_reading" for t in r.get_json()["tables"])
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and "unknown API endpoint" in r.get_json()["error"]


def test_unreachable_warehouse_is_a_503(client, tmp_path):
    with use_warehouse(f"duckdb:///{tmp_path / 'missing.duckdb'}"):
        r = client.get("/api/v1/health")
        assert r.status_code == 503 and r.get_json()["warehouse"]["reachable"] is False
        r = client.get("/api/v1/indicators?ids=dining.cold_chain")
        assert r.status_code == 503 and "unavailable" in r.get_json()["error"]


def test_dates_at_the_bounds_are_accepted(client):
    # the bounds themselves are inclusive: 2000-01-01 and today (2026-11-16, COCKPIT_TODAY) + 1 year
    for query in ("from=2000-01-01&to=2000-01-31", "from=2027-11-01&to=2027-11-16"):
        r = client.get(f"/api/v1/indicators?ids=dining.cold_chain&{query}")
        assert r.status_code == 200, r.get_data(as_text=True)
        body = r.get_json()
        assert body["indicators"][0]["status"] == "nodata" and body["indicators"][0]["value"] is None


def test_an_unexpected_error_is_a_json_500(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(registry, "evaluate", broken)
    r = client.get("/api/v1/indicators?ids=dining.cold_chain")
    assert r.status_code == 500 and r.mimetype == "application/json"
    body = r.get_json()
    assert "internal error" in body["error"] and body["message_zh"]
    assert "secret internals" not in r.get_data(as_text=True)
