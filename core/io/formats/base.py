"""What every format shares: the record a reader yields, the row a writer takes, the Format.

A reader turns a file into `Record`s (text, optional tokens, optional labeled spans); the
import pipeline in core.io.imports validates and stores them. A writer turns `Row`s into a file:
export builds rows from the database, predict from a model's output, so both write the same
bytes for the same labels. Offsets are Python code points everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from core.errors import ImportFormatError
from core.text import Word, bio_to_spans, join_tokens, spans_to_bio, words_of

BIO_RE = re.compile(r"^(O|[BI]-\S+)$")


@dataclass
class Record:
    """One text as a reader found it; `line` is where it starts (a record number in JSON)."""

    line: int
    text: str
    tokens: list[str] | None = None
    spans: list[dict] | None = None  # labeled formats only; None means "no labels"
    external_id: str | None = None
    meta: dict = field(default_factory=dict)
    # The line of each span (of `spans`, in order) where a record is many lines (CoNLL: the
    # line of its first token), so an error about one label names that label's line.
    span_lines: list[int] | None = None
    # Answers about single spans (a Prodigy binary recipe's, a JSONL export's `decisions`):
    # [{start, end, label, answer ("accept" | "reject" | "ignore"), annotator?, confidence?}],
    # stored as decisions (core.labeling.decisions) beside the text, not as its labels.
    decisions: list[dict] | None = None
    # The whole text was rejected (a Prodigy reject with no span): stored as a skipped text.
    skipped: bool = False


@dataclass(frozen=True)
class Row:
    """One document to write: a project's labeled document, or a model's prediction.

    `status` is None for a prediction: writers then leave out the review fields (annotator,
    status, time) and write the spans as suggestions where the format tells the two apart.
    A predicted span may carry a `confidence`.
    """

    id: str | None
    text: str
    spans: list[dict]
    tokens: list[str] | None = None
    meta: dict = field(default_factory=dict)
    annotator: str | None = None
    status: str | None = None  # done | skipped | open; None: predicted
    updated_at: str | None = None
    # Which labels these are: "final (reviewed by X at T)" or "annotation by X"
    # (core.labeling.review).
    source: str | None = None
    # The text's decisions (core.labeling.decisions.decisions_for's dicts), for the formats
    # that write them (Format.decisions); a row with decisions and no labels has status "open".
    decisions: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class ReadOptions:
    text_column: str | None = None  # csv
    txt_mode: str = "auto"  # txt: auto | lines | paragraphs


@dataclass(frozen=True)
class WriteOptions:
    spelling: dict[str, str] = field(default_factory=dict)  # BIO labels as the user spells them


Reader = Callable[[IO[Any], str, ReadOptions], Iterator[Record]]
Writer = Callable[[Iterable[Row], IO[Any], WriteOptions], int]


@dataclass(frozen=True)
class Format:
    """A file format: how it is named, recognised, read and written.

    `sniff(head)` scores the first 8 KiB of a file: 0 not this format, 1 its general shape
    (a JSON list), 2 its own markers (a Label Studio task). `fallback` marks the format a file
    is when nothing recognises it (plain text); its suffixes then decide nothing. A `binary`
    format reads and writes bytes. `requires` names a module that must be importable. `unit`
    names what a record's `line` counts, for error messages.
    """

    name: str
    suffixes: tuple[str, ...]
    mime: str
    description: str
    read: Reader | None = None
    write: Writer | None = None
    sniff: Callable[[str], int] | None = None
    rank: int = 50  # where lists show it, lowest first
    binary: bool = False
    fallback: bool = False
    requires: str | None = None
    # What a Record's `line` counts: "line" for line-based files; a file that is one JSON
    # document or a binary one numbers its items ("record", "task", "doc").
    unit: str = "line"
    # Its writer writes a text's decisions (Row.decisions): export then also gives it the
    # texts that have decisions and no labels.
    decisions: bool = False

    def where(self, name: str, number: int) -> tuple[str, int | None, str]:
        """(path, line, prefix) for an ImportFormatError about item `number` of file `name`:
        `name:12: ...` for a line, `name: record 12: ...` for a numbered item."""
        if self.unit == "line":
            return name, number, ""
        return name, None, f"{self.unit} {number}: "


# ---------------------------------------------------------------------------- reading helpers


def load_json(text: str, name: str, line: int | None, what: str = "") -> Any:
    """Parse JSON, every failure a one-line ImportFormatError: a syntax error (at its line
    when `line` is None: the file is one JSON document), nesting too deep for the parser, or
    a number Python will not convert (an integer of over 4,300 digits)."""
    subject = f"{what} are not" if what else "not"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = exc.lineno if line is None else line
        raise ImportFormatError(name, where, f"{subject} valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ImportFormatError(name, line, f"{subject} readable JSON: nested too deeply") from None
    except ValueError as exc:  # int("1" * 5000): Python's limit on integer digits
        reason = str(exc).split(":")[0]
        raise ImportFormatError(name, line, f"{subject} readable JSON ({reason})") from None


def is_offset(value: Any) -> bool:
    """A character offset as a file may hold one: a JSON integer. Never a float (34.9 is no
    offset, and Infinity overflows int()), a boolean (true is not 1) or a numeric string."""
    return isinstance(value, int) and not isinstance(value, bool)


def spans_field(raw: Any, name: str, line: int) -> list[dict]:
    """A `spans` value as JSONL and CSV hold it: `[{start, end, label}]` or `[s, e, label]`."""
    if isinstance(raw, str):
        raw = load_json(raw, name, line, "spans") if raw.strip() else []
    if not isinstance(raw, list):
        raise ImportFormatError(name, line, "spans must be a list")
    out = []
    for sp in raw:
        if isinstance(sp, dict) and {"start", "end", "label"} <= sp.keys():
            out.append({"start": sp["start"], "end": sp["end"], "label": sp["label"]})
        elif isinstance(sp, list | tuple) and len(sp) == 3:
            out.append({"start": sp[0], "end": sp[1], "label": sp[2]})
        else:
            raise ImportFormatError(name, line, f"a span needs start, end and label: {sp!r}")
    return out


def json_lines(stream: IO[str], name: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL file."""
    for i, line in enumerate(stream, 1):
        if not line.strip():
            continue
        obj = load_json(line, name, i)
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise ImportFormatError(name, i, 'each line must be an object with a "text" string')
        yield i, obj


def json_list(stream: IO[str], name: str, what: str) -> list:
    """A file that is one JSON array, read whole; `what` says what its items are."""
    data = load_json(stream.read(), name, None)
    if not isinstance(data, list):
        raise ImportFormatError(name, 1, f"expected a JSON list of {what}")
    return data


def check_bio(tag: str, name: str, line: int | None) -> None:
    if not BIO_RE.match(tag):
        raise ImportFormatError(name, line, f"bad BIO label {tag!r} (want O, B-X or I-X)")


def tagged_record(
    name: str,
    line: int,
    tokens: list[str],
    tags: list[str],
    ext: str | None,
    lines: list[int] | None = None,
) -> Record:
    """A record of tokens with BIO tags: the text is the tokens joined by one space. `lines`,
    the line of each token (CoNLL), gives each span the line of its first token."""
    for i, tag in enumerate(tags):
        check_bio(tag, name, lines[i] if lines else line)
    text, words = join_tokens(tokens)
    found = bio_to_spans(words, tags)
    span_lines = None
    if lines:
        line_at = {w.start: n for w, n in zip(words, lines, strict=True)}
        span_lines = [line_at.get(s.start, line) for s in found]
    spans = [s.as_dict() for s in found]
    return Record(
        line=line,
        text=text,
        tokens=list(tokens),
        spans=spans,
        external_id=ext,
        span_lines=span_lines,
    )


def str_id(value: Any) -> str | None:
    return str(value) if value is not None else None


def first_line_object(head: str) -> dict | None:
    """The first line of a head parsed as a JSON object, or None (also when it is cut off)."""
    line = head.lstrip().split("\n", 1)[0]
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


# ---------------------------------------------------------------------------- writing helpers


def span_dicts(row: Row) -> list[dict]:
    """A row's spans as written: start, end, label, anything else they carry, and their text."""
    return [
        {"start": s["start"], "end": s["end"], "label": s["label"]}
        | {k: v for k, v in s.items() if k not in ("start", "end", "label", "text")}
        | {"text": row.text[s["start"] : s["end"]]}
        for s in row.spans
    ]


def words_and_tags(row: Row, spelling: dict[str, str]) -> tuple[list[Word], list[str]]:
    """The row's words and their BIO tags, labels spelled as the user spells them."""
    words = words_of(row.text, row.tokens, row.spans)
    tags = []
    for tag in spans_to_bio(words, row.spans):
        if tag != "O":
            prefix, label = tag.split("-", 1)
            tag = f"{prefix}-{spelling.get(label, label)}"
        tags.append(tag)
    return words, tags
