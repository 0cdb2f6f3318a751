"""Import: records from a file into a project's documents, all of them or none.

A malformed file raises ImportFormatError naming the file and line, and nothing of it is
kept. Every record passes fewlabel's own rules for what any backend stores (core.text.unstorable:
no NUL byte, no lone surrogate; ids of at most 200 characters; a maximum text length,
core.defaults) before it is written, so SQLite and PostgreSQL accept and refuse the same files.
Duplicate texts (within the file or already in the project) are skipped and counted.
Pre-tokenized formats keep their tokens, so CoNLL and SciAD files round-trip token for token.
A record's decisions (a Prodigy binary answer, a JSONL export's `decisions`) are stored as
decisions (core.labeling.decisions) of its text, also of a text already in the project; a
suggestion already answered is not answered again (counted). A whole text rejected (a Prodigy
reject with no span) comes in as a skipped text (counted).
Files are read by core.io.corpus; an import longer than one batch is staged (core.io.staging).
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.defaults import IMPORT_BATCH, MAX_TEXT_CHARS
from core.errors import ConflictError, FewlabelError, ImportFormatError, SpanError
from core.io import formats, staging
from core.io.corpus import detect_format, existing_file, open_as, resolve_format
from core.io.formats import Record
from core.io.records import check_offsets, label_map, read_records, record_problem
from core.labeling.clock import capped
from core.store.db import executemany, refresh_statistics
from core.store.schema import Annotation, Decision, Document, Project, utcnow
from core.text import (
    ANNOTATOR_MAX,
    clean_name,
    make_storable,
    validate_spans,
)


@dataclass
class ImportReport:
    source: str
    format: str
    imported: int = 0
    duplicates: int = 0
    empty: int = 0
    annotations: int = 0
    trimmed: int = 0  # spans kept with the white space at their ends cut off
    decisions: int = 0  # answers about single spans stored (core.labeling.decisions)
    answered_before: int = 0  # decisions about a suggestion already answered: not stored
    rejected_texts: int = 0  # texts rejected whole (a Prodigy reject with no span): skipped
    skipped_invalid: list[str] = field(default_factory=list)  # "line N: reason"
    seconds: float = 0.0

    def summary(self) -> str:
        counts = [(getattr(self, field), what) for field, what in _SUMMARY]
        counts.append((len(self.skipped_invalid), "invalid records skipped"))
        parts = [f"imported {self.imported} documents from {self.source} ({self.format})"]
        parts += [f"{n} {what}" for n, what in counts if n]
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


# What the summary says of each count, in its order (a count of 0 is left out).
_SUMMARY = (
    ("annotations", "with labels"),
    ("decisions", "decisions"),
    ("answered_before", "decisions already answered skipped"),
    ("rejected_texts", "texts rejected whole, stored as skipped"),
    ("trimmed", "spans trimmed of the white space at their ends"),
    ("duplicates", "duplicates skipped"),
    ("empty", "empty texts skipped"),
)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    labels: bool = True,
) -> ImportReport:
    """Import records from a text stream into a project, all or nothing.

    Labeled formats (CoNLL, SciAD, JSONL/CSV with spans) store their labels as annotations
    by `annotator`; with `labels=False` only their texts are imported (open, in the queue)
    and their labels are not read. With skip_invalid, records with bad spans are skipped and
    listed instead of aborting the import. A text over `max_chars` characters (None or 0: no
    limit) refuses the file, naming its line. A file with no record at all is refused (one
    whose records are all empty or already in the project is an import of nothing).
    Another import that adds some of the same texts at the same time makes this one fail
    whole with a ConflictError (the project's unique text hashes decide which one wins).

    An import of at most `batch_size` documents is written in the caller's transaction, as
    any data function is. A longer one commits the session (with whatever the caller had
    pending) and then each batch of `batch_size` staged documents in its own transaction, so
    SQLite's write lock is free between batches and annotators keep saving; one last
    transaction publishes them all (core.io.staging). If it fails, or is interrupted, it deletes
    what it staged before the error propagates; a kill -9 leaves staged rows no reader sees:
    at every moment a reader sees all of the file or none of it.
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
    staging.discard_stale_imports(session, project.id, batch=batch_size)
    run = _Import(session, project, name, annotator, report, random.Random(seed), batch_size)
    options = formats.ReadOptions(text_column=text_column, txt_mode=txt_mode)
    records = 0
    try:
        for rec in read_records(reader, stream, name, options):
            records += 1
            path, line, prefix = reader.where(name, rec.line)
            problem = record_problem(rec, max_chars)
            if problem:
                raise ImportFormatError(path, line, prefix + problem)
            run.add(reader, rec, labels=labels, skip_invalid=skip_invalid)
        if not records:
            raise ImportFormatError(name, None, "no texts in it")
        run.finish()
    except BaseException:
        if run.tag is not None:
            staging.abandon(session, run.project_id, run.tag, batch_size)
        raise
    report.seconds = time.perf_counter() - t0
    return report


class _Import:
    """The documents and annotations of one import on their way to the database: a batch in
    memory, written in the caller's transaction, or once the file is longer than a batch,
    staged a batch per transaction under `tag` (core.io.staging) and published at the end."""

    def __init__(self, session, project, name, annotator, report, rng, batch_size) -> None:
        self.session, self.project, self.name = session, project, name
        self.annotator, self.report, self.rng, self.batch_size = annotator, report, rng, batch_size
        self.project_id = project.id
        self.seen = set(
            session.scalars(select(Document.text_hash).where(Document.project_id == project.id))
        )
        self.spelling = dict(project.label_spelling or {})
        self.source = make_storable(Path(name).name[:500])
        self.docs: list[dict] = []
        # (status, spans) of each document of the batch that comes with an annotation
        self.labeled: list[tuple[str, list[dict]] | None] = []
        self.answers: list[tuple[str, dict]] = []  # (text hash, decision), written at the end
        self.now = utcnow()
        self.tag: str | None = None  # set once the import stages batches

    def add(self, reader: formats.Format, rec: Record, *, labels: bool, skip_invalid: bool):
        """Take one valid record: skipped when empty, a duplicate or (`skip_invalid`) with bad
        spans; a full batch is written."""
        report = self.report
        if not rec.text.strip():
            report.empty += 1
            return
        h = text_hash(rec.text)
        answers = self._answers(reader, rec, skip_invalid) if labels and rec.decisions else []
        if answers is False:
            return
        self.answers.extend((h, d) for d in answers)
        if h in self.seen:
            if not answers:  # another answer about a text seen is no duplicate
                report.duplicates += 1
            return
        spans = None
        if labels and rec.spans is not None:
            spans = self._spans(reader, rec, skip_invalid)
            if spans is False:
                return
        status = "done" if spans is not None else None
        if labels and rec.skipped and spans is None:
            status, spans = "skipped", []
            report.rejected_texts += 1
        self.seen.add(h)
        self.docs.append(
            {
                "project_id": self.project_id,
                "external_id": rec.external_id,
                "text": rec.text,
                "text_hash": h,
                "tokens": rec.tokens,
                "source": self.source,
                "meta": rec.meta,
                "state": status or "open",
                # its place in the file while staged (core.io.staging.publish draws its
                # random rank); flush draws it for an import of one batch
                "rank": float(report.imported),
                "created_at": self.now,
            }
        )
        self.labeled.append((status, spans) if status else None)
        report.imported += 1
        if len(self.docs) >= self.batch_size:
            if self.tag is None:
                self.tag = staging.new_tag()
                self.session.commit()  # the caller's pending work, before the first batch
            self.flush()
            self.session.commit()

    def _spans(self, reader: formats.Format, rec: Record, skip_invalid: bool):
        """The record's spans checked against the project, as stored; False when they are
        invalid and `skip_invalid` lists the record instead of refusing the file."""
        try:
            check_offsets(rec.spans)
            mapped = label_map(
                self.project, rec.spans, self.name, rec.line, self.spelling, rec.span_lines
            )
            trimmed: list = []
            clean = validate_spans(
                rec.text, mapped, self.project.labels, rec.tokens, trimmed=trimmed
            )
            self.report.trimmed += len(trimmed)
        except (SpanError, ImportFormatError) as exc:
            return self._invalid(reader, rec, skip_invalid, exc)
        return [s.as_dict() for s in clean]

    def _answers(self, reader: formats.Format, rec: Record, skip_invalid: bool):
        """The record's decisions, each span checked as a save's (its exact offsets), as
        stored; False when one is invalid and `skip_invalid` lists the record."""
        out = []
        try:
            check_offsets(rec.decisions)
            mapped = label_map(self.project, rec.decisions, self.name, rec.line, self.spelling)
            for d in mapped:
                given = {k: d[k] for k in ("start", "end", "label")}
                clean = validate_spans(rec.text, [given], self.project.labels, rec.tokens)
                if clean[0].as_dict() != given:
                    raise SpanError(f"decision span {given['start']}-{given['end']} is not exact")
                out.append(given | self._answer_fields(d))
        except (SpanError, ImportFormatError) as exc:
            return self._invalid(reader, rec, skip_invalid, exc)
        return out

    def _answer_fields(self, d: dict) -> dict:
        who = d.get("annotator")
        try:
            who = clean_name(who, "annotator name", limit=ANNOTATOR_MAX) if who else None
        except FewlabelError:
            who = None  # not a name fewlabel stores: the import's annotator answered
        score = d.get("confidence")
        number = isinstance(score, int | float) and not isinstance(score, bool)
        return {
            "answer": d["answer"],
            "annotator": who or self.annotator,
            "confidence": float(score) if number and math.isfinite(score) else None,
            "seconds": capped(d.get("seconds")),
        }

    def _invalid(self, reader, rec: Record, skip_invalid: bool, exc: Exception):
        """False, with the record listed, under `skip_invalid`; else the file is refused."""
        reason = exc.reason if isinstance(exc, ImportFormatError) else str(exc)
        # the label's own line where the reader knows it (CoNLL), else the record's
        at = getattr(exc, "line", None) or rec.line
        if skip_invalid:
            self.report.skipped_invalid.append(f"{reader.unit} {at}: {reason}")
            return False
        path, line, prefix = reader.where(self.name, at)
        raise ImportFormatError(path, line, prefix + reason) from None

    def flush(self) -> None:
        """Write the batch in memory: its documents, then the annotations of the labeled."""
        docs, session = self.docs, self.session
        if not docs:
            return
        if self.tag is not None:
            staged_at = utcnow()  # how discard_stale_imports tells a live import from a dead one
            for doc in docs:
                doc.update(state=staging.STAGED, assigned_to=self.tag, assigned_at=staged_at)
        else:
            for doc in docs:
                doc["rank"] = self.rng.random()
        staging.roomy_cache(session)
        # one executemany for the batch: the ORM's insert with RETURNING ids in order ran
        # one INSERT per row on SQLite (half an import's time)
        try:
            executemany(session, insert(Document.__table__), docs)
        except IntegrityError as exc:
            if not _same_text(exc):
                raise
            # another import of the same texts got there first (not in `seen` when read)
            raise ConflictError(
                f"another import into project {self.project.name} added some of these texts "
                f"at the same time; nothing of {self.name} was imported; run it again to add "
                "the rest"
            ) from None
        pairs = [(d, lab) for d, lab in zip(docs, self.labeled, strict=True) if lab is not None]
        hashes = [d["text_hash"] for d, _ in pairs]
        ids = _ids_of(session, self.project_id, hashes) if hashes else {}
        staged = self.tag is not None
        anns = [
            {
                "document_id": ids[doc["text_hash"]],
                "annotator": self.annotator,
                "status": staging.STAGED if staged and status == "done" else status,
                "spans": spans,
                "previous": [],
                "created_at": self.now,
                "updated_at": self.now,
            }
            for doc, (status, spans) in pairs
        ]
        if anns:
            executemany(session, insert(Annotation.__table__), anns)
        self.report.annotations += sum(a["status"] != "skipped" for a in anns)
        docs.clear()
        self.labeled.clear()

    def finish(self) -> None:
        """Write the last batch and the decisions, and make the import visible: in the
        caller's transaction, or (staged) every staged row in one commit."""
        self.flush()
        self.write_answers()
        project = self.project
        if self.spelling != (project.label_spelling or {}):
            project.label_spelling = self.spelling
        if self.tag is not None:  # the last batch and every staged row go visible in one commit
            staging.publish(self.session, self.project_id, self.tag, self.batch_size, self.rng)
        self.session.flush()
        if self.report.imported:
            refresh_statistics(self.session)  # the queue's plan must see the new rows now

    def write_answers(self) -> None:
        """The file's decisions, a suggestion answered (in the project or earlier in the
        file) counted and left out: in the transaction that makes the import visible."""
        session, report = self.session, self.report
        hashes = sorted({h for h, _ in self.answers})
        ids = _ids_of(session, self.project_id, hashes)
        answered: set[tuple] = set()
        doc_ids = sorted(set(ids.values()))
        for start in range(0, len(doc_ids), 1000):
            answered.update(
                session.execute(
                    select(
                        Decision.document_id, Decision.start, Decision.end, Decision.label
                    ).where(Decision.document_id.in_(doc_ids[start : start + 1000]))
                ).all()
            )
        rows = []
        for h, d in self.answers:
            key = (ids[h], d["start"], d["end"], d["label"])
            if key in answered:
                report.answered_before += 1
                continue
            answered.add(key)
            rows.append(d | {"document_id": ids[h], "origin": "import", "created_at": self.now})
        if rows:
            executemany(session, insert(Decision.__table__), rows)
        report.decisions += len(rows)
        self.answers.clear()


def _ids_of(session: Session, project_id: int, hashes: list[str]) -> dict[str, int]:
    """The ids of a project's documents by text hash (unique in a project): those of a batch
    just inserted, which its annotations need."""
    ids: dict[str, int] = {}
    for start in range(0, len(hashes), 1000):
        chunk = hashes[start : start + 1000]
        ids.update(
            session.execute(
                select(Document.text_hash, Document.id).where(
                    Document.project_id == project_id, Document.text_hash.in_(chunk)
                )
            ).all()
        )
    return ids


def _same_text(exc: IntegrityError) -> bool:
    """Whether an insert of documents failed on the project's unique text hashes (SQLite and
    PostgreSQL name the constraint or its columns)."""
    message = str(exc.orig)
    return "uq_documents_project_text" in message or "documents.text_hash" in message


def import_file(session: Session, project: Project, path: str | Path, **kwargs) -> ImportReport:
    """Import a file from disk; see import_stream."""
    path = existing_file(path)  # a folder or a missing file: one line saying which
    kwargs["fmt"] = resolve_format(path, kwargs.get("fmt", "auto"))
    with open_as(path, kwargs["fmt"]) as fh:
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
