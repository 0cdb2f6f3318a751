"""Prodigy JSONL (`prodigy db-out`): text, tokens and spans with token indices, an answer.

Told apart from plain JSONL by its own keys: `_input_hash`/`_task_hash`, `answer`, or tokens
that are objects. Offsets are Python code points, as in spaCy. `token_end` is inclusive.

Reading. An accepted example from a manual recipe (`ner.manual`, `ner.correct`: every span of
the text marked) is the text's labels; an example with no answer (a Prodigy input file) is
taken as labeled when it has spans. A binary recipe (`ner.teach`, Prodigy's `ner` view:
`_view_id` "ner") asks about one suggested span at a time: its accepted span is an accept
decision (core.labeling.decisions), not the text's labels. A rejected example's spans are
reject decisions, whatever the recipe (the annotator said those spans are wrong); a rejected
example with no span rejects the whole text and comes in as a skipped text (counted in the
import report). A binary recipe's ignored span is an "ignore" decision (no answer, not data,
but the suggestion was shown); a manual recipe's ignored example comes in as a text to label.

Writing. A labeled text is one task with its spans (answer "accept", a skipped one "ignore");
each decision is a task of its own in the binary `ner` view, its one span and its answer
("accept" / "reject" / "ignore") and `_annotator_id`, so Prodigy reads it as `ner.teach`
wrote it and fewlabel reads it back as the same decision.
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
BINARY_VIEW = "ner"  # Prodigy's view of one suggested span (ner.teach); ner_manual marks all


def _decisions(obj: dict, answer: str, name: str, line: int) -> list[dict] | None:
    """The example's answers about single spans: a reject's spans, a binary accept's span."""
    raw = obj.get("spans")
    binary = obj.get("_view_id") == BINARY_VIEW
    if raw is None or (answer != "reject" and not binary):
        return None  # a manual recipe's accept: the text's labels; its ignore: a text
    spans = spans_field(raw, name, line)
    who = obj.get("_annotator_id") if isinstance(obj.get("_annotator_id"), str) else None
    out = []
    for given, span in zip(raw if isinstance(raw, list) else spans, spans, strict=True):
        score = given.get("score") if isinstance(given, dict) else None
        confident = isinstance(score, int | float) and not isinstance(score, bool)
        d = span | {"answer": answer, "confidence": float(score) if confident else None}
        out.append(d | ({"annotator": who} if who else {}))
    return out


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    for i, obj in json_lines(stream, name):
        answer = obj.get("answer", "accept")
        if answer not in ("accept", "reject", "ignore"):
            raise ImportFormatError(name, i, f"unknown answer {answer!r}")
        decisions = _decisions(obj, answer, name, i)
        labeled = answer == "accept" and obj.get("spans") is not None and decisions is None
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
            decisions=decisions or None,
            skipped=answer == "reject" and not decisions,
        )


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """One task a line, and one per decision; Prodigy adds its hashes when the file goes in
    with `db-in`. Returns the number of texts written."""
    n = 0
    for r in rows:
        n += 1
        spans = [{k: d[k] for k in ("start", "end", "label")} for d in r.decisions]
        words = words_of(r.text, r.tokens, [*r.spans, *spans])
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

        def indexed(s: dict, first=first, last=last) -> dict:
            return s | {"token_start": first.get(s["start"]), "token_end": last.get(s["end"])}

        meta = r.meta | ({"id": r.id} if r.id is not None else {})
        if r.status != "open" or not r.decisions:
            task = {"text": r.text, "tokens": tokens, "spans": [indexed(s) for s in span_dicts(r)]}
            task["meta"] = meta
            if r.status in ANSWERS:
                task["answer"] = ANSWERS[r.status]
            out.write(json.dumps(task, ensure_ascii=False) + "\n")
        for d, span in zip(r.decisions, spans, strict=True):
            span = indexed(span | {"text": r.text[span["start"] : span["end"]]})
            if d.get("confidence") is not None:
                span["score"] = d["confidence"]
            task = {"text": r.text, "tokens": tokens, "spans": [span], "meta": meta}
            task |= {"answer": d["answer"], "_view_id": BINARY_VIEW}
            task["_annotator_id"] = d.get("annotator")
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
    decisions=True,
)
