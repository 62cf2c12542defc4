"""Validation of loaded rows against the warehouse contract (../shared/WAREHOUSE.md v1).

The rules, in one place, for the loader (data_access/load.py) and the templates (data_access/templates.py):

- Every column of a table is described once in ``SPECS``: its kind (id, text, free text, enum, int, number,
  bool, date, timestamp), whether it is required (from schema.py: not nullable), allowed values and range, and
  the Chinese description written into the templates' second row.
- ``validate_chunk`` turns a chunk of raw text cells into typed rows ready for the database and a list of
  rejects (row, column, value, code, reason in Chinese and English). It is pure pandas, vectorised per column:
  no SQL and no I/O here.

Accepted real-world variants, each with one rule (anything else is rejected, never guessed):

- Surrounding whitespace (also full-width and non-breaking spaces) is removed from every cell.
- In every column except free text, full-width ASCII forms (０-９, Ａ-Ｚ, －, ．, ：, ／ …) are read as their ASCII
  equivalents (the NFKC rule for that block), so ``２０２６／１１／３`` is ``2026/11/3``.
- Dates: ``YYYY-MM-DD`` or ``YYYY/M/D`` (one or two digit month and day, one separator throughout), optionally
  followed by a midnight time (``00:00`` or ``00:00:00``, as Excel writes dates); Excel date cells. Years
  1900-2100.
- Timestamps: a date as above, one space or ``T``, then ``H:MM`` or ``H:MM:SS`` (optionally ``.ffffff``; minutes
  and seconds 00-59, two digits each); Excel date-time cells. No time zone: the contract's timestamps are local
  time. ``10:00:60``, ``10:5`` or two spaces are rejected, not read as 10:01, 10:05 or 10:00.
- Booleans: ``true``/``false`` (any case), ``是``/``否``, ``1``/``0``; Excel TRUE/FALSE cells.
- Numbers: decimal notation with an optional sign and exponent (``1e3``); no thousands separators, no units.
  Whole-number columns accept ``3.0`` but not ``3.5``, and hold what the warehouse's 32-bit INTEGER holds
  (at most 2147483647).
- Enumerations: the contract's codes exactly (lower case English), e.g. ``canteen``.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa

from . import schema

# --- reasons ------------------------------------------------------------------------------------------------

REASONS: dict[str, tuple[str, str]] = {
    # rows
    "required": ("必填值为空", "required value is empty"),
    "too_long": ("超过 {max} 个字符", "longer than {max} characters"),
    "not_in_list": ("不是允许的取值：{values}", "not one of the allowed values: {values}"),
    "not_a_number": ("不是数字", "not a number"),
    "not_an_integer": ("不是整数", "not a whole number"),
    "below_min": ("小于最小值 {min}", "below the minimum {min}"),
    "not_above": ("必须大于 {min}", "must be greater than {min}"),
    "above_max": ("大于最大值 {max}", "above the maximum {max}"),
    "not_a_bool": ("不是布尔值（是/否、true/false 或 1/0）", "not a boolean (是/否, true/false or 1/0)"),
    "not_a_date": ("不是有效日期（YYYY-MM-DD 或 YYYY/M/D）", "not a valid date (YYYY-MM-DD or YYYY/M/D)"),
    "not_a_timestamp": ("不是有效时间（YYYY-MM-DD HH:MM[:SS]）", "not a valid timestamp (YYYY-MM-DD HH:MM[:SS])"),
    "year_out_of_range": ("年份不在 1900–2100 之间", "year outside 1900-2100"),
    "ok_exceeds_due": ("items_ok 大于 items_due", "items_ok is greater than items_due"),
    "before": ("早于 {other}", "earlier than {other}"),
    "end_use_not_electricity": ("end_use 只适用于电表（electricity）", "end_use applies to electricity meters only"),
    "own_parent": ("上级表不能是自身", "a meter cannot be its own parent"),
    "fk_missing": ("在 {ref} 中找不到（本文件和仓库中都没有）",
                   "not found in {ref} (neither in this file nor in the warehouse)"),
    "fk_mismatch": ("在 {ref} 中登记的所属学校与本行 school_id 不一致",
                    "belongs to another school in {ref} than this row's school_id"),
    "not_in_framework": ("不是成熟度评估框架中的指标", "not an indicator of the maturity framework"),
    "duplicate_key": ("同一文件中自然键重复（{key}）", "duplicate natural key ({key}) within the file"),
    "unnamed_value": ("没有列名的列中有值", "value in a column without a header"),
    "personal_data": ("疑似个人信息（手机号或身份证号），请改用匿名编号",
                      "looks like personal data (a phone or ID-card number): use a pseudonymous ref"),
    # files
    "not_a_table": ("文件名不是仓库表名（应为 <表名>.csv 或 <表名>.xlsx）",
                    "the file name is not a warehouse table (expected <table>.csv or <table>.xlsx)"),
    "not_loadable": ("{table} 由系统维护，不能导入", "{table} is maintained by the cockpit and cannot be loaded"),
    "xls_format": ("旧版 .xls 格式不支持，请另存为 .xlsx 或 CSV", "old .xls format: save as .xlsx or CSV"),
    "encoding": ("文件编码既不是 UTF-8 也不是 GBK/GB18030", "the file is neither UTF-8 nor GBK/GB18030"),
    "binary": ("文件含有空字节：不是文本 CSV（UTF-16 请另存为 UTF-8）",
               "the file contains NUL bytes: not a text CSV (save UTF-16 files as UTF-8)"),
    "empty_file": ("文件没有表头行", "the file has no header row"),
    "delimiter": ("列分隔符必须是英文逗号", "columns must be separated by commas"),
    "unknown_column": ("不是 {table} 的列", "not a column of {table}"),
    "duplicate_column": ("列名重复", "column appears twice"),
    "missing_column": ("缺少必填列", "required column is missing"),
    "bad_structure": ("CSV 结构错误：{detail}", "malformed CSV: {detail}"),
    "unreadable": ("无法读取文件：{detail}", "cannot read the file: {detail}"),
    "sheet_ambiguous": ("工作簿有多个工作表，但没有以表名命名的", "several sheets, none named after a table"),
    "no_sheet": ("工作簿中没有以表名命名的工作表，文件名也不是表名",
                 "no sheet is named after a table and the file name is not a table"),
    "batch_failed": ("写入失败，本批次未入库：{detail}", "write failed, nothing of the batch was loaded: {detail}"),
}


def reason(code: str, lang: str = "zh", **params) -> str:
    zh, en = REASONS[code]
    return (en if lang == "en" else zh).format(**params)


# --- column specifications ----------------------------------------------------------------------------------

SCHOOL_TYPES = ("university", "vocational", "k12")
FACILITY_TYPES = ("canteen", "dormitory", "teaching", "office", "lab", "library", "sports", "other")
DAY_TYPES = ("term", "exam", "vacation", "holiday")
CHECK_MEALS = ("breakfast", "lunch", "dinner", "day")
SERVED_MEALS = ("breakfast", "lunch", "dinner")
CHECK_TYPES = ("sample_retention", "morning_check", "tableware_disinfection", "pesticide_test", "supplier_docs",
               "accompany_meal", "self_check", "video_online")
ZONES = ("chilled", "frozen", "hot_holding")
HAZARD_SOURCES = ("self_check", "inspection", "complaint", "iot")
SEVERITIES = ("low", "medium", "high")
RESULTS = ("pass", "basic_pass", "fail")
GRADES = ("A", "B", "C", "D")
ENERGY_TYPES = ("electricity", "water", "gas", "heat")
END_USES = ("lighting_socket", "hvac", "power", "special")
SERVICE_LINES = ("dining", "dormitory", "property", "repair", "energy", "transport", "parcel", "commerce", "venue",
                 "other")
RESPONDENTS = ("student", "staff", "other")
KINDS = ("repair", "complaint", "request")
PRIORITIES = ("urgent", "normal")

# kind, description (zh), and per kind: values (enum), min/max (numbers), privacy (text checked for personal data)
_S = {
    "dim_school": {
        "school_id": ("id", "学校编码，如 SH-U01"),
        "school_name": ("free", "学校中文名"),
        "school_name_en": ("free", "学校英文名（可空）"),
        "region_code": ("id", "主管地区行政区划代码，如 310000"),
        "region_name": ("free", "主管地区名称，如 上海市"),
        "school_type": ("enum", "学校类型：university 大学 / vocational 职业院校 / k12 中小学", SCHOOL_TYPES),
        "boarding": ("bool", "是否寄宿：是/否"),
    },
    "dim_campus": {
        "campus_id": ("id", "校区编码"),
        "school_id": ("id", "所属学校编码（dim_school）"),
        "campus_name": ("free", "校区名称"),
    },
    "dim_facility": {
        "facility_id": ("id", "设施编码（食堂、宿舍、教学楼等）"),
        "campus_id": ("id", "所属校区编码（dim_campus）"),
        "school_id": ("id", "所属学校编码，须与校区所属学校一致"),
        "facility_name": ("free", "设施名称"),
        "facility_type": ("enum", ("设施类型：canteen 食堂 / dormitory 宿舍 / teaching 教学楼 / office 办公楼 / "
                                   "lab 实验楼 / library 图书馆 / sports 体育场馆 / other 其他"), FACILITY_TYPES),
        "floor_area_m2": ("number", "建筑面积（平方米，可空，> 0）", None, 0.0, None, True),
        "capacity": ("int", "容量：食堂座位数或宿舍床位数（可空，≥ 0）", None, 0, None),
    },
    "fact_school_year": {
        "school_id": ("id", "学校编码（dim_school）"),
        "year": ("int", "年份，如 2026", None, 1900, 2100),
        "students": ("int", "学生人数（≥ 0）", None, 0, None),
        "staff": ("int", "教职工人数（≥ 0）", None, 0, None),
        "floor_area_m2": ("number", "校舍建筑面积（平方米，> 0）", None, 0.0, None, True),
    },
    "dim_school_calendar": {
        "school_id": ("id", "学校编码（dim_school）"),
        "cal_date": ("date", "日期 YYYY-MM-DD"),
        "day_type": ("enum", "日类型：term 教学日 / exam 考试 / vacation 假期 / holiday 节假日", DAY_TYPES),
        "teaching_week": ("int", "教学周次（≥ 1；非教学期留空）", None, 1, None),
    },
    "fact_dining_check": {
        "facility_id": ("id", "食堂设施编码（dim_facility）"),
        "check_date": ("date", "检查日期 YYYY-MM-DD"),
        "meal": ("enum", "餐次：breakfast 早餐 / lunch 午餐 / dinner 晚餐 / day 全天（每日一次的检查）", CHECK_MEALS),
        "check_type": ("enum", ("检查类型：sample_retention 留样 / morning_check 晨检 / tableware_disinfection 餐具消毒 / "
                                "pesticide_test 农残快检 / supplier_docs 索证索票 / accompany_meal 陪餐 / "
                                "self_check 自查 / video_online 明厨亮灶在线"), CHECK_TYPES),
        "items_due": ("int", "应检项数（≥ 0）", None, 0, None),
        "items_ok": ("int", "合规项数（0 ≤ items_ok ≤ items_due）", None, 0, None),
    },
    "fact_meals_served": {
        "facility_id": ("id", "食堂设施编码（dim_facility）"),
        "service_date": ("date", "供餐日期 YYYY-MM-DD"),
        "meal": ("enum", "餐次：breakfast 早餐 / lunch 午餐 / dinner 晚餐", SERVED_MEALS),
        "covers": ("int", "就餐人次（≥ 0；0 表示未供餐）", None, 0, None),
    },
    "fact_cold_chain_reading": {
        "device_id": ("id", "冷链温度设备编码"),
        "facility_id": ("id", "设备所在设施编码（dim_facility）"),
        "zone": ("enum", "温区：chilled 冷藏 / frozen 冷冻 / hot_holding 热保温", ZONES),
        "ts": ("timestamp", "读数时间 YYYY-MM-DD HH:MM[:SS]（当地时间）"),
        "temp_c": ("number", "温度 °C"),
    },
    "fact_food_hazard": {
        "hazard_id": ("id", "隐患编号"),
        "facility_id": ("id", "设施编码（dim_facility）"),
        "found_on": ("date", "发现日期 YYYY-MM-DD"),
        "source": ("enum", "来源：self_check 自查 / inspection 检查 / complaint 投诉 / iot 物联网", HAZARD_SOURCES),
        "severity": ("enum", "风险等级：low 低 / medium 中 / high 高", SEVERITIES),
        "category": ("free", "隐患类别（文字，不含个人信息）", None, None, None, False, True),
        "due_on": ("date", "整改期限 YYYY-MM-DD（不早于发现日期）"),
        "closed_on": ("date", "整改完成日期 YYYY-MM-DD（未完成留空）"),
    },
    "fact_canteen_inspection": {
        "facility_id": ("id", "食堂设施编码（dim_facility）"),
        "inspected_on": ("date", "检查日期 YYYY-MM-DD"),
        "result": ("enum", "结果：pass 符合 / basic_pass 基本符合 / fail 不符合", RESULTS),
        "grade": ("enum", "等级 A–D（可空）", GRADES),
    },
    "fact_staff_certificate": {
        "facility_id": ("id", "设施编码（dim_facility）"),
        "staff_ref": ("id", "从业人员匿名编号（不得填写姓名、手机号、身份证号）", None, None, None, False, True),
        "valid_until": ("date", "健康证有效期至 YYYY-MM-DD"),
    },
    "dim_meter": {
        "meter_id": ("id", "计量表编码"),
        "facility_id": ("id", "所在设施编码（dim_facility）"),
        "school_id": ("id", "所属学校编码，须与设施所属学校一致"),
        "energy_type": ("enum", "能源类型：electricity 电(kWh) / water 水(立方米) / gas 燃气(立方米) / heat 热(GJ)", ENERGY_TYPES),
        "end_use": ("enum", "电力分项（仅电表，可空）：lighting_socket 照明插座 / hvac 空调 / power 动力 / special 特殊",
                    END_USES),
        "parent_meter_id": ("id", "上级总表编码（分表填写，总表留空）"),
    },
    "fact_meter_reading": {
        "meter_id": ("id", "计量表编码（dim_meter）"),
        "ts": ("timestamp", "时段开始时间 YYYY-MM-DD HH:MM[:SS]（每小时或更细）"),
        "consumption": ("number", "时段用量（≥ 0，表的计量单位；不是累计读数）", None, 0.0, None),
    },
    "fact_energy_quota": {
        "school_id": ("id", "学校编码（dim_school）"),
        "year": ("int", "年份，如 2026", None, 1900, 2100),
        "energy_type": ("enum", "能源类型：electricity / water / gas / heat", ENERGY_TYPES),
        "quota": ("number", "年度定额（≥ 0，能源类型的计量单位）", None, 0.0, None),
    },
    "fact_survey_response": {
        "response_id": ("id", "问卷答复编号"),
        "school_id": ("id", "学校编码（dim_school）"),
        "facility_id": ("id", "设施编码（可空；须属于该学校）"),
        "service_line": ("enum", ("服务条线：dining 餐饮 / dormitory 公寓 / property 物业 / repair 维修 / energy 能源 / "
                                  "transport 交通 / parcel 快递 / commerce 商超 / venue 场馆 / other 其他"), SERVICE_LINES),
        "submitted_on": ("date", "提交日期 YYYY-MM-DD"),
        "respondent_type": ("enum", "答复人类型：student 学生 / staff 教职工 / other 其他", RESPONDENTS),
        "score": ("int", "满意度评分 1–5", None, 1, 5),
        "nps": ("int", "推荐意愿 0–10（可空）", None, 0, 10),
    },
    "fact_work_order": {
        "order_id": ("id", "工单编号"),
        "school_id": ("id", "学校编码（dim_school）"),
        "facility_id": ("id", "设施编码（可空；须属于该学校）"),
        "kind": ("enum", "类型：repair 报修 / complaint 投诉 / request 服务请求", KINDS),
        "service_line": ("enum", ("服务条线：dining / dormitory / property / repair / energy / transport / parcel / "
                                  "commerce / venue / other"), SERVICE_LINES),
        "priority": ("enum", "优先级：urgent 紧急 / normal 一般", PRIORITIES),
        "created_at": ("timestamp", "创建时间 YYYY-MM-DD HH:MM[:SS]"),
        "responded_at": ("timestamp", "响应时间（可空，不早于创建时间）"),
        "completed_at": ("timestamp", "完工时间（可空，不早于创建时间）"),
        "reopened": ("bool", "7 天内同一故障再次报修：是/否"),
        "callback_done": ("bool", "是否已回访：是/否"),
        "rating": ("int", "回访评分 1–5（可空）", None, 1, 5),
    },
    "fact_maturity_score": {
        "school_id": ("id", "学校编码（dim_school）"),
        "period": ("id", "评估周期，如 2026"),
        "indicator_id": ("id", "成熟度框架中的指标编码"),
        "score": ("number", "得分 0–100", None, 0.0, 100.0),
        "evidence": ("free", "佐证材料说明或链接（可空，不含个人信息）", None, None, None, False, True),
        "assessor": ("free", "评估机构或评估人匿名编号（可空）", None, None, None, False, True),
        "assessed_on": ("date", "评估日期 YYYY-MM-DD"),
    },
}

LOADABLE_TABLES = [t for t in schema.CONTRACT_TABLES if t != "meta_load"]
"""Tables a file may load, in dependency order (meta_load is written by the loader, agg_meter_daily derived)."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str                  # id | free | enum | int | number | bool | date | timestamp
    required: bool
    description: str
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    privacy: bool = False
    max_len: int | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    def descriptions(self) -> dict[str, str]:
        return {c.name: c.description for c in self.columns}


def _int_range(column_type: sa.types.TypeEngine) -> tuple[int, int]:
    """The values an integer column holds in every supported database: INTEGER is 32-bit in DuckDB, PostgreSQL
    and MariaDB/MySQL (SMALLINT 16, BIGINT 64). The loader rejects a value outside (``below_min`` /
    ``above_max``) rather than letting the database's cast fail the whole batch."""
    bits = 64 if isinstance(column_type, sa.BigInteger) else 16 if isinstance(column_type, sa.SmallInteger) else 32
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _build_specs() -> dict[str, TableSpec]:
    out = {}
    for table_name in LOADABLE_TABLES:
        table = schema.metadata.tables[table_name]
        given = _S[table_name]
        if set(given) != {c.name for c in table.columns}:
            raise RuntimeError(f"validate.SPECS for {table_name} do not match schema.py")
        cols = []
        # Columns in the order of WAREHOUSE.md (the templates' order), types and nullability from schema.py.
        for col in (table.c[name] for name in given):
            kind, desc, *rest = given[col.name]
            rest = list(rest) + [None] * (6 - len(rest))
            values, lo, hi, lo_excl, privacy = rest[0], rest[1], rest[2], rest[3], rest[4]
            required = not col.nullable
            max_len = getattr(col.type, "length", None) if isinstance(col.type, sa.String) else None
            if kind == "int":   # the column's own range, so that no value fails the write or becomes empty
                low, high = _int_range(col.type)
                lo = low if lo is None else max(lo, low)
                hi = high if hi is None else min(hi, high)
            if required and "可空" not in desc:
                desc = f"{desc[:-1]}，必填）" if desc.endswith("）") else f"{desc}（必填）"
            cols.append(ColumnSpec(col.name, kind, required, desc, tuple(values or ()), lo, hi, bool(lo_excl),
                                   bool(privacy), max_len))
        out[table_name] = TableSpec(table_name, tuple(cols), tuple(c.name for c in table.primary_key.columns))
    return out


SPECS: dict[str, TableSpec] = _build_specs()

# --- foreign keys and consistency ---------------------------------------------------------------------------

# (column, referenced dimension). A facility / meter / campus reference also checks the school it belongs to
# when the row carries a school_id.
FOREIGN_KEYS: dict[str, list[tuple[str, str]]] = {
    "dim_campus": [("school_id", "dim_school")],
    "dim_facility": [("school_id", "dim_school"), ("campus_id", "dim_campus")],
    "fact_school_year": [("school_id", "dim_school")],
    "dim_school_calendar": [("school_id", "dim_school")],
    "fact_dining_check": [("facility_id", "dim_facility")],
    "fact_meals_served": [("facility_id", "dim_facility")],
    "fact_cold_chain_reading": [("facility_id", "dim_facility")],
    "fact_food_hazard": [("facility_id", "dim_facility")],
    "fact_canteen_inspection": [("facility_id", "dim_facility")],
    "fact_staff_certificate": [("facility_id", "dim_facility")],
    "dim_meter": [("school_id", "dim_school"), ("facility_id", "dim_facility")],
    "fact_meter_reading": [("meter_id", "dim_meter")],
    "fact_energy_quota": [("school_id", "dim_school")],
    "fact_survey_response": [("school_id", "dim_school"), ("facility_id", "dim_facility")],
    "fact_work_order": [("school_id", "dim_school"), ("facility_id", "dim_facility")],
    "fact_maturity_score": [("school_id", "dim_school")],
}
REFERENCED = ("dim_school", "dim_campus", "dim_facility", "dim_meter")


@dataclass
class Lookups:
    """What rows may refer to: ids of the warehouse (including batches committed earlier in the run).

    ``owners[dim]`` maps an id to its school (None for dim_school itself); ``meter_types`` a meter to its energy
    type; ``indicators`` the maturity framework's indicator ids (None: not checked).
    """

    owners: dict[str, dict[str, str | None]] = field(default_factory=dict)
    indicators: frozenset[str] | None = None


# Row-level cross-column rules: (table, column reported, later column, earlier column)
ORDER_RULES = [
    ("fact_food_hazard", "due_on", "found_on"),
    ("fact_food_hazard", "closed_on", "found_on"),
    ("fact_work_order", "responded_at", "created_at"),
    ("fact_work_order", "completed_at", "created_at"),
]

_PHONE = r"(?<!\d)1[3-9]\d{9}(?!\d)"
_ID_CARD = r"(?<!\d)\d{17}[\dXx](?![\dXx])"
_PERSONAL = re.compile(f"{_PHONE}|{_ID_CARD}")

def _mask(match: re.Match) -> str:
    text = match.group(0)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


# --- normalisation ------------------------------------------------------------------------------------------

_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20


_ASCII_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"   # what str.strip() removes, below 128


_SPACE_BYTE = np.zeros(256, dtype=bool)
_SPACE_BYTE[[ord(c) for c in _ASCII_SPACE]] = True


def _edge_space(joined: str) -> bool:
    """Whether a cell of "\x00"-joined ASCII cells starts or ends with whitespace (numpy over the bytes)."""
    b = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    if len(b) == 0:
        return False
    sep = np.flatnonzero(b == 0)
    starts = np.concatenate(([0], sep + 1))
    ends = np.concatenate((sep - 1, [len(b) - 1]))
    starts, ends = starts[starts < len(b)], ends[ends >= 0]
    return bool(_SPACE_BYTE[b[starts]].any() or _SPACE_BYTE[b[ends]].any())


def clean_text(s: pd.Series, free: bool) -> pd.Series:
    """Cells as stripped text ("" for empty); full-width forms folded to ASCII unless ``free`` text. The readers
    give text cells only ("" for empty)."""
    s = s.astype("str")
    # Most columns of most files need neither: look at all cells at once (one join, a few C-level scans) before
    # paying a Python call per cell, which is most of the time of a large file otherwise.
    joined = "\x00".join(s.to_numpy(dtype=object))
    if not joined.isascii():
        non_ascii = ~s.str.isascii()
        part = s[non_ascii]
        if not free:
            part = part.str.translate(_FULLWIDTH)
        s = s.copy()
        s[non_ascii] = part
        return s.str.strip()
    if _edge_space(joined):
        return s.str.strip()
    return s


_DATE_PART = r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})"
_DATE_RE = re.compile(_DATE_PART + r"(?: 00?:00(?::00(?:\.0{1,6})?)?)?", re.ASCII)
_TS_RE = re.compile(_DATE_PART + r"[ T](\d{1,2}):([0-5]\d)(?::([0-5]\d)(?:\.(\d{1,6}))?)?", re.ASCII)
"""The rule of the module docstring, matched in full (re.ASCII: ``\\d`` is 0-9 only, not any script's digits)."""

_LAYOUTS = {False: ("dddd-dd-dd",), True: ("dddd-dd-dd dd:Sd:Sd", "dddd-dd-dd dd:Sd")}
"""The zero-padded forms machine exports use, checked without a regex per cell (see _fits): ``d`` a digit, ``S``
a digit 0-5, ``-`` the date separator (``-`` or ``/``, the same both times), a space: one space or ``T``."""


def _allowed(layout: str) -> np.ndarray:
    """For each position of a layout, which of the 256 byte values may stand there."""
    table = np.zeros((len(layout), 256), dtype=bool)
    for i, ch in enumerate(layout):
        table[i, [ord(c) for c in {"d": "0123456789", "S": "012345", "-": "-/", " ": " T"}.get(ch, ch)]] = True
    return table


_ALLOWED = {layout: _allowed(layout) for layouts in _LAYOUTS.values() for layout in layouts}


def _fits(b: np.ndarray, starts: np.ndarray, layout: str) -> np.ndarray:
    """Which cells, starting at ``starts`` in the bytes ``b`` and as long as the layout, fit it."""
    table = _ALLOWED[layout]
    good = np.ones(len(starts), dtype=bool)
    for i in range(len(layout)):
        good &= table[i][b[starts + i]]
    return good & (b[starts + 4] == b[starts + 7])   # one date separator, not 2026/11-03


def _well_formed(cells: np.ndarray, with_time: bool) -> np.ndarray:
    """Whether each cell (stripped, not empty) follows the rule exactly: its shape, not yet the calendar.

    Checked before any parser sees a cell, because pandas' fast parser is lenient: it reads ``10:00:60`` as
    10:01:00 and accepts two spaces, a tab or a one-digit minute (``10:5``) — guesses the rule forbids. A large
    export's cells all have one of the zero-padded _LAYOUTS, checked with numpy over the bytes of the whole
    chunk at once (a fraction of the parser's time); any other cell by the regex.
    """
    ok = np.zeros(len(cells), dtype=bool)
    joined = "\x00".join(cells)
    if len(cells) and joined.isascii() and joined.count("\x00") == len(cells) - 1:
        b = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        starts = np.concatenate(([0], np.flatnonzero(b == 0) + 1))
        lengths = np.diff(np.append(starts, len(b) + 1)) - 1
        for layout in _LAYOUTS[with_time]:
            at = np.flatnonzero(lengths == len(layout))
            if len(at):
                ok[at] = _fits(b, starts[at], layout)
    rest = np.flatnonzero(~ok)
    if len(rest):
        pattern = _TS_RE if with_time else _DATE_RE
        ok[rest] = [pattern.fullmatch(text) is not None for text in cells[rest]]
    return ok


def _slow_dates(values: pd.Series, with_time: bool) -> pd.Series:
    """Parse what the fast paths left: the regex rule of the module docstring, validated by the calendar."""
    out = []
    pattern = _TS_RE if with_time else _DATE_RE
    for text in values:
        m = pattern.fullmatch(text)
        value = pd.NaT
        if m:
            try:
                if with_time:
                    frac = (m.group(8) or "0").ljust(6, "0")
                    value = dt.datetime(int(m.group(1)), int(m.group(3)), int(m.group(4)), int(m.group(5)),
                                        int(m.group(6)), int(m.group(7) or 0), int(frac))
                else:
                    value = dt.datetime(int(m.group(1)), int(m.group(3)), int(m.group(4)))
            except ValueError:   # 2026-02-30, 25:00
                value = pd.NaT
        out.append(value)
    return pd.Series(pd.to_datetime(pd.Series(out, index=values.index, dtype=object)), index=values.index)


def parse_datetimes(s: pd.Series, with_time: bool) -> pd.Series:
    """datetime64 for each non-empty cell (NaT where it does not follow the rule); empty cells are NaT.

    Only cells of the rule's exact shape (_well_formed) reach a parser: the fast C parser first, for the
    common forms; the regex and the calendar (_slow_dates) for the rest.
    """
    result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    todo = (s != "").to_numpy().copy()
    if todo.any():
        todo[todo] = _well_formed(s.to_numpy(dtype=object)[todo], with_time)
    todo = pd.Series(todo, index=s.index)
    formats = (("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M") if with_time else ("%Y-%m-%d",))
    for fmt in formats:
        if not todo.any():
            break
        # The fast C parser; it accepts one-digit months, days and hours, as the rule does.
        parsed = pd.to_datetime(s[todo], format=fmt, errors="coerce")
        hit = parsed.notna()
        result.loc[parsed.index[hit]] = parsed[hit].astype("datetime64[us]")
        todo.loc[parsed.index[hit]] = False
    if todo.any():
        slow = _slow_dates(s[todo], with_time)
        hit = slow.notna()
        result.loc[slow.index[hit]] = slow[hit].astype("datetime64[us]")
    return result


_TRUE = {"true", "是", "1"}
_FALSE = {"false", "否", "0"}

# --- the chunk validator ------------------------------------------------------------------------------------

REJECT_COLUMNS = ["row", "column", "value", "code", "reason", "reason_en"]


class _Rejects:
    def __init__(self):
        self.parts: list[pd.DataFrame] = []

    def add(self, rows: pd.Series | np.ndarray, column: str, cells, code: str, **params) -> None:
        rows = np.asarray(rows)
        if len(rows) == 0:
            return
        cells = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in
                 (cells if not isinstance(cells, str) else [cells] * len(rows))]
        self.parts.append(pd.DataFrame({
            "row": rows.astype(np.int64), "column": column, "value": cells, "code": code,
            "reason": reason(code, "zh", **params), "reason_en": reason(code, "en", **params),
        }))

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS}).astype({"row": np.int64})
        return pd.concat(self.parts, ignore_index=True)


def _fmt_bound(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def validate_chunk(spec: TableSpec, raw: pd.DataFrame, rows: np.ndarray, lookups: Lookups
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check one chunk of raw cells (text, "" for empty; only the file's columns) against the table's rules.

    ``rows`` are the spreadsheet row numbers of the chunk's rows. Returns (good rows typed for the database,
    with a ``_row`` column; rejects with REJECT_COLUMNS: one line per problem, a row may have several).
    """
    rej = _Rejects()
    n = len(raw)
    bad = np.zeros(n, dtype=bool)
    typed: dict[str, pd.Series] = {}
    rows = np.asarray(rows)

    def flag(mask: np.ndarray | pd.Series, column: str, cells: pd.Series, code: str, **params):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            rej.add(rows[mask], column, list(cells.to_numpy()[mask]), code, **params)
            bad[mask] = True

    for col in spec.columns:
        if col.name not in raw.columns:
            typed[col.name] = None   # an optional column the file does not have: NULL
            continue
        original = raw[col.name]
        s = clean_text(original, free=col.kind == "free")
        empty = s.to_numpy(dtype=object) == ""
        if col.required:
            flag(empty, col.name, original, "required")
        present = ~empty
        if col.kind in ("id", "free", "enum"):
            if col.max_len is not None:
                flag(present & (s.str.len() > col.max_len).to_numpy(), col.name, original, "too_long", max=col.max_len)
            if col.kind == "enum":
                flag(present & ~s.isin(col.values).to_numpy(), col.name, original, "not_in_list",
                     values=" / ".join(col.values))
            if col.privacy:
                personal = present & s.str.contains(_PERSONAL).to_numpy()
                # The rejects file must not spread what it refuses to store: the number is masked there.
                flag(personal, col.name, original.str.replace(_PERSONAL, _mask, regex=True), "personal_data")
            typed[col.name] = s.where(present, np.nan).astype("str")
        elif col.kind in ("int", "number"):
            num = pd.to_numeric(s.where(present, np.nan), errors="coerce").astype("float64")
            finite = np.isfinite(num.to_numpy())
            flag(present & ~finite, col.name, original, "not_a_number")
            ok = present & finite
            if col.kind == "int":
                frac = ok & (num.to_numpy() != np.round(num.to_numpy()))
                flag(frac, col.name, original, "not_an_integer")
                ok = ok & ~frac
            values = num.to_numpy()
            if col.min is not None and col.min_exclusive:
                flag(ok & (values <= col.min), col.name, original, "not_above", min=_fmt_bound(col.min))
            elif col.min is not None:
                flag(ok & (values < col.min), col.name, original, "below_min", min=_fmt_bound(col.min))
            if col.max is not None:
                flag(ok & (values > col.max), col.name, original, "above_max", max=_fmt_bound(col.max))
            if col.kind == "int":
                safe = num.where(pd.Series(ok, index=num.index) & num.abs().lt(2**62), np.nan)
                typed[col.name] = safe.round().astype("Int64")
            else:
                typed[col.name] = num.where(pd.Series(ok, index=num.index), np.nan)
        elif col.kind == "bool":
            low = s.str.lower()
            is_true = low.isin(_TRUE).to_numpy()
            is_false = low.isin(_FALSE).to_numpy()
            flag(present & ~is_true & ~is_false, col.name, original, "not_a_bool")
            values = pd.Series(pd.NA, index=s.index, dtype="boolean")
            values[is_true] = True
            values[is_false] = False
            typed[col.name] = values
        elif col.kind in ("date", "timestamp"):
            with_time = col.kind == "timestamp"
            parsed = parse_datetimes(s, with_time)
            failed = present & parsed.isna().to_numpy()
            flag(failed, col.name, original, "not_a_timestamp" if with_time else "not_a_date")
            years = parsed.dt.year.to_numpy(dtype="float64", na_value=np.nan)
            flag(~failed & present & ((years < 1900) | (years > 2100)), col.name, original, "year_out_of_range")
            typed[col.name] = parsed
        else:  # pragma: no cover - SPECS are checked at import
            raise ValueError(f"unknown column kind {col.kind}")

    for name in raw.columns:
        if name not in typed:   # a column without a header (the reader names it "#n"): must stay empty
            flag((clean_text(raw[name], free=True) != "").to_numpy(), name, raw[name], "unnamed_value")

    frame = pd.DataFrame({k: v for k, v in typed.items() if v is not None}, index=raw.index)
    _row_rules(spec, frame, raw, flag)
    _reference_rules(spec, frame, raw, lookups, flag)

    good = frame.loc[~bad].copy()
    good["_row"] = rows[~bad].astype(np.int64)
    return good, rej.frame()


def _row_rules(spec: TableSpec, frame: pd.DataFrame, raw: pd.DataFrame, flag) -> None:
    t = spec.name
    if t == "fact_dining_check" and {"items_ok", "items_due"} <= set(frame.columns):
        over = (frame["items_ok"] > frame["items_due"]).fillna(False).to_numpy(dtype=bool)
        flag(over, "items_ok", raw["items_ok"], "ok_exceeds_due")
    for table, later, earlier in ORDER_RULES:
        if t == table and later in frame.columns and earlier in frame.columns:
            wrong = (frame[later] < frame[earlier]).fillna(False).to_numpy(dtype=bool)
            flag(wrong, later, raw[later], "before", other=earlier)
    if t == "dim_meter":
        if "end_use" in frame.columns:
            wrong = (frame["end_use"].notna() & (frame["energy_type"] != "electricity")).fillna(False)
            flag(wrong.to_numpy(dtype=bool), "end_use", raw["end_use"], "end_use_not_electricity")
        if "parent_meter_id" in frame.columns:
            own = (frame["parent_meter_id"] == frame["meter_id"]).fillna(False).to_numpy(dtype=bool)
            flag(own, "parent_meter_id", raw["parent_meter_id"], "own_parent")


def _reference_rules(spec: TableSpec, frame: pd.DataFrame, raw: pd.DataFrame, lookups: Lookups, flag) -> None:
    for column, ref in FOREIGN_KEYS.get(spec.name, []):
        if column not in frame.columns:
            continue
        ids = frame[column]
        known = lookups.owners.get(ref, {})
        present = ids.notna().to_numpy()
        found = ids.isin(set(known)).to_numpy()
        flag(present & ~found, column, raw[column], "fk_missing", ref=ref)
        # The school a facility/campus/meter belongs to must be the row's school.
        if ref != "dim_school" and column != "school_id" and "school_id" in frame.columns:
            owner = ids.map(known)
            mismatch = (present & found & (owner != frame["school_id"]).fillna(False).to_numpy(dtype=bool))
            flag(mismatch, column, raw[column], "fk_mismatch", ref=ref)
    if spec.name == "fact_maturity_score" and lookups.indicators is not None and "indicator_id" in frame.columns:
        ids = frame["indicator_id"]
        flag(ids.notna().to_numpy() & ~ids.isin(lookups.indicators).to_numpy(), "indicator_id", raw["indicator_id"],
             "not_in_framework")


def key_hashes(spec: TableSpec, good: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's natural key (for finding duplicates across chunks without keeping keys)."""
    if good.empty:
        return np.empty(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(good[list(spec.key)], index=False).to_numpy(dtype=np.uint64)


def display(value) -> str:
    """A typed value as the rejects file shows it."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def template_row(spec: TableSpec) -> list[str]:
    """The description row of a template, in column order."""
    return [c.description for c in spec.columns]
