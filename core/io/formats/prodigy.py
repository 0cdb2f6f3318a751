"""Prodigy JSONL (`prodigy db-out`): text, tokens and spans with token indices, an answer.

Told apart from plain JSONL by its own keys: `_input_hash`/`_task_hash`, `answer`, or tokens
that are objects. Offsets are Python code points, as in spaCy. Only accepted examples are
labels; rejected and ignored ones come in as texts to label. An example with no answer (a
Prodigy input file) is taken as labeled when it has spans. `token_end` is inclusive.
"""

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
    first_line_object,
    json_lines,
    span_dicts,
    spans_field,
    str_id,
)
from core.text import words_of

ANSWERS = {"done": "accept", "skipped": "ignore"}  # an open document has no answer yet


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    for i, obj in json_lines(stream, name):
        answer = obj.get("answer", "accept")
        if answer not in ("accept", "reject", "ignore"):
            raise ImportFormatError(name, i, f"unknown answer {answer!r}")
        labeled = answer == "accept" and obj.get("spans") is not None
        tokens = obj.get("tokens") if isinstance(obj.get("tokens"), list) else []
        words = [t.get("text") for t in tokens if isinstance(t, dict)]
        if not all(isinstance(w, str) for w in words):
            words = []  # tokens without their text: the text's own words serve
        given = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
        meta = {k: v for k, v in given.items() if k != "id"}
        yield Record(
            line=i,
            text=obj["text"],
            tokens=words if words and " ".join(words) == obj["text"] else None,
            spans=spans_field(obj["spans"], name, i) if labeled else None,
            external_id=str_id(obj.get("id", given.get("id"))),
            meta=meta,
        )


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """One task a line; Prodigy adds its hashes when the file goes in with `db-in`."""
    n = 0
    for r in rows:
        n += 1
        words = words_of(r.text, r.tokens, r.spans)
        tokens = [
            {
                "text": w.text,
                "start": w.start,
                "end": w.end,
                "id": k,
                "ws": r.text[w.end : w.end + 1].isspace(),
            }
            for k, w in enumerate(words)
        ]
        first = {w.start: k for k, w in enumerate(words)}
        last = {w.end: k for k, w in enumerate(words)}  # Prodigy's token_end is inclusive
        spans = [
            s | {"token_start": first.get(s["start"]), "token_end": last.get(s["end"])}
            for s in span_dicts(r)
        ]
        task = {"text": r.text, "tokens": tokens, "spans": spans}
        task["meta"] = r.meta | ({"id": r.id} if r.id is not None else {})
        if r.status in ANSWERS:
            task["answer"] = ANSWERS[r.status]
        out.write(json.dumps(task, ensure_ascii=False) + "\n")
    return n


def sniff(head: str) -> int:
    """Prodigy's keys on the first line (searched as text when the line is longer than the head)."""
    if not head.lstrip().startswith("{"):
        return 0
    obj = first_line_object(head)
    if obj is None:
        line = head.lstrip().split("\n", 1)[0]
        return 2 if '"_input_hash"' in line or '"_task_hash"' in line else 0
    tokens = obj.get("tokens")
    own = {"_input_hash", "_task_hash", "answer"} & obj.keys()
    return 2 if own or (isinstance(tokens, list) and tokens and isinstance(tokens[0], dict)) else 0


FORMAT = Format(
    name="prodigy",
    suffixes=(".jsonl",),
    mime="application/x-ndjson",
    description="Prodigy's JSONL (db-out): text, tokens, spans; accepted answers are labels",
    read=read,
    write=write,
    sniff=sniff,
    rank=70,
)
