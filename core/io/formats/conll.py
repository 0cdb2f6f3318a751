"""CoNLL/BIO: `token<TAB>BIO-label` a line, a blank line between documents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

from core.errors import ImportFormatError
from core.io.formats.base import (
    BIO_RE,
    Format,
    ReadOptions,
    Record,
    Row,
    WriteOptions,
    check_bio,
    tagged_record,
    words_and_tags,
)


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    """`token<TAB>BIO-label` lines; a blank line ends a document; -DOCSTART- lines are ignored."""
    tokens: list[str] = []
    tags: list[str] = []
    lines: list[int] = []  # each token's line: an error about a label names its line
    start = 1
    for i, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            if tokens:
                yield tagged_record(name, start, tokens, tags, None, lines)
                tokens, tags, lines = [], [], []
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
        lines.append(i)
        check_bio(tags[-1], name, i)
    if tokens:
        yield tagged_record(name, start, tokens, tags, None, lines)


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """token<TAB>BIO-label, a blank line between documents; skipped documents are left out."""
    n = 0
    for r in rows:
        if r.status == "skipped":
            continue
        words, tags = words_and_tags(r, options.spelling)
        for w, tag in zip(words, tags, strict=True):
            out.write(f"{w.text}\t{tag}\n")
        out.write("\n")
        n += 1
    return n


def sniff(head: str) -> int:
    """Every one of the first 50 lines is `token<TAB>tag` with a BIO tag."""
    lines = [ln for ln in head.splitlines() if ln.strip()][:50]
    ok = lines and all("\t" in ln and BIO_RE.match(ln.rsplit("\t", 1)[1].strip()) for ln in lines)
    return 2 if ok else 0


FORMAT = Format(
    name="conll",
    suffixes=(".conll", ".bio", ".iob", ".tsv"),
    mime="text/plain",
    description="token<TAB>BIO-label a line, a blank line between documents",
    read=read,
    write=write,
    sniff=sniff,
    rank=40,
)
