"""Link anchors: plain text of Markdown / HTML / wiki-marked text, and its anchors as spans.

The paper behind fewlabel (Pierse & Lu, 2020) took Wikipedia hyperlinks as free labels for
concepts of interest: an anchor's text names a concept.
"""

from __future__ import annotations

import html
import re

from core.text import Span, snap_span, tokenize
from core.weak.concepts.tagger import CONCEPT

_WIKI_NAMESPACES = frozenset(
    "category file image media template wikipedia wp help portal special user talk draft "
    "module mediawiki book timedtext".split()
)
_LINK_RE = re.compile(
    r"\[\[(?P<wt>[^\[\]|]*)(?:\|(?P<wl>[^\[\]]*))?\]\](?P<wtrail>[a-z]*)"  # [[Title|text]]s
    r"|!\[(?P<ialt>[^\[\]]*)\]\([^()\s]*(?:\s+\"[^\"]*\")?\)"  # ![alt](src): an image
    r"|\[(?P<mt>[^\[\]]+)\]\((?P<mu>[^()\s]+)(?:\s+\"[^\"]*\")?\)"  # [text](url "title")
    r"|<a\b[^>]*>(?P<at>.*?)</a\s*>"  # <a href="...">text</a>
    r"|(?P<tag></?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>)"  # any other HTML tag
    r"|(?P<ent>&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)"  # &amp; &#233;
    r"|(?P<tpl>\{\{[^{}]*\}\})"  # {{wiki template}}
    r"|(?P<emph>'{2,5})",  # ''italic'', '''bold'''
    re.IGNORECASE | re.DOTALL,
)
_INNER_TAG_RE = re.compile(r"<[^<>]*>")


def _wiki_display(title: str, label: str | None) -> str | None:
    """What a wiki link shows; None for links that show nothing ([[Category:X]])."""
    prefix, colon, _ = title.partition(":")
    if colon and prefix.strip().lower() in _WIKI_NAMESPACES:
        return None
    if label is None:
        return title.lstrip(":")
    if label == "":  # the pipe trick: [[Plane (mathematics)|]] shows "Plane"
        return re.sub(r"\s*\([^)]*\)\s*$", "", title.split(":")[-1]).strip()
    return label


def strip_links(marked: str, *, label: str = CONCEPT) -> tuple[str, list[Span]]:
    """Plain text of Markdown / HTML / wiki-marked text, and its link anchors as spans.

    Anchors of `[text](url)`, `<a href=...>text</a>`, `[[Title|text]]` and `[[Title]]`
    (with a blended suffix: `[[bus]]es` -> "buses") become `label` spans, snapped to the
    words of the plain text (core.text.tokenize). Other HTML tags, wiki templates and
    emphasis quotes are removed, entities are decoded, and images keep their alt text.
    """
    out: list[str] = []
    anchors: list[tuple[int, int]] = []
    pos = length = 0

    def emit(s: str) -> None:
        nonlocal length
        out.append(s)
        length += len(s)

    for m in _LINK_RE.finditer(marked):
        emit(marked[pos : m.start()])
        pos = m.end()
        g = m.groupdict()
        anchor: str | None = None
        if m.group(0).startswith("[["):
            shown = _wiki_display(g["wt"] or "", g["wl"])
            if shown is not None:
                anchor = html.unescape(shown) + (g["wtrail"] or "")
        elif g["ialt"] is not None:
            emit(g["ialt"])
        elif g["mt"] is not None:
            anchor = g["mt"]
        elif g["at"] is not None:
            anchor = html.unescape(_INNER_TAG_RE.sub("", g["at"]))
        elif g["ent"] is not None:
            emit(html.unescape(g["ent"]))
        # tags, templates and emphasis quotes vanish
        if anchor:
            start = length
            emit(anchor)
            if anchor.strip():
                anchors.append((start, length))
    emit(marked[pos:])
    plain = "".join(out)
    if not anchors:
        return plain, []
    words = tokenize(plain)
    spans: list[Span] = []
    last_end = -1
    for start, end in anchors:
        got = snap_span(start, end, words)
        if got is not None and got[0] >= last_end:
            spans.append(Span(got[0], got[1], label))
            last_end = got[1]
    return plain, spans
