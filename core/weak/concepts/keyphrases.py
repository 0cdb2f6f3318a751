"""TF-IDF keyphrases over POS-free candidates: concept guesses where a text has no links."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from core.text import Word, tokenize
from core.weak.concepts.tagger import CONCEPT, WordRangeTagger, norm
from core.weak.stopwords import KEYPHRASE_STOP

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
    if not _KP_TOKEN_RE.match(token) or low in KEYPHRASE_STOP or len(token) < 2:
        return False
    if low.endswith("ly") and len(low) > 4 and low not in _LY_NOUNS:
        return False  # adverbs: "greatly improved", "recently developed"
    return not token.replace(".", "").replace(",", "").isdigit()


def _can_end(token: str) -> bool:
    """A keyphrase ends in a noun-like word: not a past participle ("... developed")."""
    low = token.lower()
    return not (low.endswith("ed") and len(low) > 4 and not low.endswith("eed"))


class KeyphraseExtractor(WordRangeTagger):
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
                    key = " ".join(norm(u[2]) for u in units[i:j])
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
