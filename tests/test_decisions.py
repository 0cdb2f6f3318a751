"""Decisions: one answer about one suggested span, stored beside annotations (issue 22).

Core functions on a real migrated SQLite file, and PostgreSQL where marked both_backends.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from test_app import app, select_table_row  # noqa: F401 (fixture)

from core.defaults import IDLE_CAP_S
from core.errors import ConflictError, NotFoundError, SpanError, ValidationError
from core.labeling.annotations import save
from core.labeling.clock import capped
from core.labeling.decisions import (
    decisions_for,
    partial_answers,
    record,
    undo_last,
)
from core.labeling.projects import delete_document, get_project
from core.labeling.review import finalize
from core.store.db import session_scope
from core.store.schema import Annotation, Decision
from core.text import Span

TEXTS = [
    "Body mass index (BMI) is a value derived from mass and height.",
    "The World Health Organization (WHO) sets standards.",
    "Natural language processing (NLP) is fun.",
]
BMI = {"start": 17, "end": 20, "label": "SHORT"}
BMI_LONG = {"start": 0, "end": 15, "label": "LONG"}
WHO = {"start": 31, "end": 34, "label": "SHORT"}


@pytest.fixture
def ids(make_project) -> list[int]:
    return make_project("p", TEXTS)


def _record(s, doc_id, who, span, answer, **kw):
    return record(s, get_project(s, "p"), doc_id, who, **span, answer=answer, origin="model", **kw)


def test_capped_seconds():
    assert capped(None) is None
    assert capped(float("nan")) is None
    assert capped(-3) == 0.0
    assert capped(4.5) == 4.5
    assert capped(3600) == IDLE_CAP_S == 120.0


@pytest.mark.both_backends
def test_record_stores_an_answer_and_decisions_for_reads_it_back(db_url, ids):
    with session_scope(db_url) as s:
        _record(s, ids[0], "alice", BMI, "accept", confidence=0.55, seconds=4.0)
        _record(s, ids[0], "bob", BMI_LONG, "reject", seconds=900)
        _record(s, ids[1], "alice", WHO, "ignore")
    with session_scope(db_url) as s:
        got = decisions_for(s, [ids[0], ids[1], ids[2]])
    assert set(got) == {ids[0], ids[1]}
    first, second = got[ids[0]]
    assert (first["start"], first["end"], first["label"], first["answer"]) == (
        17,
        20,
        "SHORT",
        "accept",
    )
    assert (first["annotator"], first["origin"], first["confidence"], first["seconds"]) == (
        "alice",
        "model",
        0.55,
        4.0,
    )
    assert second["answer"] == "reject" and second["seconds"] == IDLE_CAP_S
    assert first["created_at"] is not None


@pytest.mark.both_backends
def test_a_suggestion_answered_once_is_refused_with_one_line(db_url, ids):
    with session_scope(db_url) as s:
        _record(s, ids[0], "alice", BMI, "accept")
    for who in ("bob", "alice"):
        with pytest.raises(ConflictError) as exc, session_scope(db_url) as s:
            _record(s, ids[0], who, BMI, "reject")
        assert "already answered by alice" in str(exc.value) and "\n" not in str(exc.value)
    with session_scope(db_url) as s:
        rows = s.scalars(select(Decision)).all()
        assert [(r.annotator, r.answer) for r in rows] == [("alice", "accept")]
        # the same characters under another label are another suggestion
        _record(s, ids[0], "bob", {**BMI, "label": "LONG"}, "reject")


@pytest.mark.both_backends
def test_a_racing_second_answer_is_refused_by_the_database(db_url, ids, monkeypatch):
    import core.labeling.decisions as decisions

    with session_scope(db_url) as s:
        _record(s, ids[0], "alice", BMI, "accept")
    monkeypatch.setattr(decisions, "_answered", lambda *a: None)  # the check saw nothing yet
    with pytest.raises(ConflictError, match="already answered"), session_scope(db_url) as s:
        _record(s, ids[0], "bob", BMI, "reject")
    with session_scope(db_url) as s:
        assert s.scalars(select(Decision.annotator)).all() == ["alice"]


def test_bad_answers_are_refused_and_write_nothing(db_url, ids):
    bad = [
        (dict(BMI, label="NOPE"), {}, SpanError),
        ({"start": 50, "end": 99, "label": "SHORT"}, {}, SpanError),
        ({"start": 15, "end": 20, "label": "SHORT"}, {}, SpanError),  # " (BMI": not exact
        (BMI, {"answer": "maybe"}, ValidationError),
        (BMI, {"origin": "oracle"}, ValidationError),
        (BMI, {"text": "an older text"}, ConflictError),
    ]
    for span, kw, error in bad:
        args = {"answer": "accept", "origin": "model", **kw}
        with pytest.raises(error) as exc, session_scope(db_url) as s:
            record(s, get_project(s, "p"), ids[0], "alice", **span, **args)
        assert "\n" not in str(exc.value)
    with pytest.raises(NotFoundError), session_scope(db_url) as s:
        _record(s, 10_000, "alice", BMI, "accept")
    with pytest.raises(ValidationError), session_scope(db_url) as s:
        _record(s, ids[0], " ", BMI, "accept")
    with session_scope(db_url) as s:
        assert s.scalars(select(Decision)).all() == []
        # the text as it was shown: accepted
        _record(s, ids[0], "alice", BMI, "accept", text=TEXTS[0])


@pytest.mark.both_backends
def test_undo_last_removes_only_the_annotators_latest(db_url, ids):
    with session_scope(db_url) as s:
        _record(s, ids[0], "alice", BMI, "accept")
        _record(s, ids[0], "alice", BMI_LONG, "reject")
        _record(s, ids[1], "bob", WHO, "accept")
    with session_scope(db_url) as s:
        undone = undo_last(s, get_project(s, "p"), "alice")
    assert (undone["document_id"], undone["start"], undone["answer"]) == (ids[0], 0, "reject")
    with session_scope(db_url) as s:
        assert undo_last(s, get_project(s, "p"), "alice")["start"] == 17
        assert undo_last(s, get_project(s, "p"), "alice") is None
        assert undo_last(s, get_project(s, "p"), "carol") is None
        assert [d["annotator"] for d in decisions_for(s, ids)[ids[1]]] == ["bob"]
        # undone: the suggestion can be answered again
        _record(s, ids[0], "bob", BMI, "reject")


@pytest.mark.both_backends
def test_partial_answers_are_texts_with_decisions_and_no_gold(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        _record(s, ids[0], "alice", BMI, "accept")
        _record(s, ids[0], "alice", BMI_LONG, "reject")
        _record(s, ids[1], "alice", WHO, "accept")  # then fully annotated: gold wins
        _record(s, ids[2], "alice", {"start": 0, "end": 7, "label": "LONG"}, "ignore")
        save(s, p, ids[1], "bob", [WHO])
    with session_scope(db_url) as s:
        got = partial_answers(s, get_project(s, "p"))
    assert got == [(ids[0], TEXTS[0], None, [Span(17, 20, "SHORT")], [Span(0, 15, "LONG")])]
    with session_scope(db_url) as s:
        finalize(s, get_project(s, "p"), ids[0], "rita", [BMI])
        assert partial_answers(s, get_project(s, "p")) == []


@pytest.mark.both_backends
def test_decisions_go_with_their_text_and_seconds_are_stored(db_url, ids):
    with session_scope(db_url) as s:
        _record(s, ids[0], "alice", BMI, "accept")
        p = get_project(s, "p")
        ann = save(s, p, ids[1], "alice", [WHO])
        ann.seconds = capped(7.5)
    with session_scope(db_url) as s:
        assert s.scalar(select(Annotation.seconds)) == 7.5
        delete_document(s, get_project(s, "p"), ids[0], "admin")
    with session_scope(db_url) as s:
        assert s.scalars(select(Decision)).all() == []


@pytest.mark.both_backends
def test_decisions_count_in_progress_and_the_review_table(db_url, ids):
    from core.labeling.progress import browse, progress

    with session_scope(db_url) as s:
        _record(s, ids[0], "alice", BMI, "accept")
        _record(s, ids[0], "bob", BMI_LONG, "reject")
        _record(s, ids[1], "alice", WHO, "ignore")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        got = progress(s, p, "alice")
        rows, _ = browse(s, p)
    assert got.decisions == 3 and got.decisions_by_annotator == {"alice": 2, "bob": 1}
    assert {r.document_id: r.decisions for r in rows} == {ids[0]: 2, ids[1]: 1, ids[2]: 0}


def test_the_review_page_shows_a_texts_decisions(app, db_url, ids):  # noqa: F811

    with session_scope(db_url) as s:
        _record(s, ids[0], "bob", BMI_LONG, "reject")
    at = app("views/review.py")
    select_table_row(at, "review_table", 0)
    shown = [e.label for e in at.expander]
    assert "Decisions on this text (1)" in shown
