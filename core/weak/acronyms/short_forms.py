"""Short forms: which words are shaped like acronyms, and which capitals are headings instead.

Standalone short forms are words shaped like acronyms ("CNN", "mRNA", "IoT", "3D", "CNNs");
pieces glued by a hyphen merge ("R-CNN", "TF-IDF").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from core.text import Span, Word, tokenize
from core.weak.stopwords import LONG_FORM_STOP

# The acronym labels: the acronym task (core.tasks) takes its labels from here.
SHORT, LONG = "SHORT", "LONG"
# Glue inside a long form or a short form: "Short-Term", "O-D", "R&D", "TCP/IP".
GLUE = frozenset(["-", "/", "&", "–", "—"])

ROMAN_RE = re.compile(r"^(?=[IVXL]{2,}$)L?X{0,3}(IX|IV|V?I{0,3})$")
_DIGIT_FIRST_RE = re.compile(r"^\d[A-Z]+\d*[A-Z]*$")  # 3D, 5G, 6DOF
_LETTER_DIGITS_RE = re.compile(r"^[A-Za-z]\d+[a-z]?$")  # L1, F1, T2, x86: variables, norms
# Abbreviated units. Both SciAD and SDU@AAAI-22 annotate them as short forms, so they are
# labeled by default; `units=False` leaves them out.
UNITS = frozenset(
    "Hz kHz KHz MHz GHz THz KB MB GB TB PB KiB MiB GiB TiB kbps Kbps Mbps Gbps Tbps "
    "mW kW MW GW TW kWh MWh GWh dB dBm dBi MPa GPa kPa eV keV MeV GeV TeV mAh mV kV "
    "ms ns ps fs mm cm km nm um".split()
)
_HEADING_WORD = 8  # an all-caps word this long, beside another, is a heading


def looks_like_short_form(token: str, *, units: bool = True) -> bool:
    """Whether a token is shaped like an acronym: CNN, mRNA, IoT, QoS, 3D, D2D, CNNs, BiLSTM.

    Not: single letters, sentence-initial capitals ("The"), CamelCase names (ResNet,
    TensorFlow), Roman numerals (II, IV), letter-digit variables (L1, F1), numbers.
    """
    if token.islower() or not 2 <= len(token) <= 10:
        return False  # the common case, answered before the cache
    return _shaped(token) and (units or token not in UNITS)


@functools.lru_cache(maxsize=65536)
def _shaped(token: str) -> bool:
    n = len(token)
    if not token.isalnum():
        return False
    caps = sum(c.isupper() for c in token)
    letters = sum(c.isalpha() for c in token)
    if caps == 0 or letters == 0:
        return False
    if token[0].isdigit():
        return bool(_DIGIT_FIRST_RE.match(token))
    if _LETTER_DIGITS_RE.match(token) or re.search(r"\d{3,}", token):
        return False
    if caps == 1 and (n == letters or caps * 2 < letters):
        return False  # "The", "Fig", "Wi"; "Fig2"
    if caps * 2 < letters:
        return False  # CamelCase names: ResNet, TensorFlow, GitHub
    return not ROMAN_RE.match(token)


def is_piece(token: str) -> bool:
    """A part of a hyphenated short form: "R" in R-CNN, "L1" in TV-L1, "A" in LTE-A."""
    return token.isalnum() and (
        looks_like_short_form(token)
        or (len(token) == 1 and token.isupper())
        or bool(_LETTER_DIGITS_RE.match(token) and token[0].isupper())
    )


def heading_words(words: Sequence[Word]) -> set[int]:
    """Indices of words in all-caps headings or shouting, whose capitals say nothing about
    acronyms: runs of 3+ all-caps words with a stop word ("THE RESULTS OF THE STUDY"), or
    of 2+ with a long word ("GENERATIVE SEMANTICS")."""
    out: set[int] = set()
    run: list[int] = []

    def close() -> None:
        texts = [words[k].text for k in run]
        if (len(run) >= 3 and any(t.lower() in LONG_FORM_STOP for t in texts)) or (
            len(run) >= 2 and any(len(t) >= _HEADING_WORD for t in texts)
        ):
            out.update(run)
        run.clear()

    for i, w in enumerate(words):
        t = w.text
        if t.isalpha() and t.isupper() and (len(t) > 1 or t in ("A", "I")):
            run.append(i)
        elif t not in GLUE and t not in (",", ":"):
            close()
    close()
    return out


def short_form_groups(words: Sequence[Word], skip: set[int]) -> list[tuple[int, int]]:
    """Word ranges of standalone short forms; pieces glued by "-" or "/" merge into one
    ("R-CNN", "TF-IDF", "LTE-A"), as SciAD and SDU@AAAI-22 both annotate them."""
    out: list[tuple[int, int]] = []
    n, i = len(words), 0
    while i < n:
        if i in skip or not is_piece(words[i].text):
            i += 1
            continue
        j = i + 1
        while (
            j + 1 < n
            and words[j].text in ("-", "/")
            and is_piece(words[j + 1].text)
            and j + 1 not in skip
            and words[j].start - words[j - 1].end <= 1
            and words[j + 1].start - words[j].end <= 1
        ):
            j += 2
        if any(looks_like_short_form(words[k].text) for k in range(i, j, 2)):
            out.append((i, j))
        i = j
    return out


def label_short_forms(
    text: str, words: Sequence[Word] | None = None, *, units: bool = True
) -> list[Span]:
    """Standalone short forms: acronym-shaped words (hyphenated pieces merged: "R-CNN"),
    outside headings and shouting."""
    words = tokenize(text) if words is None else list(words)
    skip = heading_words(words)
    if not units:
        skip |= {i for i, w in enumerate(words) if w.text in UNITS}
    return [
        Span(words[a].start, words[b - 1].end, SHORT) for a, b in short_form_groups(words, skip)
    ]
