"""Import and export: the pipeline around the readers and writers of core.formats.

Import streams records from the file and writes all of them or none: a malformed file raises
ImportFormatError naming the file and line, and nothing of it is kept. Every record passes
fewlabel's own rules for what any backend stores (core.text.unstorable: no NUL byte, no lone
surrogate; ids of at most 200 characters; a maximum text length, core.defaults) before it is
written, so SQLite and PostgreSQL accept and refuse the same files. Duplicate
texts (within the file or already in the project) are skipped and counted. Pre-tokenized
formats keep their tokens, so CoNLL and SciAD files round-trip token for token. Export turns
a project's documents into the rows every format's writer takes: a reviewed text's final
version, else its latest done annotation.

Long imports commit in batches, all or nothing for the user. SQLite has one writer at a time,
so an import in a single transaction would hold the write lock for minutes and fail every
annotator's save past the 30 s busy timeout. An import of more than one batch (IMPORT_BATCH
documents) therefore commits each batch as *staged* rows: documents with state "importing"
and the import's tag (`import:HOST:PID:NONCE`) in assigned_to, annotations with status
"importing". Every reader of the data selects by state ("open", "done", "skipped") or status
("done"), so staged rows are in no queue, no training set, no export, no count of open texts.

When the file is read to its end, the import commits a marker row (staged too, its
text_hash `publish:NONCE`): the decision that it succeeded. Until then any failure (a bad
line, Ctrl-C, a lost connection) deletes the staged rows again, batch by batch. After it, the
rows are published a batch per transaction (an UPDATE of 600,000 rows would hold SQLite's
lock for about 10 s), then the marker is deleted; for those seconds part of the file is
visible. A kill -9 cannot settle its own rows: they stay staged, invisible, and the next import
into the project settles them before it reads a line (discard_stale_imports): published when
the marker is there, deleted when it is not. An import counts as dead when the process in its
tag is gone (same host) or nothing was staged under the tag for STALE_AFTER (another host).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import case, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from core import formats, review
from core.defaults import IMPORT_BATCH, MAX_TEXT_CHARS
from core.errors import FewlabelError, ImportFormatError, SpanError
from core.formats import Record, Row
from core.formats.base import is_offset
from core.schema import Annotation, Document, Project, utcnow
from core.text import (
    ANNOTATOR_MAX,
    NAME_MAX,
    clean_name,
    make_storable,
    unstorable,
    validate_spans,
    words_of,
)

log = logging.getLogger(__name__)
# A record's metadata deeper than this is refused: nobody's metadata is, and a JSON column
# that deep is past what some drivers and Python's own recursion serialise.
MAX_JSON_DEPTH = 64


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


def _check_offsets(spans: Iterable[dict]) -> None:
    """Offsets exactly as integers: `[34.9, 37.2]`, `[true, 3]` or Infinity are refused (a
    SpanError, so --skip-invalid skips the record), never rounded into some other span."""
    for sp in spans:
        if not (is_offset(sp["start"]) and is_offset(sp["end"])):
            got = ", ".join(json.dumps(sp[k])[:30] for k in ("start", "end"))
            raise SpanError(f"span offsets must be whole numbers (integers), not {got}")


def _value_problem(value: object) -> str | None:
    """Why a JSON value (a record's meta) cannot be stored alike on every backend: a string
    core.text.unstorable refuses, Infinity or NaN, or nesting over MAX_JSON_DEPTH."""
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


def _record_problem(rec: Record, max_chars: int | None) -> str | None:
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


def _records(fmt: formats.Format, stream: IO, name: str, options: formats.ReadOptions):
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


# ---------------------------------------------------------------------------- staging

# See the module docstring: the state and status of rows a long import has not published.
STAGED = "importing"
_TAG_PREFIX = "import:"
STALE_AFTER = timedelta(minutes=15)


def _tag() -> str:
    return f"{_TAG_PREFIX}{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _alive(tag: str) -> bool:
    """Whether the import that wrote `tag` may still be running (this host: its process is)."""
    parts = tag[len(_TAG_PREFIX) :].split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname()[:40] or not parts[1].isdigit():
        return True  # another machine's: only its age tells
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _staged(project_id: int, tag: str):
    return (
        Document.project_id == project_id,
        Document.assigned_to == tag,
        Document.state == STAGED,
    )


def _discard(session: Session, project_id: int, tag: str, batch: int) -> int:
    """Delete the rows an import staged, a batch per transaction (they are invisible, so a
    part deleted is no partial state anyone sees)."""
    removed = 0
    while True:
        ids = session.scalars(select(Document.id).where(*_staged(project_id, tag)).limit(batch))
        ids = list(ids)
        if not ids:
            return removed
        session.execute(delete(Annotation).where(Annotation.document_id.in_(ids)))
        session.execute(delete(Document).where(Document.id.in_(ids)))
        session.commit()
        removed += len(ids)


def _marker(tag: str) -> str:
    """The text_hash of the row that says an import was read whole and is being published."""
    return "publish:" + tag.rpartition(":")[2]


def _mark_complete(session: Session, project_id: int, tag: str) -> None:
    """Commit the import's decision: every batch is in; from here it is published, even by
    another process if this one dies (the marker row says so)."""
    session.execute(
        insert(Document).values(
            project_id=project_id,
            text="",
            text_hash=_marker(tag),
            meta={},
            state=STAGED,
            assigned_to=tag,
            assigned_at=utcnow(),
            rank=0.0,
            created_at=utcnow(),
        )
    )
    session.commit()


def _publish(session: Session, project_id: int, tag: str, batch: int) -> None:
    """Make a complete import visible, a batch per transaction: its annotations done, its
    documents done when labeled and open otherwise; the marker goes last.

    A batch, not one UPDATE of every row: on SQLite an UPDATE of 600,000 rows holds the write
    lock for about 10 s, and every annotator's save would wait for it."""
    labeled = exists().where(Annotation.document_id == Document.id)
    while True:
        ids = list(
            session.scalars(
                select(Document.id)
                .where(*_staged(project_id, tag), Document.text_hash != _marker(tag))
                .order_by(Document.id)
                .limit(batch)
            )
        )
        if not ids:
            break
        session.execute(
            update(Annotation)
            .where(Annotation.document_id.in_(ids), Annotation.status == STAGED)
            .values(status="done")
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Document)
            .where(Document.id.in_(ids), Document.state == STAGED)
            .values(state=case((labeled, "done"), else_="open"), assigned_to=None, assigned_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    session.execute(
        delete(Document).where(*_staged(project_id, tag), Document.text_hash == _marker(tag))
    )
    session.commit()


def discard_stale_imports(
    session: Session, project_id: int | None = None, *, batch: int = IMPORT_BATCH
) -> int:
    """Settle what killed imports left staged (in one project, or all): one read whole (its
    marker is there) is published, any other is deleted. Returns the number of documents
    deleted. Commits the session when there is something to settle, only then."""
    now = utcnow()
    where = [Document.state == STAGED]
    if project_id is not None:
        where.append(Document.project_id == project_id)
    rows = session.execute(
        select(Document.project_id, Document.assigned_to, func.max(Document.assigned_at))
        .where(*where)
        .group_by(Document.project_id, Document.assigned_to)
    ).all()
    removed = 0
    for pid, tag, newest in rows:
        tag = tag or ""
        dead = not tag.startswith(_TAG_PREFIX) or not _alive(tag)
        if not (dead or newest is None or newest < now - STALE_AFTER):
            continue
        complete = select(Document.id).where(*_staged(pid, tag), Document.text_hash == _marker(tag))
        if tag.startswith(_TAG_PREFIX) and session.scalar(complete) is not None:
            log.info("finishing import %s, which stopped while publishing", tag)
            _publish(session, pid, tag, batch)
        else:
            removed += _discard(session, pid, tag, batch)
    return removed


# ---------------------------------------------------------------------------- import


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
    max_chars: int | None = MAX_TEXT_CHARS,
    batch_size: int = IMPORT_BATCH,
) -> ImportReport:
    """Import records from a text stream into a project, all or nothing.

    Labeled formats (CoNLL, SciAD, JSONL/CSV with spans) store their labels as annotations
    by `annotator`. With skip_invalid, records with bad spans are skipped and listed instead
    of aborting the import. A text over `max_chars` characters (None or 0: no limit) refuses
    the file, naming its line.

    An import of at most `batch_size` documents is written in the caller's transaction, as
    any data function is. A longer one commits the session (with whatever the caller had
    pending) and then each batch of `batch_size` staged documents in its own transaction, so
    SQLite's write lock is free between batches and annotators keep saving; the last step
    publishes them all at once. If it fails, or is interrupted, it deletes what it staged
    before the error propagates: the user sees all of the file or none of it.
    """
    t0 = time.perf_counter()
    annotator = clean_name(annotator, "annotator name", limit=ANNOTATOR_MAX)
    if fmt == "auto":
        head = stream.read(8192)
        stream = io.StringIO(head + stream.read()) if not stream.seekable() else stream
        if stream.seekable():
            stream.seek(0)
        fmt = detect_format(name, head if isinstance(head, str) else "")
    reader = formats.get(fmt)
    report = ImportReport(source=name, format=fmt)
    project_id = project.id
    discard_stale_imports(session, project_id, batch=batch_size)
    seen = set(session.scalars(select(Document.text_hash).where(Document.project_id == project_id)))
    rng = random.Random(seed)
    spelling = dict(project.label_spelling or {})
    source = make_storable(Path(name).name[:500])
    docs: list[dict] = []
    labeled: list[list[dict] | None] = []
    now = utcnow()
    tag: str | None = None  # set once the import stages batches
    complete = False  # every batch is in: from then on a failure finishes publishing

    def flush() -> None:
        if not docs:
            return
        if tag is not None:
            staged_at = utcnow()  # how discard_stale_imports tells a live import from a dead one
            for doc in docs:
                doc.update(state=STAGED, assigned_to=tag, assigned_at=staged_at)
        ids = session.scalars(
            insert(Document).returning(Document.id, sort_by_parameter_order=True), docs
        ).all()
        anns = [
            {
                "document_id": doc_id,
                "annotator": annotator,
                "status": "done" if tag is None else STAGED,
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
    try:
        for rec in _records(reader, stream, name, options):
            path, line, prefix = reader.where(name, rec.line)
            problem = _record_problem(rec, max_chars)
            if problem:
                raise ImportFormatError(path, line, prefix + problem)
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
                    _check_offsets(rec.spans)
                    mapped = _label_map(project, rec.spans, name, rec.line, spelling)
                    clean = validate_spans(
                        rec.text, mapped, project.labels, words_of(rec.text, rec.tokens)
                    )
                except (SpanError, ImportFormatError) as exc:
                    reason = exc.reason if isinstance(exc, ImportFormatError) else str(exc)
                    if skip_invalid:
                        report.skipped_invalid.append(f"{reader.unit} {rec.line}: {reason}")
                        continue
                    raise ImportFormatError(path, line, prefix + reason) from None
                spans = [s.as_dict() for s in clean]
            seen.add(h)
            docs.append(
                {
                    "project_id": project_id,
                    "external_id": rec.external_id,
                    "text": rec.text,
                    "text_hash": h,
                    "tokens": rec.tokens,
                    "source": source,
                    "meta": rec.meta,
                    "state": "done" if spans is not None else "open",
                    "rank": rng.random(),
                    "created_at": now,
                }
            )
            labeled.append(spans)
            report.imported += 1
            if len(docs) >= batch_size:
                if tag is None:
                    tag = _tag()
                    session.commit()  # the caller's pending work, before the first batch
                flush()
                session.commit()
        flush()
        if spelling != (project.label_spelling or {}):
            project.label_spelling = spelling
        if tag is not None:
            _mark_complete(session, project_id, tag)  # commits the last batch with it
            complete = True
            _publish(session, project_id, tag, batch_size)
        session.flush()
    except BaseException:
        if tag is not None:
            _abandon(session, project_id, tag, batch_size, publish=complete)
        raise
    report.seconds = time.perf_counter() - t0
    return report


def _abandon(session: Session, project_id: int, tag: str, batch: int, *, publish: bool) -> None:
    """After a failure: delete a staged import's rows, or finish publishing one that was read
    whole. If even that fails (the database is gone), the next import into the project does
    it (discard_stale_imports), and the error that stopped this one is the one reported."""
    try:
        session.rollback()
        if publish:
            _publish(session, project_id, tag, batch)
        else:
            _discard(session, project_id, tag, batch)
    except Exception:  # noqa: BLE001 - the import's own error is the one to report
        log.warning("could not settle the rows of import %s; the next import will", tag)


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
        .where(Document.project_id == project.id, Document.state != STAGED)
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
