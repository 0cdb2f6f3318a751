"""Plain text: one text a line, or paragraphs; written as tagged text, `[NLP]{SHORT} is fun`."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable, Iterator
from typing import IO

from core.errors import FewlabelError
from core.io.formats.base import Format, ReadOptions, Record, Row, WriteOptions
from core.text import tagged_text

_LINE_END = re.compile(r"\r\n|\r|\n")


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    """One text a line, or paragraphs separated by blank lines (`auto` picks per file).

    A line ends at LF, CRLF or a lone CR (old Mac files), whichever the file uses. `auto`
    looks at the first 64 KiB, completed to a whole line, in one linear pass: a 50 MB line
    costs what `lines` costs."""
    mode = options.txt_mode
    lines: Iterable[str] = stream
    if mode == "auto":
        # Completed to the end of its line, so the rest of the stream starts a line.
        first = stream.read(1 << 16)
        first += stream.readline()
        mode = "paragraphs" if _has_paragraphs(first) else "lines"
        lines = itertools.chain(io.StringIO(first, newline=""), stream)
    if mode not in ("lines", "paragraphs"):
        raise FewlabelError(f"unknown txt mode {mode!r}; use lines or paragraphs")
    if mode == "lines":
        for i, line in enumerate(_split_lines(lines), 1):
            if line.strip():
                yield Record(line=i, text=line.strip())
        return
    buf: list[str] = []
    start = 1
    for i, line in enumerate(_split_lines(lines), 1):
        if line.strip():
            if not buf:
                start = i
            buf.append(line.strip())
        elif buf:
            yield Record(line=start, text=" ".join(buf))
            buf = []
    if buf:
        yield Record(line=start, text=" ".join(buf))


def _split_lines(lines: Iterable[str]) -> Iterator[str]:
    """Each line without its ending, split at LF, CRLF and a lone CR alike.

    A file opened with newline="" (as import opens it) already splits there; a stream that
    splits only at LF (io.StringIO's default) has its CR-only lines split here."""
    for line in lines:
        if line.endswith("\r\n"):
            line = line[:-2]
        elif line.endswith(("\r", "\n")):
            line = line[:-1]
        if "\r" in line or "\n" in line:
            yield from _LINE_END.split(line)
        else:
            yield line


def _has_paragraphs(head: str) -> bool:
    """A blank line between two lines with text: paragraphs, which a list of texts lacks
    ("a\nb\n\nc" holds wrapped lines; "a\nb\nc" is three texts)."""
    seen_text = seen_gap = False
    for line in _LINE_END.split(head):
        if line.strip():
            if seen_gap:
                return True
            seen_text = True
        elif seen_text:
            seen_gap = True
    return False


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
