"""Plain text: one text a line, or paragraphs; written as tagged text, `[NLP]{SHORT} is fun`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import IO

from core.errors import FewlabelError
from core.formats.base import Format, ReadOptions, Record, Row, WriteOptions
from core.text import tagged_text


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    """One text a line, or paragraphs separated by blank lines (`auto` picks per file)."""
    mode = options.txt_mode
    if mode == "auto":
        first = stream.read(1 << 16)
        # Lines that wrap inside paragraphs look like "a\nb\n\nc"; a list of texts has no gaps.
        mode = "paragraphs" if re.search(r"\S[^\n]*\n[^\S\n]*\n+[^\S\n]*\S", first) else "lines"
        stream = _chain(first, stream)
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


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """One document a line with its spans inline (line breaks inside a text become spaces)."""
    n = 0
    for r in rows:
        n += 1
        out.write(tagged_text(r.text, r.spans).replace("\n", " ") + "\n")
    return n


FORMAT = Format(
    name="txt",
    suffixes=(".txt",),
    mime="text/plain",
    description="one text a line, or paragraphs (--txt-mode); written as [words]{LABEL} lines",
    read=read,
    write=write,
    rank=20,
    fallback=True,
)
