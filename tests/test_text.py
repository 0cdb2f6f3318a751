import pytest

from core.errors import SpanError, ValidationError
from core.text import (
    Span,
    bio_to_spans,
    join_tokens,
    labels_for,
    snap_span,
    spans_to_bio,
    tagged_text,
    tokenize,
    validate_spans,
    words_of,
)

TEXT = "Natural language processing (NLP) is BERT-based."


def test_tokenize_offsets_point_at_the_words():
    words = tokenize(TEXT)
    assert [w.text for w in words] == [
        "Natural", "language", "processing", "(", "NLP", ")", "is", "BERT", "-", "based", ".",
    ]
    assert all(TEXT[w.start : w.end] == w.text for w in words)


def test_pretokenized_words_are_kept():
    tokens = ["state-of-the-art", "U.S.", "model"]
    text, words = join_tokens(tokens)
    assert text == "state-of-the-art U.S. model"
    assert [w.text for w in words_of(text, tokens)] == tokens
    # tokens that do not spell the text are ignored rather than trusted
    assert [w.text for w in words_of("other text", tokens)] == ["other", "text"]


def test_snap_grows_a_selection_to_word_boundaries():
    words = tokenize(TEXT)
    assert snap_span(2, 10, words) == (0, 16)  # "tural lan" -> "Natural language"
    assert snap_span(7, 8, words) is None  # the space between two words


def test_validate_spans_accepts_snaps_and_sorts():
    labels = ["SHORT", "LONG"]
    spans = validate_spans(
        TEXT, [{"start": 30, "end": 32, "label": "SHORT"}, Span(0, 27, "LONG")], labels
    )
    assert spans == [Span(0, 27, "LONG"), Span(29, 32, "SHORT")]


@pytest.mark.parametrize(
    "span, message",
    [
        ({"start": 0, "end": 100, "label": "SHORT"}, "outside the text"),
        ({"start": 5, "end": 5, "label": "SHORT"}, "outside the text"),
        ({"start": -1, "end": 3, "label": "SHORT"}, "outside the text"),
        ({"start": 0, "end": 7, "label": "PERSON"}, "unknown label"),
        ({"start": 7, "end": 8, "label": "SHORT"}, "covers no word"),
        ({"start": "a", "end": 3, "label": "SHORT"}, "integer start"),
    ],
)
def test_validate_spans_rejects_bad_spans(span, message):
    with pytest.raises(SpanError, match=message):
        validate_spans(TEXT, [span], ["SHORT", "LONG"])


def test_validate_spans_rejects_overlaps_after_snapping():
    with pytest.raises(SpanError, match="overlap"):
        validate_spans(
            TEXT,
            [{"start": 0, "end": 10, "label": "LONG"}, {"start": 9, "end": 16, "label": "SHORT"}],
            ["SHORT", "LONG"],
        )


def test_bio_round_trip_and_stray_inside_tag():
    words = tokenize(TEXT)
    spans = [Span(0, 27, "LONG"), Span(29, 32, "SHORT")]
    tags = spans_to_bio(words, spans)
    assert tags[:5] == ["B-LONG", "I-LONG", "I-LONG", "O", "B-SHORT"]
    assert bio_to_spans(words, tags) == spans
    # conlleval: an I- after O starts a span
    assert bio_to_spans(words[:2], ["O", "I-LONG"]) == [Span(8, 16, "LONG")]
    with pytest.raises(SpanError):
        bio_to_spans(words[:1], ["X-LONG"])


def test_tagged_text_marks_spans_inline():
    out = tagged_text(TEXT, [Span(29, 32, "SHORT")])
    assert out == "Natural language processing ([NLP]{SHORT}) is BERT-based."


def test_label_schemes():
    assert labels_for("acronym") == ["SHORT", "LONG"]
    assert labels_for("concept") == ["CONCEPT"]
    assert labels_for("custom", ["PER", " ORG "]) == ["PER", "ORG"]
    for bad in ([], ["A", "A"], ["O"], ["<b>"]):
        with pytest.raises(ValidationError):
            labels_for("custom", bad)
    with pytest.raises(ValidationError, match="unknown task"):
        labels_for("ner")


@pytest.mark.parametrize(
    "text, words",
    [
        ("Le cafe\u0301 ouvre", ["Le", "cafe\u0301", "ouvre"]),  # a combining accent stays
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # Devanagari vowel signs and viramas
        ("می\u200cخواهم x", ["می\u200cخواهم", "x"]),  # a Persian word with a ZWNJ
        ("ok 👍🏽 NASA 👨\u200d👩\u200d👧", ["ok", "👍🏽", "NASA", "👨\u200d👩\u200d👧"]),
        ("BERT-based (NLP) 3.5", ["BERT", "-", "based", "(", "NLP", ")", "3", ".", "5"]),
    ],
)
def test_a_word_never_ends_inside_a_character(text, words):
    got = tokenize(text)
    assert [w.text for w in got] == words
    assert all(text[w.start : w.end] == w.text for w in got)
