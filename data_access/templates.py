"""Templates for the loader: one empty CSV and one XLSX per loadable table.

Row 1 holds the contract's column names, row 2 a Chinese description of each column (required or not, unit,
allowed values); the loader skips row 2 when it is unchanged, so a template filled in below it loads as is.
The CSV is UTF-8 with BOM (Excel opens it as Unicode). The XLSX has its header frozen, text columns formatted
as text (codes such as 001 keep their zeros) and drop-down lists for the coded columns.
"""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from .validate import LOADABLE_TABLES, SPECS, template_row

XLSX_MAX_ROW = 1_048_576


def csv_bytes(table: str) -> bytes:
    spec = SPECS[table]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(spec.names)
    writer.writerow(template_row(spec))
    return buf.getvalue().encode("utf-8-sig")


def xlsx_bytes(table: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    spec = SPECS[table]
    wb = Workbook()
    ws = wb.active
    ws.title = table
    ws.append(spec.names)
    ws.append(template_row(spec))
    head_font, desc_font = Font(bold=True), Font(italic=True, color="555555", size=9)
    fill = PatternFill("solid", fgColor="EEF3F8")
    for i, col in enumerate(spec.columns, start=1):
        letter = get_column_letter(i)
        ws.cell(1, i).font = head_font
        ws.cell(1, i).fill = fill
        ws.cell(2, i).font = desc_font
        ws.cell(2, i).alignment = Alignment(wrap_text=True, vertical="top")
        ws.column_dimensions[letter].width = max(14, min(40, len(col.name) + 6))
        if col.kind in ("id", "free"):
            ws.column_dimensions[letter].number_format = "@"
        choices = col.values if col.kind == "enum" else ("是", "否") if col.kind == "bool" else ()
        if choices:
            dv = DataValidation(type="list", formula1='"' + ",".join(choices) + '"', allow_blank=not col.required,
                                showErrorMessage=True, error="请从列表中选择", errorTitle=col.name)
            dv.add(f"{letter}3:{letter}{XLSX_MAX_ROW}")
            ws.add_data_validation(dv)
    ws.row_dimensions[2].height = 60
    ws.freeze_panes = "A3"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def template_bytes(filename: str) -> bytes | None:
    """The template called ``<table>.csv`` or ``<table>.xlsx``, or None for any other name."""
    stem, _, ext = filename.rpartition(".")
    if stem not in SPECS:
        return None
    if ext == "csv":
        return csv_bytes(stem)
    if ext == "xlsx":
        return xlsx_bytes(stem)
    return None


def template_names() -> list[str]:
    return [f"{t}.{ext}" for t in LOADABLE_TABLES for ext in ("csv", "xlsx")]


def zip_bytes() -> bytes:
    """Every template in one zip archive."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in template_names():
            zf.writestr(f"templates/{name}", template_bytes(name))
    return out.getvalue()


def write_templates(directory: str | Path) -> list[Path]:
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name in template_names():
        path = target / name
        path.write_bytes(template_bytes(name))
        written.append(path)
    return written
