import pytest

from core.errors import SpanError
from core.text import (
    Span,
    bio_to_spans,
    join_tokens,
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
        "Natural",
        "language",
        "processing",
        "(",
        "NLP",
        ")",
        "is",
        "BERT",
        "-",
        "based",
        ".",
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


def test_validate_spans_keeps_spans_exactly_and_sorts():
    labels = ["SHORT", "LONG"]
    spans = validate_spans(
        TEXT, [{"start": 30, "end": 32, "label": "SHORT"}, Span(0, 27, "LONG")], labels
    )
    # "LP" of "NLP" stays "LP": the span is kept, the word is split (words_of)
    assert spans == [Span(0, 27, "LONG"), Span(30, 32, "SHORT")]


def test_validate_spans_trims_white_space_and_says_so():
    trimmed: list[Span] = []
    labels = ["SHORT", "LONG"]
    assert validate_spans(TEXT, [Span(28, 33, "SHORT")], labels, trimmed=trimmed) == [
        Span(28, 33, "SHORT")  # "(NLP)": nothing to trim
    ]
    assert trimmed == []
    given = [Span(27, 34, "SHORT"), Span(16, 27, "LONG")]  # " (NLP) ", " processing"
    spans = validate_spans(TEXT, given, labels, trimmed=trimmed)
    assert spans == [Span(17, 27, "LONG"), Span(28, 33, "SHORT")]
    assert sorted(trimmed) == sorted(given)


@pytest.mark.parametrize(
    "span, message",
    [
        ({"start": 0, "end": 100, "label": "SHORT"}, "outside the text"),
        ({"start": 5, "end": 5, "label": "SHORT"}, "outside the text"),
        ({"start": -1, "end": 3, "label": "SHORT"}, "outside the text"),
        ({"start": 0, "end": 7, "label": "PERSON"}, "unknown label"),
        ({"start": 7, "end": 8, "label": "SHORT"}, "only white space"),
        ({"start": "a", "end": 3, "label": "SHORT"}, "integer start"),
    ],
)
def test_validate_spans_rejects_bad_spans(span, message):
    with pytest.raises(SpanError, match=message):
        validate_spans(TEXT, [span], ["SHORT", "LONG"])


def test_validate_spans_rejects_overlaps_naming_both():
    with pytest.raises(SpanError, match=r"spans 0-10 and 9-16 overlap"):
        validate_spans(
            TEXT,
            [{"start": 0, "end": 10, "label": "LONG"}, {"start": 9, "end": 16, "label": "SHORT"}],
            ["SHORT", "LONG"],
        )


def test_spans_that_meet_inside_a_word_are_both_kept():
    """Snapping had grown "NASA" and "foo" to "NASAfoo" and called them overlapping, naming
    offsets that were fine."""
    text = "The NASAfoo mission"
    spans = validate_spans(text, [Span(4, 8, "A"), Span(8, 11, "B")], ["A", "B"])
    assert spans == [Span(4, 8, "A"), Span(8, 11, "B")]
    words = words_of(text, None, spans)
    assert [w.text for w in words] == ["The", "NASA", "foo", "mission"]
    assert bio_to_spans(words, spans_to_bio(words, spans)) == spans


@pytest.mark.parametrize(
    "text, start, end",
    [
        ("The NASAfoo mission", 4, 8),  # ends inside a Latin word
        ("서울은 크다", 0, 2),  # Korean: a particle after the name
        ("abcdef", 2, 4),  # both ends inside
    ],
)
def test_a_mid_word_span_is_stored_and_tagged_exactly(text, start, end):
    (span,) = validate_spans(text, [Span(start, end, "X")], ["X"])
    assert (span.start, span.end) == (start, end)
    words = words_of(text, None, [span])
    assert text[start:end] in [w.text for w in words]
    assert bio_to_spans(words, spans_to_bio(words, [span])) == [span]


@pytest.mark.parametrize(
    "text, span, message",
    [
        ("Le cafe\u0301 ouvre", (3, 7), "cuts the character"),  # e without its accent
        ("ok 👍🏽 x", (3, 4), "cuts the character"),  # the thumb without its skin tone
        ("ภาษาไทย", (0, 7), None),  # whole: fine
        ("ง่าย", (0, 1), "cuts the character"),  # a Thai consonant without its tone mark
    ],
)
def test_a_span_never_cuts_a_character(text, span, message):
    spans = [Span(*span, "X")]
    if message is None:
        assert validate_spans(text, spans, ["X"]) == spans
        return
    with pytest.raises(SpanError, match=message):
        validate_spans(text, spans, ["X"])


def test_a_pretokenized_text_keeps_its_tokens_whole():
    tokens = ["The", "NASAfoo", "mission"]
    text, _ = join_tokens(tokens)
    with pytest.raises(SpanError, match="cuts the token 'NASAfoo'"):
        validate_spans(text, [Span(4, 8, "X")], ["X"], tokens)
    assert validate_spans(text, [Span(4, 11, "X")], ["X"], tokens) == [Span(4, 11, "X")]


@pytest.mark.parametrize(
    "text, want",
    [
        ("我爱北京天安门", ["我", "爱", "北", "京", "天", "安", "门"]),
        ("東京に行きました。", ["東", "京", "に", "行", "き", "ま", "し", "た", "。"]),
        ("コーヒー", ["コ", "ー", "ヒ", "ー"]),
        ("ภาษาไทยง่าย", ["ภ", "า", "ษ", "า", "ไ", "ท", "ย", "ง่", "า", "ย"]),
        ("GPT模型 2020年", ["GPT", "模", "型", "2020", "年"]),
        ("서울은 크다", ["서울은", "크다"]),  # Hangul is written with spaces: words stay
    ],
)
def test_unspaced_scripts_are_a_word_a_character(text, want):
    got = tokenize(text)
    assert [w.text for w in got] == want
    assert all(text[w.start : w.end] == w.text for w in got)


@pytest.mark.parametrize(
    "text, start, end",
    [("我爱北京天安门", 2, 4), ("私は東京に住んでいます", 2, 4), ("ฉันรักกรุงเทพ", 6, 13)],
)
def test_a_span_in_an_unspaced_script_keeps_its_words(text, start, end):
    (span,) = validate_spans(text, [Span(start, end, "LOC")], ["LOC"])
    words = words_of(text, None)  # no split needed: every character is a word
    assert bio_to_spans(words, spans_to_bio(words, [span])) == [Span(start, end, "LOC")]


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
