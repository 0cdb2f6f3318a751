"""Words with character offsets, span validation, spans <-> BIO tags, label schemes.

One tokenizer serves the annotator's word selection, BIO conversion and export, so a span the
annotator sees is the span the model learns and the span the export writes. A stored span is
never moved to fit the words: the words of a text are split where a span starts or ends
inside one (words_of). Pre-tokenized documents (CoNLL, SciAD) keep their own tokens: their
text is the tokens joined by single spaces, and their words are those tokens, so they
round-trip token for token.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import regex

from core.errors import SpanError, ValidationError

# A word is a run of word characters, or a single other non-space character. Hyphens and
# parentheses are words of their own so "BERT-based" can tag "BERT". The `regex` module's
# \w takes in combining marks and joiners (a decomposed "café", Devanagari, Persian ZWNJ
# words) and \X keeps an emoji with its modifiers whole: a word never ends mid-character, so
# a span never cuts off an accent the annotator saw as part of the word.
#
# Scripts written without spaces between words (Chinese, Japanese kana, Thai, Lao, Khmer,
# Burmese) have no run of word characters that is a word: each character is a word of its own,
# as BERT's basic tokenizer does for CJK ideographs, so 北京 in 我爱北京天安门 is two words and
# not the whole sentence. A character here is a grapheme (\X): a Thai consonant keeps its vowel
# and tone marks. Spaced scripts (Latin, Cyrillic, Hangul, Arabic, ...) keep their runs.
UNSPACED_SCRIPTS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_WORD_RE = regex.compile(rf"[^\W{UNSPACED_SCRIPTS}]+|(?!\s)\X")
_GRAPHEME_RE = regex.compile(r"\X")


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True, order=True)
class Span:
    start: int
    end: int
    label: str

    def as_dict(self, text: str | None = None) -> dict:
        d = {"start": self.start, "end": self.end, "label": self.label}
        if text is not None:
            d["text"] = text[self.start : self.end]
        return d


# What every database backend stores alike. SQLite takes a NUL byte, a lone surrogate or an
# over-long VARCHAR silently; PostgreSQL refuses each with a DataError. fewlabel refuses them
# itself, with one line, on every backend: these are the rules for names and stored strings.
NAME_MAX = 200  # project names, external ids: the width of their columns
ANNOTATOR_MAX = 100  # annotator names: the width of annotations.annotator
_UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why a string cannot be stored on every backend (a NUL byte, a lone UTF-16 surrogate, as
    a JSON `\\ud800` escape gives), or None when it can."""
    found = _UNSTORABLE_RE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"holds a NUL character at position {found.start()}"
    surrogate = f"\\u{ord(found.group()):04x}"
    return f"holds a lone surrogate {surrogate} at position {found.start()} (not Unicode text)"


def make_storable(value: str) -> str:
    """The string with each NUL and lone surrogate replaced by U+FFFD (for names fewlabel
    derives itself, such as an upload's file name, rather than refuses)."""
    return _UNSTORABLE_RE.sub("\ufffd", value)


def clean_name(value: str, what: str, *, limit: int = NAME_MAX) -> str:
    """A name as stored: stripped, not empty, at most `limit` characters, no control
    characters; anything else is a ValidationError naming `what`."""
    name = (value or "").strip()
    if not name:
        raise ValidationError(f"the {what} cannot be empty")
    if len(name) > limit:
        raise ValidationError(f"the {what} is at most {limit} characters, not {len(name)}")
    if _CONTROL_RE.search(name):
        raise ValidationError(f"the {what} cannot hold control characters: {name[:60]!r}")
    return name


def tokenize(text: str) -> list[Word]:
    """Split raw text into words with character offsets (deterministic, regex-based)."""
    return [Word(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[Word]]:
    """Text of pre-tokenized input: tokens joined by one space, and the words at their offsets."""
    words, pos = [], 0
    for tok in tokens:
        words.append(Word(tok, pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), words


def words_of(
    text: str, tokens: Sequence[str] | None = None, spans: Iterable[Span | dict] = ()
) -> list[Word]:
    """The words of a document: its own tokens when it was imported pre-tokenized, else
    tokenize's; split wherever one of `spans` starts or ends inside a word.

    The word grid follows the spans, never the other way round: a span stored for "NASA" in
    "NASAfoo" makes "NASA" and "foo" two words of that text, so the annotator sees, the model
    learns and CoNLL exports exactly the span that was stored (validate_spans keeps it so)."""
    words: list[Word] | None = None
    if tokens:
        joined, words = join_tokens(tokens)
        if joined != text:
            words = None
    if words is None:
        words = tokenize(text)
    cuts = {b for sp in spans for b in _bounds(sp)}
    return split_words(words, cuts) if cuts else words


def _bounds(span: Span | dict) -> tuple[int, int]:
    if isinstance(span, Span):
        return span.start, span.end
    return int(span["start"]), int(span["end"])


def split_words(words: Sequence[Word], cuts: Iterable[int]) -> list[Word]:
    """`words` with every word that a cut offset falls strictly inside split there."""
    cuts = sorted(set(cuts))
    if not cuts:
        return list(words)
    out: list[Word] = []
    for w in words:
        i = bisect.bisect_right(cuts, w.start)
        pos = w.start
        while i < len(cuts) and cuts[i] < w.end:
            out.append(Word(w.text[pos - w.start : cuts[i] - w.start], pos, cuts[i]))
            pos = cuts[i]
            i += 1
        out.append(w if pos == w.start else Word(w.text[pos - w.start :], pos, w.end))
    return out


def snap_span(start: int, end: int, words: Sequence[Word]) -> tuple[int, int] | None:
    """Grow [start, end) to the boundaries of the words it touches; None if it touches none.

    For weak labels (a pattern's match, a hyperlink), which take whole words; an annotator's or
    a file's span is kept exactly instead (validate_spans)."""
    touched = [w for w in words if w.start < end and w.end > start]
    if not touched:
        return None
    return touched[0].start, touched[-1].end


def _inner_problem(text: str, at: int, words: Sequence[Word], fixed: bool) -> str | None:
    """Why a span cannot start or end at offset `at`, or None. Inside a word is fine (the word
    is split there, see words_of) unless the words are a pre-tokenized file's own tokens
    (`fixed`), or the offset falls inside one character as the reader sees it: a letter and its
    combining accent, an emoji and its modifiers, a Thai consonant and its vowel marks."""
    i = bisect.bisect_right(words, at, key=lambda w: w.start) - 1
    if i < 0 or not words[i].start < at < words[i].end:
        return None
    w = words[i]
    if fixed:
        return f"cuts the token {w.text!r} of a pre-tokenized text, whose tokens are kept whole"
    pos = w.start
    for m in _GRAPHEME_RE.finditer(w.text):
        if pos < at < w.start + m.end():
            return f"cuts the character {m.group()!r} in two"
        pos = w.start + m.end()
    return None


def validate_spans(
    text: str,
    spans: Iterable[dict | Span],
    labels: Sequence[str],
    tokens: Sequence[str] | None = None,
    *,
    trimmed: list[Span] | None = None,
) -> list[Span]:
    """Check spans and keep them exactly: inside the text, known label, no overlap.

    A span keeps its offsets, also when it starts or ends inside a word (the text's words are
    split there, words_of). The only change made is trimming white space off its ends, so every
    format, CoNLL's included, writes the same span; each span trimmed goes into `trimmed` (as
    it was given) where a list is passed, so the caller can say so. Raises SpanError naming
    the offending span: a span of nothing but white space, one that cuts a character in two, or
    one that cuts a token of a pre-tokenized text (`tokens`). Exact duplicates collapse.
    """
    words = words_of(text, tokens)
    fixed = bool(tokens) and " ".join(tokens) == text
    out: set[Span] = set()
    for raw in spans:
        if isinstance(raw, Span):
            start, end, label = raw.start, raw.end, raw.label
        else:
            try:
                start, end, label = int(raw["start"]), int(raw["end"]), str(raw["label"])
            except (KeyError, TypeError, ValueError) as exc:
                raise SpanError(f"a span needs integer start, end and a label: {raw!r}") from exc
        if label not in labels:
            raise SpanError(f"unknown label {label!r}; this project has {', '.join(labels)}")
        if not 0 <= start < end <= len(text):
            raise SpanError(f"span {start}-{end} is outside the text (length {len(text)})")
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip())
        if lead == len(piece):
            raise SpanError(f"span {start}-{end} covers only white space")
        tail = len(piece) - len(piece.rstrip())
        span = Span(start + lead, end - tail, label)
        for at in (span.start, span.end):
            problem = _inner_problem(text, at, words, fixed)
            if problem:
                raise SpanError(f"span {start}-{end} ({piece[:40]!r}) {problem}")
        if trimmed is not None and (lead or tail):
            trimmed.append(Span(start, end, label))
        out.add(span)
    ordered = sorted(out)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end:
            raise SpanError(
                f"spans {a.start}-{a.end} and {b.start}-{b.end} overlap: "
                f"{text[a.start : a.end]!r} ({a.label}) and {text[b.start : b.end]!r} ({b.label})"
            )
    return ordered


def spans_to_bio(words: Sequence[Word], spans: Iterable[Span | dict]) -> list[str]:
    """BIO tags for words; a word belongs to a span when it lies inside it."""
    tags = ["O"] * len(words)
    for sp in spans:
        s = sp if isinstance(sp, Span) else Span(int(sp["start"]), int(sp["end"]), sp["label"])
        first = True
        for i, w in enumerate(words):
            if w.start >= s.start and w.end <= s.end:
                tags[i] = ("B-" if first else "I-") + s.label
                first = False
    return tags


def bio_to_spans(words: Sequence[Word], tags: Sequence[str]) -> list[Span]:
    """Character spans from BIO tags; a stray I- starts a span (the conlleval convention)."""
    spans: list[Span] = []
    cur: list | None = None  # [start, end, label]
    for w, tag in zip(words, tags, strict=True):
        if tag == "O" or not tag:
            if cur:
                spans.append(Span(*cur))
            cur = None
            continue
        prefix, _, label = tag.partition("-")
        if prefix not in ("B", "I") or not label:
            raise SpanError(f"bad BIO tag {tag!r}")
        if prefix == "B" or cur is None or cur[2] != label:
            if cur:
                spans.append(Span(*cur))
            cur = [w.start, w.end, label]
        else:
            cur[1] = w.end
    if cur:
        spans.append(Span(*cur))
    return spans


def tagged_text(text: str, spans: Iterable[Span | dict]) -> str:
    """Inline markup, e.g. "[NLP]{SHORT} is fun". Brackets in the text are left as they are."""
    out, pos = [], 0
    norm = sorted(
        (s if isinstance(s, Span) else Span(int(s["start"]), int(s["end"]), s["label"]))
        for s in spans
    )
    for s in norm:
        out.append(text[pos : s.start])
        out.append(f"[{text[s.start : s.end]}]{{{s.label}}}")
        pos = s.end
    out.append(text[pos:])
    return "".join(out)
