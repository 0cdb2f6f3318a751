"""SciAD JSON: a list of `{id, tokens, labels}` with BIO labels (the SciAD/SDU datasets)."""

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
    json_list,
    str_id,
    tagged_record,
    words_and_tags,
)
from core.text import join_tokens


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    """Read whole (the format is one JSON array); errors name the record, not a line.

    Tokens are strings: a `null` or a number among them refuses the file (naming the record
    and the token) rather than becoming the word "None" or "3.0"."""
    for n, obj in enumerate(json_list(stream, name, "{id, tokens, labels}"), 1):
        where = f"record {n}"
        if not isinstance(obj, dict) or not isinstance(obj.get("tokens"), list):
            raise ImportFormatError(name, None, f"{where}: needs a tokens list")
        tokens = obj["tokens"]
        for k, token in enumerate(tokens, 1):
            # A null token is no word: never the word "None" (nor a number made a word).
            if not isinstance(token, str):
                raise ImportFormatError(
                    name, None, f"{where}: token {k} is {json.dumps(token)[:40]}, not a string"
                )
        labels = obj.get("labels")
        if labels is None:
            text, _ = join_tokens(tokens)
            yield Record(line=n, text=text, tokens=tokens, external_id=str_id(obj.get("id")))
            continue
        if not isinstance(labels, list) or len(labels) != len(tokens):
            raise ImportFormatError(name, None, f"{where}: labels and tokens differ in length")
        try:
            rec = tagged_record(name, n, tokens, [str(x) for x in labels], str_id(obj.get("id")))
        except ImportFormatError as exc:
            raise ImportFormatError(name, None, f"{where}: {exc.reason}") from None
        yield rec


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """The JSON list, one record per document; skipped documents are left out."""
    data = []
    for r in rows:
        if r.status == "skipped":
            continue
        words, tags = words_and_tags(r, options.spelling)
        obj = {"id": r.id} if r.id is not None else {}
        data.append(obj | {"tokens": [w.text for w in words], "labels": tags})
    json.dump(data, out, ensure_ascii=False)
    out.write("\n")
    return len(data)


def sniff(head: str) -> int:
    return 1 if head.lstrip().startswith("[") else 0


FORMAT = Format(
    name="sciad",
    suffixes=(".json",),
    mime="application/json",
    description="a JSON list of {id, tokens, labels} with BIO labels",
    read=read,
    write=write,
    sniff=sniff,
    rank=50,
    unit="record",
)
