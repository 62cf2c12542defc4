"""Finding and reading the loader's input files: CSV (UTF-8 or GBK/GB18030) and Excel workbooks, in chunks.

Naming rule: a file loads the table it is named after, ``<table>.csv`` or ``<table>.xlsx``, compared without
case; a dot-separated suffix may follow the table name (``fact_meter_reading.2026-11.csv``, for monthly
exports). A workbook may instead hold one sheet per table, each sheet named after its table (other sheets are
ignored and listed). A folder stands for the files directly inside it (hidden files, Excel lock files ``~$…``
and the loader's own ``*.rejects.csv`` are skipped; other file types are listed as ignored).

Reading rules (every other case is a reject with a reason, see validate.REASONS):

- CSV encoding: UTF-8 (with or without BOM) when the whole file is valid UTF-8, else GB18030 (a superset of GBK
  and GB2312) when it decodes as such; a file with NUL bytes (UTF-16, binary) is refused. Comma-separated, with
  double quotes for fields holding commas or line breaks.
- Header: the first row; names are compared after trimming spaces and ignoring case. Columns without a header
  are ignored while they are empty. A CSV row with more fields than the header (a trailing comma) or a quote
  never closed rejects the file (``bad_structure``, naming the line); a workbook or sheet that cannot be read
  is ``unreadable``.
- The template's description row (the second row, as ``data_access.templates`` writes it) is skipped when each
  of its cells equals the description of its column. Completely empty rows are skipped.
- Row numbers are spreadsheet row numbers: the header is row 1.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema
from .validate import LOADABLE_TABLES, SPECS, TableSpec

BLOCK = 1 << 20
CSV_SUFFIXES = (".csv",)
XLSX_SUFFIXES = (".xlsx", ".xlsm")
UNNAMED = "#"   # prefix of columns without a header: "#5" is the fifth column


class FileProblem(Exception):
    """The file (or sheet) cannot be loaded at all: a validate.REASONS code, its parameters, the column."""

    def __init__(self, code: str, column: str = "", row: int | None = None, value: str = "", **params):
        super().__init__(code)
        self.code = code
        self.column = column
        self.row = row
        self.value = value
        self.params = params
        self.all: list[FileProblem] = [self]   # every problem found at once (a header may have several)


@dataclass
class Source:
    """One batch to load: a CSV file, or one sheet of a workbook (``problem`` set: not loadable)."""

    path: Path
    kind: str                       # csv | xlsx
    table: str | None = None
    sheet: str | None = None
    problem: FileProblem | None = None
    encoding: str = "utf-8-sig"     # CSV: set by sniff_csv before reading

    @property
    def label(self) -> str:
        return f"{self.path.name} [{self.sheet}]" if self.sheet else self.path.name


@dataclass
class Discovery:
    sources: list[Source] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)   # files and sheets skipped, for the summary


def table_for(name: str) -> str | None:
    """The contract table a file or sheet name stands for (any table, loadable or not), or None."""
    base = name.strip().split(".")[0].strip().lower()
    return base if base in schema.metadata.tables else None


def _skipped(path: Path) -> bool:
    return path.name.startswith((".", "~$")) or path.name.lower().endswith(".rejects.csv")


def discover(paths: list[str | Path]) -> Discovery:
    """The batches named by the command line, in dependency order (dimensions before facts)."""
    found = Discovery()
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                if not child.is_file() or _skipped(child):
                    continue
                if child.suffix.lower() in CSV_SUFFIXES + XLSX_SUFFIXES + (".xls",):
                    files.append(child)
                else:
                    found.ignored.append(str(child))
        else:
            files.append(path)
    for path in files:
        found.sources.extend(_sources_of(path, found))
    order = {t: i for i, t in enumerate(LOADABLE_TABLES)}
    indexed = list(enumerate(found.sources))
    indexed.sort(key=lambda p: (-1 if p[1].problem else order.get(p[1].table, len(order)), p[0]))
    found.sources = [s for _, s in indexed]
    return found


def _loadable(table: str | None) -> FileProblem | None:
    if table is None:
        return FileProblem("not_a_table")
    if table not in SPECS:
        return FileProblem("not_loadable", table=table)
    return None


def _sources_of(path: Path, found: Discovery) -> list[Source]:
    suffix = path.suffix.lower()
    if not path.exists():
        return [Source(path, "csv", problem=FileProblem("unreadable", detail="no such file"))]
    if suffix == ".xls":
        return [Source(path, "xlsx", problem=FileProblem("xls_format"))]
    if suffix in CSV_SUFFIXES:
        table = table_for(path.name)
        return [Source(path, "csv", table, problem=_loadable(table))]
    if suffix in XLSX_SUFFIXES:
        try:
            sheets = _sheet_names(path)
        except Exception as exc:  # not a zip, damaged XML, encrypted: openpyxl raises many types
            return [Source(path, "xlsx", problem=FileProblem("unreadable", detail=_short(exc)))]
        named = [(s, table_for(s)) for s in sheets if table_for(s) and table_for(s) == s.strip().lower()]
        if named:
            out = []
            for sheet, table in named:
                out.append(Source(path, "xlsx", table, sheet, problem=_loadable(table)))
            found.ignored.extend(f"{path.name} [{s}]" for s in sheets if s not in {n for n, _ in named})
            return out
        table = table_for(path.name)
        if table is None:
            return [Source(path, "xlsx", problem=FileProblem("no_sheet"))]
        if len(sheets) != 1:
            return [Source(path, "xlsx", table, problem=FileProblem("sheet_ambiguous"))]
        return [Source(path, "xlsx", table, sheets[0], problem=_loadable(table))]
    return [Source(path, "csv", problem=FileProblem("not_a_table"))]


def _sheet_names(path: Path) -> list[str]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


# --- CSV ----------------------------------------------------------------------------------------------------

def sniff_csv(path: Path) -> tuple[str, str]:
    """(encoding for Python, sha256 of the bytes) by the module's rule; FileProblem when neither decodes."""
    digest = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    utf8_ok = True
    size = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(BLOCK)
            if not block:
                break
            size += len(block)
            digest.update(block)
            if b"\x00" in block:
                raise FileProblem("binary")
            if utf8_ok:
                try:
                    utf8.decode(block)
                except UnicodeDecodeError:
                    utf8_ok = False
        if utf8_ok:
            try:
                utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8_ok = False
    if size == 0:
        raise FileProblem("empty_file")
    if utf8_ok:
        return "utf-8-sig", digest.hexdigest()
    gb = codecs.getincrementaldecoder("gb18030")("strict")
    with open(path, "rb") as fh:
        try:
            while True:
                block = fh.read(BLOCK)
                if not block:
                    gb.decode(b"", final=True)
                    break
                gb.decode(block)
        except UnicodeDecodeError:
            raise FileProblem("encoding") from None
    return "gb18030", digest.hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Chunk:
    raw: pd.DataFrame      # text cells, "" for empty; columns: contract names, and "#n" for unnamed columns
    rows: np.ndarray       # spreadsheet row numbers
    read: int              # data rows counted (empty rows and the description row excluded)


def check_header(spec: TableSpec, header: list[str]) -> list[str]:
    """Column names for the reader: contract names, "#n" for empty header cells. Raises a FileProblem whose
    ``all`` lists every problem of the header."""
    problems = header_problems(spec, header)
    if problems:
        problems[0].all = problems
        raise problems[0]
    return [_name(h, i) for i, h in enumerate(header)]


def _name(header: str, i: int) -> str:
    text = (header or "").replace("\ufeff", "").strip().lower()
    return text if text else f"{UNNAMED}{i + 1}"


def header_problems(spec: TableSpec, header: list[str]) -> list[FileProblem]:
    names = [_name(h, i) for i, h in enumerate(header)]
    real = [n for n in names if not n.startswith(UNNAMED)]
    if not real:
        return [FileProblem("empty_file")]
    if len(real) == 1 and len(spec.columns) > 1 and re.search(r"[;\t|]", real[0]):
        return [FileProblem("delimiter", column=real[0][:60], row=1)]
    out: list[FileProblem] = []
    seen: set[str] = set()
    for n in real:
        if n in seen:
            out.append(FileProblem("duplicate_column", column=n, row=1))
        seen.add(n)
    for n in real:
        if n not in spec.names:
            out.append(FileProblem("unknown_column", column=n, row=1, table=spec.name))
    for n in spec.required:
        if n not in seen:
            out.append(FileProblem("missing_column", column=n, row=1))
    return out


def _finish_chunk(spec: TableSpec, frame: pd.DataFrame, rows: np.ndarray, first: bool) -> Chunk:
    cells = frame.astype("str")
    nonempty = np.zeros(len(cells), dtype=bool)
    for c in cells.columns:
        nonempty |= cells[c].to_numpy(dtype=object) != ""
    keep = nonempty.copy()
    if first and len(cells) and keep[0] and _is_description(spec, cells.iloc[0]):
        keep[0] = False
    cells = cells.loc[keep]
    return Chunk(cells.reset_index(drop=True), rows[keep], int(keep.sum()))


def _is_description(spec: TableSpec, row: pd.Series) -> bool:
    desc = spec.descriptions()
    named = [c for c in row.index if c in desc]
    return bool(named) and all(str(row[c]).strip() == desc[c] for c in named)


def read_csv(spec: TableSpec, path: Path, encoding: str, chunk_rows: int) -> Iterator[Chunk]:
    """The data rows in chunks (FileProblem for header and structure problems, raised when met).

    A row with more fields than the header is a structure problem of the file (``bad_structure``, naming the
    line), wherever it is. pandas raises for such a row further down, but when it is the *first* data row (a
    trailing comma, common in exports) it silently takes the first column(s) for row labels instead and shifts
    every column by one: that row is therefore checked here before pandas reads the file, and any frame that
    comes back with row labels is refused as well.
    """
    header, first_row = _first_rows(path, encoding)
    if header is None:
        raise FileProblem("empty_file")
    names = check_header(spec, header)
    if first_row is not None and len(first_row) > len(header):
        raise FileProblem("bad_structure", detail=_more_fields(2, len(first_row), len(header)))
    reader = None
    first = True
    try:
        # Inside the try: pandas tokenizes the first rows when the reader is made, and may raise there already.
        reader = pd.read_csv(path, encoding=encoding, header=0, names=names, dtype=str, keep_default_na=False,
                             na_filter=False, skip_blank_lines=False, chunksize=chunk_rows, engine="c")
        for frame in reader:
            if not isinstance(frame.index, pd.RangeIndex):   # row labels taken from the data: see the docstring
                raise FileProblem("bad_structure", detail=f"a row has more fields than the header ({len(header)})")
            rows = frame.index.to_numpy(dtype=np.int64) + 2
            yield _finish_chunk(spec, frame, rows, first)
            first = False
    except pd.errors.ParserError as exc:
        raise FileProblem("bad_structure", detail=_structure_detail(str(exc))) from None
    except UnicodeDecodeError as exc:   # the sniffer read the same bytes; kept for safety
        raise FileProblem("encoding", detail=_short(exc)) from None
    finally:
        if reader is not None:
            reader.close()


def _first_rows(path: Path, encoding: str) -> tuple[list[str] | None, list[str] | None]:
    """The header and the first data row (``[]`` for an empty line, None when there is none), read with
    Python's csv module (the same quoting rules as pandas)."""
    with open(path, encoding=encoding, newline="") as fh:
        lines = csv.reader(fh)
        line = 1
        try:
            header = next(lines, None)
            line = 2
            return header, (next(lines, None) if header is not None else None)
        except csv.Error as exc:
            if "field limit" not in str(exc):
                raise FileProblem("bad_structure", detail=f"line {line}: {_short(exc)}") from None
            # A quote that is never closed swallows the rest of the file into one field.
            raise FileProblem("bad_structure", detail=f"line {line}: a field longer than "
                                                      f"{csv.field_size_limit():,} characters (an unclosed quote?)"
                              ) from None


def _more_fields(line: int | str, fields: int | str, header: int | str) -> str:
    """The detail of a row with more fields than the header. Lines are counted as pandas counts them, which is
    also the spreadsheet row number of the rejects file: one per record (a quoted line break does not count),
    the header is line 1, an empty line counts."""
    return f"line {line}: {fields} fields, the header has {header}"


def _structure_detail(message: str) -> str:
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if m:
        return _more_fields(m.group(2), m.group(3), m.group(1))
    m = re.search(r"EOF inside string starting at row (\d+)", message)
    if m:   # pandas counts these records from 0 with the header: its row n is line n + 1
        return f"line {int(m.group(1)) + 1}: a quoted field is never closed"
    message = message.replace("Error tokenizing data. C error: ", "")
    return message.strip().splitlines()[-1][:200] if message.strip() else "parser error"


# --- Excel --------------------------------------------------------------------------------------------------

def cell_text(value) -> str:
    """An Excel cell as the text the validator reads: dates and times in ISO form, whole numbers without .0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.time):
        return f"time {value.isoformat()}"   # a time-only cell is not a date or timestamp: rejected as such
    return str(value)


def read_xlsx(spec: TableSpec, path: Path, sheet: str, chunk_rows: int) -> Iterator[Chunk]:
    """The data rows of one sheet in chunks (FileProblem for header problems and for a sheet that cannot be
    read)."""
    it = _sheet_rows(path, sheet)
    try:
        header_cells = next(it, None)
        if header_cells is None:
            raise FileProblem("empty_file")
        header = [cell_text(v) for v in header_cells]
        names = check_header(spec, header)
        width = len(names)
        buffer: list[list[str]] = []
        numbers: list[int] = []
        first = True
        row_no = 1
        for cells in it:
            row_no += 1
            texts = [cell_text(v) for v in cells[:width]]
            extra = [cell_text(v) for v in cells[width:]]
            if any(t.strip() for t in extra):
                # A value right of the last header cell: a column without a header.
                texts.append(next(t for t in extra if t.strip()))
            if len(texts) < width:
                texts += [""] * (width - len(texts))
            buffer.append(texts)
            numbers.append(row_no)
            if len(buffer) >= chunk_rows:
                yield _xlsx_chunk(spec, names, buffer, numbers, first)
                buffer, numbers, first = [], [], False
        if buffer:
            yield _xlsx_chunk(spec, names, buffer, numbers, first)
    finally:
        it.close()


def _sheet_rows(path: Path, sheet: str) -> Iterator[tuple]:
    """The rows of a sheet as tuples of cell values. The sheet list of a workbook may read while a sheet does not
    (its XML cut off or damaged, a bad checksum): whatever openpyxl, zipfile or the XML parser raise then is the
    file's ``unreadable`` problem, as when the sheet list itself cannot be read (see _sources_of), and never
    stops the run."""
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types
        raise FileProblem("unreadable", detail=_short(exc)) from None
    try:
        rows = None
        while True:
            try:
                if rows is None:
                    rows = wb[sheet].iter_rows(values_only=True)
                cells = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # ElementTree.ParseError, zipfile.BadZipFile, KeyError, ValueError …
                raise FileProblem("unreadable", detail=_short(exc)) from None
            yield cells
    finally:
        wb.close()


def _xlsx_chunk(spec, names, buffer, numbers, first) -> Chunk:
    cols = list(names)
    widest = max(len(r) for r in buffer)
    if widest > len(cols):
        cols.append(f"{UNNAMED}{len(cols) + 1}")
        buffer = [r + [""] * (len(cols) - len(r)) for r in buffer]
    frame = pd.DataFrame(buffer, columns=cols, dtype="str")
    return _finish_chunk(spec, frame, np.asarray(numbers, dtype=np.int64), first)
