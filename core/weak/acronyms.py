"""Acronym weak labeler: Schwartz-Hearst style definitions plus standalone short forms.

Labels SHORT (the acronym) and LONG (its expansion). Definitions come from
"long form (SF)", "SF (long form)", glossary lines ("SF: long form", "SF = long form",
"[SF] long form") and cue phrases ("SF stands for ...", "..., abbreviated as SF").
Standalone short forms are words shaped like acronyms ("CNN", "mRNA", "IoT", "3D",
"CNNs"; pieces glued by a hyphen merge: "R-CNN", "TF-IDF"). A short form without a
definition gets a long form elsewhere in the text when the initials of a run of words
spell it exactly ("the Question Answering task ... a QA system").

Unlike the original Schwartz-Hearst (2003) rule, which takes the shortest long form whose
first word starts with the acronym's first letter, the long form is chosen by aligning
the acronym's letters to words over every possible start (a small dynamic program):
stop words and hyphenated tails ("Non-negative") may give no letter, letters may come
from inside a word ("Ge(n)erative", "messenger R(NA)"), digits may stand for words ("D2D"
= device-to-device), a plural "s" is optional ("CNNs"), unmatched content words cost
points, and up to two words may sit between the long form and "(SF)" ("Fast Explicit
Diffusion scheme (FED)"). The best-explained span wins; ties go to the shorter one.

Everything works on words (core.text.Word), so spans align with the tokenizer that the
model and the export use. Pure Python, deterministic, no downloads; ~8,000 sentences/s.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.text import Span, Word, tokenize

SHORT, LONG = "SHORT", "LONG"
LABELS = (SHORT, LONG)

# Words that a long form may contain without contributing a letter ("Internet of Things").
STOPWORDS = frozenset(
    "a an the of for and or in on to with by from at as via into over under per its their "
    "is are be been this that these those than then based using".split()
)
# Words that no long form contains: pronouns, auxiliaries, modals, common adverbs. They keep
# chance matches ("they could potentially" for TCP) out of the long forms found at a distance.
_FUNCTION_WORDS = frozenset(
    "i it its they them their we our us you your he she his her this these those that which "
    "who whom whose what there here is are was were be been being has have had do does did "
    "can could may might must shall should will would not no also very more most less only "
    "just such than then thus hence however therefore so like need needs it's when where "
    "while whilst since because if although though".split()
)
# A long form never starts with these (they precede it: "a support vector machine (SVM)").
_BAD_FIRST = frozenset("a an the of for and or in on to with by from at as via is are be".split())
# Digits in an acronym may stand for a word: "D2D" device-to-device, "B4" before.
_DIGIT_WORDS = {
    "1": ("one", "first", "single", "uni", "mono"),
    "2": ("two", "to", "second", "double", "bi", "dual", "twice"),
    "3": ("three", "third", "triple", "tri"),
    "4": ("four", "for", "fourth", "quad"),
    "5": ("five", "fifth"),
    "6": ("six", "sixth"),
}
# Tokens that end a long form when walking back from "(" (sentence-level punctuation).
_BOUNDARY = frozenset(list(".,;:()[]{}=!?\"'`<>|") + ["``", "''", "-LRB-", "-RRB-"])
# Glue inside a long form or a short form: "Short-Term", "O-D", "R&D", "TCP/IP".
_GLUE = frozenset(["-", "/", "&", "–", "—"])

_ROMAN_RE = re.compile(r"^(?=[IVXL]{2,}$)L?X{0,3}(IX|IV|V?I{0,3})$")
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
_MAX_PAREN = 14  # words inside a parenthesis that can hold a definition


# ---------------------------------------------------------------------------- short forms


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
    return not _ROMAN_RE.match(token)


def _heading_words(words: Sequence[Word]) -> set[int]:
    """Indices of words in all-caps headings or shouting, whose capitals say nothing about
    acronyms: runs of 3+ all-caps words with a stop word ("THE RESULTS OF THE STUDY"), or
    of 2+ with a long word ("GENERATIVE SEMANTICS")."""
    out: set[int] = set()
    run: list[int] = []

    def close() -> None:
        texts = [words[k].text for k in run]
        if (len(run) >= 3 and any(t.lower() in STOPWORDS for t in texts)) or (
            len(run) >= 2 and any(len(t) >= _HEADING_WORD for t in texts)
        ):
            out.update(run)
        run.clear()

    for i, w in enumerate(words):
        t = w.text
        if t.isalpha() and t.isupper() and (len(t) > 1 or t in ("A", "I")):
            run.append(i)
        elif t not in _GLUE and t not in (",", ":"):
            close()
    close()
    return out


# ---------------------------------------------------------------------------- alignment


@dataclass(frozen=True, slots=True)
class _Scoring:
    initial: float = 1.0  # a letter matched at a word's first character (or a digit word)
    inner_only: float = -0.6  # a word that gives letters but not its initial
    skipped: float = -1.0  # a content word inside the long form that gives no letter
    trailing: float = -0.5  # each word between the long form and the "(" ("... Scheme (FED)")
    max_skipped: int = 1  # content words without a letter that a long form may contain
    max_trailing: int = 2  # words between a long form and its "(SF)"


_SC = _Scoring()
_NEG = float("-inf")


@dataclass(frozen=True, slots=True)
class _Unit:
    """A word of a candidate long form."""

    index: int  # position in the text's words
    text: str  # lower-cased
    tail: bool  # glued by a hyphen to the word before: "Non-[negative]", "Multi-[level]"


def _sf_letters(sf: str) -> str:
    """The letters and digits an expansion must spell, lower-cased."""
    return "".join(c for c in sf if c.isalnum()).lower()


def _plural(sf: str) -> bool:
    """A plural short form (CNNs, UAVs): its final "s" may be spelled by nothing."""
    core = "".join(c for c in sf if c.isalnum())
    return len(core) > 2 and core[-1] == "s" and core[-2].isupper()


def _greedy(sf: str, i: int, word: str, start: int) -> int:
    """How many letters sf[i:] match, in order, inside word[start:] (greedy is maximal)."""
    t, pos = 0, start
    while i + t < len(sf):
        pos = word.find(sf[i + t], pos)
        if pos < 0:
            break
        t += 1
        pos += 1
    return t


def _anchored(sf: str, i: int, word: str) -> int:
    """Letters sf[i:] that a word gives when its first character matches sf[i] (0: none)."""
    c = sf[i]
    if c.isdigit() and word in _DIGIT_WORDS.get(c, ()):
        return 1
    if not word or word[0] != c:
        return 0
    return 1 + _greedy(sf, i + 1, word, 1)


def _align(
    sf: str, units: Sequence[_Unit], *, plural: bool, max_trailing: int
) -> list[tuple[float, int, int]]:
    """For each start j: the best (score, skipped words, end) of a long form units[j:end]
    that spells sf with sf[0] at the initial of units[j]; score -inf where none exists.

    A dynamic program over (word, letter), right to left: each word gives the acronym a
    run of letters starting at its initial, a run found inside it, or nothing.
    """
    m, k = len(sf), len(units)
    neg = (_NEG, 0, k)
    nxt: list[tuple[float, int, int]] = [neg] * (m + 1)
    nxt[m] = (0.0, 0, k)
    starts: list[tuple[float, int, int]] = [neg] * k
    for j in range(k - 1, -1, -1):
        u = units[j]
        w = u.text
        content = w not in STOPWORDS and not u.tail
        row: list[tuple[float, int, int]] = [neg] * (m + 1)
        for i in range(m, -1, -1):
            best = neg
            s, sk, end = nxt[i]
            if s > _NEG:  # the word gives nothing
                best = (s + _SC.skipped, sk + 1, end) if content else (s, sk, end)
            if i == m:
                if k - j <= max_trailing:
                    cand = (_SC.trailing * (k - j), 0, j)
                    if cand[0] > best[0]:
                        best = cand
                row[i] = best
                continue
            for t in range(_anchored(sf, i, w), 0, -1):
                s, sk, end = nxt[i + t]
                if s + _SC.initial > best[0]:
                    best = (s + _SC.initial, sk, end)
            if content and len(w) > 2:
                pos = w.find(sf[i], 1)
                if pos > 0:
                    for t in range(1 + _greedy(sf, i + 1, w, pos + 1), 0, -1):
                        s, sk, end = nxt[i + t]
                        if s + _SC.inner_only > best[0]:
                            best = (s + _SC.inner_only, sk, end)
            if plural and i == m - 1 and row[m][0] > best[0]:
                best = row[m]
            row[i] = best
        # a long form starts at j only where its first word gives the acronym's first letter
        if w not in _BAD_FIRST and not u.tail:
            for t in range(_anchored(sf, 0, w), 0, -1):
                s, sk, end = nxt[t] if not (plural and t == m - 1) else max(nxt[t], nxt[m])
                if s + _SC.initial > starts[j][0]:
                    starts[j] = (s + _SC.initial, sk, end)
        nxt = row
    return starts


def _needed(sf: str) -> float:
    """The least score a long form of sf needs: half its key letters at word initials."""
    core = [c for c in sf if c.isalnum()]
    key = sum(c.isupper() or c.isdigit() for c in core)
    if key == 0:  # lower-case short forms ("pp", "ppm") must be spelled by initials alone
        return float(len(core))
    if _plural(sf):
        key = max(1, key)
    return max(1.0, key / 2)


def _choose(
    sf: str, units: Sequence[_Unit], *, strict: bool, max_trailing: int, first_only: bool
) -> tuple[int, int] | None:
    """(start, end) indices into units of the best long form of sf, or None."""
    letters = _sf_letters(sf)
    if len(letters) < 2 or not units:
        return None
    if not any(
        u.text[:1] == letters[0] or u.text in _DIGIT_WORDS.get(letters[0], ()) for u in units
    ):
        return None
    scores = _align(letters, units, plural=_plural(sf), max_trailing=max_trailing)
    need = _needed(sf)
    best: tuple[float, int, int] | None = None
    for j in [0] if first_only else range(len(units) - 1, -1, -1):  # nearest first
        score, skipped, end = scores[j]
        if score == _NEG or skipped > (0 if strict else _SC.max_skipped):
            continue
        if score < need and not (skipped == 0 and _chunked(letters, units, j, end, score)):
            continue
        if best is None or score > best[0]:
            best = (score, j, end)
    return None if best is None else (best[1], best[2])


def _chunked(letters: str, units: Sequence[_Unit], j: int, end: int, score: float) -> bool:
    """Whether every content word of units[j:end] gives the acronym its initial and more
    letters: syllable acronyms ("COLING", Computational Linguistics) and, for one word, a
    prefix abbreviation ("NEG", negation; "Acc", accuracy)."""
    content = sum(1 for u in units[j:end] if u.text not in STOPWORDS and not u.tail)
    if score < content:
        return False  # some content word gave no initial
    if content >= 2:
        return True
    return end == len(units) and units[j].text[:2] == letters[:2]


# ---------------------------------------------------------------------------- definitions

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
_QUOTES = frozenset(['"', "'", "``", "''", "“", "”", "‘", "’"])
_Pair = tuple[tuple[int, int], tuple[int, int]]  # (short a, b), (long a, b): word ranges


def _is_piece(token: str) -> bool:
    """A part of a hyphenated short form: "R" in R-CNN, "L1" in TV-L1, "A" in LTE-A."""
    return token.isalnum() and (
        looks_like_short_form(token)
        or (len(token) == 1 and token.isupper())
        or bool(_LETTER_DIGITS_RE.match(token) and token[0].isupper())
    )


def _short_form_groups(words: Sequence[Word], skip: set[int]) -> list[tuple[int, int]]:
    """Word ranges of standalone short forms; pieces glued by "-" or "/" merge into one
    ("R-CNN", "TF-IDF", "LTE-A"), as SciAD and SDU@AAAI-22 both annotate them."""
    out: list[tuple[int, int]] = []
    n, i = len(words), 0
    while i < n:
        if i in skip or not _is_piece(words[i].text):
            i += 1
            continue
        j = i + 1
        while (
            j + 1 < n
            and words[j].text in ("-", "/")
            and _is_piece(words[j + 1].text)
            and j + 1 not in skip
            and words[j].start - words[j - 1].end <= 1
            and words[j + 1].start - words[j].end <= 1
        ):
            j += 2
        if any(looks_like_short_form(words[k].text) for k in range(i, j, 2)):
            out.append((i, j))
        i = j
    return out


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
    if not all(p.isalnum() if k % 2 == 0 else p in _GLUE for k, p in enumerate(pieces)):
        return None
    sf = "".join(pieces)
    letters = _sf_letters(sf)
    if not 2 <= len(letters) <= 12 or not any(c.isalpha() for c in letters):
        return None
    if _ROMAN_RE.match(sf) or (sf.islower() and (sf in STOPWORDS or len(sf) > 5)):
        return None  # "(ii)", "(see)"
    if len(pieces) == 1 and re.search(r"\d{3,}|^\d+$", sf):
        return None  # "(2019)"
    return sf


def _units_back(toks: Sequence[str], end: int, limit: int) -> list[_Unit]:
    """Up to `limit` words before toks[end], nearest last, stopping at punctuation."""
    out: list[_Unit] = []
    k = end - 1
    while k >= 0 and len(out) < limit:
        t = toks[k]
        if t in _BOUNDARY or t in _GLUE or not any(c.isalnum() for c in t):
            break
        tail = k >= 2 and toks[k - 1] == "-" and toks[k - 2].isalnum()
        out.append(_Unit(k, t.lower(), tail))
        k -= 2 if tail or (k >= 2 and toks[k - 1] in _GLUE) else 1
    out.reverse()
    return out


def _units_forward(toks: Sequence[str], start: int, stop: int, limit: int) -> list[_Unit]:
    """Up to `limit` words from toks[start], stopping at punctuation or `stop`."""
    out: list[_Unit] = []
    k = start
    while k < stop and len(out) < limit:
        t = toks[k]
        if t in _GLUE and out and k + 1 < stop:
            k += 1
            continue
        if t in _BOUNDARY or t in _GLUE or not any(c.isalnum() for c in t):
            break
        out.append(_Unit(k, t.lower(), bool(out) and toks[k - 1] == "-"))
        k += 1
    return out


def _window(sf: str) -> int:
    """How many words a long form of sf may have (Schwartz-Hearst: min(|A|+5, 2|A|))."""
    n = len(_sf_letters(sf))
    return min(n + 5, 2 * n)


def _contains(toks: Sequence[str], a: int, b: int, sf: str) -> bool:
    """Whether a long form holds its own short form: "the CNN model (CNN)", "RAGS (rags)".

    An all-caps code may label its own word, as in tag sets: "time (TIME)", "human (HUM)"."""
    if sf.isupper():
        return any(toks[k] == sf for k in range(a, b))
    key = sf.lower().rstrip("s")
    return any(toks[k].lower().rstrip("s") == key for k in range(a, b))


def _long_form_before(
    toks: Sequence[str], end: int, sf: str, *, strict: bool, max_trailing: int
) -> tuple[int, int] | None:
    """Word range of the long form of sf that ends at most max_trailing words before end."""
    if end > 0 and toks[end - 1] in _QUOTES:  # 'the "Resource Management Application" (RMA)'
        end -= 1
    units = _units_back(toks, end, _window(sf) + max_trailing)
    if not units or units[-1].index != end - 1:
        return None
    got = _choose(sf, units, strict=strict, max_trailing=max_trailing, first_only=False)
    if got is None:
        return None
    start, end = got
    while end - start > 1 and units[end - 1].text in STOPWORDS:
        end -= 1  # "Human Activity Recognition [using] Smartphones (HAR)"
    a, b = units[start].index, units[end - 1].index + 1
    return None if _contains(toks, a, b, sf) else (a, b)


def _long_form_after(toks: Sequence[str], start: int, stop: int, sf: str) -> tuple[int, int] | None:
    """Word range of the long form of sf that starts at toks[start] ("SF: long form")."""
    if start < stop and toks[start] in _QUOTES:
        start += 1
    limit = _window(sf)
    units = _units_forward(toks, start, stop, limit + 4)
    if not units or units[0].index != start:
        return None
    got = _choose(sf, units, strict=True, max_trailing=len(units), first_only=True)
    if got is None:
        return None
    a, b = units[got[0]].index, units[got[1] - 1].index + 1
    return None if _contains(toks, a, b, sf) or got[1] > limit else (a, b)


def _sf_at(toks: Sequence[str], i: int) -> tuple[int, str] | None:
    """The short form starting at toks[i] (pieces glued by - or /), as (end, string)."""
    if i >= len(toks) or not _is_piece(toks[i]):
        return None
    j = i + 1
    while j + 1 < len(toks) and toks[j] in ("-", "/") and _is_piece(toks[j + 1]) and j < i + 4:
        j += 2
    sf = "".join(toks[i:j])
    if not any(looks_like_short_form(toks[k]) for k in range(i, j, 2)):
        return None
    return j, sf


def _find_pairs(toks: Sequence[str]) -> list[_Pair]:
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
            lf = _long_form_before(toks, op, sf, strict=strict, max_trailing=_SC.max_trailing)
            if lf is not None:
                pairs.append(((op + 1, end), lf))
                continue
        # "SF (long form)": the short form just before the parenthesis
        if op > 0 and end - op > 2 and looks_like_short_form(toks[op - 1]):
            lf = _long_form_after(toks, op + 1, end, toks[op - 1])
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
            lf = _long_form_after(toks, j + 1, n, sf)
            if lf is not None:
                pairs.append(((i, j), lf))
                continue
        if low[j : j + 1] and low[j] in _CUE_AFTER_FIRST:  # "SF stands for long form"
            for cue in _CUES_AFTER:
                if tuple(low[j : j + len(cue)]) == cue:
                    lf = _long_form_after(toks, j + len(cue), n, sf)
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
            if k < n and toks[k] in _QUOTES:
                k += 1
            got = _sf_at(toks, k)
            if got is None:
                continue
            j, sf = got
            if j < n and toks[j] not in _BOUNDARY and toks[j] not in ("and",):
                continue  # "or CNN models": the short form must end the phrase
            lf_end = i - 1 if toks[i - 1] == "," else i
            lf = _long_form_before(toks, lf_end, sf, strict=True, max_trailing=0)
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
    for (sa, sb), (la, lb) in _find_pairs(toks):
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


# ---------------------------------------------------------------------------- labeler


def label_short_forms(
    text: str, words: Sequence[Word] | None = None, *, units: bool = True
) -> list[Span]:
    """Standalone short forms: acronym-shaped words (hyphenated pieces merged: "R-CNN"),
    outside headings and shouting."""
    words = tokenize(text) if words is None else list(words)
    skip = _heading_words(words)
    if not units:
        skip |= {i for i, w in enumerate(words) if w.text in UNITS}
    return [
        Span(words[a].start, words[b - 1].end, SHORT) for a, b in _short_form_groups(words, skip)
    ]


def _occurrences(toks: Sequence[str], phrase: Sequence[str]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(toks) - n + 1) if list(toks[i : i + n]) == list(phrase)]


def _distant_long_form(
    toks: Sequence[str], sf: str, used: Sequence[bool]
) -> tuple[int, int] | None:
    """A run of words elsewhere in the text whose initials spell sf exactly ("... the
    Question Answering task ... a QA system"). Stop words may sit inside, not at the ends;
    a two-letter acronym needs capitalised words, as chance matches are common."""
    letters = _sf_letters(sf)
    if _plural(sf):
        letters = letters[:-1]
    if len(letters) < 2 or not letters.isalpha():
        return None
    found = None
    for i, t in enumerate(toks):
        if used[i] or t[:1].lower() != letters[0] or t.lower() in STOPWORDS:
            continue
        pos, j, last = 0, i, i
        while j < len(toks) and pos < len(letters) and not used[j]:
            w = toks[j]
            if w in ("-", "/") and pos:
                j += 1
                continue
            if not w.isalpha() or looks_like_short_form(w) or w.lower() in _FUNCTION_WORDS:
                break
            stop = w.lower() in STOPWORDS
            if w[0].lower() == letters[pos] and (not stop or 0 < pos < len(letters) - 1):
                if len(letters) == 2 and not w[0].isupper():
                    break
                pos += 1
                last = j
            elif not stop:
                break
            j += 1
        if pos == len(letters):
            if found is not None:
                return None  # two candidates: too ambiguous for a rule
            found = (i, last + 1)
    return found


def label_acronyms(
    text: str,
    words: Sequence[Word] | None = None,
    *,
    definitions: bool = True,
    standalone: bool = True,
    units: bool = True,
    distant: bool = True,
) -> list[Span]:
    """SHORT and LONG spans: definitions first, then other mentions of the defined short
    and long forms, then standalone acronym-shaped words. Sorted, non-overlapping,
    aligned to `words` (default: core.text.tokenize)."""
    words = tokenize(text) if words is None else list(words)
    spans: list[Span] = []
    used = [False] * len(words)

    def add(a: int, b: int, label: str) -> None:
        if b > a and not any(used[a:b]):
            spans.append(Span(words[a].start, words[b - 1].end, label))
            used[a:b] = [True] * (b - a)

    if definitions:
        toks = [w.text for w in words]
        pairs = [(a, b) for a, b in _find_pairs(toks)]
        for (sa, sb), (la, lb) in pairs:
            if not any(used[sa:sb]) and not any(used[la:lb]):
                add(la, lb, LONG)
                add(sa, sb, SHORT)
        for (sa, sb), _ in pairs:  # later mentions of a defined short form, whatever its shape
            for i in _occurrences(toks, toks[sa:sb]):
                add(i, i + sb - sa, SHORT)
    if standalone:
        skip = _heading_words(words) | {i for i, u in enumerate(used) if u}
        if not units:
            skip |= {i for i, w in enumerate(words) if w.text in UNITS}
        groups = _short_form_groups(words, skip)
        for a, b in groups:
            add(a, b, SHORT)
        if distant:
            toks = [w.text for w in words]
            for a, b in groups:
                lf = _distant_long_form(toks, "".join(toks[a:b]), used)
                if lf is not None:
                    add(lf[0], lf[1], LONG)
    spans.sort()
    return spans
