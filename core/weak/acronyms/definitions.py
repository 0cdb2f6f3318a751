"""Acronym definitions: the (short form, long form) pairs a text spells out.

"long form (SF)" as Schwartz and Hearst (2003) find it, and "SF (long form)", glossary lines
("SF: long form", "SF = long form", "[SF] long form") and cue phrases ("SF stands for ...",
"..., abbreviated as SF"). Which words make the long form is core.weak.acronyms.long_forms'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.text import Span, Word, tokenize
from core.weak.acronyms.long_forms import (
    BOUNDARY,
    QUOTES,
    SCORING,
    long_form_after,
    long_form_before,
    sf_letters,
)
from core.weak.acronyms.short_forms import (
    GLUE,
    LONG,
    ROMAN_RE,
    SHORT,
    is_piece,
    looks_like_short_form,
)
from core.weak.stopwords import LONG_FORM_STOP

_MAX_PAREN = 14  # words inside a parenthesis that can hold a definition

# "SF stands for LF": cues after which the long form follows the short form.
_CUES_AFTER = (
    ("stands", "for"),
    ("is", "short", "for"),
    ("short", "for"),
    ("is", "an", "abbreviation", "for"),
    ("is", "an", "abbreviation", "of"),
    ("is", "the", "abbreviation", "of"),
    ("refers", "to"),
)
_CUE_AFTER_FIRST = frozenset(c[0] for c in _CUES_AFTER)
# "LF, abbreviated as SF": cues between a long form and its short form.
_CUES_BEFORE = (
    ("abbreviated", "as"),
    ("abbreviated", "to"),
    ("denoted", "as"),
    ("denoted", "by"),
    ("referred", "to", "as"),
    ("known", "as"),
    ("hereafter",),
    ("hereinafter",),
    ("called",),
    ("or",),
)
_CUE_BEFORE_FIRST = frozenset(c[0] for c in _CUES_BEFORE)
_Pair = tuple[tuple[int, int], tuple[int, int]]  # (short a, b), (long a, b): word ranges


def _paren_groups(toks: Sequence[str]) -> list[tuple[int, int]]:
    """(open, close) indices of "(" ... ")" pairs without nesting, up to _MAX_PAREN words."""
    out = []
    for i, t in enumerate(toks):
        if t != "(":
            continue
        for j in range(i + 1, min(len(toks), i + _MAX_PAREN + 2)):
            if toks[j] == "(":
                break
            if toks[j] == ")":
                out.append((i, j))
                break
    return out


def _sf_phrase(toks: Sequence[str], a: int, b: int) -> str | None:
    """The short form spelled by toks[a:b] (a token, or pieces glued by - / &), or None."""
    pieces = toks[a:b]
    if not pieces or len(pieces) > 5 or len(pieces) % 2 == 0:
        return None
    if not all(p.isalnum() if k % 2 == 0 else p in GLUE for k, p in enumerate(pieces)):
        return None
    sf = "".join(pieces)
    letters = sf_letters(sf)
    if not 2 <= len(letters) <= 12 or not any(c.isalpha() for c in letters):
        return None
    if ROMAN_RE.match(sf) or (sf.islower() and (sf in LONG_FORM_STOP or len(sf) > 5)):
        return None  # "(ii)", "(see)"
    if len(pieces) == 1 and re.search(r"\d{3,}|^\d+$", sf):
        return None  # "(2019)"
    return sf


def _sf_at(toks: Sequence[str], i: int) -> tuple[int, str] | None:
    """The short form starting at toks[i] (pieces glued by - or /), as (end, string)."""
    if i >= len(toks) or not is_piece(toks[i]):
        return None
    j = i + 1
    while j + 1 < len(toks) and toks[j] in ("-", "/") and is_piece(toks[j + 1]) and j < i + 4:
        j += 2
    sf = "".join(toks[i:j])
    if not any(looks_like_short_form(toks[k]) for k in range(i, j, 2)):
        return None
    return j, sf


def find_pairs(toks: Sequence[str]) -> list[_Pair]:
    pairs: list[_Pair] = []
    n = len(toks)
    for op, cl in _paren_groups(toks):
        # "(SVM; Vapnik 1995)", "(CNNs, see [3])", "(WWW '16)": the short form comes first
        end = op + 1
        while end < cl and toks[end] not in (";", ",", "[", ":", "'", "’"):
            end += 1
        sf = _sf_phrase(toks, op + 1, end)
        if sf is None and end - op > 2 and looks_like_short_form(toks[op + 1]):
            end, sf = op + 2, toks[op + 1]  # "(CMS formula)", "(WWW 2016)"
        if sf is not None:
            strict = not looks_like_short_form(sf.replace("-", "").replace("/", ""))
            lf = long_form_before(toks, op, sf, strict=strict, max_trailing=SCORING.max_trailing)
            if lf is not None:
                pairs.append(((op + 1, end), lf))
                continue
        # "SF (long form)": the short form just before the parenthesis
        if op > 0 and end - op > 2 and looks_like_short_form(toks[op - 1]):
            lf = long_form_after(toks, op + 1, end, toks[op - 1])
            if lf is not None:
                pairs.append(((op - 1, op), lf))
    low = [t.lower() for t in toks]
    for i in range(n - 1):
        got = _sf_at(toks, i) if not toks[i].islower() else None
        if got is None:
            continue
        j, sf = got
        sep = toks[j] if j < n else ""
        # "SF = long form" anywhere; "SF: long form" and "[SF] long form" open a list item
        first = i == 0 or toks[i - 1] in (",", ";", ".", ")", "]", "and", "[")
        bracketed = sep == "]" and i > 0 and toks[i - 1] == "["
        if sep == "=" or (first and (sep == ":" or bracketed)):
            lf = long_form_after(toks, j + 1, n, sf)
            if lf is not None:
                pairs.append(((i, j), lf))
                continue
        if low[j : j + 1] and low[j] in _CUE_AFTER_FIRST:  # "SF stands for long form"
            for cue in _CUES_AFTER:
                if tuple(low[j : j + len(cue)]) == cue:
                    lf = long_form_after(toks, j + len(cue), n, sf)
                    if lf is not None:
                        pairs.append(((i, j), lf))
                    break
    # "long form, abbreviated as SF", "long form or SF"
    for i in range(1, n):
        if low[i] not in _CUE_BEFORE_FIRST:
            continue
        for cue in _CUES_BEFORE:
            if tuple(low[i : i + len(cue)]) != cue:
                continue
            k = i + len(cue)
            if k < n and toks[k] in QUOTES:
                k += 1
            got = _sf_at(toks, k)
            if got is None:
                continue
            j, sf = got
            if j < n and toks[j] not in BOUNDARY and toks[j] not in ("and",):
                continue  # "or CNN models": the short form must end the phrase
            lf_end = i - 1 if toks[i - 1] == "," else i
            lf = long_form_before(toks, lf_end, sf, strict=True, max_trailing=0)
            if lf is not None:
                pairs.append(((k, j), lf))
    return pairs


def find_definitions(text: str, words: Sequence[Word] | None = None) -> list[tuple[Span, Span]]:
    """Acronym definitions in a text as (short form, long form) span pairs, in text order.

    Finds "long form (SF)", "SF (long form)", glossary "SF: long form" / "SF = long form"
    / "[SF] long form", and cue phrases ("SF stands for ...", "..., abbreviated as SF").
    Useful as a rule-tag feature and as the high-precision core of label_acronyms.
    """
    words = tokenize(text) if words is None else list(words)
    toks = [w.text for w in words]
    out = []
    taken: set[int] = set()
    for (sa, sb), (la, lb) in find_pairs(toks):
        covered = set(range(sa, sb)) | set(range(la, lb))
        if covered & taken:
            continue
        taken |= covered
        out.append(
            (
                Span(words[sa].start, words[sb - 1].end, SHORT),
                Span(words[la].start, words[lb - 1].end, LONG),
            )
        )
    out.sort(key=lambda p: min(p[0].start, p[1].start))
    return out
