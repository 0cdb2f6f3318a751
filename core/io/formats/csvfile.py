"""CSV: a text column, other columns as metadata; our export adds spans and tagged text."""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from typing import IO

from core.errors import ImportFormatError
from core.io.formats.base import (
    Format,
    ReadOptions,
    Record,
    Row,
    WriteOptions,
    span_dicts,
    spans_field,
)
from core.text import tagged_text

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = [
    "id",
    "text",
    "spans",
    "tagged_text",
    "annotator",
    "source",  # "final (reviewed by X at T)" or "annotation by X"
    "status",
    "updated_at",
    "meta",
]
PREDICTED_COLUMNS = COLUMNS[:4]  # a prediction has no annotator, review state or time
# Columns our export derives from the labels: an import of our own file drops them.
DERIVED_COLUMNS = {"tagged_text", "annotator", "source", "status", "updated_at"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def neutralise(value: str) -> str:
    """Guard a human-readable CSV cell against formula injection in spreadsheet programs.

    Only derived, human-readable cells are guarded (`tagged_text`, `annotator`, `source`): `id` and
    `text` are data, written exactly, so that `spans` slice `text` as any CSV reader reads it.
    """
    if value and value[0] in FORMULA_START:
        return "'" + value
    return value


def _legacy_guarded(text: str, raw_spans: str | None) -> bool:
    """Whether a row of an older fewlabel CSV export holds a formula-guarded text.

    Exports before 2026-12 prefixed `'` to a text starting with `=`, `+`, `-` or `@` while
    its spans counted from the unprefixed text. Such a row is recognised by the `text` each
    exported span carries: they slice the unprefixed text and not the cell as written. Any
    other cell is read exactly as written.
    """
    if not (len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START and raw_spans):
        return False
    try:
        spans = json.loads(raw_spans)
        pairs = [(int(sp["start"]), int(sp["end"]), sp["text"]) for sp in spans]
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        return False
    bare = text[1:]
    return bool(pairs) and all(bare[a:b] == t and text[a:b] != t for a, b, t in pairs)


def _text_column(columns: list[str], wanted: str | None, name: str) -> str:
    if not columns:
        raise ImportFormatError(name, 1, "the CSV has no header row")
    if wanted is None:
        if "text" in columns:
            return "text"
        if len(columns) == 1:
            return columns[0]
        raise ImportFormatError(
            name, 1, f"which column holds the text? pass one of: {', '.join(columns)}"
        )
    if wanted not in columns:
        raise ImportFormatError(name, 1, f"no column {wanted!r}; columns are {', '.join(columns)}")
    return wanted


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    """Rows of a CSV file, read strictly: a quoted cell that is never closed (a stray quote, a
    file cut off inside a cell) is an error at the line where it opened, not a cell holding
    the rest of the file; a quote inside a quoted cell must be doubled."""
    reader = csv.DictReader(stream, strict=True)
    try:
        columns = list(reader.fieldnames or [])
    except csv.Error as exc:
        raise ImportFormatError(name, 1, f"not a readable CSV ({exc})") from exc
    text_column = _text_column(columns, options.text_column, name)
    id_column = next((c for c in ("id", "external_id") if c in columns), None)
    # Columns our own export derives from the labels; only dropped from a file that is one.
    ours = "tagged_text" in columns and "spans" in columns
    derived = DERIVED_COLUMNS if ours else set()
    started = reader.line_num + 1  # where the row being read starts
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise ImportFormatError(name, line, "more cells than header columns")
            text = row[text_column] or ""
            if ours and _legacy_guarded(text, row["spans"]):
                text = text[1:]
            spans = spans_field(row["spans"], name, line) if "spans" in row else None
            meta = {
                k: v
                for k, v in row.items()
                if k not in (text_column, id_column, "spans")
                and k not in derived
                and v not in ("", None)
            }
            if "meta" in meta:
                try:
                    extra = json.loads(meta["meta"])
                except (ValueError, RecursionError):
                    pass  # not JSON: kept as the text it is
                else:
                    del meta["meta"]
                    meta.update(extra if isinstance(extra, dict) else {"meta": extra})
            started = line + 1
            yield Record(
                line=line,
                text=text,
                spans=spans,
                external_id=row[id_column] if id_column and row[id_column] else None,
                meta=meta,
            )
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            reason = "a quoted cell opens here and is never closed (a stray or missing quote)"
            raise ImportFormatError(name, started, reason) from None
        raise ImportFormatError(name, reader.line_num, f"bad CSV ({exc})") from None


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """One row per document; predictions get only id, text, spans and tagged text."""
    rows = iter(rows)
    first = next(rows, None)
    predicted = first is not None and first.status is None
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PREDICTED_COLUMNS if predicted else COLUMNS)
    n = 0
    for n, r in enumerate(itertools.chain([first] if first else [], rows), 1):
        cells = [
            r.id or str(n),
            r.text,
            json.dumps(span_dicts(r), ensure_ascii=False),
            neutralise(tagged_text(r.text, r.spans)),
        ]
        if not predicted:
            cells += [
                neutralise(r.annotator or ""),
                neutralise(r.source or ""),
                r.status,
                r.updated_at or "",
                json.dumps(r.meta, ensure_ascii=False) if r.meta else "",
            ]
        writer.writerow(cells)
    return n


FORMAT = Format(
    name="csv",
    suffixes=(".csv",),
    mime="text/csv",
    description="a text column (--text-column), other columns as metadata, spans as JSON",
    read=read,
    write=write,
    rank=10,
)
