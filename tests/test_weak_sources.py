"""A custom project's weak sources: its dictionary, user patterns, a model's confident spans."""

import pytest

from core.errors import ImportFormatError
from core.text import Span, tokenize
from core.weak.patterns import match, parse_patterns
from core.weak.sources import (
    Dictionary,
    ModelSpans,
    Patterns,
    Proposal,
    WeakSources,
    choose_threshold,
    combine,
    cross_fitted,
)

LABELS = ["Chemical", "Disease"]


def labeled(text: str, *marked: tuple[str, str]) -> tuple:
    """A labeled text: each (words, label) marks the first occurrence of those words."""
    spans = []
    for words, label in marked:
        start = text.index(words)
        spans.append(Span(start, start + len(words), label))
    return text, tokenize(text), sorted(spans)


def spans_of(text: str, spans) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.label) for s in spans]


def test_dictionary_matches_longest_first_folds_case_but_keeps_acronyms():
    data = [
        labeled("Aspirin reduced fever .", ("Aspirin", "Chemical"), ("fever", "Disease")),
        labeled("Patients with PD took L - dopa .", ("PD", "Disease"), ("L - dopa", "Chemical")),
        labeled("Parkinson disease is common .", ("Parkinson disease", "Disease")),
    ]
    d = Dictionary.build(data)
    text = "aspirin for Parkinson disease , not pd nor PD ; L - dopa helps"
    (got,) = WeakSources([d]).label([(text, tokenize(text))])
    assert spans_of(text, got) == [
        ("aspirin", "Chemical"),
        ("Parkinson disease", "Disease"),
        ("PD", "Disease"),
        ("L - dopa", "Chemical"),
    ]


def test_dictionary_drops_entries_mostly_unlabeled_on_labeled_texts():
    data = [
        labeled("The cold was bad .", ("cold", "Disease")),
        labeled(
            "A cold drink .",
        ),
        labeled(
            "Cold water , cold air .",
        ),
        labeled("Influenza spread .", ("Influenza", "Disease")),
    ]
    d = Dictionary.build(data)
    assert ("cold",) not in d.entries  # right 1 time in 4: (1 + 1) / (4 + 2) < 0.5
    assert d.entries[("influenza",)] == ("Disease", 2 / 3)


def test_patterns_phrase_tokens_and_regex():
    lines = [
        '{"label": "Chemical", "pattern": "vitamin c"}',
        "# a comment",
        "",
        '{"label": "chemical", "pattern": [{"lower": "sodium"}, {"is_title": true, "op": "?"},'
        ' {"lower": {"in": ["chloride", "nitrate"]}}]}',
        '{"label": "Disease", "regex": "\\\\w+itis\\\\b"}',
        '{"label": "Disease", "pattern": [{"TEXT": {"REGEX": "^[A-Z]{2,}$"}},'
        ' {"LOWER": "syndrome"}]}',
    ]
    pats = parse_patterns(lines, "p.jsonl", LABELS)
    assert [(p.kind, p.label, p.line) for p in pats] == [
        ("phrase", "Chemical", 1),
        ("tokens", "Chemical", 4),
        ("regex", "Disease", 5),
        ("tokens", "Disease", 6),
    ]
    text = "Vitamin C and sodium Chloride , sodium nitrate ; arthritis or HELLP syndrome ."
    words = tokenize(text)
    found = sorted(sp for p in pats for sp in match(p, text, words))
    assert spans_of(text, found) == [
        ("Vitamin C", "Chemical"),
        ("sodium Chloride", "Chemical"),
        ("sodium nitrate", "Chemical"),
        ("arthritis", "Disease"),
        ("HELLP syndrome", "Disease"),
    ]


def test_token_pattern_negation_consumes_one_word():
    (p,) = parse_patterns(
        ['{"label": "Chemical", "pattern": [{"lower": "no", "op": "!"}, {"lower": "salt"}]}'],
        "p",
        LABELS,
    )
    text = "no salt but sea salt"
    assert spans_of(text, match(p, text, tokenize(text))) == [("sea salt", "Chemical")]


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{not json", "p.jsonl:2: not a JSON object"),
        ('{"label": "Drug", "pattern": "x"}', "p.jsonl:2: unknown label 'Drug'"),
        ('{"label": "Disease", "regex": "("}', "p.jsonl:2: invalid regex '('"),
        ('{"label": "Disease", "pattern": [{"shape": "Xx"}]}', "unknown token attribute 'shape'"),
        ('{"label": "Disease", "pattern": [{"op": "?"}]}', "must match at least one word"),
        ('{"label": "Disease", "pattern": "x", "regex": "y"}', "give one of pattern or regex"),
        ('{"label": "Disease", "pattern": [{"is_upper": "yes"}]}', "must be true or false"),
        ("[" * 100_000 + "]" * 100_000, "p.jsonl:2: not a JSON object"),
    ],
)
def test_a_bad_patterns_line_refuses_the_file_with_file_line_reason(line, reason):
    with pytest.raises(ImportFormatError) as err:
        parse_patterns(['{"label": "Disease", "pattern": "flu"}', line], "p.jsonl", LABELS)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_patterns_are_weighted_by_their_precision_on_labeled_texts():
    pats = parse_patterns(
        [
            '{"label": "Disease", "pattern": "cold"}',
            '{"label": "Disease", "pattern": "flu"}',
            '{"label": "Chemical", "pattern": "zinc"}',
        ],
        "p",
        LABELS,
    )
    data = [
        labeled(
            "a cold drink",
        ),
        labeled(
            "cold water",
        ),
        labeled("the flu came", ("flu", "Disease")),
    ]
    fitted = Patterns(pats).fit(data)
    assert fitted.weights == {0: 1 / 4, 1: 2 / 3}  # zinc never matched: the prior
    text = "cold , flu and zinc"
    (got,) = WeakSources([fitted]).label([(text, tokenize(text))])
    assert spans_of(text, got) == [("flu", "Disease"), ("zinc", "Chemical")]


def test_combine_adds_agreeing_sources_and_keeps_the_heaviest_without_overlap():
    a, b, c = Span(0, 5, "Chemical"), Span(0, 9, "Chemical"), Span(6, 9, "Disease")
    got = combine([[Proposal(0.6, a), Proposal(0.55, c)], [Proposal(0.6, b), Proposal(0.4, a)]])
    assert got == [a, c]  # a: 1 - 0.4 * 0.6 = 0.76 beats b (0.6), which overlaps it
    got = combine([[Proposal(0.45, c)], [Proposal(0.2, c)]])
    assert got == [c]  # 1 - 0.55 * 0.8 = 0.56: two weak agreeing sources pass
    assert combine([[Proposal(0.45, c)]]) == []


def test_choose_threshold_favours_precision_on_held_out_texts():
    right, wrong = Span(0, 3, "Chemical"), Span(4, 7, "Chemical")
    scored = [[(right, 0.9), (wrong, 0.6)], [(right, 0.8), (wrong, 0.7)]]
    gold = [[right], [right]]
    assert choose_threshold(scored, gold) == (0.8, 1.0)


def test_model_spans_and_cross_fitted_scores():
    data = [labeled(f"patient {i} got aspirin today", ("aspirin", "Chemical")) for i in range(6)]

    def predict(docs):
        return [
            [(Span(t.index("aspirin"), t.index("aspirin") + 7, "Chemical"), 0.9)] for t, _ in docs
        ]

    model = ModelSpans(predict, threshold=0.95, precision=0.9)
    assert model.propose([(data[0][0], data[0][1])]) == [[]]  # below the threshold
    got = cross_fitted(data, lambda rest: [Dictionary.build(rest)], folds=3)
    assert set(got) == {"dictionary", "combined"}
    assert got["dictionary"] == [list(d[2]) for d in data]


def test_a_source_that_matches_nothing_is_named_and_left_out():
    pats = parse_patterns(['{"label": "Disease", "pattern": "scurvy"}'], "p", LABELS)
    data = [labeled("Aspirin helps .", ("Aspirin", "Chemical"))]
    docs = [("aspirin again", tokenize("aspirin again"))]
    kept, silent = WeakSources([Dictionary.build(data), Patterns(pats)]).prepared(docs)
    assert silent == ["patterns"] and [s.name for s in kept.sources] == ["dictionary"]
    assert spans_of(docs[0][0], kept(*docs[0])) == [("aspirin", "Chemical")]
    assert kept.describe()["dictionary"]["texts_with_spans"] == 1


def test_the_shipped_example_patterns_file_loads_and_labels():
    """sample_data/chemical_disease_patterns.jsonl, the README's example, stays valid."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "sample_data" / "chemical_disease_patterns.jsonl"
    with path.open(encoding="utf-8") as fh:
        patterns = parse_patterns(fh, path.name, ["Chemical", "Disease"])
    assert len(patterns) == 218 and {p.label for p in patterns} == {"Chemical", "Disease"}
    text = "Propranolol reduced the hypertension and cardiomyopathy seen after cocaine."
    words = tokenize(text)
    found = WeakSources([Patterns(patterns)]).label([(text, words)])[0]
    assert {(text[s.start : s.end], s.label) for s in found} == {
        ("Propranolol", "Chemical"),
        ("hypertension", "Disease"),
        ("cardiomyopathy", "Disease"),
        ("cocaine", "Chemical"),
    }
