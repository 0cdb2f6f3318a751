"""Teach mode's suggestion stream (core.labeling.teach): where suggestions come from, their
order, and that a team teaching at once never sees one twice."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.errors import ConflictError
from core.labeling import teach
from core.labeling.annotations import next_document, save
from core.labeling.projects import get_project
from core.labeling.weak_sources import add_patterns
from core.store.db import session_scope
from core.store.schema import Decision, Document, ModelVersion, Prediction

TEXTS = [
    "Body mass index (BMI) is a value derived from mass and height.",
    "The World Health Organization (WHO) sets standards.",
    "Natural language processing (NLP) is fun.",
]


def _span(text: str, words: str, label: str, confidence: float) -> dict:
    start = text.index(words)
    return {"start": start, "end": start + len(words), "label": label, "confidence": confidence}


def _model(url: str, predictions: dict[int, list[dict]], *, current: bool = True) -> None:
    """Version 1 of project p, with these stored predictions per document id."""
    with session_scope(url) as s:
        p = get_project(s, "p")
        mv = ModelVersion(
            project_id=p.id, version=1, path="m", base="b", n_labels=0, is_current=current
        )
        s.add(mv)
        s.flush()
        for doc, spans in predictions.items():
            s.add(Prediction(document_id=doc, model_version_id=mv.id, spans=spans, score=0.5))


def _next(url: str, who: str, **kwargs) -> teach.Suggestion | None:
    with session_scope(url) as s:
        return teach.next_suggestion(s, get_project(s, "p"), who, **kwargs)


def _answer(url: str, who: str, shown: teach.Suggestion, answer: str, **kwargs) -> None:
    with session_scope(url) as s:
        teach.answer(s, get_project(s, "p"), who, shown, answer, **kwargs)


def _decisions(url: str) -> list[tuple]:
    with session_scope(url) as s:
        rows = s.scalars(select(Decision).order_by(Decision.id))
        return [(d.document_id, d.start, d.end, d.label, d.answer, d.annotator) for d in rows]


@pytest.fixture
def scored(db_url, make_project):
    """Project p: three texts, the current model suggesting spans at 0.9, 0.55, 0.3, 0.62."""
    ids = make_project("p", TEXTS)
    _model(
        db_url,
        {
            ids[0]: [
                _span(TEXTS[0], "Body mass index", "LONG", 0.9),
                _span(TEXTS[0], "BMI", "SHORT", 0.3),
            ],
            ids[1]: [_span(TEXTS[1], "WHO", "SHORT", 0.55)],
            ids[2]: [_span(TEXTS[2], "NLP", "SHORT", 0.62)],
        },
    )
    return ids


def test_the_model_suggestion_nearest_one_half_comes_first(db_url, scored):
    ids = scored
    order = []
    while (shown := _next(db_url, "alice")) is not None:
        order.append((shown.document_id, shown.text[shown.start : shown.end], shown.confidence))
        assert shown.origin == "model" and shown.words
        _answer(db_url, "alice", shown, "reject")
    assert order == [
        (ids[1], "WHO", 0.55),
        (ids[2], "NLP", 0.62),
        (ids[0], "BMI", 0.3),
        (ids[0], "Body mass index", 0.9),
    ]
    assert [d[4] for d in _decisions(db_url)] == ["reject"] * 4


def test_an_answered_suggestion_disappears_and_undo_brings_it_back(db_url, scored):
    first = _next(db_url, "alice")
    assert _next(db_url, "alice") == first  # shown again until answered (a reload)
    _answer(db_url, "alice", first, "accept", seconds=500)
    second = _next(db_url, "alice")
    assert second.key != first.key
    with session_scope(db_url) as s:
        (d,) = s.scalars(select(Decision)).all()
        assert (d.answer, d.origin, d.confidence, d.seconds) == ("accept", "model", 0.55, 120.0)
    with session_scope(db_url) as s:
        undone = teach.undo(s, get_project(s, "p"), "alice")
    assert _decisions(db_url) == []
    again = _next(db_url, "alice", prefer=teach.prefer_of(undone))
    assert again.key == first.key
    with session_scope(db_url) as s:
        assert teach.undo(s, get_project(s, "p"), "alice") is None


def test_an_accept_under_another_label_hides_the_overlapping_suggestions(db_url, make_project):
    ids = make_project("p", TEXTS[:1])
    _model(
        db_url,
        {
            ids[0]: [
                _span(TEXTS[0], "BMI", "LONG", 0.5),
                _span(TEXTS[0], "BMI", "SHORT", 0.2),
                _span(TEXTS[0], "Body mass index", "LONG", 0.9),
            ]
        },
    )
    shown = _next(db_url, "alice")
    assert (shown.label, shown.confidence) == ("LONG", 0.5)
    _answer(db_url, "alice", shown, "accept", label="SHORT")
    last = _next(db_url, "alice")  # BMI SHORT overlaps the accepted span: never asked
    assert TEXTS[0][last.start : last.end] == "Body mass index"
    assert _decisions(db_url)[0][3:5] == ("SHORT", "accept")
    with session_scope(db_url) as s:
        assert s.scalars(select(Decision.confidence)).one() is None


def test_two_annotators_teaching_at_once_never_see_a_suggestion_twice(db_url, scored):
    seen: list[tuple] = []
    who = ["alice", "bob"]
    shown = {w: _next(db_url, w) for w in who}
    assert shown["alice"].document_id != shown["bob"].document_id  # each holds a text
    turn = 0
    while any(shown.values()):
        w = who[turn % 2]
        turn += 1
        if shown[w] is None:
            shown[w] = _next(db_url, w)
            continue
        seen.append(shown[w].key)
        _answer(db_url, w, shown[w], "accept" if turn % 3 else "ignore")
        shown[w] = _next(db_url, w)
    assert len(seen) == len(set(seen)) == 4
    assert len(_decisions(db_url)) == 4


def test_a_text_another_annotator_holds_is_not_suggested_and_not_answered(db_url, scored):
    ids = scored
    alice = _next(db_url, "alice")
    assert alice.document_id == ids[1]
    bob = _next(db_url, "bob")
    assert bob.document_id != ids[1]
    with pytest.raises(ConflictError, match="being labeled by 'alice'"):
        _answer(db_url, "bob", alice, "accept")
    assert _decisions(db_url) == []


def test_a_fully_labeled_text_is_not_suggested_from(db_url, scored):
    ids = scored
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        task = next_document(s, p, "carol")  # the queue's first text, ids[0]
        save(s, p, task.document_id, "carol", [])
        task = next_document(s, p, "carol")
        save(s, p, task.document_id, "carol", [])
    keys = set()
    while (shown := _next(db_url, "alice")) is not None:
        keys.add(shown.document_id)
        _answer(db_url, "alice", shown, "ignore")
    assert keys == {ids[2]}


def test_a_project_with_no_label_and_a_patterns_file_gets_suggestions(db_url, make_project):
    texts = ["Aspirin cured the headache .", "Lithium and cocaine were compared .", "Nothing ."]
    make_project("p", texts, task="custom", labels=["Chemical", "Disease"])
    assert _next(db_url, "alice") is None  # no model, no labels, no patterns: nothing
    with session_scope(db_url) as s:
        patterns = "\n".join(
            [
                '{"label": "Chemical", "pattern": "lithium"}',
                '{"label": "Chemical", "pattern": [{"lower": "cocaine"}]}',
                r'{"label": "Disease", "regex": "\\w+ache\\b"}',
            ]
        )
        add_patterns(s, get_project(s, "p"), "terms.jsonl", patterns)
    got = []
    while (shown := _next(db_url, "alice")) is not None:
        assert shown.origin == "patterns" and shown.confidence == pytest.approx(0.75)
        got.append((shown.text[shown.start : shown.end], shown.label))
        _answer(db_url, "alice", shown, "accept")
    assert got == [("headache", "Disease"), ("Lithium", "Chemical"), ("cocaine", "Chemical")]


def test_without_a_current_model_the_weak_sources_suggest(db_url, make_project):
    """An acronym project before any model: its built-in rule's spans, origin "rule"."""
    ids = make_project("p", TEXTS)
    _model(db_url, {ids[0]: [_span(TEXTS[0], "BMI", "SHORT", 0.5)]}, current=False)
    shown = _next(db_url, "alice")
    assert shown.origin == "rule" and shown.label in ("SHORT", "LONG")
    with session_scope(db_url) as s:
        holder = s.scalar(select(Document.assigned_to).where(Document.id == shown.document_id))
    assert holder == "alice"


def test_a_reviewer_teaches_only_on_texts_overlap_leaves_to_one_annotator(db_url, make_project):
    """next_suggestion(shared=False), as the Teach page asks it for a reviewer or an admin: no
    suggestion on a text the overlap keeps for several annotators, and none of those held."""
    from core.labeling.overlap import set_overlap

    texts = [f"Sentence {i} about NASA and the WHO ." for i in range(40)]
    ids = make_project("p", texts)
    _model(db_url, {d: [_span(t, "NASA", "SHORT", 0.5)] for d, t in zip(ids, texts, strict=True)})
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        overlap = set_overlap(s, p, 2, 0.5)
        shared = {d for d in ids if overlap.selects(p.id, d)}
        assert shared and len(shared) < len(ids)
    seen = set()
    while (shown := _next(db_url, "rita", shared=False)) is not None:
        seen.add(shown.document_id)
        _answer(db_url, "rita", shown, "accept")
    assert seen == set(ids) - shared
    with session_scope(db_url) as s:
        held = set(s.scalars(select(Document.id).where(Document.assigned_to == "rita")))
        assert not held & shared
        set_overlap(s, get_project(s, "p"), 2, 1.0)  # every text shared: nothing for a reviewer
    assert _next(db_url, "rita", shared=False) is None
    assert _next(db_url, "alice") is not None  # an annotator still teaches on them
