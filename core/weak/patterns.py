"""User-supplied terms and patterns per label, in the JSONL shape Prodigy users already have.

One JSON object a line, each with a `label` from the project's label set and one of:

    {"label": "Chemical", "pattern": "aspirin"}                     a phrase
    {"label": "Chemical", "pattern": [{"lower": "vitamin"}, {"is_upper": true}]}   tokens
    {"label": "Chemical", "regex": "\\w+(?:ine|ol)\\b"}              a regular expression

A phrase matches its words case-insensitively (write a token pattern with `orth` for an
exact-case term). A token pattern is a list of token descriptions matched against
consecutive words (core.text.tokenize's words); keys are case-insensitive, as in spaCy:
`orth`/`text` (exact), `lower`, `regex` (Python `re.fullmatch` on the word; spaCy's
`{"text": {"regex": ...}}` works too), `in` lists (`{"lower": {"in": [...]}}`), `is_digit`,
`is_alpha`, `is_upper`, `is_lower`, `is_title`, `is_punct`, `length`, and `op` (`?`, `*`,
`+`, `!`). A `regex` pattern is searched in the text; a match that does not start and end on
word boundaries is grown to the words it touches. A line that is blank or starts with `#`
is skipped. A bad line, an unknown label or an invalid regular expression refuses the whole
file with `file:line: reason`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.errors import ImportFormatError
from core.text import Span, Word, snap_span, tokenize

_FLAGS = ("is_digit", "is_alpha", "is_upper", "is_lower", "is_title", "is_punct")
_TEXT_KEYS = ("orth", "text", "lower")
_OPS = ("?", "*", "+", "!", "1")


@dataclass(frozen=True)
class Pattern:
    """One line of a patterns file: a label and what it matches."""

    label: str
    kind: str  # "phrase" | "tokens" | "regex"
    spec: object  # the phrase's lower-cased words, the token list, or the compiled regex
    line: int
    source: str = field(default="", compare=False)  # the line as written, for reports

    @property
    def name(self) -> str:
        return self.source or f"{self.kind} {self.label}"


def _check_token(tok: object, where: tuple[str, int]) -> dict:
    if not isinstance(tok, dict):
        raise ImportFormatError(*where, "a token pattern is a list of objects ({} is any word)")
    out: dict = {}
    for raw_key, value in tok.items():
        key = str(raw_key).lower()
        if key == "op":
            if value not in _OPS:
                raise ImportFormatError(
                    *where, f"op must be one of {' '.join(_OPS)}, not {value!r}"
                )
        elif key in _TEXT_KEYS:
            if isinstance(value, dict):
                value = {str(k).lower(): v for k, v in value.items()}
                if "regex" in value:
                    value = {"regex": _compile(value["regex"], where)}
                elif isinstance(value.get("in"), list):
                    value = {"in": [str(v) for v in value["in"]]}
                else:
                    raise ImportFormatError(*where, f"{raw_key}: use a string, regex or in")
            elif not isinstance(value, str):
                raise ImportFormatError(*where, f"{raw_key} must be a string")
        elif key == "regex":
            value = _compile(value, where)
        elif key in _FLAGS:
            if not isinstance(value, bool):
                raise ImportFormatError(*where, f"{raw_key} must be true or false")
        elif key == "length":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ImportFormatError(*where, "length must be an integer")
        else:
            raise ImportFormatError(*where, f"unknown token attribute {raw_key!r}")
        out[key] = value
    return out


def _compile(expr: object, where: tuple[str, int]) -> re.Pattern:
    if not isinstance(expr, str) or not expr:
        raise ImportFormatError(*where, "a regex must be a non-empty string")
    try:
        return re.compile(expr)
    except re.error as exc:
        raise ImportFormatError(*where, f"invalid regex {expr!r} ({exc})") from exc


def parse_patterns(lines: Iterable[str], name: str, labels: Sequence[str]) -> list[Pattern]:
    """Read a patterns file's lines; all or nothing (ImportFormatError `name:line: reason`)."""
    by_lower = {lbl.lower(): lbl for lbl in labels}
    out: list[Pattern] = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = (name, n)
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ImportFormatError(*where, "not a JSON object") from exc
        if not isinstance(obj, dict):
            raise ImportFormatError(*where, "not a JSON object")
        label = by_lower.get(str(obj.get("label", "")).lower())
        if label is None:
            known = ", ".join(labels)
            raise ImportFormatError(*where, f"unknown label {obj.get('label')!r}; use {known}")
        if ("pattern" in obj) == ("regex" in obj):
            raise ImportFormatError(*where, "give one of pattern or regex")
        if "regex" in obj:
            out.append(Pattern(label, "regex", _compile(obj["regex"], where), n, line))
            continue
        spec = obj["pattern"]
        if isinstance(spec, str):
            words = tuple(w.text.lower() for w in tokenize(spec))
            if not words:
                raise ImportFormatError(*where, "an empty phrase")
            out.append(Pattern(label, "phrase", words, n, line))
        elif isinstance(spec, list) and spec:
            tokens = tuple(_check_token(t, where) for t in spec)
            if all(t.get("op") in ("?", "*") for t in tokens):
                raise ImportFormatError(*where, "a token pattern must match at least one word")
            out.append(Pattern(label, "tokens", tokens, n, line))
        else:
            raise ImportFormatError(*where, "pattern must be a phrase or a list of tokens")
    if not out:
        raise ImportFormatError(name, None, "no patterns in the file")
    return out


def relabel_lines(lines: Sequence[str], old: str, new: str, labels: Sequence[str]) -> list[str]:
    """A stored patterns file's lines with label `old` (of the project's `labels`, before the
    rename) renamed to `new`: a line names its label in any case (`parse_patterns`), so each
    line whose label resolves to `old` is written again with `new`. Blank, comment and
    unreadable lines, and lines of other labels, stay exactly as they were."""
    by_lower = {lbl.lower(): lbl for lbl in labels}
    out: list[str] = []
    for raw in lines:
        line = raw.strip()
        obj = None
        if line and not line.startswith("#"):
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                obj = None
        if isinstance(obj, dict) and by_lower.get(str(obj.get("label", "")).lower()) == old:
            out.append(json.dumps({**obj, "label": new}, ensure_ascii=False))
        else:
            out.append(raw)
    return out


def _text_test(value, word: str) -> bool:
    if isinstance(value, str):
        return word == value
    if "regex" in value:
        return value["regex"].fullmatch(word) is not None
    return word in value["in"]


def _token_matches(tok: dict, word: str) -> bool:
    for key, value in tok.items():
        if key == "op":
            continue
        if key in ("orth", "text"):
            ok = _text_test(value, word)
        elif key == "lower":
            ok = _text_test(value, word.lower())
        elif key == "regex":
            ok = value.fullmatch(word) is not None
        elif key == "length":
            ok = len(word) == value
        elif key == "is_punct":
            ok = (not any(c.isalnum() for c in word)) == value
        else:  # is_digit, is_alpha, is_upper, is_lower, is_title: str's own tests
            ok = getattr(word, key.replace("_", "", 1))() == value
        if not ok:
            return False
    return True


def _match_tokens(tokens: Sequence[dict], words: Sequence[str], i: int) -> int | None:
    """The end of the longest match of `tokens` starting at word i, or None."""
    if not tokens:
        return i
    tok, rest = tokens[0], tokens[1:]
    op = tok.get("op", "1")
    if op == "!":
        if i < len(words) and _token_matches(tok, words[i]):
            return None
        return _match_tokens(rest, words, i + 1) if i < len(words) else None
    ends: list[int] = []
    j = i
    if op in ("?", "*"):
        ends.append(j)  # zero occurrences
    while j < len(words) and _token_matches(tok, words[j]):
        j += 1
        ends.append(j)
        if op in ("1", "?"):
            break
    if op in ("1", "+") and j == i:
        return None
    for end in sorted(set(ends), reverse=True):  # greedy: the longest first
        got = _match_tokens(rest, words, end)
        if got is not None:
            return got
    return None


def match(pattern: Pattern, text: str, words: Sequence[Word]) -> list[Span]:
    """Every match of one pattern in a text, as word-aligned spans (may overlap each other)."""
    if pattern.kind == "regex":
        out = []
        for m in pattern.spec.finditer(text):
            snapped = snap_span(m.start(), m.end(), words) if m.end() > m.start() else None
            if snapped:
                out.append(Span(snapped[0], snapped[1], pattern.label))
        return out
    texts = [w.text for w in words]
    out = []
    if pattern.kind == "phrase":
        size = len(pattern.spec)
        lower = [t.lower() for t in texts]
        for i in range(len(words) - size + 1):
            if tuple(lower[i : i + size]) == pattern.spec:
                out.append(Span(words[i].start, words[i + size - 1].end, pattern.label))
        return out
    for i in range(len(words)):
        end = _match_tokens(pattern.spec, texts, i)
        if end is not None and end > i:
            out.append(Span(words[i].start, words[end - 1].end, pattern.label))
    return out
