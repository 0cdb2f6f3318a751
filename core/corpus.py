"""Import and export: CSV, TXT, JSONL, CoNLL/BIO and SciAD JSON.

Import streams records from the file and writes them in one transaction: a malformed file
raises ImportFormatError naming the file and line, and nothing of it is written. Duplicate
texts (within the file or already in the project) are skipped and counted. Pre-tokenized
formats keep their tokens, so CoNLL and SciAD files round-trip token for token.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import random
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.errors import FewlabelError, ImportFormatError, SpanError
from core.schema import Annotation, Document, Project, utcnow
from core.text import Span, bio_to_spans, join_tokens, tagged_text, validate_spans, words_of

IMPORT_FORMATS = ("csv", "txt", "jsonl", "conll", "sciad")
EXPORT_FORMATS = ("csv", "jsonl", "conll")
_BIO_RE = re.compile(r"^(O|[BI]-\S+)$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Record:
    line: int
    text: str
    tokens: list[str] | None = None
    spans: list[dict] | None = None  # labeled formats only
    external_id: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class ImportReport:
    source: str
    format: str
    imported: int = 0
    duplicates: int = 0
    empty: int = 0
    annotations: int = 0
    skipped_invalid: list[str] = field(default_factory=list)  # "line N: reason"
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"imported {self.imported} documents from {self.source} ({self.format})"]
        if self.annotations:
            parts.append(f"{self.annotations} with labels")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates skipped")
        if self.empty:
            parts.append(f"{self.empty} empty texts skipped")
        if self.skipped_invalid:
            parts.append(f"{len(self.skipped_invalid)} invalid records skipped")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------- format sniffing


def detect_format(name: str, head: str) -> str:
    """Guess a format from the file name, then from its first lines (CoNLL often ends in .txt)."""
    suffix = Path(name).suffix.lower()
    by_suffix = {
        ".csv": "csv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "sciad",
        ".conll": "conll",
        ".bio": "conll",
        ".iob": "conll",
        ".tsv": "conll",
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    lines = [ln for ln in head.splitlines() if ln.strip()][:50]
    if lines and all("\t" in ln and _BIO_RE.match(ln.rsplit("\t", 1)[1].strip()) for ln in lines):
        return "conll"
    if lines and lines[0].lstrip().startswith("{"):
        return "jsonl"
    if lines and lines[0].lstrip().startswith("["):
        return "sciad"
    return "txt"


# ---------------------------------------------------------------------------- readers


def _legacy_guarded(text: str, raw_spans: str | None) -> bool:
    """Whether a row of an older fewlabel CSV export holds a formula-guarded text.

    Exports before 2026-12 prefixed `'` to a text starting with `=`, `+`, `-` or `@` while
    its spans counted from the unprefixed text. Such a row is recognised by the `text` each
    exported span carries: they slice the unprefixed text and not the cell as written. Any
    other cell is read exactly as written.
    """
    if not (len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_START and raw_spans):
        return False
    try:
        spans = json.loads(raw_spans)
        pairs = [(int(sp["start"]), int(sp["end"]), sp["text"]) for sp in spans]
    except (ValueError, TypeError, KeyError, OverflowError):
        return False
    bare = text[1:]
    return bool(pairs) and all(
        bare[a:b] == t and text[a:b] != t for a, b, t in pairs
    )


def _spans_field(raw, name: str, line: int) -> list[dict]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as exc:
            raise ImportFormatError(name, line, f"spans are not valid JSON ({exc.msg})") from exc
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


def read_csv(stream: IO[str], name: str, text_column: str | None = None) -> Iterator[Record]:
    reader = csv.DictReader(stream)
    try:
        columns = reader.fieldnames or []
    except csv.Error as exc:
        raise ImportFormatError(name, 1, f"not a readable CSV ({exc})") from exc
    if not columns:
        raise ImportFormatError(name, 1, "the CSV has no header row")
    if text_column is None:
        if "text" in columns:
            text_column = "text"
        elif len(columns) == 1:
            text_column = columns[0]
        else:
            raise ImportFormatError(
                name, 1, f"which column holds the text? pass one of: {', '.join(columns)}"
            )
    if text_column not in columns:
        raise ImportFormatError(
            name, 1, f"no column {text_column!r}; columns are {', '.join(columns)}"
        )
    id_column = next((c for c in ("id", "external_id") if c in columns), None)
    # Columns our own export derives from the labels; only dropped from a file that is one.
    ours = "tagged_text" in columns and "spans" in columns
    derived = {"tagged_text", "annotator", "status", "updated_at"} if ours else set()
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise ImportFormatError(name, line, "more cells than header columns")
            text = row[text_column] or ""
            if ours and _legacy_guarded(text, row["spans"]):
                text = text[1:]
            spans = _spans_field(row["spans"], name, line) if "spans" in row else None
            meta = {
                k: v
                for k, v in row.items()
                if k not in (text_column, id_column, "spans")
                and k not in derived
                and v not in ("", None)
            }
            if "meta" in meta:
                try:
                    extra = json.loads(meta.pop("meta"))
                    meta.update(extra if isinstance(extra, dict) else {"meta": extra})
                except json.JSONDecodeError:
                    pass
            yield Record(
                line=line,
                text=text,
                spans=spans,
                external_id=row[id_column] if id_column and row[id_column] else None,
                meta=meta,
            )
    except csv.Error as exc:
        raise ImportFormatError(name, reader.line_num, f"bad CSV ({exc})") from exc


def read_txt(stream: IO[str], name: str, mode: str = "auto") -> Iterator[Record]:
    """One text a line, or paragraphs separated by blank lines (`auto` picks per file)."""
    if mode == "auto":
        first = stream.read(1 << 16)
        rest = stream
        mode = "paragraphs" if re.search(r"\S[^\n]*\n[^\S\n]*\n+[^\S\n]*\S", first) else "lines"
        # Lines that wrap inside paragraphs look like "a\nb\n\nc"; a list of texts has no gaps.
        stream = _chain(first, rest)
    if mode not in ("lines", "paragraphs"):
        raise FewlabelError(f"unknown txt mode {mode!r}; use lines or paragraphs")
    if mode == "lines":
        for i, line in enumerate(stream, 1):
            if line.strip():
                yield Record(line=i, text=line.rstrip("\r\n").strip())
        return
    buf: list[str] = []
    start = 1
    for i, line in enumerate(stream, 1):
        if line.strip():
            if not buf:
                start = i
            buf.append(line.strip())
        elif buf:
            yield Record(line=start, text=" ".join(buf))
            buf = []
    if buf:
        yield Record(line=start, text=" ".join(buf))


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    """Re-join a peeked prefix with the rest of a stream, yielding whole lines."""
    tail = ""
    for chunk in (first, *iter(lambda: rest.read(1 << 16), "")):
        chunk = tail + chunk
        lines = chunk.split("\n")
        tail = lines.pop()
        for ln in lines:
            yield ln + "\n"
    if tail:
        yield tail


def read_jsonl(stream: IO[str], name: str) -> Iterator[Record]:
    for i, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(name, i, f"not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise ImportFormatError(name, i, 'each line must be an object with a "text" string')
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise ImportFormatError(name, i, '"meta" must be an object')
        tokens = obj.get("tokens")
        if tokens is not None and (
            not isinstance(tokens, list) or " ".join(map(str, tokens)) != obj["text"]
        ):
            tokens = None  # only kept when they are exactly the text's tokens
        ext = obj.get("id")
        yield Record(
            line=i,
            text=obj["text"],
            tokens=tokens,
            spans=_spans_field(obj["spans"], name, i) if obj.get("spans") is not None else None,
            external_id=str(ext) if ext is not None else None,
            meta=meta,
        )


def _tagged_record(
    name: str, line: int, tokens: list[str], tags: list[str], ext: str | None
) -> Record:
    for tag in tags:
        if not _BIO_RE.match(tag):
            raise ImportFormatError(name, line, f"bad BIO label {tag!r} (want O, B-X or I-X)")
    text, words = join_tokens(tokens)
    spans = [s.as_dict() for s in bio_to_spans(words, tags)]
    return Record(line=line, text=text, tokens=list(tokens), spans=spans, external_id=ext)


def read_conll(stream: IO[str], name: str) -> Iterator[Record]:
    """`token<TAB>BIO-label` lines; a blank line ends a document; -DOCSTART- lines are ignored."""
    tokens: list[str] = []
    tags: list[str] = []
    start = 1
    for i, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if tokens:
                yield _tagged_record(name, start, tokens, tags, None)
                tokens, tags = [], []
            continue
        if line.startswith("-DOCSTART-"):
            continue
        if "\t" in line:
            token, _, tag = line.rpartition("\t")
            token = token.split("\t")[0]
        else:
            parts = line.split()
            if len(parts) < 2:
                raise ImportFormatError(name, i, "expected token<TAB>label")
            token, tag = parts[0], parts[-1]
        if not token:
            raise ImportFormatError(name, i, "empty token")
        if not tokens:
            start = i
        tokens.append(token)
        tags.append(tag.strip())
        if not _BIO_RE.match(tags[-1]):
            raise ImportFormatError(name, i, f"bad BIO label {tags[-1]!r} (want O, B-X or I-X)")
    if tokens:
        yield _tagged_record(name, start, tokens, tags, None)


def read_sciad(stream: IO[str], name: str) -> Iterator[Record]:
    """SciAD JSON: a list of {id, tokens, labels}. Read whole (the format is one JSON array)."""
    raw = stream.read()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(name, exc.lineno, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(data, list):
        raise ImportFormatError(name, 1, "SciAD JSON must be a list of {id, tokens, labels}")
    # Line numbers: where each record's "id" appears, approximately, for error messages.
    for n, obj in enumerate(data, 1):
        where = f"record {n}"
        if not isinstance(obj, dict) or not isinstance(obj.get("tokens"), list):
            raise ImportFormatError(name, None, f"{where}: needs a tokens list")
        tokens = [str(t) for t in obj["tokens"]]
        labels = obj.get("labels")
        if labels is None:
            text, _ = join_tokens(tokens)
            yield Record(line=n, text=text, tokens=tokens, external_id=_ext(obj))
            continue
        if not isinstance(labels, list) or len(labels) != len(tokens):
            raise ImportFormatError(name, None, f"{where}: labels and tokens differ in length")
        try:
            rec = _tagged_record(name, n, tokens, [str(x) for x in labels], _ext(obj))
        except ImportFormatError as exc:
            raise ImportFormatError(name, None, f"{where}: {exc.reason}") from None
        yield rec


def _ext(obj: dict) -> str | None:
    return str(obj["id"]) if obj.get("id") is not None else None


def iter_records(
    stream: IO[str], name: str, fmt: str, *, text_column: str | None = None, txt_mode: str = "auto"
) -> Iterator[Record]:
    if fmt == "csv":
        return read_csv(stream, name, text_column)
    if fmt == "txt":
        return read_txt(stream, name, txt_mode)
    if fmt == "jsonl":
        return read_jsonl(stream, name)
    if fmt == "conll":
        return read_conll(stream, name)
    if fmt == "sciad":
        return read_sciad(stream, name)
    raise FewlabelError(f"unknown format {fmt!r}; use one of auto, {', '.join(IMPORT_FORMATS)}")


def resolve_format(path: str | Path, fmt: str = "auto") -> str:
    """The format of a file on disk: `fmt` itself, or sniffed from its name and first lines."""
    path = Path(path)
    if not path.is_file():
        raise FewlabelError(f"{path}: no such file")
    if fmt != "auto":
        return fmt
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return detect_format(path.name, fh.read(8192))


def read_texts(path: str | Path, fmt: str = "auto") -> Iterator[Record]:
    """Records of any importable file, without a database (pretraining corpora, predict)."""
    fmt = resolve_format(path, fmt)
    with Path(path).open(encoding="utf-8-sig", newline="") as fh:
        yield from iter_records(fh, str(path), fmt)


# ---------------------------------------------------------------------------- import


def _label_map(
    project: Project, rec_spans: Iterable[dict], name: str, line: int, spelling: dict[str, str]
) -> list[dict]:
    """Map file labels onto project labels case-insensitively; remember the file's spelling."""
    by_lower = {lbl.lower(): lbl for lbl in project.labels}
    out = []
    for sp in rec_spans:
        label = str(sp["label"])
        canon = by_lower.get(label.lower())
        if canon is None:
            raise ImportFormatError(
                name, line, f"unknown label {label!r}; the project has {', '.join(project.labels)}"
            )
        if label != canon:
            spelling.setdefault(canon, label)
        out.append({**sp, "label": canon})
    return out


def import_stream(
    session: Session,
    project: Project,
    stream: IO[str],
    name: str,
    *,
    fmt: str = "auto",
    annotator: str = "import",
    text_column: str | None = None,
    txt_mode: str = "auto",
    skip_invalid: bool = False,
    seed: int | None = None,
) -> ImportReport:
    """Import records from a text stream into a project, in the caller's transaction.

    Labeled formats (CoNLL, SciAD, JSONL/CSV with spans) store their labels as annotations
    by `annotator`. With skip_invalid, records with bad spans are skipped and listed instead
    of aborting the import.
    """
    t0 = time.perf_counter()
    if fmt == "auto":
        head = stream.read(8192)
        stream = io.StringIO(head + stream.read()) if not stream.seekable() else stream
        if stream.seekable():
            stream.seek(0)
        fmt = detect_format(name, head)
    report = ImportReport(source=name, format=fmt)
    seen = set(session.scalars(select(Document.text_hash).where(Document.project_id == project.id)))
    rng = random.Random(seed)
    spelling = dict(project.label_spelling or {})
    docs: list[dict] = []
    labeled: list[list[dict] | None] = []
    now = utcnow()

    def flush() -> None:
        if not docs:
            return
        ids = session.scalars(
            insert(Document).returning(Document.id, sort_by_parameter_order=True), docs
        ).all()
        anns = [
            {
                "document_id": doc_id,
                "annotator": annotator,
                "status": "done",
                "spans": spans,
                "previous": [],
                "created_at": now,
                "updated_at": now,
            }
            for doc_id, spans in zip(ids, labeled, strict=True)
            if spans is not None
        ]
        if anns:
            session.execute(insert(Annotation), anns)
        report.annotations += len(anns)
        docs.clear()
        labeled.clear()

    for rec in iter_records(stream, name, fmt, text_column=text_column, txt_mode=txt_mode):
        if not rec.text.strip():
            report.empty += 1
            continue
        h = text_hash(rec.text)
        if h in seen:
            report.duplicates += 1
            continue
        spans = None
        if rec.spans is not None:
            try:
                mapped = _label_map(project, rec.spans, name, rec.line, spelling)
                clean = validate_spans(
                    rec.text, mapped, project.labels, words_of(rec.text, rec.tokens)
                )
            except (SpanError, ImportFormatError) as exc:
                reason = exc.reason if isinstance(exc, ImportFormatError) else str(exc)
                if skip_invalid:
                    report.skipped_invalid.append(f"line {rec.line}: {reason}")
                    continue
                raise ImportFormatError(name, rec.line, reason) from None
            spans = [s.as_dict() for s in clean]
        seen.add(h)
        docs.append(
            {
                "project_id": project.id,
                "external_id": rec.external_id,
                "text": rec.text,
                "text_hash": h,
                "tokens": rec.tokens,
                "source": Path(name).name[:500],
                "meta": rec.meta,
                "state": "done" if spans is not None else "open",
                "rank": rng.random(),
                "created_at": now,
            }
        )
        labeled.append(spans)
        report.imported += 1
        if len(docs) >= BATCH:
            flush()
    flush()
    if spelling != (project.label_spelling or {}):
        project.label_spelling = spelling
    session.flush()
    report.seconds = time.perf_counter() - t0
    return report


def import_file(session: Session, project: Project, path: str | Path, **kwargs) -> ImportReport:
    """Import a file from disk; see import_stream."""
    path = Path(path)
    if not path.is_file():
        raise FewlabelError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return import_stream(session, project, fh, str(path), **kwargs)
    except UnicodeDecodeError as exc:
        raise ImportFormatError(str(path), None, f"not UTF-8 text ({exc.reason})") from None


def import_bytes(
    session: Session, project: Project, name: str, data: bytes, **kwargs
) -> ImportReport:
    """Import an uploaded file's bytes; see import_stream."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(name, None, f"not UTF-8 text ({exc.reason})") from None
    return import_stream(session, project, io.StringIO(text, newline=None), name, **kwargs)


# ---------------------------------------------------------------------------- export


def neutralise(value: str) -> str:
    """Guard a human-readable CSV cell against formula injection in spreadsheet programs.

    Only derived, human-readable cells are guarded (`tagged_text`, `annotator`): `id` and
    `text` are data, written exactly, so that `spans` slice `text` as any CSV reader reads it.
    """
    if value and value[0] in _FORMULA_START:
        return "'" + value
    return value


@dataclass(frozen=True)
class ExportRow:
    document_id: int
    external_id: str | None
    text: str
    tokens: list[str] | None
    meta: dict
    spans: list[dict]
    annotator: str | None
    status: str
    updated_at: str | None


def export_rows(
    session: Session,
    project: Project,
    *,
    annotator: str | None = None,
    include_unlabeled: bool = False,
) -> Iterator[ExportRow]:
    """One row per document: its latest done annotation (or skipped mark), optionally open ones.

    With `annotator`, only that annotator's work counts.
    """
    cond = [Annotation.annotator == annotator] if annotator else []
    docs = session.execute(
        select(Document)
        .where(Document.project_id == project.id)
        .order_by(Document.id)
        .execution_options(yield_per=1000)
    ).scalars()
    batch: list[Document] = []

    def emit(batch: list[Document]) -> Iterator[ExportRow]:
        anns: dict[int, Annotation] = {}
        for a in session.scalars(
            select(Annotation).where(Annotation.document_id.in_([d.id for d in batch]), *cond)
        ):
            prev = anns.get(a.document_id)
            # Prefer a done annotation over a skip, then the most recent.
            if prev is None or (a.status == "done", a.updated_at) > (
                prev.status == "done",
                prev.updated_at,
            ):
                anns[a.document_id] = a
        for d in batch:
            a = anns.get(d.id)
            if a is None and not include_unlabeled:
                continue
            yield ExportRow(
                document_id=d.id,
                external_id=d.external_id,
                text=d.text,
                tokens=d.tokens,
                meta=dict(d.meta or {}),
                spans=list(a.spans) if a else [],
                annotator=a.annotator if a else None,
                status=a.status if a else "open",
                updated_at=a.updated_at.isoformat(timespec="seconds") if a else None,
            )

    for d in docs:
        batch.append(d)
        if len(batch) >= 500:
            yield from emit(batch)
            batch = []
    if batch:
        yield from emit(batch)


CSV_COLUMNS = ["id", "text", "spans", "tagged_text", "annotator", "status", "updated_at", "meta"]


def write_csv(rows: Iterable[ExportRow], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for r in rows:
        spans = [{**Span(s["start"], s["end"], s["label"]).as_dict(r.text)} for s in r.spans]
        writer.writerow(
            [
                r.external_id or str(r.document_id),
                r.text,
                json.dumps(spans, ensure_ascii=False),
                neutralise(tagged_text(r.text, r.spans)),
                neutralise(r.annotator or ""),
                r.status,
                r.updated_at or "",
                json.dumps(r.meta, ensure_ascii=False) if r.meta else "",
            ]
        )
        n += 1
    return n


def write_jsonl(rows: Iterable[ExportRow], out: IO[str]) -> int:
    n = 0
    for r in rows:
        obj = {
            "id": r.external_id or str(r.document_id),
            "text": r.text,
            "spans": [Span(s["start"], s["end"], s["label"]).as_dict(r.text) for s in r.spans],
            "annotator": r.annotator,
            "status": r.status,
            "updated_at": r.updated_at,
            "meta": r.meta,
        }
        if r.tokens:
            obj["tokens"] = r.tokens
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        n += 1
    return n


def write_conll(
    rows: Iterable[ExportRow], out: IO[str], spelling: dict[str, str] | None = None
) -> int:
    """token<TAB>BIO-label, a blank line between documents; skipped documents are left out."""
    from core.text import spans_to_bio

    spelling = spelling or {}
    n = 0
    for r in rows:
        if r.status == "skipped":
            continue
        words = words_of(r.text, r.tokens)
        tags = spans_to_bio(words, r.spans)
        for w, tag in zip(words, tags, strict=True):
            if tag != "O":
                prefix, label = tag.split("-", 1)
                tag = f"{prefix}-{spelling.get(label, label)}"
            out.write(f"{w.text}\t{tag}\n")
        out.write("\n")
        n += 1
    return n


def export(
    session: Session,
    project: Project,
    out: IO[str],
    fmt: str = "csv",
    *,
    annotator: str | None = None,
    include_unlabeled: bool = False,
    limit: int | None = None,
) -> int:
    """Write a project's labels to a text stream; returns the number of documents written.

    `limit` stops after that many documents (a preview)."""
    rows = export_rows(session, project, annotator=annotator, include_unlabeled=include_unlabeled)
    if limit is not None:
        rows = itertools.islice(rows, limit)
    if fmt == "csv":
        return write_csv(rows, out)
    if fmt == "jsonl":
        return write_jsonl(rows, out)
    if fmt == "conll":
        return write_conll(rows, out, project.label_spelling)
    raise FewlabelError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")


def export_bytes(session: Session, project: Project, fmt: str = "csv", **kwargs) -> bytes:
    """The same export as a download (the UI and the CLI share this code)."""
    buf = io.StringIO(newline="")
    export(session, project, buf, fmt, **kwargs)
    return buf.getvalue().encode("utf-8")
