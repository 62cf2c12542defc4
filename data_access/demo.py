"""The demo warehouse: a deterministic, realistic set of fictional schools with known incidents.

``generate()`` makes one DataFrame per contract table (pure: the same arguments give the same frames);
``build()`` writes them into a warehouse. Run as::

    python -m data_access.demo --url duckdb:///data/demo.duckdb [--schools 12] [--days 400] [--seed 7]
                               [--end YYYY-MM-DD] [--if-missing | --ensure] [--quiet]

(without --url: the configured warehouse URL).

Everything is vectorised with numpy/pandas (no Python loop over meters x hours or over readings); each school
draws from its own random streams, so the first N schools are the same whatever ``--schools`` says. The schools,
names and people are fictional; people appear only as pseudonymous refs. ``INCIDENTS`` lists what was planted
on purpose, with the ids and the days (counted back from ``end``) where the cockpit should find it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from . import bulk, schema
from .config import get_config
from .engine import duckdb_path, make_engine

logger = logging.getLogger(__name__)

# --- what was planted ---------------------------------------------------------------------------------------
# "days_before_end": 0 is ``end`` itself. All of them lie in the last 30 days before ``end`` unless said otherwise.
# An incident whose school is not among the generated ones (--schools < 5) or whose day falls before the first
# day of data (--days too small) is left out.

INCIDENTS: dict[str, dict] = {
    "cold_chain_excursion": {
        "school": "SH-U01", "device_id": "SH-U01-C1-CAN1-T1", "zone": "chilled", "days_before_end": 3,
        "start": "14:00", "readings": 6, "minutes": 50, "temp_c": (10.0, 12.0),
        "what": "chilled device at 10-12 °C from 14:00 to 14:50 (6 readings): one excursion >= 30 min",
    },
    "cold_chain_frozen_excursion": {
        "school": "SH-U01", "device_id": "SH-U01-C1-CAN1-T2", "zone": "frozen", "days_before_end": 11,
        "start": "02:00", "readings": 13, "minutes": 120, "temp_c": (-8.5, -7.5),
        "what": "frozen device at about -8 °C from 02:00 to 04:00 (13 readings): one excursion",
    },
    "cold_chain_short_blip": {
        "school": "SH-U01", "device_id": "SH-U01-C1-CAN1-T1", "zone": "chilled", "days_before_end": 5,
        "start": "10:20", "readings": 2, "minutes": 20, "temp_c": (8.5, 9.5),
        "what": "chilled device above 8 °C for 2 readings (10:20, 10:30): out of range but NOT an excursion",
    },
    "cold_chain_repeated_excursions": {
        "school": "SH-V01", "device_id": "SH-V01-C1-CAN1-T1", "zone": "chilled", "days_before_end": 2,
        "starts": ("06:00", "12:00", "18:00"), "readings": 4, "minutes": 30, "temp_c": (9.0, 11.0),
        "what": "a chilled device with a failing door seal, at 9-11 °C from 06:00 to 06:30 (4 readings), and again "
                "from 12:00 and from 18:00 of the same day: three excursions of 40 min (to the first reading back "
                "in range) of one device in one ISO week, red (>= 3)",
    },
    "cold_chain_device_offline": {
        "school": "BJ-U01", "device_id": "BJ-U01-C1-CAN2-T2", "zone": "frozen", "days": 3,
        "what": "device stops reporting: no readings in the last 3 days (days_before_end 0, 1, 2)",
    },
    "sample_retention_missed": {
        "school": "SH-K01", "facility_id": "SH-K01-C1-CAN1", "missing_rows": 4, "short_rows": 3,
        "what": "sample_retention rows missing for 4 served meals and items_ok < items_due on 3 others, all in "
                "the last 30 days (or, when the canteen served fewer than 7 meals then, its latest served meals)",
    },
    "certificates_expired": {
        "school": "SH-K01", "facility_id": "SH-K01-C1-CAN1", "staff_refs": ("SH-K01-H9001", "SH-K01-H9002"),
        "valid_until_days_before_end": (4, 15),
        "what": "2 health certificates expired before end",
    },
    "certificates_expiring": {
        "refs": {"SH-U01-H9001": ("SH-U01-C1-CAN2", 7), "SH-U01-H9002": ("SH-U01-C1-CAN2", 21),
                 "BJ-U01-H9001": ("BJ-U01-C2-CAN1", 12)},
        "what": "3 health certificates expiring 7, 21 and 12 days after end (all other certificates are valid "
                "for more than 30 days after end)",
    },
    "hazard_overdue_high": {
        "school": "BJ-U01", "hazard_id": "HZ-BJ-U01-9001", "facility_id": "BJ-U01-C1-CAN1", "severity": "high",
        "found_days_before_end": 20, "due_days_before_end": 17,
        "what": "high-severity hazard open and overdue (closed_on empty)",
    },
    "hazard_overdue_medium": {
        "hazards": {"HZ-BJ-U01-9002": ("BJ-U01-C2-CAN1", 25, 18), "HZ-SH-V01-9001": ("SH-V01-C1-CAN1", 16, 9)},
        "what": "two medium hazards open and overdue: hazard_id -> (facility, found, due days before end); "
                "every other open hazard is due on or after end",
    },
    "hazard_closed_on_due_date": {
        "school": "SH-U01", "hazard_id": "HZ-SH-U01-9001", "facility_id": "SH-U01-C1-CAN2",
        "found_days_before_end": 15, "due_days_before_end": 8,
        "what": "a hazard closed exactly on its due date (counts as on time)",
    },
    "energy_spike": {
        "school": "SH-U01", "meter_id": "SH-U01-C1-LAB1-EL", "days_before_end": 6, "hours": (9, 16), "factor": 4.0,
        "what": "electricity at 4x its normal from 09:00 to 17:00: the day is far above the previous 8 same weekdays",
    },
    "energy_spikes_repeated": {
        "school": "SH-U01", "hours": (9, 16), "factor": 4.0,
        "spikes": {"SH-U01-C1-OFF1-EL": 13, "SH-U01-C2-LIB1-EL": 16, "SH-U01-C1-SPO1-EL": 20,
                   "SH-U01-C2-OFF1-EL": 24},
        "what": "four more buildings of the same school, each on its own day (meter -> days before end), like "
                "energy_spike: with it 5 anomalous meter-days in the last 30 days, red (more than 3)",
    },
    "water_leak": {
        "school": "BJ-U01", "meter_id": "BJ-U01-C1-DOR1-WA", "start_days_before_end": 19, "share_of_mean": 0.4,
        "what": "constant extra flow (40 % of the meter's normal mean hourly flow) from 19 days before end: "
                "the 02:00-04:00 mean exceeds 10 % of the mean hourly flow",
    },
    "meter_gap": {
        "school": "SH-U01", "days_before_end": 9,
        "what": "no meter readings at all for any meter of the school on that day: data completeness over the last "
                "30 days 29/30 = 96.7 %, amber",
    },
    "meter_outage": {
        "school": "SH-K01", "days_before_end": 20, "days": 2,
        "what": "no meter readings at all for any meter of the school on two days in a row (days_before_end 20 and "
                "21, a data-collector outage): data completeness over the last 30 days 28/30 = 93.3 %, red (< 95 %)",
    },
    "meter_coverage_gap": {
        "school": "SH-U01", "facility_id": "SH-U01-C2-SPO1",
        "what": "a building without any electricity meter (not a dated incident): meter coverage < 100 %",
    },
    "quota_overrun": {
        "school": "SH-U01", "factor": 0.86,
        "what": "this year's quotas are 86 % of the expected annual use: headed over quota (about 116 %)",
    },
    "poor_repair_service": {
        "school": "SH-V01", "overdue_open_orders": 6,
        "what": "slow responses (many urgent orders answered after 2 h, normal after 24 h), 6 overdue open orders "
                "created 4-13 days before end, more reopened orders, and low satisfaction (mean score about 3.2)",
    },
    "small_survey_cell": {
        "school": "BJ-U01", "service_line": "venue", "responses": 6, "window_days": 30,
        "what": "only 6 venue responses in the last 30 days: figures must be suppressed (n < 10)",
    },
    "maturity_profiles": {
        "low": "SH-V02", "high": "SH-U01", "strategy_floor": "BJ-U01",
        "what": "assessed maturity scores: SH-V02 about L1-L2, SH-U01 about L4-L5, BJ-U01 high except a very low "
                "strategy dimension (the level floor rule caps it); the others about L3",
    },
    "no_canteen_no_calendar": {
        "school": "SH-V02",
        "what": "no canteen (meals from an external caterer) and no dim_school_calendar rows: the default "
                "calendar of config.yaml applies",
    },
}

# --- the schools ------------------------------------------------------------------------------------------

REGIONS = {"310000": "上海市", "110000": "北京市"}


@dataclass(frozen=True)
class SchoolSpec:
    index: int
    school_id: str
    name_zh: str
    name_en: str
    region_code: str
    school_type: str      # university | vocational | k12
    boarding: bool
    campuses: int
    canteen: bool = True
    calendar: bool = True

    @property
    def region_name(self) -> str:
        return REGIONS[self.region_code]

    @property
    def beijing(self) -> bool:
        return self.region_code == "110000"


# Fictional names (any likeness to a real institution is unintended).
_BASE_SCHOOLS = [
    ("SH-U01", "沪澜大学", "Hulan University", "310000", "university", True, 2),
    ("SH-V01", "申禾职业技术学院", "Shenhe Vocational and Technical College", "310000", "vocational", True, 1),
    ("SH-K01", "青枫实验中学", "Qingfeng Experimental Middle School", "310000", "k12", False, 1),
    ("BJ-U01", "京岚大学", "Jinglan University", "110000", "university", True, 3),
    ("SH-V02", "沪汀职业学院", "Huting Vocational College", "310000", "vocational", False, 1),
    ("BJ-K01", "京桦寄宿中学", "Jinghua Boarding Middle School", "110000", "k12", True, 1),
    ("SH-U02", "沪遥师范大学", "Huyao Normal University", "310000", "university", True, 1),
    ("BJ-V01", "京岩职业技术学院", "Jingyan Vocational and Technical College", "110000", "vocational", True, 1),
    ("SH-K02", "澜岸小学", "Lan'an Primary School", "310000", "k12", False, 1),
    ("BJ-U02", "京汐大学", "Jingxi University", "110000", "university", True, 2),
    ("BJ-K02", "京蓁小学", "Jingzhen Primary School", "110000", "k12", False, 1),
    ("SH-K03", "松筠中学", "Songyun Middle School", "310000", "k12", False, 1),
]
# For schools beyond the 12 above: invented two-character names (zh, pinyin).
_EXTRA_WORDS = [("溪岚", "Xilan"), ("云栖", "Yunqi"), ("澄霁", "Chengji"), ("枫汀", "Fengting"), ("槿川", "Jinchuan"),
                ("霁禾", "Jihe"), ("栖桐", "Qitong"), ("岚屿", "Lanyu"), ("瑾澜", "Jinlan"), ("汀枫", "Tingfeng"),
                ("沐桦", "Muhua"), ("洵川", "Xunchuan")]
_SUFFIX = {"university": ("大学", "University"), "vocational": ("职业技术学院", "Vocational and Technical College"),
           "k12": ("中学", "Middle School")}


def school_specs(n: int) -> list[SchoolSpec]:
    """The first ``n`` demo schools. Beyond 12 the pattern repeats with new ids (SH-U03, SH-V03, SH-K04 ...)."""
    specs: list[SchoolSpec] = []
    for i in range(n):
        if i < len(_BASE_SCHOOLS):
            sid, zh, en, region, stype, boarding, campuses = _BASE_SCHOOLS[i]
            specs.append(SchoolSpec(i, sid, zh, en, region, stype, boarding, campuses,
                                    canteen=sid != "SH-V02", calendar=sid != "SH-V02"))
            continue
        template = _BASE_SCHOOLS[i % len(_BASE_SCHOOLS)]
        prefix = template[0][:4]
        number = 1 + sum(1 for s in specs if s.school_id.startswith(prefix))
        word_zh, word_en = _EXTRA_WORDS[(i - len(_BASE_SCHOOLS)) % len(_EXTRA_WORDS)]
        round_ = (i - len(_BASE_SCHOOLS)) // len(_EXTRA_WORDS)
        city_zh, city_en = ("沪", "Hu") if template[3] == "310000" else ("京", "Jing")
        suffix_zh, suffix_en = _SUFFIX[template[4]]
        extra = f"{round_ + 1}" if round_ else ""
        specs.append(SchoolSpec(i, f"{prefix}{number:02d}", f"{city_zh}{word_zh}{suffix_zh}{extra}",
                                f"{city_en} {word_en} {suffix_en}{(' ' + extra) if extra else ''}",
                                template[3], template[4], template[5], min(template[6], 2)))
    return specs


# --- small helpers ------------------------------------------------------------------------------------------

def _rng(seed: int, *keys) -> np.random.Generator:
    """An independent random stream per (seed, keys): adding a school does not change the others."""
    words = [int(seed) & 0xFFFFFFFF]
    for k in keys:
        words.append(k if isinstance(k, int) else zlib.crc32(str(k).encode("utf-8")))
    return np.random.default_rng(words)


def _shape(points: dict[int, float]) -> np.ndarray:
    """A 24-hour profile interpolated between (hour: value) anchors, wrapping around midnight."""
    hours = sorted(points)
    xs = np.array(hours + [hours[0] + 24], dtype=float)
    ys = np.array([points[h] for h in hours] + [points[hours[0]]], dtype=float)
    grid = np.arange(24, dtype=float)
    grid = np.where(grid < hours[0], grid + 24, grid)
    return np.interp(grid, xs, ys)


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _d64(d: dt.date) -> np.datetime64:
    return np.datetime64(d.isoformat(), "D")


# --- organisation -------------------------------------------------------------------------------------------

# Building codes, the contract's facility_type, a Chinese name stem, and area ranges (m²) per school type.
_BUILDINGS = {
    "CAN": ("canteen", "食堂"),
    "DOR": ("dormitory", "学生公寓"),
    "TEA": ("teaching", "教学楼"),
    "OFF": ("office", "行政楼"),
    "LAB": ("lab", "实验楼"),
    "LIB": ("library", "图书馆"),
    "SPO": ("sports", "体育馆"),
}
_AREA = {
    "university": {"CAN": (4000, 5500), "DOR": (12000, 16000), "TEA": (15000, 22000), "OFF": (6000, 9000),
                   "LAB": (8000, 12000), "LIB": (10000, 15000), "SPO": (6000, 9000)},
    "vocational": {"CAN": (2500, 3500), "DOR": (9000, 12000), "TEA": (10000, 14000), "OFF": (3000, 4000),
                   "LAB": (6000, 8000), "LIB": (4000, 6000), "SPO": (4000, 6000)},
    "k12": {"CAN": (1400, 2000), "DOR": (6000, 8000), "TEA": (8000, 11000), "OFF": (1500, 2500),
            "LIB": (1500, 2500), "SPO": (2500, 4000)},
}
_ZH_NUM = "一二三四五六七八九十"
_CAMPUS_NAMES = ["主校区", "东校区", "北校区", "南校区", "西校区"]


def _layout(spec: SchoolSpec, campus_no: int) -> list[tuple[str, int]]:
    """(building code, count) for one campus."""
    main = campus_no == 1
    if spec.school_type == "university":
        out = [("CAN", 2), ("DOR", 4 if main else 3), ("TEA", 3 if main else 2), ("OFF", 1), ("LAB", 1),
               ("LIB", 1), ("SPO", 1)]
    elif spec.school_type == "vocational":
        out = [("CAN", 1), ("DOR", 2), ("TEA", 2), ("OFF", 1), ("LAB", 1), ("LIB", 1), ("SPO", 1)]
    else:
        out = [("CAN", 1), ("DOR", 2 if spec.index % 2 else 1), ("TEA", 2), ("OFF", 1), ("LIB", 1), ("SPO", 1)]
    if not spec.boarding:
        out = [(c, n) for c, n in out if c != "DOR"]
    if not spec.canteen:
        out = [(c, n) for c, n in out if c != "CAN"]
    return out


def _organisation(spec: SchoolSpec, seed: int):
    rng = _rng(seed, spec.index, "org")
    campuses, facilities = [], []
    counters: dict[str, int] = {}
    for c in range(1, spec.campuses + 1):
        campus_id = f"{spec.school_id}-C{c}"
        campuses.append({"campus_id": campus_id, "school_id": spec.school_id,
                         "campus_name": f"{spec.name_zh}{_CAMPUS_NAMES[(c - 1) % len(_CAMPUS_NAMES)]}"})
        for code, count in _layout(spec, c):
            ftype, stem = _BUILDINGS[code]
            for k in range(1, count + 1):
                counters[code] = counters.get(code, 0) + 1
                n = counters[code]
                lo, hi = _AREA[spec.school_type][code]
                area = float(round(rng.uniform(lo, hi) * (0.75 if (c > 1 and code == "LIB") else 1.0), -1))
                if code == "CAN":
                    name = f"第{_ZH_NUM[(n - 1) % 10]}食堂"
                    capacity = int(round(area / (3.4 if spec.school_type == "university" else 2.4), -1))
                elif code == "DOR":
                    name = f"学生公寓{n}号楼"
                    capacity = int(round(area / 7.5, -1))
                elif code == "TEA":
                    name = f"第{_ZH_NUM[(n - 1) % 10]}教学楼"
                    capacity = None
                else:
                    name = stem if counters[code] == 1 else f"{stem}（{_CAMPUS_NAMES[(c - 1) % 5]}）"
                    capacity = None
                facilities.append({"facility_id": f"{campus_id}-{code}{k}", "campus_id": campus_id,
                                   "school_id": spec.school_id, "facility_name": name, "facility_type": ftype,
                                   "floor_area_m2": area, "capacity": capacity, "code": code})
    fac = pd.DataFrame(facilities)
    beds = fac.loc[fac.code == "DOR", "capacity"].sum()
    area = fac.floor_area_m2.sum()
    if spec.boarding:
        students = int(beds * rng.uniform(0.93, 0.98))
    else:  # a day school: about 14 m² of buildings per student
        students = int(area / rng.uniform(13.0, 15.0))
    staff_ratio = {"university": 7.5, "vocational": 11.0, "k12": 11.0}[spec.school_type]
    staff = int(students / staff_ratio * rng.uniform(0.9, 1.1))
    return campuses, fac, students, staff


# --- calendar -----------------------------------------------------------------------------------------------

# Vacation starts and the earliest first Monday of each term, per school type (month, day).
_TERMS = {
    "university": {"winter": (1, 15), "spring": (2, 23), "summer": (7, 10), "autumn": (9, 1)},
    "vocational": {"winter": (1, 18), "spring": (2, 20), "summer": (7, 6), "autumn": (9, 1)},
    "k12": {"winter": (1, 22), "spring": (2, 16), "summer": (7, 1), "autumn": (9, 1)},
}
# Public holidays at APPROXIMATE FIXED dates (month, day, days): the real Qingming, Dragon Boat and Mid-Autumn
# dates follow the lunar calendar and the official make-up workdays move every year; for a demo the fixed
# dates below are close enough. The Spring Festival falls inside the winter vacation and is not marked.
_HOLIDAYS = [(1, 1, 1), (4, 4, 3), (5, 1, 5), (6, 10, 3), (9, 15, 3), (10, 1, 7)]
_EXAM_DAYS = 14  # the last two weeks before each vacation are exams

# Day kinds driving activity: term (or exam) workday, term weekend, vacation weekday, vacation weekend, holiday.
TW, TE, VW, VE, HO = range(5)


def _first_monday(y: int, md: tuple[int, int]) -> dt.date:
    d = dt.date(y, *md)
    return d + dt.timedelta(days=(7 - d.weekday()) % 7)


def _school_calendar(spec: SchoolSpec, start: dt.date, end: dt.date, default_vacations) -> pd.DataFrame:
    """date, day_type, teaching_week (Int64), kind: one row per day from start to end.

    Weekends keep the day type of their period (term / exam / vacation): consumers tell weekends by the weekday.
    A school without calendar rows (SH-V02) gets the config's default calendar here, used only to drive its data.
    """
    days = pd.date_range(start, end, freq="D")
    dates = days.date
    n = len(days)
    weekend = days.day_of_week.to_numpy() >= 5
    day_type = np.full(n, "vacation", dtype=object)
    week = np.full(n, -1, dtype=np.int64)
    d0 = days.values.astype("datetime64[D]")

    def span(a: dt.date, b: dt.date) -> np.ndarray:  # inclusive
        return (d0 >= _d64(a)) & (d0 <= _d64(b))

    if spec.calendar:
        rule = _TERMS[spec.school_type]
        for y in range(start.year - 1, end.year + 1):
            # Autumn term of y runs to the winter vacation of y+1; spring term of y+1 to its summer vacation.
            terms = [(_first_monday(y, rule["autumn"]), dt.date(y + 1, *rule["winter"])),
                     (_first_monday(y + 1, rule["spring"]), dt.date(y + 1, *rule["summer"]))]
            for first, vac in terms:
                m = span(first, vac - dt.timedelta(days=1))
                day_type[m] = "term"
                week[m] = (d0[m] - _d64(first)).astype(int) // 7 + 1
                day_type[span(vac - dt.timedelta(days=_EXAM_DAYS), vac - dt.timedelta(days=1))] = "exam"
        years = range(start.year, end.year + 1)
        for y in years:
            for month, day, length in _HOLIDAYS:
                first = dt.date(y, month, day)
                m = span(first, first + dt.timedelta(days=length - 1))
                day_type[m] = "holiday"
                week[m] = -1
        kind = np.where(day_type == "holiday", HO,
                        np.where(day_type == "vacation", np.where(weekend, VE, VW), np.where(weekend, TE, TW)))
    else:
        # The config's default vacations (data_access/calendar.py): the listed ranges vacations, other days term;
        # weekends keep their period's day type, as in the schools' own calendars. (Its fixed-date holidays are
        # not modelled here: this school's data treat them as ordinary days.)
        md = np.array([f"{d.month:02d}-{d.day:02d}" for d in dates])
        vac = np.zeros(n, dtype=bool)
        for r in default_vacations:
            a, b = str(r["from"]), str(r["to"])
            vac |= (md >= a) & (md <= b) if a <= b else ((md >= a) | (md <= b))
        day_type[:] = "term"
        day_type[vac] = "vacation"
        kind = np.where(vac, np.where(weekend, VE, VW), np.where(weekend, TE, TW))
    tw = pd.array(np.where(week > 0, week, 0), dtype="Int64")
    tw[week <= 0] = pd.NA
    return pd.DataFrame({"date": days, "day_type": day_type, "teaching_week": tw, "kind": kind})


# --- climate ------------------------------------------------------------------------------------------------

def _temperature(seed: int, region: str, start: dt.date, n_days: int) -> np.ndarray:
    """Daily mean outdoor temperature (°C): a seasonal cosine plus smoothed weather noise."""
    rng = _rng(seed, "weather", region)
    doy = (np.arange(n_days) + start.timetuple().tm_yday - 1) % 365
    mean, amp = (16.8, 11.5) if region == "310000" else (12.8, 15.5)
    noise = np.convolve(rng.normal(0, 2.6, n_days + 6), np.ones(7) / 7 * 1.8, mode="valid")[:n_days]
    return mean + amp * np.cos(2 * np.pi * (doy - 200) / 365.0) + noise


# --- energy -------------------------------------------------------------------------------------------------

_ELEC_OCC = {  # occupancy-driven share of a building's electricity, per hour, on a workday
    "TEA": _shape({0: .02, 6: .02, 7: .3, 8: .9, 11: 1, 12: .6, 13: .95, 16: 1, 17: .7, 18: .5, 19: .6, 21: .5,
                   22: .15, 23: .03}),
    "OFF": _shape({0: .02, 7: .05, 8: .7, 9: 1, 11: 1, 12: .6, 13: .95, 17: .9, 18: .35, 19: .15, 21: .05,
                   23: .02}),
    "LAB": _shape({0: .08, 7: .12, 8: .7, 10: 1, 12: .8, 14: 1, 17: .9, 19: .6, 22: .3, 23: .12}),
    "LIB": _shape({0: .02, 7: .1, 8: .8, 10: 1, 12: .85, 14: 1, 17: .85, 19: 1, 21: .8, 22: .2, 23: .03}),
    "DOR": _shape({0: .45, 2: .3, 5: .3, 6: .6, 7: .9, 8: .55, 9: .3, 12: .45, 14: .3, 17: .45, 19: .75, 21: 1,
                   23: .8}),
    "CAN": _shape({0: .03, 4: .03, 5: .5, 6: .9, 7: .8, 8: .4, 9: .35, 10: .8, 11: 1, 12: .9, 13: .45, 14: .3,
                   16: .7, 17: 1, 18: .8, 19: .4, 20: .2, 21: .05}),
    "SPO": _shape({0: .02, 7: .1, 8: .5, 11: .6, 12: .4, 14: .6, 16: .8, 18: 1, 20: 1, 21: .6, 22: .1, 23: .02}),
}
_DORM_OFFDAY = _shape({0: .5, 3: .3, 7: .35, 9: .6, 12: .7, 15: .6, 18: .8, 21: 1, 23: .8})
_WATER_OCC = {
    "DOR": _shape({0: .25, 1: .06, 2: .005, 5: .005, 6: .5, 7: 1, 8: .6, 9: .25, 12: .35, 14: .2, 17: .3, 19: .5,
                   21: .9, 22: 1, 23: .6}),
    "CAN": _shape({0: .005, 4: .005, 5: .6, 7: .7, 9: .6, 11: 1, 13: .8, 14: .4, 16: .8, 18: 1, 19: .6, 20: .3,
                   21: .05}),
}
_WATER_DEFAULT = _shape({0: .005, 6: .005, 7: .2, 8: .8, 10: 1, 12: .9, 14: .9, 17: .7, 18: .3, 20: .15,
                         22: .02})
_GAS_OCC = _shape({0: 0, 4: 0, 5: .7, 6: 1, 7: .5, 8: .1, 9: .4, 10: 1, 11: .9, 12: .3, 13: .05, 15: .4, 16: 1,
                   17: .8, 18: .2, 19: .05, 21: 0})
_HEAT_SHAPE = _shape({0: .92, 5: 1.0, 7: 1.1, 12: .95, 18: 1.0, 23: .92})

# Activity per day kind (TW, TE, VW, VE, HO); canteens follow their covers instead.
_ACTIVITY = {
    "TEA": (1, .3, .15, .08, .06), "OFF": (1, .15, .55, .08, .06), "LAB": (1, .5, .4, .25, .2),
    "LIB": (1, .7, .2, .1, .1), "DOR": (1, 1.05, .22, .2, .6), "SPO": (1, 1.1, .3, .25, .4),
}
_ACTIVITY_DAY_SCHOOL = {"TEA": (1, .08, .12, .05, .05), "LIB": (1, .05, .1, .05, .05), "SPO": (1, .2, .15, .1, .1),
                        "OFF": (1, .1, .5, .05, .05)}
# Mean share of the year per day kind, to turn annual intensities into hourly magnitudes.
_KIND_SHARE = np.array([.52, .2, .14, .06, .08])

_BASE_LOAD = {"TEA": .16, "OFF": .15, "LAB": .35, "LIB": .15, "DOR": .10, "CAN": .22, "SPO": .12}
_COOL = {"TEA": .55, "OFF": .6, "LAB": .4, "LIB": .6, "DOR": .55, "CAN": .3, "SPO": .3}
_ELEC_KWH_M2 = {"TEA": 85, "OFF": 110, "LAB": 160, "LIB": 95, "DOR": 80, "CAN": 250, "SPO": 60}   # per m²·year
_WATER_M3_M2 = {"TEA": .45, "OFF": .6, "LAB": .8, "LIB": .3, "DOR": 3.2, "CAN": 4.5, "SPO": 1.0}
_GAS_M3_PER_COVER = 0.11
_HEAT_GJ_M2_SEASON = 0.15   # Beijing district heating, per m² and heating season (Nov 15 - Mar 15)
_SUB_METERS = [("LS", "lighting_socket", .34), ("HV", "hvac", .28), ("PW", "power", .17), ("SP", "special", .11)]


def _meters(spec: SchoolSpec, fac: pd.DataFrame) -> pd.DataFrame:
    rows = []
    no_meter = INCIDENTS["meter_coverage_gap"]["facility_id"]
    for f in fac.itertuples():
        base = f.facility_id
        if base != no_meter:
            rows.append((f"{base}-EL", base, "electricity", None, None, f.code))
            if spec.school_type == "university" and f.code == "TEA":
                for suffix, end_use, _ in _SUB_METERS:
                    rows.append((f"{base}-EL-{suffix}", base, "electricity", end_use, f"{base}-EL", f.code))
        rows.append((f"{base}-WA", base, "water", None, None, f.code))
        if f.code == "CAN":
            rows.append((f"{base}-GA", base, "gas", None, None, f.code))
        if spec.beijing:
            rows.append((f"{base}-HT", base, "heat", None, None, f.code))
    m = pd.DataFrame(rows, columns=["meter_id", "facility_id", "energy_type", "end_use", "parent_meter_id", "code"])
    m["school_id"] = spec.school_id
    return m


def _spike_days(school_id: str) -> list[dict]:
    """The planted spikes of a school (energy_spike, energy_spikes_repeated): meter_id, days_before_end, hours,
    factor."""
    one, more = INCIDENTS["energy_spike"], INCIDENTS["energy_spikes_repeated"]
    out = []
    if one["school"] == school_id:
        out.append({k: one[k] for k in ("meter_id", "days_before_end", "hours", "factor")})
    if more["school"] == school_id:
        out.extend({"meter_id": meter, "days_before_end": days, "hours": more["hours"], "factor": more["factor"]}
                   for meter, days in more["spikes"].items())
    return out


def _energy(spec: SchoolSpec, seed: int, fac: pd.DataFrame, meters: pd.DataFrame, cal: pd.DataFrame,
            canteen_activity: dict[str, np.ndarray], canteen_covers: dict[str, np.ndarray], temp: np.ndarray,
            start: dt.date, end: dt.date) -> pd.DataFrame:
    """Hourly readings of the school's meters as one long frame (meter_id, ts, consumption)."""
    rng = _rng(seed, spec.index, "energy")
    n_days = len(cal)
    kind = cal["kind"].to_numpy()
    offday = kind != TW
    fac_by_id = fac.set_index("facility_id")
    shanghai = not spec.beijing
    cdd = np.clip(temp - 22.0, 0, None) / 6.0
    hdd = np.clip(12.0 - temp, 0, None) / 7.0 if shanghai else np.clip(5.0 - temp, 0, None) / 25.0
    school_scale = rng.uniform(0.9, 1.1)
    base_mult = 2.3 if spec.school_id == "BJ-V01" else rng.uniform(0.8, 1.2)   # BJ-V01: high night base load
    day_noise_sd, hour_noise_sd = 0.045, 0.06
    # Year-on-year drift: a ramp over the data; the quota school uses clearly more this year.
    trend = 0.07 if spec.school_id == INCIDENTS["quota_overrun"]["school"] else rng.uniform(-0.04, 0.03)
    ramp = np.clip(1.0 + trend * (np.arange(n_days) - (n_days - 1)) / 365.0, 0.5, None)

    day_index = pd.DatetimeIndex(cal["date"])
    md = day_index.month.to_numpy() * 100 + day_index.day.to_numpy()
    heating = (md >= 1115) | (md <= 315)

    top = meters.loc[meters.parent_meter_id.isna()].reset_index(drop=True)
    n_m = len(top)
    values = np.empty((n_m, n_days, 24))
    for i, m in enumerate(top.itertuples()):   # one vectorised (days x hours) block per meter
        f = fac_by_id.loc[m.facility_id]
        code = m.code
        area = f.floor_area_m2
        if code == "CAN":
            act = canteen_activity.get(m.facility_id, np.zeros(n_days))
            ref_act = 0.75   # a canteen's mean activity over a year (covers / term-workday covers)
        else:
            table = _ACTIVITY_DAY_SCHOOL if (not spec.boarding and code in _ACTIVITY_DAY_SCHOOL) else _ACTIVITY
            act = np.asarray(table[code])[kind]
            ref_act = float((_KIND_SHARE * np.asarray(_ACTIVITY[code])).sum())
        if m.energy_type == "electricity":
            occ = np.where(offday[:, None] & (code == "DOR"), _DORM_OFFDAY[None, :], _ELEC_OCC[code][None, :])
            base = min(_BASE_LOAD[code] * base_mult, 0.6)
            heat_coef = 0.45 if shanghai else 0.1
            climate = 1.0 + _COOL[code] * cdd + heat_coef * hdd
            raw = base + (1 - base) * act[:, None] * occ * climate[:, None]
            # Magnitude: annual kWh = intensity x area (Beijing buildings use less electricity: district heating).
            ref = base + (1 - base) * ref_act * _ELEC_OCC[code].mean() * 1.18
            target = _ELEC_KWH_M2[code] * area / 8760.0 * (0.85 if spec.beijing else 1.0) * school_scale
            raw = raw * (target / ref)
        elif m.energy_type == "water":
            occ = (_WATER_OCC.get(code, _WATER_DEFAULT))[None, :]
            wb = 0.008
            raw = act[:, None] * (wb + (1 - wb) * occ) * (1 + 0.15 * cdd)[:, None]
            ref = ref_act * (wb + (1 - wb) * _WATER_OCC.get(code, _WATER_DEFAULT).mean())
            raw = raw * (_WATER_M3_M2[code] * area / 8760.0 * school_scale / ref)
        elif m.energy_type == "gas":
            covers = canteen_covers.get(m.facility_id, np.zeros(n_days))
            shape = (0.01 + _GAS_OCC) / (0.01 + _GAS_OCC).sum()
            raw = (covers * _GAS_M3_PER_COVER)[:, None] * shape[None, :]
        else:  # heat
            weight = np.where(heating, np.clip(18.0 - temp, 2.0, None), 0.0)
            per_day = _HEAT_GJ_M2_SEASON * area / (121 * 11.5)  # 11.5: mean (18 - T) over a Beijing season
            raw = (weight * per_day)[:, None] * (_HEAT_SHAPE / _HEAT_SHAPE.sum())[None, :]
        values[i] = raw
    noise = np.exp(rng.normal(0, day_noise_sd, (n_m, n_days, 1)) + rng.normal(0, hour_noise_sd, (n_m, n_days, 24)))
    values *= noise
    values *= ramp[None, :, None]

    # Sub-meters: about 90 % of their parent, hour by hour.
    subs = meters.loc[meters.parent_meter_id.notna()].reset_index(drop=True)
    parent_pos = pd.Index(top.meter_id).get_indexer(subs.parent_meter_id)
    share = np.array([dict((e, s) for _, e, s in _SUB_METERS)[u] for u in subs.end_use])
    sub_values = values[parent_pos] * share[:, None, None] * np.exp(rng.normal(0, 0.03, (len(subs), n_days, 24)))

    ids = np.concatenate([top.meter_id.to_numpy(dtype=object), subs.meter_id.to_numpy(dtype=object)])
    all_values = np.concatenate([values, sub_values]) if len(subs) else values

    # Incidents on the hourly array (days counted back from the end).
    for spike in _spike_days(spec.school_id):
        day = n_days - 1 - spike["days_before_end"]
        pos = np.flatnonzero(ids == spike["meter_id"])
        if day >= 0 and len(pos):
            lo, hi = spike["hours"]
            # 4x the normal of those hours: the mean of the previous 8 same weekdays (or the day itself when it is
            # higher), so that the day stands out against its baseline even next to a vacation.
            prev = [day - 7 * k for k in range(1, 9) if day - 7 * k >= 0]
            normal = all_values[pos[0], day, lo:hi + 1]
            if prev:
                normal = np.maximum(normal, all_values[pos[0], prev, lo:hi + 1].mean(axis=0))
            all_values[pos[0], day, lo:hi + 1] = spike["factor"] * normal
    leak = INCIDENTS["water_leak"]
    if spec.school_id == leak["school"]:
        pos = np.flatnonzero(ids == leak["meter_id"])
        first = max(0, n_days - 1 - leak["start_days_before_end"])
        if len(pos) and n_days - 1 - leak["start_days_before_end"] >= 0:
            normal_mean = all_values[pos[0], :first].mean() if first > 0 else all_values[pos[0]].mean()
            all_values[pos[0], first:, :] += leak["share_of_mean"] * normal_mean

    all_values = np.round(np.clip(all_values, 0, None), 4)
    n_all = len(ids)
    hours = (np.arange(n_days * 24, dtype="timedelta64[h]") + np.datetime64(start.isoformat(), "h"))
    keep_day = np.ones(n_days, dtype=bool)
    for gap in (INCIDENTS["meter_gap"], INCIDENTS["meter_outage"]):
        if spec.school_id == gap["school"]:
            for k in range(gap.get("days", 1)):   # days_before_end and the days before it
                if n_days - 1 - gap["days_before_end"] - k >= 0:
                    keep_day[n_days - 1 - gap["days_before_end"] - k] = False
    keep_hours = np.repeat(keep_day, 24)
    hours = hours[keep_hours]
    flat = all_values.reshape(n_all, n_days * 24)[:, keep_hours]
    return pd.DataFrame({
        "meter_id": np.repeat(ids, len(hours)),
        "ts": np.tile(hours.astype("datetime64[us]"), n_all),
        "consumption": flat.ravel(),
    })


# --- dining -------------------------------------------------------------------------------------------------

_MEALS = ["breakfast", "lunch", "dinner"]
# Covers per seat and meal on a term workday.
_TURNS = {"university": (0.9, 1.9, 1.3), "vocational": (1.0, 1.8, 1.4), "k12_day": (0.0, 2.4, 0.0),
          "k12_boarding": (1.9, 2.1, 1.9)}
_CHECK_FAIL = {"sample_retention": .003, "tableware_disinfection": .005, "accompany_meal": .005,
               "morning_check": .005, "pesticide_test": .02, "supplier_docs": .005, "self_check": .002,
               "video_online": .03}
_HAZARD_CATEGORIES = ["原料贮存", "加工操作卫生", "设施设备维护", "从业人员健康", "虫害防治", "餐用具清洗消毒",
                      "留样管理", "温度控制", "索证索票", "环境卫生"]
_MEAL_WINDOWS = {"breakfast": (6 * 6 + 3, 12), "lunch": (10 * 6 + 4, 14), "dinner": (16 * 6 + 4, 14)}  # slot, n


def _canteen_service(spec: SchoolSpec, canteens: pd.DataFrame, cal: pd.DataFrame, seed: int):
    """Meals served (with zero-cover rows where that canteen writes them), and per canteen and day its activity
    (covers / term-workday covers) and total covers."""
    rng = _rng(seed, spec.index, "meals")
    kind = cal["kind"].to_numpy()
    n_days = len(cal)
    if spec.school_type == "k12":
        turns = _TURNS["k12_boarding" if spec.boarding else "k12_day"]
    else:
        turns = _TURNS[spec.school_type]
    menu = [m for m, t in zip(_MEALS, turns) if t > 0]
    frames, activity, daily_covers = [], {}, {}
    for j, c in enumerate(canteens.itertuples()):
        second = not c.facility_id.endswith("CAN1")
        # Day factor by day kind (TW, TE, VW, VE, HO); 0 = closed.
        if spec.school_type == "university":
            factor = np.array([1, .65, 0, 0, .3] if second else [1, .65, .2, .18, .4])
        elif spec.school_type == "vocational":
            factor = np.array([1, .5, 0, 0, 0]) if spec.boarding else np.array([1, 0, 0, 0, 0])
        else:
            factor = np.array([1, .55, 0, 0, 0]) if spec.boarding else np.array([1, 0, 0, 0, 0])
        day_f = factor[kind] * np.exp(rng.normal(0, 0.05, n_days))
        typical = np.array([c.capacity * t for m, t in zip(_MEALS, turns) if t > 0])
        covers = np.round(day_f[:, None] * typical[None, :] * np.exp(rng.normal(0, 0.06, (n_days, len(menu)))))
        covers = covers.astype(np.int64)
        # Half of the canteens write a covers-0 row for each meal they did not serve; the others write nothing.
        writes_zero = (spec.index + j) % 2 == 0
        keep = (covers > 0) | writes_zero
        dd, mm = np.nonzero(keep)
        frames.append(pd.DataFrame({"facility_id": c.facility_id, "service_date": cal["date"].to_numpy()[dd],
                                    "meal": np.asarray(menu, dtype=object)[mm], "covers": covers[dd, mm]}))
        total = covers.sum(axis=1)
        activity[c.facility_id] = total / typical.sum()
        daily_covers[c.facility_id] = total.astype(float)
    meals = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["facility_id", "service_date", "meal", "covers"])
    return meals, activity, daily_covers


def _dining_checks(spec: SchoolSpec, canteens: pd.DataFrame, meals: pd.DataFrame, staff_counts: dict,
                   seed: int, end: dt.date) -> pd.DataFrame:
    rng = _rng(seed, spec.index, "checks")
    served = meals.loc[meals.covers > 0].reset_index(drop=True)
    if served.empty:
        return pd.DataFrame(columns=["facility_id", "check_date", "meal", "check_type", "items_due", "items_ok"])
    per_meal = ["sample_retention", "tableware_disinfection"]
    if spec.school_type == "k12":
        per_meal.append("accompany_meal")
    parts = []
    dishes_base = {c: rng.integers(10, 17) for c in canteens.facility_id}
    for ct in per_meal:
        n = len(served)
        if ct == "sample_retention":
            base = served.facility_id.map(dishes_base).to_numpy()
            due = base - np.where(served.meal == "breakfast", 4, 0) + rng.integers(-1, 3, n)
            due = np.clip(due, 8, 20)
        elif ct == "tableware_disinfection":
            due = np.clip(np.ceil(served.covers.to_numpy() / 450.0) + rng.integers(0, 2, n), 1, 10)
        else:
            due = np.ones(n, dtype=np.int64)
        parts.append(pd.DataFrame({"facility_id": served.facility_id, "check_date": served.service_date,
                                   "meal": served.meal, "check_type": ct, "items_due": due.astype(np.int64)}))
    days = served[["facility_id", "service_date"]].drop_duplicates().reset_index(drop=True)
    n = len(days)
    cameras = {c: rng.integers(8, 17) for c in canteens.facility_id}
    for ct in ["morning_check", "pesticide_test", "supplier_docs", "self_check", "video_online"]:
        if ct == "morning_check":
            staff = days.facility_id.map(staff_counts).to_numpy()
            due = np.maximum(1, np.round(staff * rng.uniform(0.8, 0.95, n)))
        elif ct == "pesticide_test":
            due = rng.integers(5, 16, n)
        elif ct == "supplier_docs":
            due = rng.integers(8, 26, n)
        elif ct == "self_check":
            due = np.ones(n)
        else:
            due = days.facility_id.map(cameras).to_numpy()
        parts.append(pd.DataFrame({"facility_id": days.facility_id, "check_date": days.service_date, "meal": "day",
                                   "check_type": ct, "items_due": np.asarray(due, dtype=np.int64)}))
    checks = pd.concat(parts, ignore_index=True)
    p = checks.check_type.map(_CHECK_FAIL).to_numpy()
    due = checks.items_due.to_numpy()
    fail = rng.random(len(checks)) < p
    short = np.minimum(due, np.where(rng.random(len(checks)) < 0.8, 1, 2))
    checks["items_ok"] = np.where(fail, due - short, due).astype(np.int64)

    inc = INCIDENTS["sample_retention_missed"]
    if spec.school_id == inc["school"]:
        sr = checks.loc[(checks.facility_id == inc["facility_id"]) & (checks.check_type == "sample_retention")]
        window = sr.loc[sr.check_date > pd.Timestamp(end - dt.timedelta(days=30))]
        need = inc["missing_rows"] + inc["short_rows"]
        pool = window if len(window) >= need else sr.sort_values("check_date").tail(need)
        picks = rng.permutation(pool.index.to_numpy())[:need]
        missing, shorted = picks[:inc["missing_rows"]], picks[inc["missing_rows"]:]
        checks.loc[shorted, "items_ok"] = checks.loc[shorted, "items_due"] - rng.integers(2, 4, len(shorted))
        checks.loc[shorted, "items_ok"] = checks.loc[shorted, "items_ok"].clip(lower=0)
        checks = checks.drop(index=missing)
    checks = checks.sort_values(["facility_id", "check_date", "meal", "check_type"]).reset_index(drop=True)
    return checks[["facility_id", "check_date", "meal", "check_type", "items_due", "items_ok"]]


def _cold_chain(spec: SchoolSpec, canteens: pd.DataFrame, meals: pd.DataFrame, seed: int, start: dt.date,
                n_days: int) -> pd.DataFrame:
    rng = _rng(seed, spec.index, "cold")
    slots = n_days * 144
    t0 = np.datetime64(start.isoformat(), "m")
    ts_all = t0 + np.arange(slots, dtype="timedelta64[m]") * 10
    frames = []
    prep = np.repeat(_ELEC_OCC["CAN"], 6)  # door openings follow kitchen activity
    incidents = [v for k, v in INCIDENTS.items() if k.startswith("cold_chain_") and "readings" in v]
    for c in canteens.itertuples():
        own = meals.loc[(meals.facility_id == c.facility_id) & (meals.covers > 0)]
        served_days = own.service_date.unique()
        served = np.zeros(n_days, dtype=bool)
        if len(served_days):
            pos = (np.asarray(served_days, dtype="datetime64[D]") - np.datetime64(start.isoformat(), "D")).astype(int)
            served[pos[(pos >= 0) & (pos < n_days)]] = True
        activity = np.repeat(served, 144) * np.tile(prep, n_days)
        for suffix, zone in (("T1", "chilled"), ("T2", "frozen")):
            hourly = np.repeat(rng.normal(0, 0.75 if zone == "chilled" else 0.9, n_days * 24), 6)
            white = rng.normal(0, 0.3, slots)
            if zone == "chilled":
                temp = np.clip(3.0 + hourly + white + 1.2 * activity, 0.4, 7.4)
            else:
                defrost = np.isin(np.arange(slots) % 144, (12, 13, 60, 61, 108, 109))
                temp = np.clip(-18.0 + hourly + white + 2.8 * defrost + 0.8 * activity, -23.5, -14.5)
            device = f"{c.facility_id}-{suffix}"
            for inc in incidents:
                if inc["device_id"] != device:
                    continue
                day = n_days - 1 - inc["days_before_end"]
                if day < 0:
                    continue
                for at in inc.get("starts") or (inc["start"],):
                    hh, mi = map(int, at.split(":"))
                    first = day * 144 + hh * 6 + mi // 10
                    lo, hi = inc["temp_c"]
                    temp[first:first + inc["readings"]] = np.linspace(lo + 0.2, hi - 0.2, inc["readings"])[
                        rng.permutation(inc["readings"])]
            keep = np.ones(slots, dtype=bool)
            off = INCIDENTS["cold_chain_device_offline"]
            if device == off["device_id"]:
                keep[max(0, slots - off["days"] * 144):] = False
            frames.append(pd.DataFrame({"device_id": device, "ts": ts_all[keep], "facility_id": c.facility_id,
                                        "zone": zone, "temp_c": np.round(temp[keep], 1)}))
        # Hot holding: only during the service windows of meals actually served.
        if len(own):
            dpos = (own.service_date.values.astype("datetime64[D]") - np.datetime64(start.isoformat(), "D")).astype(int)
            first_slot = own.meal.map(lambda m: _MEAL_WINDOWS[m][0]).to_numpy()
            count = own.meal.map(lambda m: _MEAL_WINDOWS[m][1]).to_numpy()
            reps = np.repeat(np.arange(len(own)), count)
            within = np.arange(len(reps)) - np.repeat(np.cumsum(count) - count, count)
            slot = dpos[reps] * 144 + first_slot[reps] + within
            temp = np.clip(68.0 + rng.normal(0, 2.4, len(slot)) - 2.0 * (within == 0), 61.0, 79.0)
            frames.append(pd.DataFrame({"device_id": f"{c.facility_id}-T3", "ts": ts_all[slot],
                                        "facility_id": c.facility_id, "zone": "hot_holding",
                                        "temp_c": np.round(temp, 1)}))
    if not frames:
        return pd.DataFrame(columns=["device_id", "ts", "facility_id", "zone", "temp_c"])
    out = pd.concat(frames, ignore_index=True)
    out["ts"] = out["ts"].astype("datetime64[us]")
    return out


def _hazards(spec: SchoolSpec, canteens: pd.DataFrame, seed: int, start: dt.date, end: dt.date) -> pd.DataFrame:
    rng = _rng(seed, spec.index, "hazards")
    n_days = (end - start).days + 1
    rows = []
    for c in canteens.itertuples():
        k = rng.poisson(n_days / 32.0)
        found = np.sort(rng.integers(0, n_days, k))
        for f in found:
            sev = rng.choice(["low", "medium", "high"], p=[.6, .32, .08])
            found_on = start + dt.timedelta(days=int(f))
            due_on = found_on + dt.timedelta(days={"low": 15, "medium": 7, "high": 3}[sev])
            u = rng.random()
            if u < 0.96:   # on time
                closed = found_on + dt.timedelta(days=int(rng.integers(0, (due_on - found_on).days + 1)))
            else:          # late
                closed = due_on + dt.timedelta(days=int(rng.integers(1, 11)))
            if closed > end:
                # Not closed yet: leave it open only while it is not overdue (overdue ones are planted).
                closed = None if due_on > end else due_on + dt.timedelta(days=int(rng.integers(
                    1, max(2, (end - due_on).days + 1))))
                if closed is not None and closed > end:
                    closed = end
            rows.append([c.facility_id, found_on, rng.choice(["self_check", "inspection", "complaint", "iot"],
                                                            p=[.5, .25, .1, .15]),
                         sev, rng.choice(_HAZARD_CATEGORIES), due_on, closed])
    planted = [INCIDENTS["hazard_overdue_high"], INCIDENTS["hazard_closed_on_due_date"]]
    for p in planted:
        if p["school"] == spec.school_id and p["facility_id"] in set(canteens.facility_id):
            found_on = end - dt.timedelta(days=p["found_days_before_end"])
            due_on = end - dt.timedelta(days=p["due_days_before_end"])
            closed = due_on if p is INCIDENTS["hazard_closed_on_due_date"] else None
            if found_on >= start:
                rows.append([p["facility_id"], found_on, "inspection", p.get("severity", "medium"), "温度控制",
                             due_on, closed, p["hazard_id"]])
    for hid, (fid, found_days, due_days) in INCIDENTS["hazard_overdue_medium"]["hazards"].items():
        if fid in set(canteens.facility_id) and end - dt.timedelta(days=found_days) >= start:
            rows.append([fid, end - dt.timedelta(days=found_days), "self_check", "medium", "原料贮存",
                         end - dt.timedelta(days=due_days), None, hid])
    exc = INCIDENTS["cold_chain_excursion"]
    if spec.school_id == exc["school"] and end - dt.timedelta(days=exc["days_before_end"]) >= start:
        fid = exc["device_id"].rsplit("-", 1)[0]
        found_on = end - dt.timedelta(days=exc["days_before_end"])
        rows.append([fid, found_on, "iot", "medium", "温度控制", found_on + dt.timedelta(days=7), None,
                     f"HZ-{spec.school_id}-9002"])
    if not rows:
        return pd.DataFrame(columns=["hazard_id", "facility_id", "found_on", "source", "severity", "category",
                                     "due_on", "closed_on"])
    seq = 0
    for r in rows:
        if len(r) == 7:
            seq += 1
            r.append(f"HZ-{spec.school_id}-{seq:04d}")
    df = pd.DataFrame(rows, columns=["facility_id", "found_on", "source", "severity", "category", "due_on",
                                     "closed_on", "hazard_id"])
    for col in ("found_on", "due_on", "closed_on"):
        df[col] = pd.to_datetime(df[col])
    return df


def _inspections(spec: SchoolSpec, canteens: pd.DataFrame, seed: int, start: dt.date, end: dt.date):
    rng = _rng(seed, spec.index, "inspections")
    rows = []
    n_days = (end - start).days + 1
    for c in canteens.itertuples():
        day = int(rng.integers(0, min(60, n_days)))
        while day < n_days:
            result = rng.choice(["pass", "basic_pass", "fail"], p=[.8, .17, .03])
            grade = {"pass": rng.choice(["A", "B"], p=[.8, .2]), "basic_pass": "B", "fail": "C"}[result]
            if rng.random() < 0.1:
                grade = None
            rows.append((c.facility_id, start + dt.timedelta(days=day), result, grade))
            day += int(rng.integers(75, 115))
    if spec.school_id == "SH-K01" and rows:  # its latest inspection found shortcomings (see the retention gaps)
        last = max(range(len(rows)), key=lambda i: rows[i][1])
        rows[last] = (rows[last][0], rows[last][1], "basic_pass", "B")
    df = pd.DataFrame(rows, columns=["facility_id", "inspected_on", "result", "grade"])
    df["inspected_on"] = pd.to_datetime(df["inspected_on"])
    return df


def _certificates(spec: SchoolSpec, canteens: pd.DataFrame, seed: int, end: dt.date):
    rng = _rng(seed, spec.index, "certificates")
    rows, counts = [], {}
    k = 0
    for c in canteens.itertuples():
        staff = int(np.clip(round(c.capacity / 28), 12, 60))
        counts[c.facility_id] = staff
        for _ in range(staff):
            k += 1
            valid = end + dt.timedelta(days=int(rng.integers(31, 366)))
            rows.append((c.facility_id, f"{spec.school_id}-H{k:04d}", valid))
    inc = INCIDENTS["certificates_expired"]
    if spec.school_id == inc["school"]:
        for ref, days in zip(inc["staff_refs"], inc["valid_until_days_before_end"]):
            rows.append((inc["facility_id"], ref, end - dt.timedelta(days=days)))
    for ref, (fid, days) in INCIDENTS["certificates_expiring"]["refs"].items():
        if fid in set(canteens.facility_id):
            rows.append((fid, ref, end + dt.timedelta(days=days)))
    df = pd.DataFrame(rows, columns=["facility_id", "staff_ref", "valid_until"])
    df["valid_until"] = pd.to_datetime(df["valid_until"])
    return df, counts


# --- service ------------------------------------------------------------------------------------------------

_LINES = ["dining", "dormitory", "property", "repair", "energy", "transport", "parcel", "commerce", "venue", "other"]
_LINE_WEIGHTS = np.array([.26, .17, .15, .15, .04, .05, .06, .04, .05, .03])
_SCORE_P = np.array([.01, .02, .06, .33, .58])
_SCORE_P_POOR = np.array([.10, .17, .28, .30, .15])
_RATING_P = np.array([.005, .01, .03, .25, .705])
_RATING_P_POOR = np.array([.08, .15, .30, .30, .17])
_SURVEY_KIND = np.array([1.0, .5, .2, .15, .2])
_ORDER_KIND = np.array([1.0, .5, .4, .3, .3])


def _pick(rng, options: np.ndarray, n: int) -> np.ndarray:
    """n random entries of options (None when there are no options)."""
    if len(options) == 0:
        return np.full(n, None, dtype=object)
    return options[rng.integers(0, len(options), n)]


def _surveys(spec: SchoolSpec, fac: pd.DataFrame, cal: pd.DataFrame, people: int, seed: int, end: dt.date):
    rng = _rng(seed, spec.index, "survey")
    lam = people / 800.0 * _SURVEY_KIND[cal["kind"].to_numpy()]
    counts = rng.poisson(lam)
    n = int(counts.sum())
    dates = np.repeat(cal["date"].to_numpy(), counts)
    seq = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    weights = _LINE_WEIGHTS.copy()
    canteens = fac.loc[fac.facility_type == "canteen", "facility_id"].to_numpy(dtype=object)
    dorms = fac.loc[fac.facility_type == "dormitory", "facility_id"].to_numpy(dtype=object)
    if len(canteens) == 0:
        weights[0] = 0
    if len(dorms) == 0:
        weights[1] = 0
    weights /= weights.sum()
    line = np.asarray(_LINES, dtype=object)[rng.choice(len(_LINES), n, p=weights)]
    poor = spec.school_id == INCIDENTS["poor_repair_service"]["school"]
    if poor:
        p = _SCORE_P_POOR
    else:
        shift = rng.uniform(-0.08, 0.06)
        p = _SCORE_P + np.array([0, 0, 0, -shift, shift])
    score = rng.choice(5, n, p=p / p.sum()) + 1
    nps_raw = np.clip(np.round(2 * score - 0.4 + rng.normal(0, 1.0, n)), 0, 10).astype(np.int64)
    nps = pd.array(nps_raw, dtype="Int64")
    nps[rng.random(n) >= 0.6] = pd.NA
    facility = np.full(n, None, dtype=object)
    is_d = line == "dining"
    facility[is_d] = _pick(rng, canteens, int(is_d.sum()))
    is_r = line == "dormitory"
    facility[is_r] = _pick(rng, dorms, int(is_r.sum()))
    rtype = np.asarray(["student", "staff", "other"], dtype=object)[rng.choice(3, n, p=[.74, .2, .06])]
    ymd = pd.DatetimeIndex(dates).strftime("%y%m%d").to_numpy(dtype=object)
    ids = spec.school_id + "-R" + ymd + "-" + pd.Series(seq).astype(str).str.zfill(4).to_numpy(dtype=object)
    df = pd.DataFrame({"response_id": ids, "school_id": spec.school_id, "facility_id": facility,
                       "service_line": line, "submitted_on": dates, "respondent_type": rtype,
                       "score": score.astype(np.int64), "nps": nps})
    cell = INCIDENTS["small_survey_cell"]
    if spec.school_id == cell["school"]:
        recent = (df.service_line == cell["service_line"]) & (
            df.submitted_on > pd.Timestamp(end - dt.timedelta(days=cell["window_days"])))
        idx = df.index[recent].to_numpy()
        if len(idx) > cell["responses"]:
            drop = rng.permutation(idx)[: len(idx) - cell["responses"]]
            df = df.drop(index=drop).reset_index(drop=True)
    return df


def _work_orders(spec: SchoolSpec, fac: pd.DataFrame, cal: pd.DataFrame, people: int, seed: int, end: dt.date):
    rng = _rng(seed, spec.index, "orders")
    poor = spec.school_id == INCIDENTS["poor_repair_service"]["school"]
    lam = people / 1000.0 * _ORDER_KIND[cal["kind"].to_numpy()] * (1.3 if poor else 1.0)
    counts = rng.poisson(lam)
    n = int(counts.sum())
    dates = np.repeat(cal["date"].to_numpy(), counts)
    seq = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    kind = np.asarray(["repair", "request", "complaint"], dtype=object)[rng.choice(3, n, p=[.75, .15, .10])]
    line = np.empty(n, dtype=object)
    dist = {
        "repair": (["repair", "dormitory", "property", "energy", "venue"], [.5, .2, .15, .1, .05]),
        "complaint": (["dining", "property", "dormitory", "transport", "parcel", "commerce"],
                      [.4, .2, .15, .1, .05, .1]),
        "request": (["property", "venue", "transport", "parcel", "other"], [.3, .25, .15, .15, .15]),
    }
    canteens = fac.loc[fac.facility_type == "canteen", "facility_id"].to_numpy(dtype=object)
    dorms = fac.loc[fac.facility_type == "dormitory", "facility_id"].to_numpy(dtype=object)
    buildings = fac["facility_id"].to_numpy(dtype=object)
    for k, (lines, p) in dist.items():
        m = kind == k
        line[m] = np.asarray(lines, dtype=object)[rng.choice(len(lines), int(m.sum()), p=p)]
    if len(dorms) == 0:
        line[line == "dormitory"] = "property"
    if len(canteens) == 0:
        line[line == "dining"] = "other"
    facility = np.full(n, None, dtype=object)
    for ln, pool in (("dining", canteens), ("dormitory", dorms)):
        m = line == ln
        facility[m] = _pick(rng, pool, int(m.sum()))
    m = np.isin(line, ["repair", "property", "energy", "venue"]) & (rng.random(n) < 0.85)
    facility[m] = _pick(rng, buildings, int(m.sum()))
    urgent = rng.random(n) < 0.15
    priority = np.where(urgent, "urgent", "normal").astype(object)
    # Created mostly in working hours (08:00-18:00).
    work = rng.random(n) < 0.86
    hour = np.where(work, rng.integers(8, 18, n), rng.integers(0, 24, n))
    created = (dates.astype("datetime64[m]") + (hour * 60 + rng.integers(0, 60, n)).astype("timedelta64[m]"))
    if poor:
        resp_h = np.where(urgent, rng.lognormal(np.log(1.9), 0.8, n), rng.lognormal(np.log(14), 1.0, n))
        done_h = np.where(urgent, rng.lognormal(np.log(16), 0.8, n), rng.lognormal(np.log(50), 0.8, n))
    else:
        resp_h = np.where(urgent, rng.lognormal(np.log(0.5), 0.7, n), rng.lognormal(np.log(4), 0.9, n))
        done_h = np.where(urgent, rng.lognormal(np.log(5), 0.6, n), rng.lognormal(np.log(20), 0.7, n))
    done_h = np.maximum(done_h, resp_h + rng.uniform(0.2, 2.0, n))
    responded = created + np.round(resp_h * 60).astype("timedelta64[m]")
    completed = created + np.round(done_h * 60).astype("timedelta64[m]")
    as_of = np.datetime64((end + dt.timedelta(days=1)).isoformat(), "m")
    is_resp = responded < as_of
    is_done = completed < as_of
    if poor:  # several overdue open orders: created 4-13 days before end, still not completed
        k = INCIDENTS["poor_repair_service"]["overdue_open_orders"]
        window = np.flatnonzero((created >= as_of - np.timedelta64(14 * 1440, "m"))
                                & (created < as_of - np.timedelta64(4 * 1440, "m")))
        pick = rng.permutation(window)[:k]
        is_done[pick] = False
        is_resp[pick[: k // 3]] = False
    is_done &= is_resp
    callback = is_done & (rng.random(n) < (0.78 if poor else 0.97))
    rated = callback & (rng.random(n) < 0.93)
    rating = pd.array(rng.choice(5, n, p=_RATING_P_POOR if poor else _RATING_P) + 1, dtype="Int64")
    rating[~rated] = pd.NA
    reopened = is_done & (kind == "repair") & (rng.random(n) < (0.08 if poor else 0.03))
    ymd = pd.DatetimeIndex(dates).strftime("%y%m%d").to_numpy(dtype=object)
    ids = spec.school_id + "-W" + ymd + "-" + pd.Series(seq).astype(str).str.zfill(3).to_numpy(dtype=object)
    nat = np.datetime64("NaT", "m")
    return pd.DataFrame({
        "order_id": ids, "school_id": spec.school_id, "facility_id": facility, "kind": kind, "service_line": line,
        "priority": priority, "created_at": created.astype("datetime64[us]"),
        "responded_at": np.where(is_resp, responded, nat).astype("datetime64[us]"),
        "completed_at": np.where(is_done, completed, nat).astype("datetime64[us]"),
        "reopened": reopened, "callback_done": callback, "rating": rating,
    })


# --- maturity -----------------------------------------------------------------------------------------------

def assessed_indicators(path: Path | None = None) -> list[tuple[str, str]]:
    """(dimension id, indicator id) of every ``source: assessed`` indicator of the maturity framework."""
    path = path or get_config().maturity_framework
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [(d["id"], i["id"]) for d in doc.get("dimensions", []) for i in d.get("indicators", [])
            if i.get("source") == "assessed"]


_EVIDENCE = {
    "strategy.plan": "校发〔{y}〕{n}号 后勤数字化规划文件",
    "strategy.owner": "校发〔{y}〕{n}号 关于成立后勤数字化工作领导小组的通知",
    "strategy.budget": "{y}年度部门预算 专项编号 ZX-{y}-{n:03d}",
    "data.standards": "https://docs.example.edu.cn/{sid}/logistics/data-standard-v{v}",
    "apps.online_orders": "报修系统年度统计报表（{y}）",
    "apps.systems": "后勤业务系统清单（{y}年版）",
    "service.cockpit_reviews": "后勤处例会纪要 {y}年第{n}期",
}


def _maturity(specs: list[SchoolSpec], seed: int, start: dt.date, end: dt.date) -> pd.DataFrame:
    indicators = assessed_indicators()
    prof = INCIDENTS["maturity_profiles"]
    rows = []
    for spec in specs:
        rng = _rng(seed, spec.index, "maturity")
        level = {prof["low"]: 42.0, prof["high"]: 88.0, prof["strategy_floor"]: 84.0}.get(
            spec.school_id, rng.uniform(62.0, 72.0))
        for y in range(start.year, end.year + 1):
            year_level = level - 5.0 * (end.year - y)
            # each year's round a few days before the data's end date in that year: the latest round is always
            # known at the end, and last year's round at the same date a year earlier (year on year)
            last = end - dt.timedelta(days=3)
            on = dt.date(y, last.month, min(last.day, 28 if last.month == 2 else last.day))
            for k, (dim, ind) in enumerate(indicators):
                mean = 22.0 if (spec.school_id == prof["strategy_floor"] and dim == "strategy") else year_level
                score = float(np.clip(round(mean + rng.normal(0, 5.0)), 0, 100))
                n = int(rng.integers(3, 60))
                evidence = _EVIDENCE.get(ind, "评估材料 {y}-{n:03d}").format(y=y, n=n, sid=spec.school_id.lower(),
                                                                          v=f"{1 + (y % 3)}.{n % 10}")
                assessor = f"协会评估组{'AB'[spec.region_code == '110000']}"
                rows.append((spec.school_id, str(y), ind, score, evidence, assessor, on))
    df = pd.DataFrame(rows, columns=["school_id", "period", "indicator_id", "score", "evidence", "assessor",
                                     "assessed_on"])
    df["assessed_on"] = pd.to_datetime(df["assessed_on"])
    return df


# --- lineage ------------------------------------------------------------------------------------------------

SOURCE_SYSTEMS = {
    "dim_school": "academic-affairs", "dim_campus": "academic-affairs", "dim_facility": "academic-affairs",
    "fact_school_year": "academic-affairs", "dim_school_calendar": "academic-affairs",
    "fact_dining_check": "canteen-system", "fact_meals_served": "canteen-system",
    "fact_food_hazard": "canteen-system", "fact_canteen_inspection": "canteen-system",
    "fact_staff_certificate": "canteen-system", "fact_cold_chain_reading": "iot-platform",
    "dim_meter": "metering", "fact_meter_reading": "metering", "fact_energy_quota": "metering",
    "fact_survey_response": "survey-system", "fact_work_order": "repair-system",
    "fact_maturity_score": "assessment",
}


def _meta_load(frames: dict[str, pd.DataFrame], end: dt.date) -> pd.DataFrame:
    """One batch per loaded table (meta_load does not describe itself), loaded the day after end at 01:30."""
    loaded = pd.Timestamp(end + dt.timedelta(days=1)) + pd.Timedelta(hours=1, minutes=30)
    names = [t for t in schema.CONTRACT_TABLES if t != "meta_load"]
    return pd.DataFrame({
        "batch_id": [f"DEMO-{end:%Y%m%d}-{i + 1:02d}-{t}" for i, t in enumerate(names)],
        "table_name": names,
        "source_system": [SOURCE_SYSTEMS[t] for t in names],
        "loaded_at": pd.Series([loaded] * len(names), dtype="datetime64[us]"),
        "rows_in": [int(len(frames[t])) for t in names],
        "rows_rejected": 0,
        "status": "ok",
    })


# --- generate -----------------------------------------------------------------------------------------------

def default_end() -> dt.date:
    """Yesterday in the cockpit's sense (config today(), which COCKPIT_TODAY can fix)."""
    return get_config().today() - dt.timedelta(days=1)


def generate(schools: int = 12, days: int = 400, seed: int = 7, end=None) -> dict[str, pd.DataFrame]:
    """One DataFrame per contract table (meta_load included), deterministic for the arguments.

    The data cover the ``days`` days ending at ``end`` (default: yesterday), with hourly meter readings for
    every hour of every day (less the planted gaps).
    """
    if schools < 1 or days < 1:
        raise ValueError("schools and days must be at least 1")
    end = _as_date(end) if end is not None else default_end()
    start = end - dt.timedelta(days=days - 1)
    specs = school_specs(schools)
    default_vacations = get_config().calendar.get("default_vacations") or [
        {"from": "01-15", "to": "02-25"}, {"from": "07-10", "to": "08-31"}]
    temps = {r: _temperature(seed, r, start, days) for r in REGIONS}
    years = list(range(start.year - 1, end.year + 1))

    out: dict[str, list] = {t: [] for t in schema.CONTRACT_TABLES}
    for spec in specs:
        campuses, fac, students, staff = _organisation(spec, seed)
        people = students + staff
        out["dim_campus"].append(pd.DataFrame(campuses))
        out["dim_facility"].append(fac)
        rng_y = _rng(seed, spec.index, "years")
        area = float(fac.floor_area_m2.sum())
        out["fact_school_year"].append(pd.DataFrame({
            "school_id": spec.school_id, "year": years,
            "students": [int(round(students * (1 - 0.015 * (end.year - y)) * rng_y.uniform(0.99, 1.01)))
                         for y in years],
            "staff": [int(round(staff * (1 - 0.01 * (end.year - y)))) for y in years],
            "floor_area_m2": area,
        }))
        cal = _school_calendar(spec, start, end, default_vacations)
        if spec.calendar:
            out["dim_school_calendar"].append(pd.DataFrame({
                "school_id": spec.school_id, "cal_date": cal["date"].to_numpy(), "day_type": cal["day_type"],
                "teaching_week": cal["teaching_week"]}))

        canteens = fac.loc[fac.code == "CAN"].reset_index(drop=True)
        meals, activity, daily_covers = _canteen_service(spec, canteens, cal, seed)
        certs, staff_counts = _certificates(spec, canteens, seed, end)
        out["fact_meals_served"].append(meals)
        out["fact_staff_certificate"].append(certs)
        out["fact_dining_check"].append(_dining_checks(spec, canteens, meals, staff_counts, seed, end))
        out["fact_cold_chain_reading"].append(_cold_chain(spec, canteens, meals, seed, start, days))
        out["fact_food_hazard"].append(_hazards(spec, canteens, seed, start, end))
        out["fact_canteen_inspection"].append(_inspections(spec, canteens, seed, start, end))

        meters = _meters(spec, fac)
        out["dim_meter"].append(meters)
        readings = _energy(spec, seed, fac, meters, cal, activity, daily_covers, temps[spec.region_code], start, end)
        out["fact_meter_reading"].append(readings)
        out["fact_energy_quota"].append(_quota(spec, seed, fac, meters, readings, start, end))

        out["fact_survey_response"].append(_surveys(spec, fac, cal, people, seed, end))
        out["fact_work_order"].append(_work_orders(spec, fac, cal, people, seed, end))

    out["dim_school"] = [pd.DataFrame({
        "school_id": [s.school_id for s in specs], "school_name": [s.name_zh for s in specs],
        "school_name_en": [s.name_en for s in specs], "region_code": [s.region_code for s in specs],
        "region_name": [s.region_name for s in specs], "school_type": [s.school_type for s in specs],
        "boarding": np.array([s.boarding for s in specs], dtype=bool)})]
    out["fact_maturity_score"] = [_maturity(specs, seed, start, end)]

    frames: dict[str, pd.DataFrame] = {}
    for table in schema.CONTRACT_TABLES:
        if table == "meta_load":
            continue
        parts = [p for p in out[table] if len(p)]
        data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=[c.name for c in schema.metadata.tables[table].columns])
        frames[table] = _finish(table, data)
    frames["meta_load"] = _finish("meta_load", _meta_load(frames, end))
    return frames


def _quota(spec: SchoolSpec, seed: int, fac: pd.DataFrame, meters: pd.DataFrame, readings: pd.DataFrame,
           start: dt.date, end: dt.date) -> pd.DataFrame:
    """Per year and energy type: about last year's use x 0.97-1.05 (the quota school: clearly below its use).

    "Last year's use" is estimated from the generated data (mean daily use x 365), heat from the model (its
    data may not cover a whole heating season when there is less than a year of data).
    """
    rng = _rng(seed, spec.index, "quota")
    top = meters.loc[meters.parent_meter_id.isna()].set_index("meter_id")["energy_type"]
    per_meter = readings.groupby("meter_id", sort=False)["consumption"].sum()
    per_type = per_meter.groupby(top.reindex(per_meter.index)).sum()
    n_days = (end - start).days + 1
    rows = []
    over = INCIDENTS["quota_overrun"]
    heated = fac.loc[fac.facility_id.isin(meters.loc[meters.energy_type == "heat", "facility_id"]), "floor_area_m2"]
    for etype in ["electricity", "water", "gas", "heat"]:
        if etype not in set(meters.energy_type):
            continue
        if etype == "heat" and n_days < 365:
            annual = float(heated.sum()) * _HEAT_GJ_M2_SEASON
        else:
            annual = float(per_type.get(etype, 0.0)) / n_days * 365.0
        for y in range(start.year, end.year + 1):
            factor = rng.uniform(0.97, 1.05)
            if spec.school_id == over["school"] and y == end.year:
                factor = over["factor"]
            rows.append((spec.school_id, y, etype, float(round(annual * factor, -1))))
    return pd.DataFrame(rows, columns=["school_id", "year", "energy_type", "quota"])


def _finish(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Exactly the contract's columns, with tidy dtypes (text as str, optional ints as Int64)."""
    t = schema.metadata.tables[table]
    data = {}
    for col in t.columns:
        s = df[col.name] if col.name in df.columns else pd.Series([None] * len(df), index=df.index)
        if isinstance(col.type, sa.Boolean):
            s = s.astype(bool)
        elif isinstance(col.type, sa.Integer):
            s = s.astype("Int64") if col.nullable else s.astype(np.int64)
        elif isinstance(col.type, (sa.Float, sa.Numeric)):
            s = s.astype(np.float64)
        elif isinstance(col.type, (sa.Date, sa.DateTime)):
            s = pd.to_datetime(s).astype("datetime64[us]")
        else:
            s = s.astype("str")
        data[col.name] = s.reset_index(drop=True)
    return pd.DataFrame(data)


# --- build --------------------------------------------------------------------------------------------------

def build(url: str, schools: int = 12, days: int = 400, seed: int = 7, end=None, *, if_missing: bool = False,
          ensure: bool = False, quiet: bool = False) -> dict[str, int] | None:
    """Generate the demo and write it into the warehouse at ``url``. Returns rows per table (None if skipped).

    ``if_missing``: do nothing when the warehouse exists. ``ensure``: do nothing when it exists and its data
    already reach ``end`` (default yesterday); otherwise (missing, unreadable or stale) build it.

    A DuckDB file is built next to the target and renamed over it only when complete (CHECKPOINTed, closed):
    a server reading the old file keeps reading it, and a half-built file never appears under the target name.
    Other databases: the warehouse tables that exist are dropped and created anew.
    """
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    t0 = time.perf_counter()
    path = duckdb_path(url)
    shown = make_url(url).render_as_string(hide_password=True)
    if if_missing and _exists(url, path):
        say(f"demo warehouse exists, not rebuilt: {shown}")
        return None
    if ensure:
        end = _as_date(end) if end is not None else default_end()
        current = data_end(url)
        if current is not None and current >= end:
            say(f"demo warehouse is current (data to {current}), not rebuilt: {shown}")
            return None
    frames = generate(schools=schools, days=days, seed=seed, end=end)
    t_gen = time.perf_counter() - t0
    if path is not None:
        counts = _build_duckdb_file(path, frames)
    else:
        counts = _build_server(url, frames)
    total = time.perf_counter() - t0
    if not quiet:
        width = max(len(t) for t in counts)
        for table, n in counts.items():
            say(f"  {table:<{width}} {n:>12,} rows")
        say(f"built {shown}: {sum(counts.values()):,} rows in {total:.1f} s (generate {t_gen:.1f} s)")
    return counts


def data_end(url: str) -> dt.date | None:
    """The last day of data of an existing demo warehouse (its newest meta_load batch is loaded the day after),
    or None when there is no readable warehouse."""
    try:
        engine = make_engine(url, read_only=True)
    except Exception:   # a missing DuckDB file
        return None
    try:
        with engine.connect() as conn:
            loaded = conn.execute(sa.select(sa.func.max(schema.meta_load.c.loaded_at))).scalar()
    except Exception as exc:  # no tables, a locked or damaged file, an unreachable server: treat as absent
        logger.info("cannot read the demo warehouse's data end: %s", exc)
        return None
    finally:
        engine.dispose()
    if loaded is None:
        return None
    return pd.Timestamp(loaded).date() - dt.timedelta(days=1)


def _exists(url: str, path: str | None) -> bool:
    if path is not None:
        return os.path.exists(path)
    engine = make_engine(url, read_only=False)
    try:
        return sa.inspect(engine).has_table("dim_school")
    finally:
        engine.dispose()


def _write(engine, frames) -> dict[str, int]:
    schema.create_all(engine)
    counts = bulk.write_frames(engine, frames)
    counts["agg_meter_daily"] = bulk.rebuild_meter_daily(engine)
    return counts


def _build_duckdb_file(path: str, frames) -> dict[str, int]:
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")   # matches .gitignore data/*.tmp*
    leftovers = [tmp, Path(f"{tmp}.wal")]
    for p in leftovers:
        p.unlink(missing_ok=True)
    engine = make_engine(f"duckdb:///{tmp}", read_only=False)
    try:
        counts = _write(engine, frames)
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        engine.dispose()   # closes the connection: the file is complete and unlocked
        # A WAL left by an old writer of the target would be replayed onto the new file: remove it first.
        Path(f"{target}.wal").unlink(missing_ok=True)
        os.replace(tmp, target)
    except BaseException:
        engine.dispose()
        for p in leftovers:
            p.unlink(missing_ok=True)
        raise
    return counts


def _build_server(url: str, frames) -> dict[str, int]:
    engine = make_engine(url, read_only=False)
    try:
        schema.metadata.drop_all(engine, checkfirst=True)
        return _write(engine, frames)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_access.demo",
                                     description="Build the demo warehouse (fictional schools, planted incidents).")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL of the warehouse (default: config warehouse.url)")
    parser.add_argument("--schools", type=int, default=12)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=None, help="last day of data (default: yesterday)")
    parser.add_argument("--if-missing", action="store_true", help="do nothing when the warehouse already exists")
    parser.add_argument("--ensure", action="store_true",
                        help="build only when the warehouse is missing or its data end before --end (yesterday)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.schools < 1 or args.days < 1:
        parser.error("--schools and --days must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    url = args.url or get_config().warehouse_url
    build(url, schools=args.schools, days=args.days, seed=args.seed, end=args.end, if_missing=args.if_missing,
          ensure=args.ensure, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
