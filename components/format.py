"""Number and date formatting shared by tiles, tables, charts and exports (one rule, one place)."""
from __future__ import annotations

import datetime as dt
import math

from .i18n import t

STATUS_SHAPES = {"green": "●", "amber": "▲", "red": "■", "none": "○", "nodata": "–", "suppressed": "◌"}
"""Each status also carries a shape, so colour-blind readers and grey-scale prints can tell them apart."""


def truncate(value: float, decimals: int) -> float:
    """Cut (not round) to ``decimals``: a compliance rate of 99.97 % must not read 100.0 %."""
    factor = 10 ** decimals
    return math.trunc(value * factor) / factor


def fmt_number(value: float | None, decimals: int = 1, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "%":
        value = truncate(value, decimals)
    if abs(value) >= 100000 and decimals <= 1:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def fmt_value(value: float | None, unit: str, decimals: int = 1) -> str:
    """Value with its unit, e.g. '98.6%' or '1,234 kgce'. Percentages are truncated, never rounded up."""
    text = fmt_number(value, decimals, unit)
    if text == "—" or not unit:
        return text
    return f"{text}%" if unit == "%" else f"{text} {unit}"


def fmt_level(value: float | None) -> str:
    return "—" if value is None else f"L{value:.0f}" if float(value).is_integer() else f"L{value:.1f}"


def fmt_change(change: float | None, kind: str, unit: str, lang: str, decimals: int = 1) -> str:
    """'+1.2 个百分点' for rates (in the rate's own decimals), '+3.4%' for relative changes, '+2' for counts.
    A change too small to show at that precision reads '-<0.1', never '-0.0' (which looks like no change with
    a stray sign)."""
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return "—"
    places = 1 if kind == "rel" else decimals
    suffix = "%" if kind == "rel" else f" {t('change.pp', lang)}" if unit == "%" else ""
    if change == 0:
        return f"±{0:.{places}f}{suffix}" if kind == "rel" or unit == "%" else "±0"
    sign = "+" if change > 0 else "-"
    if round(abs(change), places) == 0:
        return f"{sign}<{10 ** -places:.{places}f}{suffix}"
    if kind == "rel" or unit == "%":
        return f"{sign}{abs(change):.{places}f}{suffix}"
    return f"{sign}{fmt_number(abs(change), decimals)}"


def fmt_compact(value: float | None, lang: str, decimals: int = 1) -> str:
    """Large numbers the way each language reads them: 197.7万 / 1.98 M (below 10 000: as fmt_number)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    a = abs(value)
    if lang == "en":
        for bound, suffix in ((1e9, " B"), (1e6, " M")):
            if a >= bound:
                return f"{value / bound:,.2f}{suffix}"
        if a >= 1e4:
            return f"{value / 1e3:,.1f} k"
    else:
        for bound, suffix in ((1e8, "亿"), (1e4, "万")):
            if a >= bound:
                return f"{value / bound:,.2f}{suffix}" if a < bound * 100 else f"{value / bound:,.1f}{suffix}"
    return fmt_number(value, decimals)


def fmt_datetime(value: dt.datetime | dt.date | None) -> str:
    """'2026-11-21 23:50', or just the date when the time is midnight (date-only facts)."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        if value.hour == value.minute == value.second == 0:
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def status_label(status: str, lang: str, n: int | None = None, min_n: int = 10) -> str:
    if status == "suppressed":
        return t("status.suppressed", lang, n=min_n)
    return t(f"status.{status}", lang)
