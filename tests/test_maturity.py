"""Maturity assessment: framework validation, scores, levels and the floor rule on hand-built cases (a school
exactly on a band edge included), the gap plan, percentiles and the < 5 rule within peer groups, assessment
rounds, year on year, derived indicators against an independent pandas computation over the raw tables of the
session demo warehouse, the evidence workbook opened with openpyxl, and the page's callbacks."""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from data_access import cache, config, maturity, registry
from data_access.maturity import FrameworkError, parse_framework, percentile_rank, plan_next_level, score_school
from data_access.period import Period

from .conftest import END, TODAY
from .helpers import org_frames, scope, use_warehouse, write_warehouse

PERIOD = Period(END - dt.timedelta(days=29), END)
DEFAULT_YAML = Path(__file__).resolve().parent.parent / "data_access" / "frameworks" / "maturity-default-v1.yaml"
LEVELS = [{"level": "L1", "min": 0}, {"level": "L2", "min": 40}, {"level": "L3", "min": 60},
          {"level": "L4", "min": 75}, {"level": "L5", "min": 90}]


def assessed_fw(**changes) -> dict:
    """A small assessed-only framework: A (a1, a2: 20 each) and B (b1, b2: 30 each)."""
    raw = {
        "id": "test-fw", "version": "9.9", "levels": LEVELS,
        "dimensions": [
            {"id": "A", "name_zh": "甲", "name_en": "Alpha", "indicators": [
                {"id": "a1", "weight": 20, "source": "assessed"}, {"id": "a2", "weight": 20, "source": "assessed"}]},
            {"id": "B", "name_zh": "乙", "name_en": "Beta", "indicators": [
                {"id": "b1", "weight": 30, "source": "assessed"}, {"id": "b2", "weight": 30, "source": "assessed"}]},
        ],
    }
    raw.update(changes)
    return raw


@contextlib.contextmanager
def use_framework(tmp_path: Path, raw: dict):
    path = tmp_path / f"fw-{abs(hash(repr(raw)))}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    before = config.get_config()
    config.override(maturity_framework=path)
    cache.clear()
    try:
        yield maturity.framework()
    finally:
        config.set_config(before)
        cache.clear()


# --- framework validation -------------------------------------------------------------------------------------

def test_default_framework_follows_the_catalogue():
    fw = maturity.framework()
    raw = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    assert (fw.id, fw.version) == (raw["id"], str(raw["version"]))
    # INDICATORS.md: strategy 15, sensing 20, data 20, applications 25, service 20; L1 <40 ... L5 >= 90
    assert {d.id: d.weight for d in fw.dimensions} == {"strategy": 15, "sensing": 20, "data": 20,
                                                       "applications": 25, "service": 20}
    assert fw.levels == (("L1", 0), ("L2", 40), ("L3", 60), ("L4", 75), ("L5", 90))
    assert fw.min_group == 5 and fw.derived_window_days == 365
    assert fw.indicator("sensing.cold_chain_online").window_days == 30
    assert fw.indicator("apps.online_orders").source == "assessed"   # no order-channel column in the contract
    # the file name ("-v1") carries the major version, the header states the full one: all three agree
    assert DEFAULT_YAML.stem.endswith("-v1") and fw.version.split(".")[0] == "1"
    assert f"version {fw.version} " in DEFAULT_YAML.read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize("change, message", [
    (lambda r: r["dimensions"][0]["indicators"][0].update(weight=15), "weights sum to 95, not 100"),
    (lambda r: r["dimensions"][1]["indicators"][0].update(id="a1"), "duplicate id 'a1'"),
    (lambda r: r["dimensions"][1].update(id="A"), "duplicate id 'A'"),
    (lambda r: r.update(levels=[LEVELS[0], LEVELS[2], LEVELS[1]]), "ascending order"),
    (lambda r: r.update(levels=[{"level": "L1", "min": 10}, LEVELS[1]]), "first level must start at 0"),
    (lambda r: r.update(levels=[LEVELS[0], {"level": "L1", "min": 50}]), "level names must be unique"),
    (lambda r: r.update(levels=[LEVELS[0]]), "at least two levels"),
    (lambda r: r["dimensions"][0]["indicators"][0].update(source="guessed"), "source must be 'assessed' or 'derived'"),
    (lambda r: r["dimensions"][0]["indicators"][0].update(source="derived"), "needs 'from'"),
    (lambda r: r["dimensions"][0]["indicators"][0].update(weight=-5), "weight must be a positive number"),
    (lambda r: r["dimensions"][0].update(weight=45), "declared weight 45 differs"),
    (lambda r: r["dimensions"][0].update(indicators=[]), "dimension 'A' has no indicators"),
    (lambda r: r.update(derived_window_days=0), "derived_window_days must be a positive whole number"),
    (lambda r: r.update(benchmarks={"min_group": 1}), "benchmarks.min_group"),
    (lambda r: r["dimensions"][0]["indicators"][0].update(window_days=30), "apply to derived indicators only"),
    (lambda r: r.update(id=""), "'id' must be a non-empty text"),
    (lambda r: r.update(id="   "), "'id' must be a non-empty text"),
    (lambda r: r.pop("id"), "'id' must be a non-empty text"),
    (lambda r: r.update(version=""), "'version' must be a non-empty text"),
    (lambda r: r.pop("version"), "'version' must be a non-empty text"),
    (lambda r: r.update(version=1.10), "'version' must be quoted text"),      # YAML's 1.10 is the number 1.1
    (lambda r: r["dimensions"][0]["indicators"][0].update(
        source="derived", scale={"zero_at": float("nan"), "full_at": 100}, **{"from": "energy.meter_coverage"}),
     "scale needs finite numeric zero_at and full_at"),
    (lambda r: r["dimensions"][0]["indicators"][0].update(
        source="derived", scale={"zero_at": 50, "full_at": float("inf")}, **{"from": "energy.meter_coverage"}),
     "scale needs finite numeric zero_at and full_at"),
    (lambda r: r["dimensions"][0]["indicators"][0].update(
        source="derived", scale={"zero_at": float("-inf"), "full_at": 100}, **{"from": "energy.meter_coverage"}),
     "scale needs finite numeric zero_at and full_at"),
    (lambda r: r["dimensions"][0]["indicators"][0].update(weight=float("nan")), "weight must be a positive number"),
    (lambda r: r["dimensions"][0].update(weight=float("nan")), "declared weight nan differs"),
    (lambda r: r.update(levels=[LEVELS[0], {"level": "L2", "min": float("nan")}]), "a finite numeric 'min'"),
])
def test_framework_validation_names_the_problem(change, message):
    raw = assessed_fw()
    change(raw)
    with pytest.raises(FrameworkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_framework(raw, "test.yaml")


def test_framework_validation_reports_every_problem_at_once():
    raw = assessed_fw(levels=[LEVELS[0], LEVELS[2], LEVELS[1]])
    raw["dimensions"][0]["indicators"][0]["weight"] = 10
    with pytest.raises(FrameworkError) as exc:
        parse_framework(raw, "test.yaml")
    assert "ascending" in str(exc.value) and "weights sum to 90" in str(exc.value)
    assert str(exc.value).startswith("test.yaml: ")


def test_a_valid_hand_framework_parses_and_declared_weights_may_match():
    raw = assessed_fw()
    raw["dimensions"][0]["weight"] = 40
    fw = parse_framework(raw)
    assert [d.weight for d in fw.dimensions] == [40, 60] and fw.version == "9.9"


def test_framework_file_errors(tmp_path):
    raw = assessed_fw()
    raw["dimensions"][0]["indicators"][0].update(source="derived", **{"from": "energy.no_such_thing"})
    path = tmp_path / "unknown-from.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    before = config.get_config()
    try:
        config.override(maturity_framework=path)
        with pytest.raises(FrameworkError, match="unknown registry indicators: energy.no_such_thing"):
            maturity.framework()
        (tmp_path / "broken.yaml").write_text("dimensions: [unclosed", encoding="utf-8")
        config.override(maturity_framework=tmp_path / "broken.yaml")
        with pytest.raises(FrameworkError, match="not valid YAML"):
            maturity.framework()
        config.override(maturity_framework=tmp_path / "missing.yaml")
        with pytest.raises(FrameworkError, match="not found"):
            maturity.framework()
        # YAML's own NaN and infinity are numbers to Python: still refused
        (tmp_path / "nan.yaml").write_text(yaml.safe_dump(assessed_fw()).replace("weight: 20", "weight: .nan", 1),
                                           encoding="utf-8")
        config.override(maturity_framework=tmp_path / "nan.yaml")
        with pytest.raises(FrameworkError, match="weight must be a positive number"):
            maturity.framework()
        # a version in the file name must agree with the content's (the major version is enough)
        (tmp_path / "assoc-v2.yaml").write_text(yaml.safe_dump(assessed_fw()), encoding="utf-8")   # version 9.9
        config.override(maturity_framework=tmp_path / "assoc-v2.yaml")
        with pytest.raises(FrameworkError, match="file name says version 2 but the file holds version '9.9'"):
            maturity.framework()
        (tmp_path / "assoc-v9.yaml").write_text(yaml.safe_dump(assessed_fw()), encoding="utf-8")
        config.override(maturity_framework=tmp_path / "assoc-v9.yaml")
        assert maturity.framework().version == "9.9"
    finally:
        config.set_config(before)


def test_framework_change_on_disk_is_picked_up(tmp_path):
    with use_framework(tmp_path, assessed_fw()) as fw:
        path = Path(fw.source)
        raw = assessed_fw(version="10.0")
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        import os

        st = path.stat()
        os.utime(path, (st.st_atime, st.st_mtime + 5))
        assert maturity.framework().version == "10.0"


# --- scores, levels, floor rule (hand-worked) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def hand_fw():
    return parse_framework(assessed_fw())


def scores(a1, a2, b1, b2):
    return {"a1": a1, "a2": a2, "b1": b1, "b2": b2}


@pytest.mark.parametrize("values, total, by_score, level, capped", [
    ((60, 60, 60, 60), 60.0, 3, 3, None),            # exactly on the L3 edge
    ((59.9, 59.9, 59.9, 59.9), 59.9, 2, 2, None),    # just below it
    ((75, 75, 75, 75), 75.0, 4, 4, None),            # exactly on the L4 edge
    ((60, 60, 85, 85), 75.0, 4, 4, None),            # L4 edge with A exactly on the L4 floor (60)
    ((59, 59, 90, 90), 77.6, 4, 3, "A"),             # A = 59 < 60: capped at L3
    ((38, 38, 80, 80), 63.2, 3, 2, "A"),             # "L3 by score, capped at L2 because A is 38"
    ((40, 40, 80, 80), 64.0, 3, 3, None),            # A exactly at the L2 bound satisfies the L3 floor
    ((100, 100, 59, 59), 75.4, 4, 3, "B"),           # B = 59 < 60 caps an L4 score at L3
    ((100, 100, 100, 100), 100.0, 5, 5, None),
    ((0, 0, 0, 0), 0.0, 1, 1, None),
    # scores are stated to one decimal and banded as stated: 59.96 is "60.0" and L3, 59.94 is "59.9" and L2
    ((59.96, 59.96, 59.96, 59.96), 60.0, 3, 3, None),
    ((59.94, 59.94, 59.94, 59.94), 59.9, 2, 2, None),
    # A = 39.96 is "40.0" and meets L3's floor of 40; 0.4 * 39.96 + 0.6 * 80 = 63.984 -> 64.0
    ((39.96, 39.96, 80, 80), 64.0, 3, 3, None),
    # A = 39.94 is "39.9" and misses it; 0.4 * 39.94 + 48 = 63.976 -> 64.0
    ((39.94, 39.94, 80, 80), 64.0, 3, 2, "A"),
])
def test_score_level_and_floor_rule(hand_fw, values, total, by_score, level, capped):
    res = score_school(hand_fw, scores(*values))
    assert res.score == pytest.approx(total)
    assert (res.level_by_score, res.level, res.capped_by) == (by_score, level, capped)
    # the stated figures have one decimal at most
    assert all(round(v, 1) == v for v in (res.score, *res.dimensions.values()))


def test_round_score_is_half_up_on_the_decimal_value():
    # Python's round(1.15, 1) gives 1.1 (binary 1.149999…): the stated score follows the decimal value
    assert [maturity.round_score(v) for v in (59.95, 59.94999, 1.15, 39.96, 0.04, 100.0)] == \
        [60.0, 59.9, 1.2, 40.0, 0.0, 100.0]


def test_displayed_scores_and_the_level_agree_at_the_edge(hand_fw):
    from components.maturity import floor_text

    # A = 39.96 -> 40.0, B = 73.3; total 0.4 * 39.96 + 0.6 * 73.3 = 15.984 + 43.98 = 59.964 -> 60.0: L3, and A
    # (40.0) meets L3's floor. Unrounded, the total was L2 while printed "60.0", and A capped L3 while printed "40.0".
    res = score_school(hand_fw, scores(39.96, 39.96, 73.3, 73.3))
    assert (res.score, res.dimensions, res.level_by_score, res.level) == (60.0, {"A": 40.0, "B": 73.3}, 3, 3)
    summary = {"level_by_score": 3, "level": 3, "capped_by": None, "dim.A": 40.0, "dim.B": 73.3}
    assert floor_text(hand_fw, summary, "zh") == "按得分为 L3；各维度均不低于 40 分，满足下限规则"
    # A = 39.94 -> 39.9: "capped because Alpha is 39.9" — the printed figure is below the printed floor
    res = score_school(hand_fw, scores(39.94, 39.94, 73.3, 73.3))
    assert (res.score, res.level_by_score, res.level, res.capped_by) == (60.0, 3, 2, "A")
    summary = {"level_by_score": 3, "level": 2, "capped_by": "A", "dim.A": res.dimensions["A"], "dim.B": 73.3}
    assert floor_text(hand_fw, summary, "en") == \
        "L3 by score, capped at L2 because Alpha is 39.9 (L3 needs every dimension ≥ 40)"


def test_not_applicable_indicator_is_left_out_and_its_dimension_reweighted(hand_fw):
    # a2 does not apply: A = a1 = 70; B = (30*50 + 30*90)/60 = 70 -> total 0.4*70 + 0.6*70 = 70
    res = score_school(hand_fw, {"a1": 70, "a2": None, "b1": 50, "b2": 90})
    assert res.dimensions == {"A": pytest.approx(70.0), "B": pytest.approx(70.0)}
    assert res.score == pytest.approx(70.0)
    # a dimension where nothing applies scores 0
    assert score_school(hand_fw, {"a1": None, "a2": None, "b1": 100, "b2": 100}).dimensions["A"] == 0.0


def test_floor_text_explains_the_cap(hand_fw):
    from components.maturity import floor_text

    res = score_school(hand_fw, scores(38, 38, 80, 80))
    summary = {"level_by_score": res.level_by_score, "level": res.level, "capped_by": res.capped_by,
               "dim.A": res.dimensions["A"], "dim.B": res.dimensions["B"]}
    assert floor_text(hand_fw, summary, "zh") == "按得分为 L3，因「甲」仅 38.0 分（达到 L3 需各维度 ≥ 40），封顶为 L2"
    assert floor_text(hand_fw, summary, "en") == \
        "L3 by score, capped at L2 because Alpha is 38.0 (L3 needs every dimension ≥ 40)"


# --- the gap plan ---------------------------------------------------------------------------------------------

def test_gap_plan_lifts_the_capping_dimension_first(hand_fw):
    # A = 38 needs +2 dimension points; a1 and a2 move A by 0.5 per point each -> 4 points, spread evenly
    # (38 -> 40 both); the total gains 4 * 20/100 = 0.8 -> 64.0, level L3
    plan = plan_next_level(hand_fw, scores(38, 38, 80, 80))
    assert (plan.level, plan.target_level, plan.need_total, plan.need_dimension) == (2, 3, 60, 40)
    assert [(s.indicator_id, s.score, s.target, s.reason) for s in plan.steps] == [
        ("a1", 38, 40, "floor"), ("a2", 38, 40, "floor")]
    assert plan.points == pytest.approx(4.0) and plan.steps[0].total_gain == pytest.approx(0.4)
    assert plan.new_score == pytest.approx(64.0) and plan.new_level == 3 and plan.feasible


def test_gap_plan_raises_the_lowest_of_the_heaviest_first(hand_fw):
    # weights differ: a2 = 10, a1 = 30 in A. A = (30*30 + 10*30)/40 = 30 < 40: a1 moves A by 0.75 per point,
    # a2 by 0.25 -> raise a1 alone by 10 / 0.75 = 13.33 -> 43.4 (rounded up)
    raw = assessed_fw()
    raw["dimensions"][0]["indicators"] = [{"id": "a1", "weight": 30, "source": "assessed"},
                                          {"id": "a2", "weight": 10, "source": "assessed"}]
    fw = parse_framework(raw)
    plan = plan_next_level(fw, scores(30, 30, 90, 90))
    assert [(s.indicator_id, s.target) for s in plan.steps] == [("a1", pytest.approx(43.4))]
    assert plan.new_level == 3
    # among equals the lowest first: a1 = 20, a2 = 40 (A = 30, needs 40): 20 points of equal-weight indicators,
    # a1 alone up to 40 costs 20 and lifts A by exactly 10
    plan = plan_next_level(hand_fw, scores(20, 40, 90, 90))
    assert [(s.indicator_id, s.score, s.target) for s in plan.steps] == [("a1", 20, 40)]


def test_gap_plan_raises_the_total_through_the_heaviest_indicators(hand_fw):
    # 70 everywhere: L3; L4 needs 75. b1/b2 add 0.3 per point, a1/a2 0.2: 5 / 0.3 = 16.67 points on b1 and b2
    # evenly -> 78.33 each, rounded up to 78.4
    plan = plan_next_level(hand_fw, scores(70, 70, 70, 70))
    assert [(s.indicator_id, s.target, s.reason) for s in plan.steps] == [
        ("b1", pytest.approx(78.4), "score"), ("b2", pytest.approx(78.4), "score")]
    # 70 * 0.4 + 78.4 * 0.6 = 75.04, stated 75.0
    assert plan.new_score == 75.0 and plan.new_level == 4
    # floor first, then the total up to the capacity of the heaviest: L4 -> L5 needs 90 and every dimension 75.
    # A = 70: a1, a2 -> 75 (5 points each); then 0.2*150 + 0.3*158.4 = 77.52 -> 12.48 / 0.3 = 41.6 points of B,
    # exactly its room: b2 63.4 -> 95 first, then both to 100 -> total 90.0
    plan = plan_next_level(hand_fw, scores(70, 70, 95, 63.4))
    assert (plan.target_level, plan.need_total, plan.need_dimension) == (5, 90, 75)
    got = {s.indicator_id: (s.target, s.reason) for s in plan.steps}
    assert got == {"a1": (pytest.approx(75.0), "floor"), "a2": (pytest.approx(75.0), "floor"),
                   "b1": (pytest.approx(100.0), "score"), "b2": (pytest.approx(100.0), "score")}
    assert plan.new_score == pytest.approx(90.0) and plan.new_level == 5 and plan.feasible


def test_gap_plan_at_the_top_and_when_infeasible(hand_fw):
    assert plan_next_level(hand_fw, scores(95, 95, 95, 95)).target_level is None
    plan = plan_next_level(hand_fw, {"a1": None, "a2": None, "b1": 100, "b2": 100})
    assert not plan.feasible     # A has nothing that applies and scores 0


# --- percentiles and peer groups --------------------------------------------------------------------------------

def test_percentile_rank_by_hand():
    group = [50, 60, 70, 80, 90]
    assert [percentile_rank(v, group) for v in group] == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert percentile_rank(60, [60, 60, 70, 80, 90]) == pytest.approx(12.5)   # one tie counts half
    assert percentile_rank(60, [60]) is None


# School -> (type, region, the value every indicator gets in round 2026)
PEERS = {
    "K1": ("k12", "310000", 50), "K2": ("k12", "310000", 60), "K3": ("k12", "310000", 70),
    "K4": ("k12", "310000", 80), "K5": ("k12", "310000", 90), "K6": ("k12", "310000", 65),
    "K7": ("k12", "110000", 55), "K8": ("k12", "110000", 85),
    "U1": ("university", "310000", 40), "U2": ("university", "310000", 50), "U3": ("university", "310000", 60),
    "U4": ("university", "310000", 70),
    "V1": ("vocational", "110000", 60),
}
# Special rows: V2 exactly on the L4 edge with A on the floor, V3 capped by A, V1 without a b2 score.
EXTRA = {"V2": ("vocational", "110000", (60, 60, 85, 85)), "V3": ("vocational", "110000", (59, 59, 90, 90))}


def peers_frames() -> dict[str, pd.DataFrame]:
    schools = tuple((sid, typ, reg) for sid, (typ, reg, _) in {**PEERS, **EXTRA}.items())
    frames = org_frames(schools=schools)
    rows = []

    def add(sid, period, values, on):
        for ind, v in zip(("a1", "a2", "b1", "b2"), values):
            if sid == "V1" and ind == "b2":
                continue     # not assessed: counts 0
            rows.append({"school_id": sid, "period": period, "indicator_id": ind, "score": float(v),
                         "evidence": f"材料-{sid}-{ind}", "assessor": "协会评估组A", "assessed_on": on})

    for sid, (_, _, v) in PEERS.items():
        add(sid, "2026", (v,) * 4, dt.date(2026, 10, 1))
    for sid, (_, _, values) in EXTRA.items():
        add(sid, "2026", values, dt.date(2026, 10, 1))
    add("K1", "2025", (30,) * 4, dt.date(2025, 10, 1))         # last year's round
    # two rounds in 2026: "2026" assessed on 1 October counts, not "2026H1" assessed on 1 June (although
    # "2026H1" sorts after "2026" as text)
    add("U4", "2026H1", (20,) * 4, dt.date(2026, 6, 1))
    # rounds assessed after END (15 November 2026) do not exist yet as of END: K2's "2026H2" of 25 November, and
    # K3's "2025" round, assessed only on 1 March 2026 (so not there a year before END either)
    add("K2", "2026H2", (10,) * 4, dt.date(2026, 11, 25))
    add("K3", "2025", (35,) * 4, dt.date(2026, 3, 1))
    frames["fact_maturity_score"] = pd.DataFrame(rows)
    # one survey row: the warehouse's daily data starts on 2024-01-01 (so last year is comparable)
    frames["fact_survey_response"] = pd.DataFrame([{"response_id": "R1", "school_id": "K1", "facility_id": None,
                                                    "service_line": "dining", "submitted_on": dt.date(2024, 1, 1),
                                                    "respondent_type": "student", "score": 5, "nps": None}])
    return frames


@pytest.fixture(scope="class")
def peers_wh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("peers")
    url = write_warehouse(tmp / "w.duckdb", peers_frames())
    with use_warehouse(url, today=TODAY), use_framework(tmp, assessed_fw()):
        yield


class TestPeerGroups:
    """On a hand-built warehouse of 15 schools with an assessed-only framework."""

    def test_school_scores_on_the_hand_warehouse(self, peers_wh):
        frame = maturity.school_scores(scope(), PERIOD).set_index("school_id")
        for sid, (_, _, v) in PEERS.items():
            if sid == "V1":
                continue
            assert frame.loc[sid, "score"] == pytest.approx(v), sid
        assert frame.loc["V1", "score"] == pytest.approx(0.2 * 60 + 0.2 * 60 + 0.3 * 60)   # b2 not assessed: 0
        assert frame.loc["V2", ["score", "level_by_score", "level"]].tolist() == [pytest.approx(75.0), 4, 4]
        assert frame.loc["V3", ["level_by_score", "level", "capped_by"]].tolist() == [4, 3, "A"]
        # U4: "2026" (assessed 1 October, 70 everywhere) beats "2026H1" (1 June, 20 everywhere): the round assessed
        # last counts, not the greatest period as text
        assert frame.loc["U4", "score"] == 70.0 and frame.loc["U4", "assessed_period"] == "2026"
        # K2, K3: the rounds assessed after END are not there yet
        assert frame.loc["K2", ["score", "assessed_period"]].tolist() == [60.0, "2026"]
        assert frame.loc["K3", ["score", "assessed_period"]].tolist() == [70.0, "2026"]

    def test_latest_assessment_round_not_after_the_year(self, peers_wh):
        in_2025 = Period(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
        assert maturity.school_scores(scope(school="K1"), in_2025).iloc[0]["score"] == pytest.approx(30.0)
        assert maturity.school_scores(scope(school="K1"), PERIOD).iloc[0]["score"] == pytest.approx(50.0)
        # no round in or before 2025: every assessed indicator counts 0
        assert maturity.school_scores(scope(school="K2"), in_2025).iloc[0]["score"] == 0.0

    def test_rounds_assessed_after_the_as_of_date_do_not_count(self, peers_wh):
        # K2: "2026" (1 October, 60) until 24 November; "2026H2" (25 November, 10) from then on
        row = maturity.school_scores(scope(school="K2"), Period(dt.date(2026, 11, 1), dt.date(2026, 11, 24))).iloc[0]
        assert (row["score"], row["assessed_period"]) == (60.0, "2026")
        row = maturity.school_scores(scope(school="K2"), Period(dt.date(2026, 11, 1), dt.date(2026, 11, 25))).iloc[0]
        assert (row["score"], row["assessed_period"]) == (10.0, "2026H2")
        assert set(maturity.indicator_scores(scope(school="K2"), PERIOD).period.dropna()) == {"2026"}
        # K3's "2025" round was assessed on 1 March 2026: as of 31 December 2025 K3 had no round (0), as of
        # 1 March 2026 the "2025" round (35) counts, and it is the latest until "2026" (1 October, 70)
        in_2025 = Period(dt.date(2025, 12, 1), dt.date(2025, 12, 31))
        assert maturity.school_scores(scope(school="K3"), in_2025).iloc[0]["score"] == 0.0
        march = Period(dt.date(2026, 2, 1), dt.date(2026, 3, 1))
        assert maturity.school_scores(scope(school="K3"), march).iloc[0][["score", "assessed_period"]].tolist() == \
            [35.0, "2025"]
        # year on year (as of 15 November 2025): K3 then had no round, so no comparison; K1's "2025" round of
        # 1 October 2025 was there (30)
        y = maturity.year_on_year(scope(), PERIOD).set_index("school_id")
        assert pd.isna(y.loc["K3", "score_prev"]) and pd.isna(y.loc["K3", "change"])
        assert y.loc["K1", "score_prev"] == 30.0

    def test_peer_group_same_type_and_region_when_at_least_five(self, peers_wh):
        sh = [50, 60, 70, 80, 90, 65]
        b = maturity.peer_benchmark(scope(school="K3"), PERIOD)
        assert (b.basis, b.school_type, b.region_code, b.size, b.shown) == ("type_region", "k12", "310000", 6, True)
        # by hand: sorted 50 60 65 70 80 90 -> median (65+70)/2, P75 at position 3.75 -> 70 + 0.75 * 10
        assert b.median["score"] == pytest.approx(67.5) and b.p75["score"] == pytest.approx(77.5)
        assert b.best["score"] == 90 and b.median["A"] == pytest.approx(67.5)
        assert b.percentile == pytest.approx(100 * 3 / 5)                    # ahead of 50, 60, 65
        assert b.median["score"] == pytest.approx(float(np.median(sh)))

    def test_peer_group_falls_back_to_the_type_when_the_region_is_small(self, peers_wh):
        b = maturity.peer_benchmark(scope(school="K7"), PERIOD)
        # two K12 schools in 110000: the group is every K12 school (8)
        assert (b.basis, b.region_code, b.size) == ("type", None, 8)
        # sorted 50 55 60 65 70 80 85 90: median 67.5, P75 at 5.25 -> 80 + 0.25 * 5 = 81.25
        assert b.median["score"] == pytest.approx(67.5) and b.p75["score"] == pytest.approx(81.25)
        assert b.percentile == pytest.approx(100 / 7)

    def test_no_distribution_for_groups_under_five(self, peers_wh):
        b = maturity.peer_benchmark(scope(school="U2"), PERIOD)
        assert (b.size, b.shown, b.median, b.p75, b.best, b.percentile) == (4, False, None, None, None, None)
        pct = maturity.peer_percentiles(scope(), PERIOD).set_index("school_id")
        assert pct.loc["U2", "peer_size"] == 4 and pd.isna(pct.loc["U2", "percentile"])
        assert pct.loc["K1", "percentile"] == 0.0
        assert pct.loc["K8", "percentile"] == pytest.approx(100 * 6 / 7)    # below 85: six of the seven others
        # a region holding 4 schools (110000: K7, K8, V1, V2, V3 -> 5) and the association (15)
        assert maturity.scope_distribution(scope(region="110000"), PERIOD).shown
        small = maturity.scope_distribution(scope(school="U1"), PERIOD)
        assert (small.size, small.shown, small.median) == (1, False, None)

    def test_peer_benchmark_returns_no_other_schools_rows(self, peers_wh):
        b = maturity.peer_benchmark(scope(school="K3"), PERIOD)
        text = repr(b)
        assert not any(sid in text for sid in PEERS if sid != "K3")

    def test_row_functions_return_only_the_scopes_schools(self, peers_wh):
        s = scope(school="K3")
        for frame in (maturity.school_scores(s, PERIOD), maturity.indicator_scores(s, PERIOD),
                      maturity.peer_percentiles(s, PERIOD), maturity.year_on_year(s, PERIOD),
                      maturity.ranking(s, PERIOD)):
            assert set(frame.school_id) == {"K3"}
        assert set(maturity.school_scores(scope(region="110000"), PERIOD).school_id) == {"K7", "K8", "V1", "V2", "V3"}

    def test_scope_distribution_and_ranking(self, peers_wh):
        d = maturity.scope_distribution(scope(region="110000"), PERIOD)
        values = [55, 85, 42, 75, 77.6]
        assert d.size == 5 and d.median["score"] == pytest.approx(float(np.median(values)))
        assert d.best["score"] == 85 and d.worst["score"] == pytest.approx(42)
        # levels: K7 55 -> L2, K8 85 -> L4, V1 42 -> L2, V2 75 -> L4, V3 capped L3
        assert d.levels == {1: 0, 2: 2, 3: 1, 4: 2, 5: 0}
        r = maturity.ranking(scope(region="110000"), PERIOD)
        assert r.school_id.tolist() == ["K8", "V3", "V2", "K7", "V1"] and r["rank"].tolist() == [1, 2, 3, 4, 5]

    def test_year_on_year(self, peers_wh):
        y = maturity.year_on_year(scope(), PERIOD).set_index("school_id")
        assert y.loc["K1", "score_prev"] == pytest.approx(30.0) and y.loc["K1", "change"] == pytest.approx(20.0)
        assert y.loc["K1", "level_prev"] == 1 and y.loc["K1", "level_change"] == 1
        assert pd.isna(y.loc["K2", "score_prev"])       # no round in 2025: no comparison


def _fill(url: str, frames: dict[str, pd.DataFrame]) -> list:
    """Create the contract's tables at ``url`` with SQLAlchemy Core and insert the frames."""
    from data_access import schema

    eng = sa.create_engine(url)
    tables = list(schema.metadata.sorted_tables)
    schema.metadata.drop_all(eng, tables=tables)
    schema.metadata.create_all(eng, tables=tables)
    with eng.begin() as conn:
        for table, frame in frames.items():
            rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
            conn.execute(schema.metadata.tables[table].insert(), rows)
    eng.dispose()
    return tables


@pytest.mark.parametrize("target", ["sqlite", "COCKPIT_TEST_PG_URL", "COCKPIT_TEST_MYSQL_URL"])
def test_the_same_scores_on_other_engines(target, tmp_path):
    """The hand-built peers warehouse gives the same scores, rounds and benchmarks on SQLite, and on PostgreSQL
    or MariaDB when COCKPIT_TEST_PG_URL / COCKPIT_TEST_MYSQL_URL name an empty database the test may fill."""
    import os

    url = f"sqlite:///{tmp_path / 'w.sqlite'}" if target == "sqlite" else os.environ.get(target)
    if not url:
        pytest.skip(f"{target} not set")
    duck = write_warehouse(tmp_path / "w.duckdb", peers_frames())
    with use_warehouse(duck, today=TODAY), use_framework(tmp_path, assessed_fw()):
        expected = maturity.ranking(scope(), PERIOD)
        bench = maturity.peer_benchmark(scope(school="K7"), PERIOD)
    tables = _fill(url, peers_frames())
    try:
        with use_warehouse(url, today=TODAY), use_framework(tmp_path, assessed_fw()):
            got = maturity.ranking(scope(), PERIOD)
            assert got.school_id.tolist() == expected.school_id.tolist()
            assert np.allclose(got.score, expected.score)
            assert got.assessed_period.tolist() == expected.assessed_period.tolist()
            assert got.level.tolist() == expected.level.tolist()
            assert np.allclose(got.score_prev.fillna(-1).astype(float), expected.score_prev.fillna(-1).astype(float))
            assert maturity.peer_benchmark(scope(school="K7"), PERIOD) == bench
            assert maturity.data_start() == dt.date(2024, 1, 1)
    finally:
        if target != "sqlite":
            from data_access import schema

            eng = sa.create_engine(url)
            schema.metadata.drop_all(eng, tables=tables)
            eng.dispose()


# --- derived indicators, re-weighting, suppression (hand-built) ----------------------------------------------------

def derived_fw() -> dict:
    return {
        "id": "derived-test", "version": "1", "levels": LEVELS,
        "dimensions": [
            {"id": "A", "indicators": [{"id": "a1", "weight": 40, "source": "assessed"}]},
            {"id": "S", "indicators": [
                {"id": "s1", "weight": 20, "source": "derived", "from": "energy.meter_coverage",
                 "scale": {"zero_at": 50, "full_at": 100}},
                {"id": "s2", "weight": 20, "source": "derived", "from": "dining.cold_chain_online",
                 "scale": {"zero_at": 50, "full_at": 100}},
                {"id": "s3", "weight": 20, "source": "derived", "from": "service.callback_rate",
                 "scale": {"zero_at": 50, "full_at": 100}},
            ]},
        ],
    }


@pytest.fixture(scope="class")
def derived_wh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("derived")
    frames = org_frames(schools=(("X", "university", "310000"),), canteens_per_school=0,
                        extra_facilities=[(f"X-B{i}", "X", "teaching", 1000.0) for i in range(1, 5)])
    # 3 of 4 buildings with a top-level electricity meter (one more only has a sub-meter): 75 % -> score 50
    frames["dim_meter"] = pd.DataFrame([
        {"meter_id": f"M{i}", "facility_id": f"X-B{i}", "school_id": "X", "energy_type": "electricity",
         "end_use": None, "parent_meter_id": None} for i in (1, 2, 3)] + [
        {"meter_id": "M4", "facility_id": "X-B4", "school_id": "X", "energy_type": "electricity", "end_use": None,
         "parent_meter_id": "M1"}])
    # 3 completed orders with callbacks: fewer than 10 -> suppressed, left out
    t0 = dt.datetime(2026, 11, 1, 9)
    frames["fact_work_order"] = pd.DataFrame([
        {"order_id": f"O{i}", "school_id": "X", "facility_id": None, "kind": "repair", "service_line": "repair",
         "priority": "normal", "created_at": t0, "responded_at": t0 + dt.timedelta(hours=1),
         "completed_at": t0 + dt.timedelta(hours=5), "reopened": False, "callback_done": True, "rating": 5}
        for i in range(3)])
    frames["fact_maturity_score"] = pd.DataFrame([{"school_id": "X", "period": "2026", "indicator_id": "a1",
                                                   "score": 80.0, "evidence": "e", "assessor": "协会评估组B",
                                                   "assessed_on": dt.date(2026, 10, 1)}])
    url = write_warehouse(tmp / "w.duckdb", frames)
    with use_warehouse(url, today=TODAY), use_framework(tmp, derived_fw()):
        yield


class TestDerivedHandBuilt:
    """Derived indicators scaled, re-weighted and suppressed on a hand-built school."""

    def test_derived_scaling_reweighting_and_suppression(self, derived_wh):
        rows = maturity.indicator_scores(scope(school="X"), PERIOD).set_index("indicator_id")
        assert rows.loc["s1", "value"] == pytest.approx(75.0) and rows.loc["s1", "score"] == pytest.approx(50.0)
        assert (rows.loc["s1", "num"], rows.loc["s1", "den"]) == (3, 4)
        assert rows.loc["s2", "state"] == "not_applicable" and pd.isna(rows.loc["s2", "score"])
        assert rows.loc["s3", "state"] == "suppressed" and pd.isna(rows.loc["s3", "score"])
        assert pd.isna(rows.loc["s3", "value"]) and pd.isna(rows.loc["s3", "n"])     # nothing of the small group leaks
        # S re-weighted over s1 alone: 50; total 0.4 * 80 + 0.6 * 50 = 62
        s = maturity.school_scores(scope(school="X"), PERIOD).iloc[0]
        assert s["dim.S"] == pytest.approx(50.0) and s["score"] == pytest.approx(62.0)
        # the window: the 12 months to the period's end, clipped to the first day of data (the orders' day)
        assert rows.loc["s1", "window_start"] == dt.date(2026, 11, 1) and rows.loc["s1", "window_end"] == END


def cold_chain_fw() -> dict:
    return {
        "id": "cold-chain-test", "version": "1", "levels": LEVELS,
        "dimensions": [
            {"id": "A", "indicators": [{"id": "a1", "weight": 40, "source": "assessed"}]},
            {"id": "S", "indicators": [
                {"id": "s1", "weight": 30, "source": "derived", "from": "energy.meter_coverage",
                 "scale": {"zero_at": 50, "full_at": 100}},
                {"id": "s2", "weight": 30, "source": "derived", "from": "dining.cold_chain_online",
                 "scale": {"zero_at": 50, "full_at": 100}, "window_days": 30},
            ]},
        ],
    }


@pytest.fixture(scope="class")
def cold_chain_wh(tmp_path_factory):
    """N: no canteen (a teaching building). Y: a canteen, no cold-chain device at all. Z: a canteen, one device
    that last reported on 5 November (inside the 30 days to END, not in their last 3). W: a canteen, one device
    reporting on 14 November. Every facility has its own electricity meter (coverage 100 %) and a1 = 80."""
    tmp = tmp_path_factory.mktemp("coldchain")
    frames = org_frames(schools=tuple((sid, "k12", "310000") for sid in ("N", "Y", "Z", "W")))
    fac = frames["dim_facility"]
    fac = pd.concat([fac[fac.school_id != "N"], pd.DataFrame([{
        "facility_id": "N-B1", "campus_id": "N-C1", "school_id": "N", "facility_name": "N 教学楼",
        "facility_type": "teaching", "floor_area_m2": 1000.0, "capacity": None}])], ignore_index=True)
    frames["dim_facility"] = fac
    frames["dim_meter"] = pd.DataFrame([
        {"meter_id": f"M-{f.facility_id}", "facility_id": f.facility_id, "school_id": f.school_id,
         "energy_type": "electricity", "end_use": None, "parent_meter_id": None} for f in fac.itertuples()])
    frames["fact_cold_chain_reading"] = pd.DataFrame([
        {"device_id": "Z-D1", "ts": dt.datetime(2026, 11, 5, 10), "facility_id": "Z-CAN1", "zone": "chilled",
         "temp_c": 4.0},
        {"device_id": "W-D1", "ts": dt.datetime(2026, 11, 14, 10), "facility_id": "W-CAN1", "zone": "chilled",
         "temp_c": 4.0}])
    frames["fact_maturity_score"] = pd.DataFrame([
        {"school_id": sid, "period": "2026", "indicator_id": "a1", "score": 80.0, "evidence": "e",
         "assessor": "协会评估组A", "assessed_on": dt.date(2026, 10, 1)} for sid in ("N", "Y", "Z", "W")])
    url = write_warehouse(tmp / "w.duckdb", frames)
    with use_warehouse(url, today=TODAY), use_framework(tmp, cold_chain_fw()):
        yield


class TestColdChainApplicability:
    """Only "no canteen" makes the cold chain not applicable: a canteen without any device reporting scores 0,
    like a canteen whose one device is offline — no school gains from having no sensors."""

    def test_states_and_scores(self, cold_chain_wh):
        rows = maturity.indicator_scores(scope(), PERIOD).set_index(["school_id", "indicator_id"])
        assert rows.loc[("N", "s2"), "state"] == "not_applicable" and pd.isna(rows.loc[("N", "s2"), "score"])
        assert rows.loc[("Y", "s2"), "state"] == "no_data" and rows.loc[("Y", "s2"), "score"] == 0.0
        assert pd.isna(rows.loc[("Y", "s2"), "value"])                       # no figure is made up
        # Z: 0 of 1 device reported in the last 3 days -> 0 %, below zero_at 50 -> 0; W: 1 of 1 -> 100 % -> 100
        assert (rows.loc[("Z", "s2"), "state"], rows.loc[("Z", "s2"), "value"]) == ("scored", 0.0)
        assert (rows.loc[("Z", "s2"), "num"], rows.loc[("Z", "s2"), "den"]) == (0, 1)
        assert rows.loc[("Z", "s2"), "score"] == 0.0 and rows.loc[("W", "s2"), "score"] == 100.0
        assert (rows.xs("s1", level="indicator_id").score == 100.0).all()   # every facility metered

    def test_no_sensors_gains_nothing(self, cold_chain_wh):
        got = maturity.school_scores(scope(), PERIOD).set_index("school_id")
        # N: S re-weighted over s1 alone = 100 -> 0.4 * 80 + 0.6 * 100 = 92
        # Y and Z: S = (30 * 100 + 30 * 0) / 60 = 50 -> 0.4 * 80 + 0.6 * 50 = 62; W: S = 100 -> 92
        assert got.score.to_dict() == {"N": 92.0, "W": 92.0, "Y": 62.0, "Z": 62.0}
        assert got.loc["Y", "dim.S"] == got.loc["Z", "dim.S"] == 50.0

    def test_the_page_and_the_pack_say_why(self, cold_chain_wh, page):
        text = _text(page.render({"school": "Y"}))
        assert "有食堂但窗口内无设备上报：计 0 分" in text
        wb = _workbook({"school": "Y", "from": PERIOD.start.isoformat(), "to": PERIOD.end.isoformat()})
        rows = {r["指标ID"]: r for r in _sheet_rows(wb["指标"])}
        assert rows["s2"]["得分"] == 0 and rows["s2"]["状态"] == "有食堂但窗口内无设备上报：计 0 分"


@pytest.fixture(scope="class")
def edge_wh(tmp_path_factory):
    """One school E exactly at the rounding edge: a1 = a2 = 39.96, b1 = b2 = 73.3 (assessed framework)."""
    tmp = tmp_path_factory.mktemp("edge")
    frames = org_frames(schools=(("E", "k12", "310000"),))
    frames["fact_maturity_score"] = pd.DataFrame([
        {"school_id": "E", "period": "2026", "indicator_id": ind, "score": v, "evidence": f"材料-{ind}",
         "assessor": "协会评估组A", "assessed_on": dt.date(2026, 10, 1)}
        for ind, v in (("a1", 39.96), ("a2", 39.96), ("b1", 73.3), ("b2", 73.3))])
    url = write_warehouse(tmp / "w.duckdb", frames)
    with use_warehouse(url, today=TODAY), use_framework(tmp, assessed_fw()):
        yield


class TestRoundingEdge:
    """A = 39.96 and a total of 0.4 * 39.96 + 0.6 * 73.3 = 59.964: stated 40.0 and 60.0, and banded so — L3
    everywhere (unrounded, the level was L2 next to a printed "60.0")."""

    def test_scores_page_and_pack_agree(self, edge_wh, page):
        row = maturity.school_scores(scope(school="E"), PERIOD).iloc[0]
        assert (row["score"], row["dim.A"], row["level_by_score"], row["level"]) == (60.0, 40.0, 3, 3)
        content = page.render({"school": "E"})
        text = _text(content)
        assert "按得分为 L3；各维度均不低于 40 分" in text and "60.0" in text
        wb = _workbook({"school": "E", "from": PERIOD.start.isoformat(), "to": PERIOD.end.isoformat()})
        summary = {r["项目"]: r["内容"] for r in _sheet_rows(wb["概况"], 3)}
        assert (summary["总分"], summary["按得分等级"], summary["等级（下限规则后）"]) == (60.0, "L3", "L3")
        dims = {r["维度ID"]: r["得分"] for r in _sheet_rows(wb["维度"])}
        assert dims == {"A": 40.0, "B": 73.3}
        # the printable pack (the PDF's content) states the same figures
        from components.maturity_pack import evidence_report

        report = evidence_report(maturity.evidence_pack(scope(school="E"), PERIOD), "zh")
        items = dict(report.section("summary").table.values.tolist())
        assert (items["总分"], items["等级（下限规则后）"]) == ("60.0", "L3")
        assert report.section("dimensions").table.iloc[:, 2].tolist() == ["40.0", "73.3"]


# --- derived indicators on the demo warehouse, against pandas over the raw tables ------------------------------------

def _dates(series) -> pd.Series:
    return pd.to_datetime(series).dt.date


def expected_data_start(raw) -> dt.date:
    cols = {"fact_dining_check": "check_date", "fact_meals_served": "service_date", "fact_cold_chain_reading": "ts",
            "fact_meter_reading": "ts", "fact_survey_response": "submitted_on", "fact_work_order": "created_at"}
    return min(_dates(raw(t)[c]).min() for t, c in cols.items())


def window(raw, days: int) -> tuple[dt.date, dt.date]:
    return max(END - dt.timedelta(days=days - 1), expected_data_start(raw)), END


def between(series, w) -> pd.Series:
    d = _dates(series)
    return (d >= w[0]) & (d <= w[1])


@pytest.fixture(scope="module")
def expected_derived(raw) -> dict[tuple[str, str], float | None]:
    """Every derived indicator's value per school, computed here from the raw tables."""
    w, w30 = window(raw, 365), window(raw, 30)
    fac = raw("dim_facility")
    school_of = fac.set_index("facility_id")["school_id"]
    out: dict[tuple[str, str], float | None] = {}
    schools = sorted(raw("dim_school").school_id)

    def put(ind, per_school: dict):
        for sid in schools:
            out[(sid, ind)] = per_school.get(sid)

    # meter coverage: buildings with a top-level electricity meter / buildings
    meters = raw("dim_meter")
    metered = set(meters[(meters.energy_type == "electricity") & meters.parent_meter_id.isna()].facility_id)
    put("sensing.meter_coverage", {s: 100 * g.facility_id.isin(metered).mean() for s, g in fac.groupby("school_id")})

    # cold-chain devices (chilled/frozen) seen in the 30 days that reported in their last 3 days
    cc = raw("fact_cold_chain_reading")
    cc = cc[cc.zone.isin(["chilled", "frozen"]) & between(cc.ts, w30)]
    dev = cc.groupby("device_id").agg(last=("ts", "max"), facility_id=("facility_id", "min"))
    dev["online"] = dev["last"] >= pd.Timestamp(END + dt.timedelta(days=1) - dt.timedelta(days=3))
    dev["school"] = dev.facility_id.map(school_of)
    put("sensing.cold_chain_online", {s: 100 * g.online.mean() for s, g in dev.groupby("school")})

    # once-a-day checks on service days: a missing row counts 1 due, 0 ok
    meals = raw("fact_meals_served")
    meals = meals[(meals.covers > 0) & between(meals.service_date, w)]
    days = meals.assign(check_date=_dates(meals.service_date))[["facility_id", "check_date"]].drop_duplicates()
    checks = raw("fact_dining_check")
    checks = checks.assign(check_date=_dates(checks.check_date))
    for ind, check in (("sensing.video_online", "video_online"), ("apps.traceability", "supplier_docs")):
        c = checks[(checks.check_type == check) & (checks.meal == "day")]
        m = days.merge(c, on=["facility_id", "check_date"], how="left")
        m["school"] = m.facility_id.map(school_of)
        m["ok"], m["due"] = m.items_ok.fillna(0), m.items_due.fillna(1)
        put(ind, {s: 100 * g.ok.sum() / g.due.sum() for s, g in m.groupby("school")})

    # meter data completeness: readings per meter-day (at most 24) / 24 per meter and day of the window
    r = raw("fact_meter_reading")
    r = r[between(r.ts, w)]
    per_day = r.assign(day=_dates(r.ts)).groupby(["meter_id", "day"]).size().clip(upper=24).groupby("meter_id").sum()
    n_days = (w[1] - w[0]).days + 1
    put("data.completeness", {s: 100 * per_day.reindex(g.meter_id).fillna(0).sum() / (len(g) * 24 * n_days)
                              for s, g in meters.groupby("school_id")})

    # freshness: daily flows with data in the window whose newest day is the window's last day or the one before
    flows = []
    for table, col, how in (("fact_dining_check", "check_date", "facility"),
                            ("fact_meals_served", "service_date", "facility"),
                            ("fact_cold_chain_reading", "ts", "facility"), ("fact_meter_reading", "ts", "meter"),
                            ("fact_survey_response", "submitted_on", "school"),
                            ("fact_work_order", "created_at", "school")):
        f = raw(table)
        f = f[between(f[col], w)]
        if how == "facility":
            f = f.assign(school=f.facility_id.map(school_of))
        elif how == "meter":
            f = f.assign(school=f.meter_id.map(meters.set_index("meter_id")["school_id"]))
        else:
            f = f.assign(school=f.school_id)
        newest = f.assign(day=_dates(f[col])).groupby("school")["day"].max()
        flows += [(s, d >= END - dt.timedelta(days=1)) for s, d in newest.items()]
    fl = pd.DataFrame(flows, columns=["school", "fresh"])
    put("data.freshness", {s: 100 * g.fresh.mean() for s, g in fl.groupby("school")})

    # one source per datum: tables loaded from one source system / tables loaded (warehouse-wide)
    ml = raw("meta_load")
    one = 100 * (ml.groupby("table_name").source_system.nunique() == 1).mean()
    put("data.one_source", {s: one for s in schools})

    # callback rate over completed orders created in the window; CSI over responses (both need n >= 10)
    o = raw("fact_work_order")
    o = o[between(o.created_at, w) & o.completed_at.notna()]
    put("service.callback", {s: 100 * g.callback_done.mean() for s, g in o.groupby("school_id") if len(g) >= 10})
    sv = raw("fact_survey_response")
    sv = sv[between(sv.submitted_on, w)]
    put("service.satisfaction", {s: ((g.score - 1) * 25).mean() for s, g in sv.groupby("school_id") if len(g) >= 10})

    # hazards due in the window (up to yesterday) closed on or before their due date
    h = raw("fact_food_hazard")
    h = h[between(h.due_on, (w[0], min(w[1], TODAY - dt.timedelta(days=1))))]
    h = h.assign(school=h.facility_id.map(school_of),
                 ok=h.closed_on.notna() & (_dates(h.closed_on.fillna(h.due_on)) <= _dates(h.due_on)))
    put("service.alerts_acted", {s: 100 * g.ok.mean() for s, g in h.groupby("school")})
    return out


def expected_score(fw_raw: dict, ind_id: str, value: float) -> float:
    for d in fw_raw["dimensions"]:
        for i in d["indicators"]:
            if i["id"] == ind_id:
                z, f = i["scale"]["zero_at"], i["scale"]["full_at"]
                return float(np.clip(100 * (value - z) / (f - z), 0, 100))
    raise KeyError(ind_id)


def test_derived_indicators_against_independent_computation(raw, expected_derived):
    fw_raw = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    got = maturity.indicator_scores(scope(), PERIOD).set_index(["school_id", "indicator_id"])
    canteens = _canteen_schools(raw)
    checked = 0
    for (sid, ind), value in expected_derived.items():
        row = got.loc[(sid, ind)]
        if value is None and ind == "sensing.cold_chain_online" and sid in canteens:
            assert row["state"] == "no_data" and row["score"] == 0.0, (sid, ind)   # a canteen, nothing reporting
            continue
        if value is None:
            assert row["state"] == "not_applicable" and pd.isna(row["score"]), (sid, ind)
            continue
        assert row["value"] == pytest.approx(value, rel=1e-9), (sid, ind)
        assert row["score"] == pytest.approx(expected_score(fw_raw, ind, value), rel=1e-9), (sid, ind)
        checked += 1
    assert checked >= 45
    # the demo school without a canteen has no cold chain, kitchen video, traceability or hazards
    for ind in ("sensing.cold_chain_online", "sensing.video_online", "apps.traceability", "service.alerts_acted"):
        assert got.loc[("SH-V02", ind), "state"] == "not_applicable"
    # the device planted offline shows at BJ-U01
    assert got.loc[("BJ-U01", "sensing.cold_chain_online"), "value"] < 100


def _canteen_schools(raw) -> set[str]:
    fac = raw("dim_facility")
    return set(fac[fac.facility_type == "canteen"].school_id)


def independent_totals(raw, expected_derived) -> dict[str, dict]:
    """Score, dimensions and level of every demo school from the raw assessed rows, the independent derived values
    and the framework file read here."""
    fw_raw = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    ms = raw("fact_maturity_score")
    # rounds of END's year or before, scores assessed by END; the round assessed last counts (ties: greater period)
    ms = ms[(ms.period.str[:4] <= str(END.year)) & (_dates(ms.assessed_on) <= END)]
    rounds = ms.groupby(["school_id", "period"], as_index=False).assessed_on.max()
    latest = rounds.sort_values(["assessed_on", "period"]).groupby("school_id").period.last()
    ms = ms[ms.period == ms.school_id.map(latest)].set_index(["school_id", "indicator_id"]).score
    bands = [lv["min"] for lv in fw_raw["levels"]]
    canteens = _canteen_schools(raw)

    def stated(v: float) -> float:   # one decimal, half up on the decimal value
        return float(Decimal(f"{v:.9f}").quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))

    out = {}
    for sid in sorted(raw("dim_school").school_id):
        dims, total = {}, 0.0
        for d in fw_raw["dimensions"]:
            num = den = 0.0
            for i in d["indicators"]:
                if i["source"] == "assessed":
                    s = float(ms.get((sid, i["id"]), 0.0))
                else:
                    v = expected_derived[(sid, i["id"])]
                    if v is None and i["from"] == "dining.cold_chain_online" and sid in canteens:
                        s = 0.0          # a canteen but no device reporting: 0, not "not applicable"
                    elif v is None:
                        continue
                    else:
                        s = expected_score(fw_raw, i["id"], v)
                num, den = num + i["weight"] * s, den + i["weight"]
            dims[d["id"]] = num / den if den else 0.0
            total += sum(i["weight"] for i in d["indicators"]) * dims[d["id"]] / 100
        total, dims = stated(total), {k: stated(v) for k, v in dims.items()}
        by_score = max(k for k, b in enumerate(bands) if total >= b) + 1
        level = by_score
        while level > 1 and min(dims.values()) < bands[level - 2]:
            level -= 1
        out[sid] = {"score": total, "dims": dims, "by_score": by_score, "level": level}
    return out


def test_school_totals_levels_and_floor_rule_on_the_demo(raw, expected_derived):
    want = independent_totals(raw, expected_derived)
    got = maturity.school_scores(scope(), PERIOD).set_index("school_id")
    for sid, w in want.items():
        assert got.loc[sid, "score"] == pytest.approx(w["score"], rel=1e-9), sid
        assert (got.loc[sid, "level_by_score"], got.loc[sid, "level"]) == (w["by_score"], w["level"]), sid
        for d, v in w["dims"].items():
            assert got.loc[sid, f"dim.{d}"] == pytest.approx(v, rel=1e-9)
    # planted: BJ-U01 high by score but capped by its very low strategy dimension; SH-U01 the best
    assert got.loc["BJ-U01", "capped_by"] == "strategy"
    assert got.loc["BJ-U01", "level"] < got.loc["BJ-U01", "level_by_score"]
    assert got.score.idxmax() == "SH-U01"
    # the registry tile reads the same figure
    assert registry.evaluate("maturity.score", scope(school="BJ-U01"), PERIOD).value == \
        pytest.approx(want["BJ-U01"]["score"])
    assert registry.evaluate("maturity.level", scope(school="BJ-U01"), PERIOD).value == want["BJ-U01"]["level"]
    assert registry.evaluate("maturity.score", scope(), PERIOD).value == pytest.approx(
        float(np.median([w["score"] for w in want.values()])))


def test_the_period_length_does_not_change_maturity():
    week = Period(END - dt.timedelta(days=6), END)
    a = maturity.school_scores(scope(), PERIOD)
    b = maturity.school_scores(scope(), week)
    pd.testing.assert_frame_equal(a, b)


def test_demo_peer_groups_are_all_under_five():
    # 5 demo schools: 2 universities, 2 vocational, 1 K12: no peer distribution anywhere; the association has 5
    for sid in ("SH-U01", "SH-V01", "SH-K01"):
        assert not maturity.peer_benchmark(scope(school=sid), PERIOD).shown
    assert maturity.scope_distribution(scope(), PERIOD).shown
    assert not maturity.scope_distribution(scope(region="310000"), PERIOD).shown     # 4 schools


# --- the evidence workbook --------------------------------------------------------------------------------------

def _workbook(params, lang=None) -> openpyxl.Workbook:
    import app  # noqa: F401  (registers the pages)
    from pages import maturity as page

    query = dict(params, **({"lang": lang} if lang else {}))
    data, message = page.export([1], query)
    assert message is None
    assert data["filename"] == f"maturity-evidence-{params['school']}-{END.isoformat()}.xlsx"
    return openpyxl.load_workbook(io.BytesIO(base64.b64decode(data["content"])))


def _sheet_rows(ws, header_row: int = 1) -> list[dict]:
    values = list(ws.iter_rows(min_row=header_row, values_only=True))
    head = values[0]
    return [dict(zip(head, r)) for r in values[1:] if any(v is not None for v in r)]


def test_evidence_workbook_contents(raw, expected_derived):
    sid = "BJ-U01"
    wb = _workbook({"school": sid, "from": PERIOD.start.isoformat(), "to": PERIOD.end.isoformat()})
    assert wb.sheetnames == ["概况", "指标", "维度", "派生指标依据", "提升路径", "同类对比", "评估框架"]
    fw_raw = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    want = independent_totals(raw, expected_derived)[sid]

    summary = {r["项目"]: r["内容"] for r in _sheet_rows(wb["概况"], 3)}
    assert summary["框架版本"] == str(fw_raw["version"]) and summary["框架标识"] == fw_raw["id"]
    assert summary["学校代码"] == sid and summary["学校名称"] == "京岚大学"
    assert summary["范围（URL参数）"] == f"region=110000&school={sid}"
    assert summary["评估截至"].date() == END
    assert summary["总分"] == pytest.approx(want["score"])
    assert summary["等级（下限规则后）"] == f"L{want['level']}" and summary["按得分等级"] == f"L{want['by_score']}"
    assert summary["封顶维度"] == "战略与组织" and "封顶为" in summary["等级说明"]
    assert summary["评估方"] == "协会评估组B"
    # data as of: the newest load of the tables behind the figures, and the newest fact of the school
    loads = raw("meta_load")
    tables = maturity.evidence_tables()
    assert summary["最近入库时间"] == loads[loads.table_name.isin(tables)].loaded_at.max().to_pydatetime()
    cc = raw("fact_cold_chain_reading")
    fac = raw("dim_facility")
    newest = cc[cc.facility_id.isin(fac[fac.school_id == sid].facility_id)].ts.max()
    assert summary["数据截至（范围内最新事实）"] >= newest.to_pydatetime()

    rows = {r["指标ID"]: r for r in _sheet_rows(wb["指标"])}
    fw_ids = [i["id"] for d in fw_raw["dimensions"] for i in d["indicators"]]
    assert list(rows) == fw_ids
    ms = raw("fact_maturity_score")
    ms = ms[(ms.school_id == sid) & (ms.period == "2026")].set_index("indicator_id")
    for ind, r in rows.items():
        if r["来源"] == "评估":
            assert r["得分"] == pytest.approx(ms.loc[ind, "score"]) and r["证据"] == ms.loc[ind, "evidence"]
            assert r["评估方"] == ms.loc[ind, "assessor"] and r["评估轮次"] == "2026"
        else:
            assert r["来源"] == "派生" and r["评估方"] == "系统计算"
            value = expected_derived[(sid, ind)]
            assert r["数值"] == pytest.approx(value) and r["得分"] == pytest.approx(expected_score(fw_raw, ind, value))
            assert r["窗口止"].date() == END

    derived = {r["指标ID"]: r for r in _sheet_rows(wb["派生指标依据"])}
    mc = derived["sensing.meter_coverage"]
    f = fac[fac.school_id == sid]
    assert (mc["分子"], mc["分母"]) == (f.facility_id.isin(
        raw("dim_meter").query("energy_type == 'electricity' and parent_meter_id.isna()").facility_id).sum(), len(f))
    assert mc["来源指标ID"] == "energy.meter_coverage" and mc["折算0分的数值"] == 50

    dims = {r["维度ID"]: r for r in _sheet_rows(wb["维度"])}
    assert {k: v["得分"] for k, v in dims.items()} == {k: pytest.approx(v) for k, v in want["dims"].items()}

    plan = wb["提升路径"]
    assert plan["B1"].value == f"L{want['level']}" and plan["B2"].value == f"L{want['level'] + 1}"
    assert "少于 5 所" in wb["同类对比"]["A1"].value or "不足" in wb["同类对比"]["A2"].value
    levels = _sheet_rows(wb["评估框架"], 3)[:5]
    assert [(r["等级"], r["得分下限"]) for r in levels] == [(lv["level"], lv["min"]) for lv in fw_raw["levels"]]

    # privacy: no other school appears anywhere in the pack
    others = raw("dim_school")
    others = others[others.school_id != sid]
    text = " ".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None)
    for o in others.itertuples():
        assert o.school_id not in text and o.school_name not in text


def test_evidence_pack_pdf(raw, tmp_path):
    """The evidence pack printed by Chromium (export.py) holds the workbook's content as extractable text."""
    import re
    import subprocess

    from .conftest import SCREENSHOTS
    from .test_export import _pages, _pdf_ready, login

    _pdf_ready()
    from app import server

    sid = "BJ-U01"
    client = login(server.test_client())
    response = client.get(f"/export/maturity-evidence.pdf?school={sid}&from={PERIOD.start}&to={PERIOD.end}")
    assert response.status_code == 200 and response.data[:4] == b"%PDF"
    assert response.headers["Content-Disposition"] == f'attachment; filename="maturity-evidence-{sid}-{END}.pdf"'
    path = tmp_path / "evidence.pdf"
    path.write_bytes(response.data)
    layout = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                            check=True).stdout
    flat = "".join(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                                  check=True).stdout.split())
    fw_raw = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    assert "后勤数字化成熟度评估证据包" in layout and "京岚大学" in layout
    assert re.search(rf"框架版本\s+{re.escape(str(fw_raw['version']))}\b", layout)       # the summary's row
    assert f"框架版本{fw_raw['version']}" in flat.replace(" ", "")                       # and every page's foot
    for heading in ("概况", "指标", "维度", "派生指标依据", "提升路径", "同类对比", "评估框架"):
        assert heading in layout
    # every indicator of the framework, and the assessed evidence and assessor of the round, from the raw table
    for ind in (i["id"] for d in fw_raw["dimensions"] for i in d["indicators"]):
        assert ind in flat, ind
    ms = raw("fact_maturity_score")
    ms = ms[(ms.school_id == sid) & (ms.period == "2026")].set_index("indicator_id")
    for ind in ("strategy.plan", "apps.systems"):
        assert "".join(ms.loc[ind, "evidence"].split()) in flat, ind
    assert ms.loc["strategy.plan", "assessor"] in flat and "系统计算" in flat
    # a derived figure: buildings with a top-level electricity meter / buildings (as the workbook test)
    fac = raw("dim_facility")
    f = fac[fac.school_id == sid]
    metered = f.facility_id.isin(raw("dim_meter").query("energy_type == 'electricity' and parent_meter_id.isna()")
                                 .facility_id).sum()
    assert f"{metered}/{len(f)}=" in flat and "energy.meter_coverage" in flat
    # the scope and the data-as-of time
    assert f"region=110000&school={sid}" in flat and "数据截至" in layout
    # privacy: no other school appears
    others = raw("dim_school")
    for o in others[others.school_id != sid].itertuples():
        assert o.school_id not in flat and o.school_name not in flat
    SCREENSHOTS.mkdir(exist_ok=True)
    pages = _pages(path)
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(SCREENSHOTS / "maturity-evidence-pdf")],
                   check=True)
    assert pages >= 2


def test_evidence_pack_pdf_without_a_school_is_a_message():
    from app import server

    from .test_export import login

    response = login(server.test_client()).get("/export/maturity-evidence.pdf")
    assert response.status_code == 400 and "请选择一所学校" in response.data.decode()
    # a school leader (tests/conftest.py: t-leader sees SH-U01) cannot print another school's pack
    from .helpers import logged_in

    leader = logged_in(server.test_client(), "t-leader")
    for fmt in ("pdf", "html"):
        response = leader.get(f"/export/maturity-evidence.{fmt}?school=BJ-U01")
        text = response.get_data(as_text=True)
        assert response.status_code == 403 and "超出您的数据权限范围" in text and "京岚大学" not in text


def test_evidence_workbook_in_english():
    wb = _workbook({"school": "SH-U01"}, "en")
    assert wb.sheetnames == ["Summary", "Indicators", "Dimensions", "Derived figures", "Gap plan", "Peers",
                             "Framework"]
    summary = {r["Item"]: r["Value"] for r in _sheet_rows(wb["Summary"], 3)}
    assert summary["School name"] == "Hulan University" and summary["Level (after the floor rule)"].startswith("L")


# --- the page's callbacks -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def page():
    import app  # noqa: F401
    from pages import maturity as page

    return page


def _ids(component, found=None):
    from .test_pages import _find_ids

    return _find_ids(component, found)


def _text(component):
    from .test_components import _text as text

    return text(component)


def _find(component, cid):
    if isinstance(component, (list, tuple)):
        return next((hit for c in component if (hit := _find(c, cid)) is not None), None)
    if getattr(component, "id", None) == cid:
        return component
    children = getattr(component, "children", None)
    return None if children is None else _find(children, cid)


def test_page_school_view(page):
    content = page.render({"school": "BJ-U01"})
    found = _ids(content)
    assert {page.ids.SUMMARY, page.ids.RADAR, page.ids.GAP, page.ids.INDICATORS} <= found
    text = _text(content)
    assert "封顶为 L" in text and "战略与组织" in text and "少于 5 所" in text
    assert "协会评估组B" in text and "系统计算" in text
    # the evidence pack as PDF, next to the Excel button, for the same school and period
    link = _find(_find(content, page.ids.SUMMARY), "maturity-evidence-pdf")
    assert link is not None and "导出证据包（PDF）" in _text(link)
    from export import pdf_status

    if pdf_status()[0]:
        assert link.href.startswith("/export/maturity-evidence.pdf?") and "school=BJ-U01" in link.href
    else:
        assert "disabled" in link.className and "PDF 不可用" in link.title


def test_evidence_pdf_link_greyed_out_without_chromium():
    from components import maturity as mc

    bar = mc.evidence_buttons({"type": "x", "index": "S"}, "en", ("/export/x.pdf", False, "Chromium not found"))
    link = _find(bar, "maturity-evidence-pdf")
    assert "disabled" in link.className and link.title == "PDF unavailable: Chromium not found"
    assert not hasattr(link, "href") or link.href is None


def test_page_association_view(page):
    content = page.render({})
    found = _ids(content)
    assert {page.ids.RANKING, page.ids.HEATMAP, page.ids.YOY, page.ids.LEVELS, page.ids.DISTRIBUTION} <= found


def test_page_small_region_shows_no_distribution(page):
    content = page.render({"region": "310000", "lang": "en"})
    found = _ids(content)
    assert page.ids.LEVELS not in found and page.ids.RANKING in found
    assert "fewer than 5" in _text(content)


def test_page_below_school_shows_the_school(page):
    content = page.render({"facility": "SH-U01-C1-CAN1"})
    assert page.ids.SUMMARY in _ids(content) and "成熟度按学校评估" in _text(content)


@pytest.mark.parametrize("params, message", [
    ({"school": "NOPE"}, "未找到学校"),
    ({"to": "2026-13-01"}, "不是有效日期"),
])
def test_page_bad_request_shows_a_message(page, params, message):
    content = page.render(params)
    assert "input-error" in _ids(content) and message in _text(content)


def test_page_shows_a_broken_framework(page, tmp_path):
    raw = assessed_fw()
    raw["dimensions"][0]["indicators"][0]["weight"] = 1
    with use_framework_file(tmp_path, raw):
        content = page.render({"school": "SH-U01"})
    assert "framework-error" in _ids(content) and "weights sum to 81" in _text(content)


@contextlib.contextmanager
def use_framework_file(tmp_path, raw):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    before = config.get_config()
    config.override(maturity_framework=path)
    try:
        yield
    finally:
        config.set_config(before)


def test_export_without_a_school_explains(page):
    data, message = page.export([1], {})
    assert data is dash_no_update() and "请选择一所学校" in _text(message)
    assert page.export([None], {"school": "SH-U01"}) == (dash_no_update(), dash_no_update())


def dash_no_update():
    from dash import no_update

    return no_update


def test_a_broken_framework_leaves_the_tiles_without_data(tmp_path):
    raw = assessed_fw()
    raw["dimensions"][0]["indicators"][0]["weight"] = 1
    with use_framework_file(tmp_path, raw):
        res = registry.evaluate("maturity.score", scope(school="SH-U01"), PERIOD)
    assert res.value is None and res.status == "nodata"
