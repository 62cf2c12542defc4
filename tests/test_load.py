"""The loader (data_access.load): every validation rule with a bad file and its exact reason, the accepted
variants (GBK, Excel cells, 2026/11/3, full-width digits, 是/否 …), both error policies, idempotence and
lineage, the daily rollup, the templates' round trip, atomicity under a real kill -9, and a load while a
cockpit server answers requests."""
from __future__ import annotations

import csv
import datetime as dt
import fcntl
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from data_access import demo, load, schema, templates
from data_access.validate import LOADABLE_TABLES, SPECS

from .conftest import END, TODAY, WAREHOUSE
from .helpers import bearer, logged_in, use_warehouse

pytestmark = pytest.mark.engine_free   # its own files and server URLs: one run of CI is enough

PROJECT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# --- helpers ------------------------------------------------------------------------------------------------


def copy_warehouse(folder: Path, name: str = "wh.duckdb") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    shutil.copy(WAREHOUSE, target)
    return f"duckdb:///{target}"


@pytest.fixture(scope="module")
def shared_wh(tmp_path_factory) -> str:
    """A copy of the session warehouse for tests whose batches are all rejected (only meta_load grows)."""
    return copy_warehouse(tmp_path_factory.mktemp("shared"))


@pytest.fixture
def wh(tmp_path) -> str:
    return copy_warehouse(tmp_path / "wh")


def path_of(url: str) -> Path:
    return Path(url.removeprefix("duckdb:///"))


def write_csv(folder: Path, name: str, header: list[str], rows: list[list], encoding: str = "utf-8-sig") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = folder / name
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def run(url: str, *paths, tmp: Path, **kwargs) -> load.RunResult:
    return load.run(url, list(paths), rejects_path=tmp / "rejects.rejects.csv", **kwargs)


def rejects_of(result: load.RunResult) -> pd.DataFrame:
    if result.rejects_path is None:
        return pd.DataFrame(columns=load.REJECTS_HEADER)
    raw = result.rejects_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "the rejects file is UTF-8 with BOM"
    return pd.read_csv(result.rejects_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def query(url: str, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(path_of(url)), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def table(url: str, name: str) -> pd.DataFrame:
    cols = [c.name for c in schema.metadata.tables[name].columns]
    frame = query(url, f'SELECT {", ".join(cols)} FROM "{name}"')
    return frame.sort_values(cols).reset_index(drop=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Valid rows for the session warehouse (5 demo schools); each rule test breaks one field.
CAN1 = "SH-U01-C1-CAN1"
METER = "SH-U01-C1-CAN1-EL"
BASE = {
    "dim_school": {"school_id": "T-01", "school_name": "测试学校", "school_name_en": "", "region_code": "310000",
                   "region_name": "上海市", "school_type": "k12", "boarding": "否"},
    "dim_campus": {"campus_id": "T-C9", "school_id": "SH-U01", "campus_name": "测试校区"},
    "dim_facility": {"facility_id": "T-F1", "campus_id": "SH-U01-C1", "school_id": "SH-U01", "facility_name": "测试楼",
                     "facility_type": "office", "floor_area_m2": "1200", "capacity": ""},
    "fact_school_year": {"school_id": "SH-U01", "year": "2027", "students": "100", "staff": "10",
                         "floor_area_m2": "5000"},
    "fact_dining_check": {"facility_id": CAN1, "check_date": "2026-11-03", "meal": "lunch",
                          "check_type": "sample_retention", "items_due": "8", "items_ok": "8"},
    "fact_meals_served": {"facility_id": CAN1, "service_date": "2026-11-03", "meal": "lunch", "covers": "300"},
    "fact_cold_chain_reading": {"device_id": "T-D1", "facility_id": CAN1, "zone": "chilled",
                                "ts": "2026-11-03 10:00", "temp_c": "4.5"},
    "fact_food_hazard": {"hazard_id": "T-H1", "facility_id": CAN1, "found_on": "2026-11-01", "source": "self_check",
                         "severity": "low", "category": "地面湿滑", "due_on": "2026-11-05", "closed_on": ""},
    "fact_canteen_inspection": {"facility_id": CAN1, "inspected_on": "2026-11-02", "result": "pass", "grade": "A"},
    "fact_staff_certificate": {"facility_id": CAN1, "staff_ref": "T-S1", "valid_until": "2027-01-01"},
    "dim_meter": {"meter_id": "T-M1", "facility_id": CAN1, "school_id": "SH-U01", "energy_type": "electricity",
                  "end_use": "hvac", "parent_meter_id": ""},
    "fact_meter_reading": {"meter_id": METER, "ts": "2026-11-03 10:00:00", "consumption": "12.5"},
    "fact_survey_response": {"response_id": "T-R1", "school_id": "SH-U01", "facility_id": "", "service_line": "dining",
                             "submitted_on": "2026-11-03", "respondent_type": "student", "score": "4", "nps": "9"},
    "fact_work_order": {"order_id": "T-W1", "school_id": "SH-U01", "facility_id": "", "kind": "repair",
                        "service_line": "repair", "priority": "normal", "created_at": "2026-11-03 09:00",
                        "responded_at": "2026-11-03 10:00", "completed_at": "2026-11-04 10:00", "reopened": "否",
                        "callback_done": "是", "rating": "5"},
    "fact_maturity_score": {"school_id": "SH-U01", "period": "2026", "indicator_id": "strategy.plan", "score": "80",
                            "evidence": "", "assessor": "", "assessed_on": "2026-10-01"},
    "fact_energy_quota": {"school_id": "SH-U01", "year": "2027", "energy_type": "water", "quota": "1000"},
    "dim_school_calendar": {"school_id": "SH-U01", "cal_date": "2027-03-01", "day_type": "term", "teaching_week": "1"},
}


def rows_file(folder: Path, name: str, rows: list[dict], encoding: str = "utf-8-sig") -> Path:
    header = list(rows[0])
    return write_csv(folder, name, header, [[r[c] for c in header] for r in rows], encoding)


def test_every_table_has_a_valid_base_row(shared_wh, tmp_path):
    # The rule tests below break one field of these rows: each must load on its own.
    assert set(BASE) == set(LOADABLE_TABLES)
    for name, row in BASE.items():
        v = dict(row)
        if name == "dim_facility":
            v["facility_id"] = "T-F2"
        result = run(shared_wh, rows_file(tmp_path / name, f"{name}.csv", [v]), tmp=tmp_path / name, on_error="skip-rows")
        assert result.ok, (name, rejects_of(result).to_dict("records"))


# --- each validation rule, with a bad file and the exact reason -------------------------------------------

NO_METER = "在 dim_meter 中找不到（本文件和仓库中都没有）"
MISMATCH = "在 {} 中登记的所属学校与本行 school_id 不一致"
NOT_DATE = "不是有效日期（YYYY-MM-DD 或 YYYY/M/D）"
NOT_TS = "不是有效时间（YYYY-MM-DD HH:MM[:SS]）"

RULES = [
    ("required", "dim_school", {"school_name": ""}, "school_name", "required", "必填值为空"),
    ("required-blank", "dim_school", {"school_name": "  "}, "school_name", "required", "必填值为空"),
    ("too-long", "dim_school", {"school_id": "X" * 65}, "school_id", "too_long", "超过 64 个字符"),
    ("enum-case", "dim_school", {"school_type": "University"}, "school_type", "not_in_list",
     "不是允许的取值：university / vocational / k12"),
    ("enum-label", "fact_canteen_inspection", {"result": "符合"}, "result", "not_in_list",
     "不是允许的取值：pass / basic_pass / fail"),
    ("grade", "fact_canteen_inspection", {"grade": "E"}, "grade", "not_in_list", "不是允许的取值：A / B / C / D"),
    ("meal-day-served", "fact_meals_served", {"meal": "day"}, "meal", "not_in_list",
     "不是允许的取值：breakfast / lunch / dinner"),
    ("bool", "dim_school", {"boarding": "yes"}, "boarding", "not_a_bool", "不是布尔值（是/否、true/false 或 1/0）"),
    ("int-fraction", "fact_dining_check", {"items_due": "8.5"}, "items_due", "not_an_integer", "不是整数"),
    ("int-text", "fact_meals_served", {"covers": "三百"}, "covers", "not_a_number", "不是数字"),
    ("thousands", "fact_meter_reading", {"consumption": "1,234.5"}, "consumption", "not_a_number", "不是数字"),
    ("unit", "fact_meter_reading", {"consumption": "12 kWh"}, "consumption", "not_a_number", "不是数字"),
    ("infinite", "fact_cold_chain_reading", {"temp_c": "inf"}, "temp_c", "not_a_number", "不是数字"),
    ("covers<0", "fact_meals_served", {"covers": "-1"}, "covers", "below_min", "小于最小值 0"),
    ("consumption<0", "fact_meter_reading", {"consumption": "-0.5"}, "consumption", "below_min", "小于最小值 0"),
    ("items_ok<0", "fact_dining_check", {"items_ok": "-1"}, "items_ok", "below_min", "小于最小值 0"),
    ("ok>due", "fact_dining_check", {"items_ok": "9"}, "items_ok", "ok_exceeds_due", "items_ok 大于 items_due"),
    ("score>5", "fact_survey_response", {"score": "6"}, "score", "above_max", "大于最大值 5"),
    ("score<1", "fact_survey_response", {"score": "0"}, "score", "below_min", "小于最小值 1"),
    ("nps>10", "fact_survey_response", {"nps": "11"}, "nps", "above_max", "大于最大值 10"),
    ("rating>5", "fact_work_order", {"rating": "7"}, "rating", "above_max", "大于最大值 5"),
    ("maturity>100", "fact_maturity_score", {"score": "100.5"}, "score", "above_max", "大于最大值 100"),
    ("area=0", "dim_facility", {"floor_area_m2": "0"}, "floor_area_m2", "not_above", "必须大于 0"),
    ("week=0", "dim_school_calendar", {"teaching_week": "0"}, "teaching_week", "below_min", "小于最小值 1"),
    # Whole-number columns are 32-bit in the warehouse: a larger value must not fail the batch's write (or, as
    # 1e20 did, become empty).
    ("covers>int32", "fact_meals_served", {"covers": "3000000000"}, "covers", "above_max", "大于最大值 2147483647"),
    ("students>int32", "fact_school_year", {"students": "2147483648"}, "students", "above_max",
     "大于最大值 2147483647"),
    ("capacity=1e20", "dim_facility", {"capacity": "1e20"}, "capacity", "above_max", "大于最大值 2147483647"),
    ("week=1e20", "dim_school_calendar", {"teaching_week": "1e20"}, "teaching_week", "above_max",
     "大于最大值 2147483647"),
    ("date-invalid", "fact_dining_check", {"check_date": "2026-02-30"}, "check_date", "not_a_date", NOT_DATE),
    ("date-compact", "fact_dining_check", {"check_date": "20261103"}, "check_date", "not_a_date", NOT_DATE),
    ("date-mixed", "fact_dining_check", {"check_date": "2026/11-03"}, "check_date", "not_a_date", NOT_DATE),
    ("date-time", "fact_dining_check", {"check_date": "2026-11-03 10:00"}, "check_date", "not_a_date", NOT_DATE),
    ("date-chinese", "fact_dining_check", {"check_date": "2026年11月3日"}, "check_date", "not_a_date", NOT_DATE),
    ("date-dmy", "fact_dining_check", {"check_date": "03/11/2026"}, "check_date", "not_a_date", NOT_DATE),
    ("year", "fact_dining_check", {"check_date": "1899-12-31"}, "check_date", "year_out_of_range",
     "年份不在 1900–2100 之间"),
    ("ts-no-time", "fact_meter_reading", {"ts": "2026-11-03"}, "ts", "not_a_timestamp", NOT_TS),
    ("ts-hour", "fact_meter_reading", {"ts": "2026-11-03 25:00"}, "ts", "not_a_timestamp", NOT_TS),
    ("ts-zone", "fact_meter_reading", {"ts": "2026-11-03T10:00:00+08:00"}, "ts", "not_a_timestamp", NOT_TS),
    # pandas' fast parser would read these as 10:01:00, 10:00 and 10:05: the rule rejects them, never guesses
    ("ts-second-60", "fact_meter_reading", {"ts": "2026-11-03 10:00:60"}, "ts", "not_a_timestamp", NOT_TS),
    ("ts-two-spaces", "fact_meter_reading", {"ts": "2026-11-03  10:00"}, "ts", "not_a_timestamp", NOT_TS),
    ("ts-tab", "fact_meter_reading", {"ts": "2026-11-03\t10:00"}, "ts", "not_a_timestamp", NOT_TS),
    ("ts-one-digit-minute", "fact_meter_reading", {"ts": "2026-11-03 10:5"}, "ts", "not_a_timestamp", NOT_TS),
    ("ts-one-digit-second", "fact_work_order", {"created_at": "2026-11-03 09:00:5"}, "created_at", "not_a_timestamp",
     NOT_TS),
    ("ts-minute-60", "fact_cold_chain_reading", {"ts": "2026-11-03 10:60"}, "ts", "not_a_timestamp", NOT_TS),
    ("fk-meter", "fact_meter_reading", {"meter_id": "NO-SUCH-METER"}, "meter_id", "fk_missing", NO_METER),
    ("fk-facility", "fact_dining_check", {"facility_id": "NO-SUCH"}, "facility_id", "fk_missing",
     "在 dim_facility 中找不到（本文件和仓库中都没有）"),
    ("fk-school", "fact_survey_response", {"school_id": "XX-01"}, "school_id", "fk_missing",
     "在 dim_school 中找不到（本文件和仓库中都没有）"),
    ("fk-campus", "dim_facility", {"campus_id": "NO-CAMPUS"}, "campus_id", "fk_missing",
     "在 dim_campus 中找不到（本文件和仓库中都没有）"),
    ("meter-school", "dim_meter", {"school_id": "SH-V01"}, "facility_id", "fk_mismatch", MISMATCH.format("dim_facility")),
    ("facility-school", "dim_facility", {"campus_id": "SH-V01-C1"}, "campus_id", "fk_mismatch",
     MISMATCH.format("dim_campus")),
    ("survey-school", "fact_survey_response", {"facility_id": "SH-V01-C1-CAN1"}, "facility_id", "fk_mismatch",
     MISMATCH.format("dim_facility")),
    ("end-use", "dim_meter", {"energy_type": "water"}, "end_use", "end_use_not_electricity",
     "end_use 只适用于电表（electricity）"),
    ("own-parent", "dim_meter", {"parent_meter_id": "T-M1"}, "parent_meter_id", "own_parent", "上级表不能是自身"),
    ("unknown-parent", "dim_meter", {"parent_meter_id": "T-M0"}, "parent_meter_id", "fk_missing", NO_METER),
    ("responded", "fact_work_order", {"responded_at": "2026-11-03 08:59"}, "responded_at", "before", "早于 created_at"),
    ("completed", "fact_work_order", {"completed_at": "2026-11-02 10:00"}, "completed_at", "before", "早于 created_at"),
    ("due", "fact_food_hazard", {"due_on": "2026-10-31"}, "due_on", "before", "早于 found_on"),
    ("closed", "fact_food_hazard", {"closed_on": "2026-10-30"}, "closed_on", "before", "早于 found_on"),
    ("phone", "fact_staff_certificate", {"staff_ref": "13812345678"}, "staff_ref", "personal_data",
     "疑似个人信息（手机号或身份证号），请改用匿名编号"),
    ("id-card", "fact_maturity_score", {"evidence": "负责人 11010519491231002X"}, "evidence", "personal_data",
     "疑似个人信息（手机号或身份证号），请改用匿名编号"),
    ("framework", "fact_maturity_score", {"indicator_id": "nope.x"}, "indicator_id", "not_in_framework",
     "不是成熟度评估框架中的指标"),
]


OTHER_KEY = {
    "dim_school": {"school_id": "T-01b"}, "dim_campus": {"campus_id": "T-C9b"}, "dim_facility": {"facility_id": "T-F1b"},
    "fact_school_year": {"year": "2028"}, "dim_school_calendar": {"cal_date": "2027-03-02"},
    "fact_dining_check": {"meal": "dinner"}, "fact_meals_served": {"meal": "dinner"},
    "fact_cold_chain_reading": {"ts": "2026-11-03 10:10"}, "fact_food_hazard": {"hazard_id": "T-H1b"},
    "fact_canteen_inspection": {"inspected_on": "2026-11-01"}, "fact_staff_certificate": {"staff_ref": "T-S1b"},
    "dim_meter": {"meter_id": "T-M1b"}, "fact_meter_reading": {"ts": "2026-11-03 11:00:00"},
    "fact_energy_quota": {"year": "2028"}, "fact_survey_response": {"response_id": "T-R1b"},
    "fact_work_order": {"order_id": "T-W1b"}, "fact_maturity_score": {"indicator_id": "strategy.owner"},
}


def test_template_descriptions_survive_a_gbk_save():
    # Excel on a Chinese Windows saves "CSV" in GBK: a description it could not encode would no longer match.
    for spec in SPECS.values():
        for col in spec.columns:
            col.description.encode("gbk")


@pytest.mark.parametrize("case, name, change, column, code, message", RULES, ids=[r[0] for r in RULES])
def test_each_rule_rejects_a_bad_row_with_its_exact_reason(shared_wh, tmp_path, case, name, change, column, code,
                                                           message):
    bad = {**BASE[name], **change}
    good = {**BASE[name], **OTHER_KEY[name]}   # another natural key, so that the two rows are no duplicates
    before = query(shared_wh, "SELECT count(*) AS n FROM meta_load").n[0]
    result = run(shared_wh, rows_file(tmp_path, f"{name}.csv", [good, bad]), tmp=tmp_path)
    rejects = rejects_of(result)
    assert rejects[["row", "column", "code", "reason"]].to_dict("records") == [
        {"row": "3", "column": column, "code": code, "reason": message}]
    assert rejects.loc[0, "file"].endswith(f"{name}.csv")
    if code == "personal_data":   # masked in the rejects file too
        assert rejects.loc[0, "value"] in ("138******78", "负责人 110*************2X")
    else:
        assert rejects.loc[0, "value"] == bad[column]
    assert rejects.loc[0, "reason_en"]
    (batch,) = result.batches
    assert (batch.status, batch.rows_in, batch.rows_loaded, batch.rows_rejected) == ("rejected", 2, 0, 1)
    assert result.exit_code == 1
    meta = query(shared_wh, "SELECT * FROM meta_load ORDER BY loaded_at DESC, batch_id DESC")
    assert len(meta) == before + 1
    assert meta.iloc[0][["table_name", "status", "rows_in", "rows_rejected"]].tolist() == [name, "rejected", 2, 1]


def test_duplicate_keys_within_a_file_reject_every_copy(shared_wh, tmp_path):
    rows = [dict(BASE["fact_meter_reading"], ts=ts, consumption=c) for ts, c in
            (("2026-11-03 10:00", "1"), ("2026-11-03 11:00", "2"), ("2026/11/3 10:00:00", "3"))]
    result = run(shared_wh, rows_file(tmp_path, "fact_meter_reading.csv", rows), tmp=tmp_path, on_error="skip-rows")
    rejects = rejects_of(result)
    key = f"{METER} | 2026-11-03 10:00:00"
    assert rejects[["row", "column", "value", "code", "reason"]].to_dict("records") == [
        {"row": str(r), "column": "meter_id+ts", "value": key, "code": "duplicate_key",
         "reason": "同一文件中自然键重复（meter_id+ts）"} for r in (2, 4)]
    (batch,) = result.batches
    assert (batch.status, batch.rows_in, batch.rows_loaded, batch.rows_rejected) == ("ok", 3, 1, 2)


def test_a_parent_meter_may_come_in_the_same_file(shared_wh, tmp_path):
    # T-P2's parent T-P1 is loaded by the same file; T-P3's parent T-P4 is rejected, so T-P3 is too.
    rows = [dict(BASE["dim_meter"], meter_id="T-P2", parent_meter_id="T-P1"),
            dict(BASE["dim_meter"], meter_id="T-P1"),
            dict(BASE["dim_meter"], meter_id="T-P4", energy_type="gas"),   # end_use on a gas meter: rejected
            dict(BASE["dim_meter"], meter_id="T-P3", parent_meter_id="T-P4")]
    result = run(shared_wh, rows_file(tmp_path, "dim_meter.csv", rows), tmp=tmp_path, on_error="skip-rows")
    rejects = rejects_of(result)
    assert rejects[["row", "column", "code"]].to_dict("records") == [
        {"row": "4", "column": "end_use", "code": "end_use_not_electricity"},
        {"row": "5", "column": "parent_meter_id", "code": "fk_missing"}]
    assert result.batches[0].rows_loaded == 2
    loaded = query(shared_wh, "SELECT meter_id, coalesce(parent_meter_id, '') AS parent FROM dim_meter "
                              "WHERE meter_id LIKE 'T-P%' ORDER BY 1")
    assert loaded.values.tolist() == [["T-P1", ""], ["T-P2", "T-P1"]]


def test_a_value_in_a_column_without_header_is_rejected(shared_wh, tmp_path):
    path = write_csv(tmp_path, "fact_meals_served.csv", ["facility_id", "service_date", "meal", "covers", ""],
                     [[CAN1, "2026-11-03", "lunch", "300", ""], [CAN1, "2026-11-04", "lunch", "300", "多余"]])
    rejects = rejects_of(run(shared_wh, path, tmp=tmp_path))
    assert rejects[["row", "column", "value", "code", "reason"]].to_dict("records") == [
        {"row": "3", "column": "#5", "value": "多余", "code": "unnamed_value", "reason": "没有列名的列中有值"}]


# --- files that cannot be read ------------------------------------------------------------------------------

def _xlsx(sheets: dict[str, list[list]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _damaged_xlsx() -> bytes:
    """A workbook whose sheet list reads but whose sheet's XML is cut off (as after an interrupted copy)."""
    import zipfile

    good = zipfile.ZipFile(io.BytesIO(_xlsx({"fact_meals_served": [["facility_id", "service_date", "meal", "covers"],
                                                                   [CAN1, "2026-11-03", "lunch", 3]]})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as damaged:
        for item in good.infolist():
            data = good.read(item)
            damaged.writestr(item, data[:len(data) // 2] if item.filename.startswith("xl/worksheets/") else data)
    return out.getvalue()


FILES = [
    ("missing-column", "fact_meals_served.csv", b"facility_id,service_date,meal\nX,2026-11-03,lunch\n",
     "covers", "missing_column", "缺少必填列"),
    ("unknown-column", "fact_meals_served.csv", b"facility_id,service_date,meal,covers,cover\n",
     "cover", "unknown_column", "不是 fact_meals_served 的列"),
    ("duplicate-column", "fact_meals_served.csv", b"facility_id,service_date,meal,covers,covers\n",
     "covers", "duplicate_column", "列名重复"),
    ("semicolons", "fact_meals_served.csv", b"facility_id;service_date;meal;covers\nX;2026-11-03;lunch;3\n",
     "facility_id;service_date;meal;covers", "delimiter", "列分隔符必须是英文逗号"),
    ("ragged", "fact_meals_served.csv",
     b"facility_id,service_date,meal,covers\nSH-U01-C1-CAN1,2026-11-03,lunch,3\nSH-U01-C1-CAN1,2026-11-04,lunch,3,9\n",
     "", "bad_structure", "CSV 结构错误：line 3: 5 fields, the header has 4"),
    # A trailing comma on the first data row: pandas would take the first column for row labels.
    ("trailing-comma", "fact_meals_served.csv",
     b"facility_id,service_date,meal,covers\nSH-U01-C1-CAN1,2026-11-03,lunch,3,\nSH-U01-C1-CAN1,2026-11-04,lunch,3,\n",
     "", "bad_structure", "CSV 结构错误：line 2: 5 fields, the header has 4"),
    # … and with a numeric first column it would have loaded the columns shifted by one, row numbers wrong.
    ("extra-field-numeric-id", "fact_meals_served.csv",
     b"facility_id,service_date,meal,covers\n1001,2026-11-03,lunch,3,x,y\n", "", "bad_structure",
     "CSV 结构错误：line 2: 6 fields, the header has 4"),
    ("extra-field-after-blank-line", "fact_meals_served.csv",
     b"facility_id,service_date,meal,covers\n\nSH-U01-C1-CAN1,2026-11-03,lunch,3,\n", "", "bad_structure",
     "CSV 结构错误：line 3: 5 fields, the header has 4"),
    ("unclosed-quote", "fact_meals_served.csv",
     b'facility_id,service_date,meal,covers\nSH-U01-C1-CAN1,2026-11-03,lunch,3\nSH-U01-C1-CAN1,"2026-11-04,lunch,3\n',
     "", "bad_structure", "CSV 结构错误：line 3: a quoted field is never closed"),
    ("unclosed-quote-header", "fact_meals_served.csv",
     b'facility_id,"service_date,meal,covers\n' + b"x" * 300_000 + b"\n", "", "bad_structure",
     "CSV 结构错误：line 1: a field longer than 131,072 characters (an unclosed quote?)"),
    ("encoding", "fact_meals_served.csv", b"facility_id,service_date,meal,covers\n\xff\xfe\xfd,2026-11-03,lunch,3\n",
     "", "encoding", "文件编码既不是 UTF-8 也不是 GBK/GB18030"),
    ("utf16", "fact_meals_served.csv", "facility_id,service_date,meal,covers\n".encode("utf-16"),
     "", "binary", "文件含有空字节：不是文本 CSV（UTF-16 请另存为 UTF-8）"),
    ("empty", "fact_meals_served.csv", b"", "", "empty_file", "文件没有表头行"),
    ("not-a-table", "meals.csv", b"facility_id\n", "", "not_a_table",
     "文件名不是仓库表名（应为 <表名>.csv 或 <表名>.xlsx）"),
    ("lineage", "meta_load.csv", b"batch_id\n", "", "not_loadable", "meta_load 由系统维护，不能导入"),
    ("rollup", "agg_meter_daily.csv", b"meter_id\n", "", "not_loadable", "agg_meter_daily 由系统维护，不能导入"),
    ("xls", "fact_meals_served.xls", b"\xd0\xcf\x11\xe0", "", "xls_format", "旧版 .xls 格式不支持，请另存为 .xlsx 或 CSV"),
    ("sheets", "fact_meals_served.xlsx", _xlsx({"Sheet1": [["facility_id"]], "Sheet2": [["x"]]}), "",
     "sheet_ambiguous", "工作簿有多个工作表，但没有以表名命名的"),
    ("no-sheet", "book.xlsx", _xlsx({"Sheet1": [["facility_id"]]}), "", "no_sheet",
     "工作簿中没有以表名命名的工作表，文件名也不是表名"),
    ("missing", "fact_meals_served.csv", None, "", "unreadable", "无法读取文件：no such file"),
    ("not-a-zip", "fact_meals_served.xlsx", b"PK\x03\x04 but not a workbook", "", "unreadable",
     "无法读取文件：File is not a zip file"),
    ("damaged-sheet", "fact_meals_served.xlsx", _damaged_xlsx(), "", "unreadable", None),
]


@pytest.mark.parametrize("case, name, content, column, code, message", FILES, ids=[f[0] for f in FILES])
def test_a_file_that_cannot_be_read_is_rejected_with_its_reason(shared_wh, tmp_path, case, name, content, column,
                                                                code, message):
    path = tmp_path / name
    if content is not None:   # None: a path that does not exist
        path.write_bytes(content)
    result = run(shared_wh, path, tmp=tmp_path)
    assert result.exit_code == 1
    rejects = rejects_of(result)
    first = rejects[["column", "code", "reason"]].to_dict("records")[0]
    if message is None:   # the library's own words: the code and the reason's start are what matter
        assert first["reason"].startswith("无法读取文件："), first
        first["reason"] = None
    assert first == {"column": column, "code": code, "reason": message}
    (batch,) = result.batches
    assert batch.status == "rejected" and batch.rows_loaded == 0


def test_a_row_with_more_fields_than_the_header_rejects_its_file_only(wh, tmp_path):
    # A trailing comma on the first data row used to abort the whole run (exit 3, a traceback), and with DuckDB
    # the good files of the run were not published either.
    folder = tmp_path / "in"
    rows_file(folder, "dim_school.csv", [BASE["dim_school"]])
    (folder / "fact_meals_served.csv").write_bytes(
        b"facility_id,service_date,meal,covers\n" + f"{CAN1},2026-11-03,lunch,3,\n".encode())
    # Further down, in a later chunk, with skip-rows: the rows of the earlier chunks are not loaded either.
    late = [{"meter_id": METER, "ts": f"2026-11-20 0{h}:00:00", "consumption": "1"} for h in range(4)]
    path = rows_file(folder, "fact_meter_reading.csv", late)
    path.write_bytes(path.read_bytes() + f"{METER},2026-11-20 05:00:00,1,kWh\n".encode())
    readings = table(wh, "fact_meter_reading")
    result = run(wh, folder, tmp=tmp_path, on_error="skip-rows", chunk_rows=2)
    assert result.aborted is None and result.exit_code == 1
    assert [(b.table, b.status, b.rows_loaded) for b in result.batches] == [
        ("dim_school", "ok", 1), ("fact_meals_served", "rejected", 0), ("fact_meter_reading", "rejected", 0)]
    assert query(wh, "SELECT count(*) AS n FROM dim_school WHERE school_id = 'T-01'").n[0] == 1   # published
    pd.testing.assert_frame_equal(table(wh, "fact_meter_reading"), readings)
    rejects = rejects_of(result)
    assert [(Path(f).name, c, r) for f, c, r in rejects[["file", "code", "reason_en"]].values] == [
        ("fact_meals_served.csv", "bad_structure", "malformed CSV: line 2: 5 fields, the header has 4"),
        ("fact_meter_reading.csv", "bad_structure", "malformed CSV: line 6: 4 fields, the header has 3")]
    text = load.summary(result, "en")
    assert "dim_school.csv → dim_school: 1 rows read, 1 loaded, 0 rejected [ok]" in text
    assert "fact_meals_served.csv → fact_meals_served: malformed CSV: line 2" in text


def test_every_header_problem_is_listed_at_once(shared_wh, tmp_path):
    path = write_csv(tmp_path, "fact_work_order.csv", ["order_id", "school", "Kind ", "kind"], [])
    rejects = rejects_of(run(shared_wh, path, tmp=tmp_path))
    listed = set(zip(rejects.column, rejects.code))
    assert {("kind", "duplicate_column"), ("school", "unknown_column"), ("school_id", "missing_column"),
            ("created_at", "missing_column")} <= listed
    assert set(rejects.row) == {"1"}


# --- what is accepted ---------------------------------------------------------------------------------------

def test_gbk_csv_with_real_world_variants_loads(wh, tmp_path):
    header = ["order_id", "school_id", "facility_id", "kind", "service_line", "priority", "created_at",
              "responded_at", "completed_at", "reopened", "callback_done", "rating"]
    rows = [
        ["T-G1 ", " SH-U01", "", "repair", "repair", "urgent", "2026/11/3 9:05", "2026/11/3 9:30:00", "", "否", "是", ""],
        ["T-G2", "SH-U01", "SH-U01-C1-CAN1", "complaint", "dining", "normal", "２０２６－１１－０４ １０：００",
         "2026-11-04T11:00:00", "2026-11-05 08:00:00.5", "FALSE", "True", "４"],
        ["", "", "", "", "", "", "", "", "", "", "", ""],      # an empty row: skipped
        ["T-G3", "SH-U01", "", "request", "other", "normal", "2026-1-5 8:00", "", "", "0", "1", "3.0"],
    ]
    # GBK, as Excel writes "CSV" on a Chinese Windows; the template's description row stays in place.
    descriptions = [SPECS["fact_work_order"].column(c).description for c in header]
    path = write_csv(tmp_path / "in", "fact_work_order.2026-11.csv", header, [descriptions] + rows, encoding="gbk")
    result = run(wh, path, tmp=tmp_path)
    assert result.ok, rejects_of(result).to_dict("records")
    assert (result.batches[0].rows_in, result.batches[0].rows_loaded) == (3, 3)
    got = query(wh, "SELECT * FROM fact_work_order WHERE order_id LIKE 'T-G%' ORDER BY order_id")
    assert got.order_id.tolist() == ["T-G1", "T-G2", "T-G3"]
    assert got.created_at.tolist() == [pd.Timestamp("2026-11-03 09:05"), pd.Timestamp("2026-11-04 10:00"),
                                       pd.Timestamp("2026-01-05 08:00")]
    assert got.completed_at[1] == pd.Timestamp("2026-11-05 08:00:00.5")
    assert got.reopened.tolist() == [False, False, False]
    assert got.callback_done.tolist() == [True, True, True]
    assert got.rating.tolist()[1:] == [4, 3]
    assert pd.isna(got.rating[0]) and pd.isna(got.facility_id[0]) and pd.isna(got.completed_at[0])


def test_names_in_gb18030_and_utf8_without_bom_load_the_same(wh, tmp_path):
    header = list(BASE["dim_school"])
    row = [BASE["dim_school"][c] for c in header]
    for i, encoding in enumerate(("gb18030", "utf-8", "utf-8-sig")):
        folder = tmp_path / encoding
        values = [f"T-E{i}" if c == "school_id" else v for c, v in zip(header, row)]
        values[header.index("school_name")] = "沪澜·测试学校㵘"   # 㵘 exists in GB18030 but not GBK
        result = run(wh, write_csv(folder, "dim_school.csv", header, [values], encoding), tmp=folder)
        assert result.ok
    names = query(wh, "SELECT school_name FROM dim_school WHERE school_id LIKE 'T-E%'").school_name
    assert names.tolist() == ["沪澜·测试学校㵘"] * 3


def test_a_workbook_with_one_sheet_per_table_loads_excel_cells(wh, tmp_path):
    book = tmp_path / "学校资料.xlsx"
    wb = openpyxl.Workbook()
    info = wb.active
    info.title = "说明"
    info.append(["这张表不导入"])
    fac = wb.create_sheet("dim_facility")
    fac.append(SPECS["dim_facility"].names)
    fac.append(["T-X1", "SH-U01-C1", "SH-U01", "新实验楼", "lab", 2500.5, 120])
    orders = wb.create_sheet("fact_work_order")
    orders.append(SPECS["fact_work_order"].names)
    orders.append(["T-X9", "SH-U01", "T-X1", "repair", "repair", "urgent", dt.datetime(2026, 11, 3, 9, 0),
                   dt.datetime(2026, 11, 3, 10, 30), None, False, True, 5])
    orders.append([None] * 12)   # row 3: empty, skipped (numbering goes on)
    orders.append(["T-X8", "SH-U01", None, "repair", "repair", "normal", dt.datetime(2026, 11, 3, 9, 0),
                   dt.time(10, 0), None, False, True, 6])  # row 4: a time-only cell, rating 6
    wb.save(book)
    result = run(wh, book, tmp=tmp_path, on_error="skip-rows")
    assert [(b.label, b.table, b.rows_loaded) for b in result.batches] == [
        ("学校资料.xlsx [dim_facility]", "dim_facility", 1), ("学校资料.xlsx [fact_work_order]", "fact_work_order", 1)]
    assert result.ignored == ["学校资料.xlsx [说明]"]
    rejects = rejects_of(result)
    assert rejects[["sheet", "row", "column", "code"]].to_dict("records") == [
        {"sheet": "fact_work_order", "row": "4", "column": "responded_at", "code": "not_a_timestamp"},
        {"sheet": "fact_work_order", "row": "4", "column": "rating", "code": "above_max"}]
    got = query(wh, "SELECT * FROM fact_work_order WHERE order_id = 'T-X9'").iloc[0]
    assert got.created_at == pd.Timestamp("2026-11-03 09:00") and got.responded_at == pd.Timestamp("2026-11-03 10:30")
    assert not got.reopened and got.callback_done and got.rating == 5 and got.facility_id == "T-X1"
    area = query(wh, "SELECT floor_area_m2, capacity FROM dim_facility WHERE facility_id = 'T-X1'").iloc[0]
    assert (area.floor_area_m2, area.capacity) == (2500.5, 120)


def test_a_folder_loads_dimensions_before_facts(wh, tmp_path):
    folder = tmp_path / "in"
    # Named so that the fact file sorts first: the loader still loads the meter before its readings.
    rows_file(folder, "fact_meter_reading.csv", [dict(BASE["fact_meter_reading"], meter_id="T-M1")])
    rows_file(folder, "dim_meter.csv", [BASE["dim_meter"]])
    (folder / "readme.txt").write_text("notes")
    result = run(wh, folder, tmp=tmp_path)
    assert result.ok
    assert [b.table for b in result.batches] == ["dim_meter", "fact_meter_reading"]
    assert result.ignored == [str(folder / "readme.txt")]


# --- policies, idempotence, lineage, rollup -----------------------------------------------------------------

def _readings(meters: list[str], start: str, hours: int, value) -> list[dict]:
    out = []
    for m in meters:
        for i, ts in enumerate(pd.date_range(start, periods=hours, freq="h")):
            out.append({"meter_id": m, "ts": ts.strftime("%Y-%m-%d %H:%M:%S"),
                        "consumption": str(value(i) if callable(value) else value)})
    return out


def test_reject_batch_loads_nothing_of_a_file_with_a_bad_row(wh, tmp_path):
    before = table(wh, "fact_meter_reading")
    rows = _readings([METER], "2026-11-10 00:00", 4, 99.0)
    rows[2]["consumption"] = "-1"
    result = run(wh, rows_file(tmp_path, "fact_meter_reading.csv", rows), tmp=tmp_path)
    assert result.exit_code == 1 and result.batches[0].status == "rejected"
    pd.testing.assert_frame_equal(table(wh, "fact_meter_reading"), before)
    meta = query(wh, "SELECT * FROM meta_load WHERE status = 'rejected'")
    assert meta[["table_name", "rows_in", "rows_rejected", "source_system"]].values.tolist() == [
        ["fact_meter_reading", 4, 1, "file"]]


def test_skip_rows_loads_the_good_rows_and_lists_the_bad(wh, tmp_path):
    rows = _readings([METER], "2026-11-10 00:00", 4, 99.0)
    rows[2]["consumption"] = "-1"
    window = (f"SELECT ts, consumption FROM fact_meter_reading WHERE meter_id = '{METER}' "
              "AND ts >= '2026-11-10' AND ts < '2026-11-10 04:00' ORDER BY ts")
    old = query(wh, window).consumption.tolist()
    result = run(wh, rows_file(tmp_path, "fact_meter_reading.csv", rows), tmp=tmp_path, on_error="skip-rows",
                 source_system="metering-v2")
    assert result.exit_code == 1   # a row was rejected
    (batch,) = result.batches
    assert (batch.status, batch.rows_in, batch.rows_loaded, batch.rows_rejected) == ("ok", 4, 3, 1)
    # Hours 0, 1 and 3 replaced; hour 2's row was rejected, so the warehouse keeps its old reading.
    assert query(wh, window).consumption.tolist() == [99.0, 99.0, old[2], 99.0]
    meta = query(wh, "SELECT * FROM meta_load ORDER BY loaded_at DESC, batch_id DESC LIMIT 1").iloc[0]
    assert (meta.status, meta.rows_in, meta.rows_rejected, meta.source_system) == ("ok", 4, 1, "metering-v2")


def test_skip_rows_with_no_good_row_is_a_rejected_batch(shared_wh, tmp_path):
    rows = [dict(BASE["fact_meals_served"], covers="-3")]
    result = run(shared_wh, rows_file(tmp_path, "fact_meals_served.csv", rows), tmp=tmp_path, on_error="skip-rows")
    assert result.batches[0].status == "rejected"


def test_loading_twice_changes_nothing_and_replaces_by_key(wh, tmp_path):
    meters = [METER, "SH-U01-C1-CAN1-WA"]
    before = table(wh, "fact_meter_reading")
    rows = _readings(meters, "2026-11-14 00:00", 48, lambda i: round(1.5 + i / 10, 3))   # replaces 2 days
    rows += _readings(meters, "2026-11-16 00:00", 24, 2.0)                             # and adds a new day
    path = rows_file(tmp_path / "in", "fact_meter_reading.csv", rows)
    first = run(wh, path, tmp=tmp_path)
    assert first.ok
    after_first = {t: table(wh, t) for t in ("fact_meter_reading", "agg_meter_daily", "dim_meter")}
    assert len(after_first["fact_meter_reading"]) == len(before) + 48
    second = run(wh, path, tmp=tmp_path)
    assert second.ok
    for name, frame in after_first.items():
        pd.testing.assert_frame_equal(table(wh, name), frame, obj=name)
    replaced = query(wh, f"SELECT consumption FROM fact_meter_reading WHERE meter_id = '{METER}' "
                         "AND ts = '2026-11-14 05:00'")
    assert replaced.consumption.tolist() == [2.0]
    assert query(wh, "SELECT count(*) AS n FROM meta_load WHERE table_name = 'fact_meter_reading'").n[0] == 3


def test_the_daily_rollup_matches_the_readings_after_a_load(wh, tmp_path):
    meters = [METER, "SH-U01-C1-CAN1-GA"]
    rows = _readings(meters, "2026-11-12 00:00", 72, lambda i: (i % 7) * 1.25)
    rows += _readings(meters, "2026-11-16 00:00", 10, 3.0)
    assert run(wh, rows_file(tmp_path / "in", "fact_meter_reading.csv", rows), tmp=tmp_path).ok
    agg = table(wh, "agg_meter_daily")
    readings = query(wh, "SELECT * FROM fact_meter_reading")
    readings["day"] = readings.ts.dt.normalize()
    hour = readings.ts.dt.hour
    expected = readings.assign(
        readings=1, night=np.where(hour <= 4, readings.consumption, 0.0), nightn=(hour <= 4).astype(int),
        work=np.where((hour >= 9) & (hour <= 16), readings.consumption, 0.0),
        workn=((hour >= 9) & (hour <= 16)).astype(int),
    ).groupby(["meter_id", "day"]).agg(consumption=("consumption", "sum"), readings=("readings", "sum"),
                                       night=("night", "sum"), nightn=("nightn", "sum"), work=("work", "sum"),
                                       workn=("workn", "sum")).reset_index()
    merged = expected.merge(agg, on=["meter_id", "day"], how="outer", suffixes=("", "_agg"), indicator=True)
    assert (merged["_merge"] == "both").all()
    np.testing.assert_allclose(merged.consumption, merged.consumption_agg, rtol=1e-9)
    assert (merged.readings == merged.readings_agg).all()
    np.testing.assert_allclose(merged.night, merged.night_consumption, rtol=1e-9, atol=1e-9)
    assert (merged.workn == merged.work_readings).all() and (merged.nightn == merged.night_readings).all()
    new_day = agg.loc[(agg.meter_id == METER) & (agg.day == pd.Timestamp("2026-11-16"))]
    assert new_day[["consumption", "readings"]].values.tolist() == [[30.0, 10]]


def test_a_completed_load_is_visible_through_the_query_cache(wh, tmp_path):
    from data_access import engine
    from data_access.dims import org_tree

    with use_warehouse(wh):
        assert "T-NEW" not in set(org_tree().schools.school_id)
        version = engine.data_version()
        row = dict(BASE["dim_school"], school_id="T-NEW")
        assert run(wh, rows_file(tmp_path, "dim_school.csv", [row]), tmp=tmp_path).ok
        engine._held.checked = -1e9   # as if the engine's periodic file check were due
        assert engine.data_version() != version
        assert "T-NEW" in set(org_tree().schools.school_id)   # no cache clear, no restart


def test_a_query_in_flight_during_a_load_does_not_pin_the_old_file(wh, tmp_path):
    """A request still holding a connection of the old engine when the load lands (DuckDB's Python package
    would hand the next connect to that path the instance still open on the replaced file)."""
    import sqlalchemy as sa
    from data_access import engine

    count = sa.text("SELECT count(*) FROM dim_school WHERE school_id = 'T-NEW'")
    with use_warehouse(wh):
        old = engine.warehouse_engine()
        with old.connect() as in_flight:
            assert in_flight.execute(count).scalar() == 0
            row = dict(BASE["dim_school"], school_id="T-NEW")
            assert run(wh, rows_file(tmp_path, "dim_school.csv", [row]), tmp=tmp_path).ok
            engine._held.checked = -1e9   # as if the engine's periodic file check were due
            new = engine.warehouse_engine()
            assert new is not old
            with new.connect() as conn:
                assert conn.execute(count).scalar() == 1          # the new file, while the old one is open
            assert in_flight.execute(count).scalar() == 0         # the request in flight finishes on the old file
            assert in_flight.execute(sa.text("SELECT count(*) FROM main.dim_school")).scalar() > 0
            assert _open_copies(path_of(wh)) == ["old", "new"]
        # The last connection of the disposed engine closed: the replaced file is closed at once (its disk space
        # freed), not whenever the garbage collector runs.
        assert _open_copies(path_of(wh)) == ["new"]
        with engine.warehouse_engine().connect() as conn:
            assert conn.execute(count).scalar() == 1


def _open_copies(path: Path) -> list[str]:
    """Which files at ``path`` this process holds open: "old" for a file renamed over since, "new" for the
    current one (Linux: /proc/self/fd)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc")
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == str(path):
            found.append("new")
        elif target == f"{path} (deleted)":
            found.append("old")
    return sorted(found, reverse=True)


def test_on_a_server_database_the_cache_follows_meta_load(tmp_path):
    from data_access import engine
    from data_access.dims import org_tree

    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    demo.build(url, schools=1, days=3, seed=3, end=END, quiet=True)
    with use_warehouse(url):
        assert "T-NEW" not in set(org_tree().schools.school_id)
        version = engine.data_version()
        assert version.startswith("batches-")
        assert run(url, rows_file(tmp_path, "dim_school.csv", [dict(BASE["dim_school"], school_id="T-NEW")]),
                   tmp=tmp_path).ok
        engine._version = None   # as if its few seconds had passed
        assert engine.data_version() != version
        assert "T-NEW" in set(org_tree().schools.school_id)


# --- templates ----------------------------------------------------------------------------------------------

def test_templates_command_writes_a_csv_and_an_xlsx_per_table(tmp_path):
    out = subprocess.run([PYTHON, "-m", "data_access.load", "--templates", str(tmp_path / "t")], cwd=PROJECT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    names = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert names == sorted(f"{t}.{e}" for t in LOADABLE_TABLES for e in ("csv", "xlsx"))
    raw = (tmp_path / "t" / "dim_school.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header, descriptions = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert header == SPECS["dim_school"].names
    assert descriptions[0] == "学校编码，如 SH-U01（必填）"
    sheet = openpyxl.load_workbook(tmp_path / "t" / "fact_meter_reading.xlsx").active
    assert sheet.title == "fact_meter_reading"
    assert [c.value for c in sheet[1]] == ["meter_id", "ts", "consumption"]
    assert sheet.freeze_panes == "A3"
    # Empty templates load as empty batches.
    result = run(f"duckdb:///{tmp_path / 'empty.duckdb'}", tmp_path / "t", tmp=tmp_path)
    assert result.ok and len(result.batches) == 2 * len(LOADABLE_TABLES)
    assert all(b.rows_in == 0 for b in result.batches)


def _fill_template(folder: Path, name: str, frame: pd.DataFrame, fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cols = SPECS[name].names
    frame = frame[cols]
    if fmt == "csv":
        path = folder / f"{name}.csv"
        body = frame.to_csv(index=False, header=False, lineterminator="\r\n")
        path.write_bytes(templates.csv_bytes(name) + body.encode("utf-8"))
        return path
    path = folder / f"{name}.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(templates.xlsx_bytes(name)))
    ws = wb[name]
    for values in frame.itertuples(index=False):
        ws.append([None if v is None or v is pd.NaT or (not isinstance(v, str) and pd.isna(v)) else
                   v.to_pydatetime() if isinstance(v, pd.Timestamp) else v.item() if hasattr(v, "item") else v
                   for v in values])
    wb.save(path)
    return path


def test_templates_filled_with_demo_rows_round_trip(tmp_path):
    frames = demo.generate(schools=2, days=3, seed=5, end=END)
    folder = tmp_path / "filled"
    for i, name in enumerate(LOADABLE_TABLES):
        _fill_template(folder, name, frames[name], "xlsx" if i % 2 else "csv")
    url = f"duckdb:///{tmp_path / 'loaded.duckdb'}"
    result = run(url, folder, tmp=tmp_path)
    assert result.ok, rejects_of(result).head(10).to_dict("records")
    assert len(result.batches) == len(LOADABLE_TABLES)
    reference = f"duckdb:///{tmp_path / 'reference.duckdb'}"
    demo.build(reference, schools=2, days=3, seed=5, end=END, quiet=True)
    for name in LOADABLE_TABLES + ["agg_meter_daily"]:
        pd.testing.assert_frame_equal(table(url, name), table(reference, name), check_dtype=False, obj=name)
    assert len(table(url, "fact_meter_reading")) == len(frames["fact_meter_reading"]) > 1000
    assert run(url, folder, tmp=tmp_path).ok   # and again: nothing changes
    for name in LOADABLE_TABLES:
        pd.testing.assert_frame_equal(table(url, name), table(reference, name), check_dtype=False, obj=name)


def test_template_downloads_from_the_cockpit():
    from app import server

    client = logged_in(server.test_client())
    body = client.get("/data/templates/fact_work_order.csv")
    assert body.status_code == 200 and body.mimetype == "text/csv"
    assert body.data == templates.csv_bytes("fact_work_order")
    assert 'filename="fact_work_order.csv"' in body.headers["Content-Disposition"]
    xlsx = client.get("/data/templates/dim_school.xlsx")
    assert openpyxl.load_workbook(io.BytesIO(xlsx.data)).sheetnames == ["dim_school"]
    assert client.get("/data/templates/meta_load.csv").status_code == 404
    assert client.get("/data/templates/dim_school.txt").status_code == 404
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(client.get("/data/templates.zip").data)).namelist()
    assert len(names) == 2 * len(LOADABLE_TABLES)


# --- the data page (callbacks called as functions) ----------------------------------------------------------

def _texts(component) -> str:
    from .test_components import _text

    return _text(component)


def test_data_page_shows_lineage_after_a_load(wh, tmp_path):
    import app  # noqa: F401  (registers the pages)
    from pages import data

    rows = [dict(BASE["fact_meals_served"], covers="-1"), dict(BASE["fact_meals_served"], meal="dinner")]
    run(wh, rows_file(tmp_path, "fact_meals_served.csv", rows), tmp=tmp_path, source_system="食堂系统")
    with use_warehouse(wh, today=TODAY):
        text = _texts(data.render({}))
        assert "食堂系统" in text and "多源" in text     # a second source system for fact_meals_served
        assert "已拒绝" in text and "读入 2 · 拒绝 1" in text
        en = _texts(data.render({"lang": "en", "school": "SH-U01"}))
        assert "Several sources" in en and "Meals served" in en
        bad = _texts(data.render({"school": "NOPE"}))
        assert "未找到学校" in bad


def test_data_page_without_a_warehouse_shows_a_banner(tmp_path):
    import app  # noqa: F401
    from pages import data

    from .test_pages import _find_ids

    with use_warehouse(f"duckdb:///{tmp_path / 'gone.duckdb'}"):
        assert "warehouse-banner" in _find_ids(data.render({}))


# --- atomicity: a real kill -9 ------------------------------------------------------------------------------

def _big_meter_file(folder: Path, meters: list[str], hours: int, start: str = "2026-01-01") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ts = pd.date_range(start, periods=hours, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame({"meter_id": np.repeat(meters, hours), "ts": np.tile(ts, len(meters)),
                          "consumption": np.round(np.random.default_rng(1).uniform(0, 50, hours * len(meters)), 3)})
    path = folder / "fact_meter_reading.csv"
    frame.to_csv(path, index=False)
    return path


def _loader(url: str, path: Path, tmp: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([PYTHON, "-m", "data_access.load", "--url", url, str(path), "--rejects",
                             str(tmp / "kill.rejects.csv"), "--lang", "en", *extra],
                            cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, marker: str, timeout: float = 180) -> list[str]:
    seen = []
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, seen
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, ("the loader finished before it could be killed", seen)
    return seen


@pytest.mark.parametrize("moment", ["rows read", "writing", "daily rollup"])
def test_a_loader_killed_mid_batch_leaves_the_duckdb_warehouse_unchanged(tmp_path, moment):
    url = copy_warehouse(tmp_path / "wh")
    target = path_of(url)
    before = digest(target)
    meters = query(url, "SELECT meter_id FROM dim_meter ORDER BY 1 LIMIT 120").meter_id.tolist()
    path = _big_meter_file(tmp_path / "in", meters, 24 * 365)          # 1.05 M readings, most replacing old ones
    _kill_when(_loader(url, path, tmp_path, "--chunk-rows", "100000"), moment)
    assert digest(target) == before                                    # byte for byte
    assert list(target.parent.glob(".wh.duckdb.tmp-load-*")), "the killed run left its working copy"
    # The next run cleans up after the killed one and loads normally.
    small = rows_file(tmp_path / "small", "dim_school.csv", [BASE["dim_school"]])
    result = run(url, small, tmp=tmp_path)
    assert result.ok
    assert not list(target.parent.glob(".wh.duckdb.tmp-load-*"))
    assert query(url, "SELECT count(*) AS n FROM dim_school WHERE school_id = 'T-01'").n[0] == 1


@pytest.mark.parametrize("moment", ["rows read", "writing"])
def test_a_loader_killed_mid_batch_leaves_a_transactional_warehouse_unchanged(tmp_path, moment):
    # Server databases are written in place, one transaction per batch: SQLite stands in for them here.
    url = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    demo.build(url, schools=1, days=20, seed=3, end=END, quiet=True)
    eng = sa.create_engine(url)

    def snapshot():
        with eng.connect() as conn:
            return {t: conn.execute(sa.select(sa.func.count(), sa.func.sum(schema.fact_meter_reading.c.consumption))
                                    ).one() if t == "fact_meter_reading" else
                    conn.execute(sa.select(sa.func.count()).select_from(schema.metadata.tables[t])).scalar()
                    for t in ("fact_meter_reading", "agg_meter_daily", "meta_load")}

    before = snapshot()
    with eng.connect() as conn:
        meters = [r[0] for r in conn.execute(sa.select(schema.dim_meter.c.meter_id))]
    path = _big_meter_file(tmp_path / "in", meters, 24 * 120, start="2026-08-01")
    _kill_when(_loader(url, path, tmp_path, "--chunk-rows", "20000"), moment)
    assert snapshot() == before
    eng.dispose()


def test_an_aborted_duckdb_run_says_that_nothing_was_written(wh, tmp_path, monkeypatch):
    # The batches committed into the working copy go with it: the summary must not call them loaded.
    before = digest(path_of(wh))

    def disk_full(self, progress):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(load._DuckDBTarget, "publish", disk_full)
    folder = tmp_path / "in"
    rows_file(folder, "dim_school.csv", [BASE["dim_school"]])
    rows_file(folder, "fact_meals_served.csv", [dict(BASE["fact_meals_served"], covers="-1")])
    result = run(wh, folder, tmp=tmp_path)
    assert result.exit_code == 3 and "No space left" in result.aborted
    assert [(b.table, b.status, b.rows_loaded) for b in result.batches] == [
        ("dim_school", "not_written", 0), ("fact_meals_served", "rejected", 0)]
    assert digest(path_of(wh)) == before
    en, zh = load.summary(result, "en"), load.summary(result, "zh")
    assert "dim_school.csv → dim_school: 1 rows read, 0 rejected; the load was aborted, nothing was written " \
           "[not_written]" in en
    assert "[ok]" not in en and "0 loaded, 1 rejected" in en and "everything loaded" not in en
    assert "dim_school.csv → dim_school：读入 1 行，拒绝 0 行，导入中止，未写入仓库 [not_written]" in zh
    assert "入库 0 行" in next(line for line in zh.splitlines() if line.startswith("合计"))


def test_a_failed_write_reports_the_database_error(tmp_path):
    # After a failed INSERT the DuckDB transaction is aborted; cleaning up must not replace the real error with
    # "Current transaction is aborted" (which is what the rejects file then showed).
    from data_access import bulk

    eng = sa.create_engine(f"duckdb:///{tmp_path / 'bulk.duckdb'}")
    try:
        schema.create_all(eng)
        frame = pd.DataFrame({"facility_id": [CAN1], "service_date": [pd.Timestamp("2026-11-03")], "meal": ["lunch"],
                              "covers": [3_000_000_000]})
        with pytest.raises(sa.exc.DBAPIError) as caught:
            with eng.begin() as conn:
                bulk.insert_frame(conn, schema.fact_meals_served, frame)
        message = str(caught.value)
        assert "aborted" not in message and "3000000000" in message and "out of range" in message
        with eng.begin() as conn:   # the connection is usable again, the view gone with the rollback
            bulk.insert_frame(conn, schema.fact_meals_served, frame.assign(covers=3))
            assert conn.execute(sa.text("SELECT covers FROM fact_meals_served")).scalar() == 3
    finally:
        eng.dispose()


def test_a_second_loader_waits_for_the_lock_and_gives_up(wh, tmp_path):
    lock = path_of(wh).with_name(f".{path_of(wh).name}.tmp-loadlock")
    with open(lock, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        result = run(wh, rows_file(tmp_path, "dim_school.csv", [BASE["dim_school"]]), tmp=tmp_path, wait_s=1)
    assert result.exit_code == 3 and "another load" in result.aborted
    assert "load aborted" in load.summary(result, "en")


def test_command_line_summary_and_exit_codes(wh, tmp_path):
    good = rows_file(tmp_path / "a", "dim_school.csv", [BASE["dim_school"]])
    out = subprocess.run([PYTHON, "-m", "data_access.load", "--url", wh, str(good), "--quiet"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert out.returncode == 0, out.stderr
    assert "dim_school.csv → dim_school：读入 1 行，入库 1 行，拒绝 0 行 [ok]" in out.stdout
    assert "全部导入成功" in out.stdout and out.stderr == ""
    bad = rows_file(tmp_path / "b", "dim_school.csv", [dict(BASE["dim_school"], boarding="maybe")])
    out = subprocess.run([PYTHON, "-m", "data_access.load", "--url", wh, str(bad), "--lang", "en", "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(PROJECT)})
    assert out.returncode == 1
    assert "nothing of the file was loaded [rejected]" in out.stdout
    (rejects,) = list(tmp_path.glob("load-*.rejects.csv"))
    assert "not_a_bool" in rejects.read_text(encoding="utf-8-sig")
    out = subprocess.run([PYTHON, "-m", "data_access.load", "--url", wh], cwd=PROJECT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2


# --- memory: large files stream ------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_large_meter_file_streams_in_bounded_memory(tmp_path):
    import psutil

    url = copy_warehouse(tmp_path / "wh")
    meters = query(url, "SELECT meter_id FROM dim_meter ORDER BY 1").meter_id.tolist()
    path = _big_meter_file(tmp_path / "in", meters, 6000)          # 1.5 M readings
    proc = _loader(url, path, tmp_path, "--quiet")
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    out = proc.stdout.read()
    assert proc.returncode == 0, out + proc.stderr.read()
    assert peak < 600e6, f"peak RSS {peak / 1e6:.0f} MB"
    assert query(url, "SELECT count(*) AS n FROM fact_meter_reading WHERE ts >= '2026-01-01' AND ts < '2026-09-08'"
                 ).n[0] >= len(meters) * 6000 - 1


# --- loading while the cockpit serves -----------------------------------------------------------------------

def _dash_render(base: str, params: dict, headers: dict) -> requests.Response:
    payload = {"output": "data-content.children", "outputs": {"id": "data-content", "property": "children"},
               "inputs": [{"id": "data-request", "property": "data", "value": params}],
               "changedPropIds": ["data-request.data"], "state": []}
    return requests.post(f"{base}/_dash-update-component", json=payload, timeout=60, headers=headers)


def test_loading_while_a_cockpit_server_answers_requests(tmp_path):
    from .browser import free_port

    url = copy_warehouse(tmp_path / "wh")
    port = free_port()
    env = {**os.environ, "COCKPIT_WAREHOUSE_URL": url, "COCKPIT_PORT": str(port), "COCKPIT_HOST": "127.0.0.1",
           "COCKPIT_TODAY": TODAY.isoformat()}
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([PYTHON, "app.py"], cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    auth = bearer()   # the server shares the session's app database (its accounts)
    csi_query = f"{base}/api/v1/indicators?ids=service.csi&school=SH-V01&from=2026-11-01&to=2026-11-15"
    stop = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/api/v1/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        csi_before = requests.get(csi_query, timeout=30, headers=auth).json()["indicators"][0]["value"]

        failures, answered, stop = [], [], threading.Event()

        def hammer():
            urls = [csi_query, f"{base}/api/v1/health", f"{base}/data", f"{base}/"]
            i = 0
            while not stop.is_set():
                try:
                    if i % 5 == 4:
                        r = _dash_render(base, {"school": "SH-V01"}, auth)
                        ok = r.status_code == 200 and "data-tables" in r.text
                    else:
                        r = requests.get(urls[i % 4], timeout=60, headers=auth)
                        ok = r.status_code == 200 and (not urls[i % 4].startswith(f"{base}/api") or r.json())
                    if not ok:
                        failures.append((r.url, r.status_code, r.text[:200]))
                except Exception as exc:   # a refused or dropped connection is a failure too
                    failures.append(("exception", repr(exc)))
                answered.append(time.monotonic())
                i += 1

        threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
        for th in threads:
            th.start()
        # A batch that changes what the API shows (300 poor ratings for SH-V01) and a big one that takes a while.
        folder = tmp_path / "in"
        surveys = [dict(BASE["fact_survey_response"], response_id=f"T-LIVE-{i}", school_id="SH-V01",
                        submitted_on="2026-11-10", score="1", nps="0") for i in range(300)]
        rows_file(folder, "fact_survey_response.csv", surveys)
        meters = query(url, "SELECT meter_id FROM dim_meter ORDER BY 1 LIMIT 60").meter_id.tolist()
        _big_meter_file(folder, meters, 24 * 200)
        time.sleep(1.0)
        load_started = time.monotonic()
        loader = subprocess.run([PYTHON, "-m", "data_access.load", "--url", url, str(folder), "--rejects",
                                 str(tmp_path / "live.rejects.csv"), "--quiet"], cwd=PROJECT, capture_output=True,
                                text=True, timeout=600)
        assert loader.returncode == 0, loader.stdout + loader.stderr
        load_ended = time.monotonic()
        # The new data show without a restart: the engine sees the new file, the cache keys change with it.
        deadline = time.monotonic() + 30
        while True:
            csi_after = requests.get(csi_query, timeout=30, headers=auth).json()["indicators"][0]["value"]
            if csi_after != csi_before:
                break
            assert time.monotonic() < deadline, "the load never became visible"
            time.sleep(0.5)
        time.sleep(2.0)   # keep answering a little after the switch
        stop.set()
        for th in threads:
            th.join(timeout=120)
        assert failures == [], failures[:5]
        during = sum(load_started <= t <= load_ended for t in answered)
        assert during >= 10, f"only {during} requests answered during the load"
        print(f"{len(answered)} requests, {during} during the {load_ended - load_started:.1f} s load")
        assert csi_after < csi_before
        health = requests.get(f"{base}/api/v1/health", timeout=30).json()
        loaded = {t["table"]: t for t in health["tables"]}
        assert loaded["fact_survey_response"]["batches"] == 2
        assert server.poll() is None
    finally:
        # a failed assertion must stop the request threads too, or they outlive the test and pytest never exits
        if stop is not None:
            stop.set()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# --- server databases (optional: set COCKPIT_TEST_PG_URL / COCKPIT_TEST_MYSQL_URL to an empty scratch database) --

SERVER_URLS = [pytest.param(os.environ.get(var), id=name, marks=pytest.mark.skipif(
    not os.environ.get(var), reason=f"{var} not set")) for name, var in
    (("postgresql", "COCKPIT_TEST_PG_URL"), ("mariadb", "COCKPIT_TEST_MYSQL_URL"))]


@pytest.mark.parametrize("url", SERVER_URLS)
def test_loading_into_a_server_database(url, tmp_path):
    eng = sa.create_engine(url)
    schema.metadata.drop_all(eng)
    try:
        frames = demo.generate(schools=1, days=3, seed=5, end=END)
        folder = tmp_path / "filled"
        for i, name in enumerate(LOADABLE_TABLES):
            _fill_template(folder, name, frames[name], "xlsx" if i % 2 else "csv")
        first = run(url, folder, tmp=tmp_path)
        assert first.ok, rejects_of(first).head().to_dict("records")

        def snapshot():
            with eng.connect() as conn:
                out = {}
                for name in LOADABLE_TABLES + ["agg_meter_daily"]:
                    t = schema.metadata.tables[name]
                    cols = [c.name for c in t.columns]
                    frame = pd.DataFrame(conn.execute(sa.select(t)).fetchall(), columns=cols)
                    out[name] = frame.sort_values(cols[:3]).reset_index(drop=True)
                return out

        loaded = snapshot()
        for name in LOADABLE_TABLES:
            assert len(loaded[name]) == len(frames[name]), name
        second = run(url, folder, tmp=tmp_path)   # idempotent
        assert second.ok
        again = snapshot()
        for name, frame in loaded.items():
            pd.testing.assert_frame_equal(again[name], frame, check_dtype=False, obj=name)
        # A bad batch is rolled back and recorded; skip-rows loads the good rows of another.
        meter = frames["dim_meter"].meter_id.iloc[0]
        bad = rows_file(tmp_path / "bad", "fact_meter_reading.csv",
                        [{"meter_id": meter, "ts": "2026-11-20 01:00", "consumption": "5"},
                         {"meter_id": meter, "ts": "2026-11-20 02:00", "consumption": "-5"}])
        assert run(url, bad, tmp=tmp_path).batches[0].status == "rejected"
        assert snapshot()["fact_meter_reading"].equals(again["fact_meter_reading"])
        partial = run(url, bad, tmp=tmp_path, on_error="skip-rows")
        assert (partial.batches[0].status, partial.batches[0].rows_loaded) == ("ok", 1)
        with eng.connect() as conn:
            m = schema.meta_load
            statuses = [r[0] for r in conn.execute(sa.select(m.c.status).where(m.c.table_name == "fact_meter_reading")
                                                    .order_by(m.c.loaded_at, m.c.batch_id))]
            agg = conn.execute(sa.select(schema.agg_meter_daily.c.consumption).where(
                schema.agg_meter_daily.c.meter_id == meter,
                schema.agg_meter_daily.c.day == dt.date(2026, 11, 20))).scalar()
        assert statuses == ["ok", "ok", "rejected", "ok"]
        assert agg == 5.0
    finally:
        schema.metadata.drop_all(eng)
        eng.dispose()


def test_a_disposed_duckdb_engine_still_answers_and_keeps_no_file_open(tmp_path):
    """A request may take the engine just before a load replaces it: used after dispose(), it still answers,
    and holds the file only while a connection is open."""
    import sqlalchemy as sa
    from data_access.engine import make_engine

    url = copy_warehouse(tmp_path / "wh")
    eng = make_engine(url, read_only=True)
    with eng.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM dim_school")).scalar()
        eng.dispose()
        assert _open_copies(path_of(url)) == ["new"]      # in use: stays open
    assert _open_copies(path_of(url)) == []
    for _ in range(2):
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM dim_school")).scalar() == n
        assert _open_copies(path_of(url)) == []
