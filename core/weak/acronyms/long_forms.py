"""Long forms: the words whose letters spell a short form, found by a small dynamic program.

Unlike the original Schwartz-Hearst (2003) rule, which takes the shortest long form whose
first word starts with the acronym's first letter, the long form is chosen by aligning
the acronym's letters to words over every possible start: stop words and hyphenated tails
("Non-negative") may give no letter, letters may come from inside a word ("Ge(n)erative",
"messenger R(NA)"), digits may stand for words ("D2D" = device-to-device), a plural "s" is
optional ("CNNs"), unmatched content words cost points, and up to two words may sit between
the long form and "(SF)" ("Fast Explicit Diffusion scheme (FED)"). The best-explained span
wins; ties go to the shorter one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.weak.acronyms.short_forms import GLUE, looks_like_short_form
from core.weak.stopwords import BAD_FIRST, FUNCTION_WORDS, LONG_FORM_STOP

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
BOUNDARY = frozenset(list(".,;:()[]{}=!?\"'`<>|") + ["``", "''", "-LRB-", "-RRB-"])
# Quotes around a long form: 'the "Resource Management Application" (RMA)'.
QUOTES = frozenset(['"', "'", "``", "''", "“", "”", "‘", "’"])


@dataclass(frozen=True, slots=True)
class _Scoring:
    initial: float = 1.0  # a letter matched at a word's first character (or a digit word)
    inner_only: float = -0.6  # a word that gives letters but not its initial
    skipped: float = -1.0  # a content word inside the long form that gives no letter
    trailing: float = -0.5  # each word between the long form and the "(" ("... Scheme (FED)")
    max_skipped: int = 1  # content words without a letter that a long form may contain
    max_trailing: int = 2  # words between a long form and its "(SF)"


SCORING = _Scoring()
_NEG = float("-inf")


@dataclass(frozen=True, slots=True)
class _Unit:
    """A word of a candidate long form."""

    index: int  # position in the text's words
    text: str  # lower-cased
    tail: bool  # glued by a hyphen to the word before: "Non-[negative]", "Multi-[level]"


def sf_letters(sf: str) -> str:
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
        content = w not in LONG_FORM_STOP and not u.tail
        row: list[tuple[float, int, int]] = [neg] * (m + 1)
        for i in range(m, -1, -1):
            best = neg
            s, sk, end = nxt[i]
            if s > _NEG:  # the word gives nothing
                best = (s + SCORING.skipped, sk + 1, end) if content else (s, sk, end)
            if i == m:
                if k - j <= max_trailing:
                    cand = (SCORING.trailing * (k - j), 0, j)
                    if cand[0] > best[0]:
                        best = cand
                row[i] = best
                continue
            for t in range(_anchored(sf, i, w), 0, -1):
                s, sk, end = nxt[i + t]
                if s + SCORING.initial > best[0]:
                    best = (s + SCORING.initial, sk, end)
            if content and len(w) > 2:
                pos = w.find(sf[i], 1)
                if pos > 0:
                    for t in range(1 + _greedy(sf, i + 1, w, pos + 1), 0, -1):
                        s, sk, end = nxt[i + t]
                        if s + SCORING.inner_only > best[0]:
                            best = (s + SCORING.inner_only, sk, end)
            if plural and i == m - 1 and row[m][0] > best[0]:
                best = row[m]
            row[i] = best
        # a long form starts at j only where its first word gives the acronym's first letter
        if w not in BAD_FIRST and not u.tail:
            for t in range(_anchored(sf, 0, w), 0, -1):
                s, sk, end = nxt[t] if not (plural and t == m - 1) else max(nxt[t], nxt[m])
                if s + SCORING.initial > starts[j][0]:
                    starts[j] = (s + SCORING.initial, sk, end)
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
    letters = sf_letters(sf)
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
        if score == _NEG or skipped > (0 if strict else SCORING.max_skipped):
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
    content = sum(1 for u in units[j:end] if u.text not in LONG_FORM_STOP and not u.tail)
    if score < content:
        return False  # some content word gave no initial
    if content >= 2:
        return True
    return end == len(units) and units[j].text[:2] == letters[:2]


def _units_back(toks: Sequence[str], end: int, limit: int) -> list[_Unit]:
    """Up to `limit` words before toks[end], nearest last, stopping at punctuation."""
    out: list[_Unit] = []
    k = end - 1
    while k >= 0 and len(out) < limit:
        t = toks[k]
        if t in BOUNDARY or t in GLUE or not any(c.isalnum() for c in t):
            break
        tail = k >= 2 and toks[k - 1] == "-" and toks[k - 2].isalnum()
        out.append(_Unit(k, t.lower(), tail))
        k -= 2 if tail or (k >= 2 and toks[k - 1] in GLUE) else 1
    out.reverse()
    return out


def _units_forward(toks: Sequence[str], start: int, stop: int, limit: int) -> list[_Unit]:
    """Up to `limit` words from toks[start], stopping at punctuation or `stop`."""
    out: list[_Unit] = []
    k = start
    while k < stop and len(out) < limit:
        t = toks[k]
        if t in GLUE and out and k + 1 < stop:
            k += 1
            continue
        if t in BOUNDARY or t in GLUE or not any(c.isalnum() for c in t):
            break
        out.append(_Unit(k, t.lower(), bool(out) and toks[k - 1] == "-"))
        k += 1
    return out


def _window(sf: str) -> int:
    """How many words a long form of sf may have (Schwartz-Hearst: min(|A|+5, 2|A|))."""
    n = len(sf_letters(sf))
    return min(n + 5, 2 * n)


def _contains(toks: Sequence[str], a: int, b: int, sf: str) -> bool:
    """Whether a long form holds its own short form: "the CNN model (CNN)", "RAGS (rags)".

    An all-caps code may label its own word, as in tag sets: "time (TIME)", "human (HUM)"."""
    if sf.isupper():
        return any(toks[k] == sf for k in range(a, b))
    key = sf.lower().rstrip("s")
    return any(toks[k].lower().rstrip("s") == key for k in range(a, b))


def long_form_before(
    toks: Sequence[str], end: int, sf: str, *, strict: bool, max_trailing: int
) -> tuple[int, int] | None:
    """Word range of the long form of sf that ends at most max_trailing words before end."""
    if end > 0 and toks[end - 1] in QUOTES:  # 'the "Resource Management Application" (RMA)'
        end -= 1
    units = _units_back(toks, end, _window(sf) + max_trailing)
    if not units or units[-1].index != end - 1:
        return None
    got = _choose(sf, units, strict=strict, max_trailing=max_trailing, first_only=False)
    if got is None:
        return None
    start, end = got
    while end - start > 1 and units[end - 1].text in LONG_FORM_STOP:
        end -= 1  # "Human Activity Recognition [using] Smartphones (HAR)"
    a, b = units[start].index, units[end - 1].index + 1
    return None if _contains(toks, a, b, sf) else (a, b)


def long_form_after(toks: Sequence[str], start: int, stop: int, sf: str) -> tuple[int, int] | None:
    """Word range of the long form of sf that starts at toks[start] ("SF: long form")."""
    if start < stop and toks[start] in QUOTES:
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


def distant_long_form(toks: Sequence[str], sf: str, used: Sequence[bool]) -> tuple[int, int] | None:
    """A run of words elsewhere in the text whose initials spell sf exactly ("... the
    Question Answering task ... a QA system"). Stop words may sit inside, not at the ends;
    a two-letter acronym needs capitalised words, as chance matches are common."""
    letters = sf_letters(sf)
    if _plural(sf):
        letters = letters[:-1]
    if len(letters) < 2 or not letters.isalpha():
        return None
    found = None
    for i, t in enumerate(toks):
        if used[i] or t[:1].lower() != letters[0] or t.lower() in LONG_FORM_STOP:
            continue
        pos, j, last = 0, i, i
        while j < len(toks) and pos < len(letters) and not used[j]:
            w = toks[j]
            if w in ("-", "/") and pos:
                j += 1
                continue
            if not w.isalpha() or looks_like_short_form(w) or w.lower() in FUNCTION_WORDS:
                break
            stop = w.lower() in LONG_FORM_STOP
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
