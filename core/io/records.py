"""A file's records as an import takes them: a reader's failure as one line naming the file,
each record checked against what every database backend stores alike, labels mapped onto a
project's.

Every record passes fewlabel's own rules for what any backend stores (core.text.unstorable:
no NUL byte, no lone surrogate; ids of at most 200 characters; a maximum text length) before
core.io.imports writes it, so SQLite and PostgreSQL accept and refuse the same files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import IO

from core.errors import ImportFormatError, SpanError
from core.io import formats
from core.io.formats import Record
from core.io.formats.base import is_offset
from core.store.schema import Project
from core.text import NAME_MAX, unstorable

# A record's metadata deeper than this is refused: nobody's metadata is, and a JSON column
# that deep is past what some drivers and Python's own recursion serialise.
MAX_JSON_DEPTH = 64


def label_map(
    project: Project,
    rec_spans: Iterable[dict],
    name: str,
    line: int,
    spelling: dict[str, str],
    span_lines: list[int] | None = None,
) -> list[dict]:
    """Map file labels onto project labels case-insensitively; remember the file's spelling.
    An unknown label's error names its own line where the record has `span_lines` (CoNLL)."""
    by_lower = {lbl.lower(): lbl for lbl in project.labels}
    out = []
    for i, sp in enumerate(rec_spans):
        label = str(sp["label"])
        canon = by_lower.get(label.lower())
        if canon is None:
            at = span_lines[i] if span_lines and i < len(span_lines) else line
            raise ImportFormatError(
                name, at, f"unknown label {label!r}; the project has {', '.join(project.labels)}"
            )
        if label != canon:
            spelling.setdefault(canon, label)
        out.append({**sp, "label": canon})
    return out


def check_offsets(spans: Iterable[dict]) -> None:
    """Offsets exactly as integers: `[34.9, 37.2]`, `[true, 3]` or Infinity are refused (a
    SpanError, so --skip-invalid skips the record), never rounded into some other span."""
    for sp in spans:
        if not (is_offset(sp["start"]) and is_offset(sp["end"])):
            got = ", ".join(json.dumps(sp[k])[:30] for k in ("start", "end"))
            raise SpanError(f"span offsets must be whole numbers (integers), not {got}")


def _value_problem(value: object) -> str | None:
    """Why a JSON value (a record's meta) cannot be stored alike on every backend: a string
    core.text.unstorable refuses, Infinity or NaN, or nesting over MAX_JSON_DEPTH."""
    if not value and isinstance(value, dict):
        return None  # most records' meta: nothing to walk
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"is nested over {MAX_JSON_DEPTH} levels deep"
        if isinstance(item, str):
            problem = unstorable(item)
            if problem:
                return problem
        elif isinstance(item, float) and not math.isfinite(item):
            return f"holds {item}, which JSON has no number for"
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def record_problem(rec: Record, max_chars: int | None) -> str | None:
    """Why a record cannot be stored, as fewlabel's own rule for every backend, or None."""
    problem = unstorable(rec.text)
    if problem:
        return f"the text {problem}"
    if max_chars and len(rec.text) > max_chars:
        return (
            f"the text is {len(rec.text):,} characters, over the limit of {max_chars:,} "
            "(--max-chars)"
        )
    if rec.external_id is not None:
        if len(rec.external_id) > NAME_MAX:
            return f"the id is {len(rec.external_id):,} characters, over {NAME_MAX}"
        problem = unstorable(rec.external_id)
        if problem:
            return f"the id {problem}"
    problem = _value_problem(rec.meta)
    return f"the metadata {problem}" if problem else None


def read_records(fmt: formats.Format, stream: IO, name: str, options: formats.ReadOptions):
    """The reader's records; a failure no reader foresaw is still one line naming the file."""
    records = fmt.read(stream, name, options)
    last = 0
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise  # _open names it: not UTF-8 text
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as e:
            after = f" after {fmt.unit} {last}" if last else ""
            reason = f"could not be read as {fmt.name}{after} ({type(e).__name__}: {e})"
            raise ImportFormatError(name, None, reason[:300]) from None
        last = rec.line
        yield rec
