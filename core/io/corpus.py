"""Reading files and exporting projects: the pipeline around the readers and writers of
core.io.formats.

Reading finds a file's format (from its name, then its first lines) and streams its records,
without a database (pretraining corpora, predict); core.io.imports stores them in a project.
Export turns a project's documents into the rows every format's writer takes: a reviewed
text's final version, else its latest done annotation.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import FewlabelError, ImportFormatError
from core.io import formats
from core.io.formats import Record, Row
from core.labeling.decisions import decisions_for
from core.labeling.gold import gold_of
from core.store.schema import STAGED, Document, Project

# ---------------------------------------------------------------------------- reading files


def detect_format(name: str, head: str) -> str:
    """Guess a format from the file name, then from its first lines (CoNLL often ends in .txt)."""
    return formats.detect(name, head).name


def existing_file(path: str | Path) -> Path:
    """`path`, when it is a file to read; else one line saying what it is instead."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise FewlabelError(f"{path} is a folder; give a file")
    if path.exists():
        raise FewlabelError(f"{path} is not a regular file; give a file")
    raise FewlabelError(f"{path}: no such file")


def resolve_format(path: str | Path, fmt: str = "auto") -> str:
    """The format of a file on disk: `fmt` itself, or found from its name and first lines."""
    path = existing_file(path)
    if fmt != "auto":
        return formats.get(fmt).name
    by_suffix = formats.for_path(path)
    if by_suffix is not None and by_suffix.binary:
        return by_suffix.name
    with open_as(path, "txt") as fh:
        return detect_format(path.name, fh.read(8192))


@contextmanager
def open_as(path: Path, fmt: str) -> Iterator[IO]:
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
    with open_as(path, fmt) as fh:
        yield from formats.get(fmt).read(fh, str(path), formats.ReadOptions())


# ---------------------------------------------------------------------------- export


def export_rows(
    session: Session,
    project: Project,
    *,
    annotator: str | None = None,
    include_unlabeled: bool = False,
    with_decisions: bool = False,
) -> Iterator[Row]:
    """One row per document: its gold (core.labeling.gold: its final version, else its latest
    done annotation, else its skipped mark), optionally open ones; each row's `source` says
    which it is.

    With `annotator`, only that annotator's own annotations count (final versions do not),
    and only their decisions. `with_decisions` (a format that writes them, Format.decisions):
    each row carries its text's decisions (core.labeling.decisions), and a text with decisions
    and no labels is a row too ("open").
    """
    docs = session.execute(
        select(Document)
        .where(Document.project_id == project.id, Document.state != STAGED)
        .order_by(Document.id)
        .execution_options(yield_per=1000)
    ).scalars()
    while batch := list(itertools.islice(docs, 500)):
        ids = [d.id for d in batch]
        golds = gold_of(session, [Document.id.in_(ids)], annotator=annotator, skips=True)
        answers = decisions_for(session, ids) if with_decisions else {}
        if annotator is not None:
            answers = {
                i: mine
                for i, ds in answers.items()
                if (mine := [d for d in ds if d["annotator"] == annotator])
            }
        for d in batch:
            row = Row(
                id=d.external_id or str(d.id),
                text=d.text,
                tokens=d.tokens,
                meta=dict(d.meta or {}),
                spans=[],
                status="open",
                decisions=answers.get(d.id, []),
            )
            g = golds.get(d.id)
            if g is not None:
                yield dataclasses.replace(
                    row,
                    spans=list(g.spans),
                    annotator=g.by,
                    status=g.status,
                    updated_at=g.updated_at.isoformat(timespec="seconds"),
                    source=g.source,
                )
            elif include_unlabeled or row.decisions:
                yield row


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
        session,
        project,
        annotator=annotator,
        include_unlabeled=include_unlabeled,
        with_decisions=writer.decisions,
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
