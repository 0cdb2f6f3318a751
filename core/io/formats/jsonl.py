"""JSONL: `{"text", "spans"?, "meta"?, "id"?, "tokens"?, "decisions"?}` a line, spans in
character offsets. `decisions` are answers about single spans (core.labeling.decisions):
`[{start, end, label, answer, annotator, origin, confidence, seconds, created_at}]`; export
writes them for every text that has some, import reads them back as decisions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO

from core.errors import ImportFormatError
from core.io.formats.base import (
    Format,
    ReadOptions,
    Record,
    Row,
    WriteOptions,
    json_lines,
    span_dicts,
    spans_field,
    str_id,
)


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    for i, obj in json_lines(stream, name):
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise ImportFormatError(name, i, '"meta" must be an object')
        tokens = obj.get("tokens")
        if tokens is not None and (
            not isinstance(tokens, list)
            or not all(isinstance(t, str) for t in tokens)
            or " ".join(tokens) != obj["text"]
        ):
            tokens = None  # only kept when they are exactly the text's tokens
        yield Record(
            line=i,
            text=obj["text"],
            tokens=tokens,
            spans=spans_field(obj["spans"], name, i) if obj.get("spans") is not None else None,
            external_id=str_id(obj.get("id")),
            meta=meta,
            decisions=_decisions(obj.get("decisions"), name, i),
        )


def _decisions(raw, name: str, line: int) -> list[dict] | None:
    if raw is None:
        return None
    spans = spans_field(raw, name, line)
    out = []
    for given, span in zip(raw if isinstance(raw, list) else spans, spans, strict=True):
        answer = given.get("answer") if isinstance(given, dict) else None
        if answer not in ("accept", "reject", "ignore"):
            raise ImportFormatError(name, line, f"a decision needs an answer: {given!r}"[:200])
        extra = {k: given[k] for k in ("annotator", "confidence", "seconds") if k in given}
        out.append(span | {"answer": answer} | extra)
    return out or None


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """One object a line; a prediction's has no review fields, and meta only when it has some."""
    n = 0
    for r in rows:
        n += 1
        obj = {"id": r.id} if r.id is not None else {}
        obj |= {"text": r.text, "spans": span_dicts(r)}
        if r.status is not None:
            obj |= {"annotator": r.annotator, "source": r.source, "status": r.status}
            obj["updated_at"] = r.updated_at
            obj["meta"] = r.meta
        elif r.meta:
            obj["meta"] = r.meta
        if r.tokens:
            obj["tokens"] = r.tokens
        if r.decisions:
            obj["decisions"] = [_decision(d) for d in r.decisions]
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return n


def _decision(d: dict) -> dict:
    at = d.get("created_at")
    return d | {"created_at": at.isoformat(timespec="seconds") if at is not None else None}


def sniff(head: str) -> int:
    return 1 if head.lstrip().startswith("{") else 0


FORMAT = Format(
    name="jsonl",
    suffixes=(".jsonl", ".ndjson"),
    mime="application/x-ndjson",
    description='one {"text", "spans"?, "meta"?, "id"?} a line; spans [{start, end, label}]',
    read=read,
    write=write,
    sniff=sniff,
    rank=30,
    decisions=True,
)
