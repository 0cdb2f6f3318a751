"""The weak labelers' stop words: scikit-learn's English list, less the content words it holds,
plus what each labeler needs beyond it.

Each set was a hand-written list of its own; they are now one base and named differences, each
checked against the benchmarks (docs/benchmarks.md): the acronym rule tags exactly the same
spans on SciAD dev and 1,500 SDU@AAAI-22 texts as with its old lists, and keyphrases score the
same span F1 on Inspec valid (37.7).
"""

from __future__ import annotations

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# Nouns, verbs and numbers that scikit-learn's list holds but scientific text uses to name
# things: as stop words they cut "Global Positioning [System]", "Region of [Interest]", "the
# [full] rank" short (as keyphrase stop words, "system" alone changed 90 of 500 Inspec texts).
CONTENT_WORDS = frozenset(
    """amount back bill bottom call co con cry de detail eight eleven empty fifteen fifty fill
    find fire forty found front full get give go hundred inc interest keep ltd mill mine move
    name nine part put see serious side sincere six sixty system take ten thick thin third top
    twelve twenty un""".split()
)
STOP_WORDS = ENGLISH_STOP_WORDS - CONTENT_WORDS

# ---------------------------------------------------------------------------- acronyms

# Stop words that count as words in long forms: "Leave One [Out]", "performance on [several]";
# as stop words, "first", "but" and "other" let chance matches in ("projection of the first
# (PC 0)" for PC).
_IN_LONG_FORMS = frozenset("but first other out several".split())
# Stop words that are acronyms too when written in capitals ("IT", "NO", "SO"): a run of
# capitals holding them is no heading ("1,000 TU, EN-IT test set").
_ALSO_ACRONYMS = frozenset("i it no so".split())
# Words that a long form may contain without contributing a letter ("Internet of Things").
LONG_FORM_STOP = (STOP_WORDS - _IN_LONG_FORMS - _ALSO_ACRONYMS) | {"based", "using"}
# Words that join a long form's words: a long form may hold them, so they are not FUNCTION_WORDS.
_CONNECTORS = frozenset(
    "a an the of for and or in on to with by from at as via into over under per".split()
)
# Words that no long form contains: pronouns, auxiliaries, modals, common adverbs. They keep
# chance matches ("they could potentially" for TCP) out of the long forms found at a distance.
FUNCTION_WORDS = (STOP_WORDS - _CONNECTORS - _IN_LONG_FORMS) | frozenset(
    "did does it's just like need needs shall whilst".split()
)
# A long form never starts with these (they precede it: "a support vector machine (SVM)").
# Narrower than the stop words on purpose: starting on any stop word lost 17 right long forms
# in SciAD dev and SDU@AAAI-22 ("Very High Resolution", "Least Square Policy Iteration").
BAD_FIRST = (_CONNECTORS - {"into", "over", "under", "per"}) | {"is", "are", "be"}

# ---------------------------------------------------------------------------- concepts

# Words that start or end no keyphrase in scientific abstracts ("paper", "proposed", "results").
KEYPHRASE_STOP = STOP_WORDS | frozenset(
    """paper papers article propose proposed proposes present presented presents shown shows
    described describes discuss discussed use used uses using based new novel approach
    approaches method methods result results study studies work works given various different
    second did does make makes provide provides provided obtain obtained allow allows
    considered consider including include includes good better best high higher low lower
    large small important possible main respectively furthermore addition way ways number
    numbers type types case cases et al fig figure table section eq order terms term example
    examples""".split()
)
