"""Import and export: the pipeline around the readers and writers of core.formats.

Import streams records from the file and writes them in one transaction: a malformed file
raises ImportFormatError naming the file and line, and nothing of it is written. Duplicate
texts (within the file or already in the project) are skipped and counted. Pre-tokenized
formats keep their tokens, so CoNLL and SciAD files round-trip token for token. Export turns
a project's documents into the rows every format's writer takes: a reviewed text's final
version, else its latest done annotation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import formats, review
from core.errors import FewlabelError, ImportFormatError, SpanError
from core.formats import Record, Row
from core.schema import Annotation, Document, Project, utcnow
from core.text import validate_spans, words_of

BATCH = 2000


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


# ---------------------------------------------------------------------------- reading files


def detect_format(name: str, head: str) -> str:
    """Guess a format from the file name, then from its first lines (CoNLL often ends in .txt)."""
    return formats.detect(name, head).name


def resolve_format(path: str | Path, fmt: str = "auto") -> str:
    """The format of a file on disk: `fmt` itself, or found from its name and first lines."""
    path = Path(path)
    if not path.is_file():
        raise FewlabelError(f"{path}: no such file")
    if fmt != "auto":
        return formats.get(fmt).name
    by_suffix = formats.for_path(path)
    if by_suffix is not None and by_suffix.binary:
        return by_suffix.name
    with _open(path, "txt") as fh:
        return detect_format(path.name, fh.read(8192))


@contextmanager
def _open(path: Path, fmt: str) -> Iterator[IO]:
    """A file opened as format `fmt` reads it: bytes, or UTF-8 text with its line ends kept."""
    if formats.get(fmt).binary:
        with path.open("rb") as fh:
            yield fh
        return
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            yield fh
    except UnicodeDecodeError as exc:
        raise ImportFormatError(str(path), None, f"not UTF-8 text ({exc.reason})") from None


def read_texts(path: str | Path, fmt: str = "auto") -> Iterator[Record]:
    """Records of any importable file, without a database (pretraining corpora, predict)."""
    path = Path(path)
    fmt = resolve_format(path, fmt)
    with _open(path, fmt) as fh:
        yield from formats.get(fmt).read(fh, str(path), formats.ReadOptions())


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
        fmt = detect_format(name, head if isinstance(head, str) else "")
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

    options = formats.ReadOptions(text_column=text_column, txt_mode=txt_mode)
    for rec in formats.get(fmt).read(stream, name, options):
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
    kwargs["fmt"] = resolve_format(path, kwargs.get("fmt", "auto"))
    with _open(path, kwargs["fmt"]) as fh:
        return import_stream(session, project, fh, str(path), **kwargs)


def import_bytes(
    session: Session, project: Project, name: str, data: bytes, **kwargs
) -> ImportReport:
    """Import an uploaded file's bytes; see import_stream."""
    fmt = kwargs.get("fmt", "auto")
    binary = formats.get(fmt) if fmt != "auto" else formats.for_path(name)
    if binary is not None and binary.binary:
        kwargs["fmt"] = binary.name
        return import_stream(session, project, io.BytesIO(data), name, **kwargs)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(name, None, f"not UTF-8 text ({exc.reason})") from None
    return import_stream(session, project, io.StringIO(text, newline=None), name, **kwargs)


# ---------------------------------------------------------------------------- export


def export_rows(
    session: Session,
    project: Project,
    *,
    annotator: str | None = None,
    include_unlabeled: bool = False,
) -> Iterator[Row]:
    """One row per document: its final version (core.review), else its latest done annotation
    (or skipped mark), optionally open ones; each row's `source` says which it is.

    With `annotator`, only that annotator's own annotations count (final versions do not).
    """
    cond = [Annotation.annotator == annotator] if annotator else []
    docs = session.execute(
        select(Document)
        .where(Document.project_id == project.id)
        .order_by(Document.id)
        .execution_options(yield_per=1000)
    ).scalars()
    batch: list[Document] = []

    def emit(batch: list[Document]) -> Iterator[Row]:
        ids = [d.id for d in batch]
        finals = {} if annotator else review.final_of(session, ids)
        anns: dict[int, Annotation] = {}
        for a in session.scalars(select(Annotation).where(Annotation.document_id.in_(ids), *cond)):
            prev = anns.get(a.document_id)
            # Prefer a done annotation over a skip, then the most recent.
            if prev is None or (a.status == "done", a.updated_at) > (
                prev.status == "done",
                prev.updated_at,
            ):
                anns[a.document_id] = a
        for d in batch:
            base = Row(
                id=d.external_id or str(d.id),
                text=d.text,
                tokens=d.tokens,
                meta=dict(d.meta or {}),
                spans=[],
                status="open",
            )
            f, a = finals.get(d.id), anns.get(d.id)
            if f is not None:
                yield dataclasses.replace(
                    base,
                    spans=list(f.spans),
                    annotator=f.reviewer,
                    status="done",
                    updated_at=f.reviewed_at.isoformat(timespec="seconds"),
                    source=review.final_source(f.reviewer, f.reviewed_at),
                )
            elif a is not None:
                yield dataclasses.replace(
                    base,
                    spans=list(a.spans),
                    annotator=a.annotator,
                    status=a.status,
                    updated_at=a.updated_at.isoformat(timespec="seconds"),
                    source=review.annotation_source(a.annotator),
                )
            elif include_unlabeled:
                yield base

    for d in docs:
        batch.append(d)
        if len(batch) >= 500:
            yield from emit(batch)
            batch = []
    if batch:
        yield from emit(batch)


def export(
    session: Session,
    project: Project,
    out: IO,
    fmt: str = "csv",
    *,
    annotator: str | None = None,
    include_unlabeled: bool = False,
    limit: int | None = None,
) -> int:
    """Write a project's labels to a stream; returns the number of documents written.

    A binary format (spaCy) writes to a text stream's underlying buffer. `limit` stops after
    that many documents (a preview)."""
    writer = writer_of(fmt)
    rows: Iterable[Row] = export_rows(
        session, project, annotator=annotator, include_unlabeled=include_unlabeled
    )
    if limit is not None:
        rows = itertools.islice(rows, limit)
    options = formats.WriteOptions(spelling=dict(project.label_spelling or {}))
    return writer.write(rows, binary_sink(out) if writer.binary else out, options)


def writer_of(fmt: str) -> formats.Format:
    """The format `fmt`, when it can be written."""
    found = formats.get(fmt)
    if found.write is None:
        raise FewlabelError(f"{fmt} is read only; write one of {', '.join(formats.writable())}")
    return found


def binary_sink(out: IO) -> IO[bytes]:
    """The byte stream under a text stream (a file, stdout), for a binary format's writer."""
    if isinstance(out, io.TextIOBase):
        buffer = getattr(out, "buffer", None)
        if buffer is None:
            raise FewlabelError("a binary format needs a file to write to")
        out.flush()
        return buffer
    return out


def export_bytes(session: Session, project: Project, fmt: str = "csv", **kwargs) -> bytes:
    """The same export as a download (the UI and the CLI share this code)."""
    if writer_of(fmt).binary:
        raw = io.BytesIO()
        export(session, project, raw, fmt, **kwargs)
        return raw.getvalue()
    buf = io.StringIO(newline="")
    export(session, project, buf, fmt, **kwargs)
    return buf.getvalue().encode("utf-8")
