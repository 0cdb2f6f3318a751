"""Concept weak labelers (label CONCEPT): link anchors, gazetteers, keyphrases, and a vote.

The paper behind fewlabel (Pierse & Lu, 2020) took Wikipedia hyperlinks as free labels
for concepts of interest: an anchor's text names a concept. `strip_links` (links.py) turns
marked-up text (Markdown, HTML, wiki markup) into plain text plus anchor spans. Where a
corpus has no links, a `Gazetteer` (gazetteer.py) of known phrases (Wikipedia titles, a
project's glossary) and a TF-IDF `KeyphraseExtractor` (keyphrases.py) propose concepts,
and `vote` combines any of them.

Every labeler maps (text, words) to sorted, non-overlapping, word-aligned spans.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from core.text import Span, Word, tokenize
from core.weak.concepts.gazetteer import (
    Gazetteer,
    load_phrases,
    load_wiki_titles,
    wiki_titles_path,
)
from core.weak.concepts.keyphrases import KeyphraseExtractor
from core.weak.concepts.links import strip_links
from core.weak.concepts.tagger import CONCEPT, Labeler

__all__ = [
    "CONCEPT",
    "Gazetteer",
    "KeyphraseExtractor",
    "Labeler",
    "load_phrases",
    "load_wiki_titles",
    "strip_links",
    "vote",
    "voter",
    "wiki_titles_path",
]


def vote(
    labelers: Sequence[Labeler],
    text: str,
    words: Sequence[Word] | None = None,
    min_votes: int = 1,
) -> list[Span]:
    """Spans proposed by at least `min_votes` labelers; overlaps go to the span with more
    votes, then the longer one, then the earlier one."""
    words = tokenize(text) if words is None else words
    votes: Counter[Span] = Counter()
    for labeler in labelers:
        votes.update(set(labeler(text, words)))
    ranked = sorted(
        (s for s, v in votes.items() if v >= min_votes),
        key=lambda s: (-votes[s], -(s.end - s.start), s.start),
    )
    out: list[Span] = []
    for s in ranked:
        if all(s.end <= o.start or s.start >= o.end for o in out):
            out.append(s)
    return sorted(out)


def voter(labelers: Sequence[Labeler], min_votes: int = 1) -> Labeler:
    """vote() bound to its labelers: a labeler itself."""

    def combined(text: str, words: Sequence[Word] | None = None) -> list[Span]:
        return vote(labelers, text, words, min_votes)

    combined.__name__ = (
        f"vote{min_votes}("
        + ",".join(getattr(lb, "__name__", type(lb).__name__) for lb in labelers)
        + ")"
    )
    return combined
