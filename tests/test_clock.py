"""The annotator's clock (issue 22, item 4): seconds stored capped with each save, skip and
decision; the figures (core.labeling.clock) from literal rows; and read back from a project."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from core.defaults import IDLE_CAP_S
from core.labeling import annotations as svc
from core.labeling import decisions
from core.labeling.clock import (
    MANUAL,
    TEACH,
    Answer,
    Pace,
    capped,
    f1_by_hours,
    hours_before,
    pace,
    project_clock,
)
from core.labeling.projects import get_project
from core.metrics import span_prf, summarize_folds
from core.store.db import session_scope
from core.store.schema import Annotation, Decision, ModelVersion
from core.text import Span

T0 = datetime(2026, 1, 5, 9, 0, 0)
TEXTS = ["The WHO and NASA agreed .", "We trained a CNN on GPU machines .", "No acronym here ."]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_capped_keeps_measured_seconds_within_the_idle_cap():
    assert IDLE_CAP_S == 120.0
    assert capped(12.5) == 12.5
    assert capped(3600) == IDLE_CAP_S  # an hour away from the desk is two minutes of work
    assert capped(float("inf")) == IDLE_CAP_S
    assert capped(-4) == 0.0
    assert capped(None) is None
    assert capped(float("nan")) is None
    assert capped("soon") is None
    assert capped(True) is None
    assert capped("7.5") == 7.5


def test_pace_per_annotator_and_mode_from_literal_rows():
    rows = [
        Answer("bob", TEACH, 4.0, at(1)),
        Answer("alice", MANUAL, 30.0, at(0)),
        Answer("alice", MANUAL, 60.0, at(2)),
        Answer("alice", MANUAL, None, at(3)),  # imported: an answer, no time
        Answer("bob", TEACH, 5.0, at(2)),
        Answer("bob", TEACH, 3.0, at(3)),
        Answer("alice", TEACH, 6.0, at(4)),
        Answer("carol", MANUAL, None, at(5)),
    ]
    assert pace(rows) == [
        Pace("alice", MANUAL, 3, 2, 90.0),
        Pace("alice", TEACH, 1, 1, 6.0),
        Pace("bob", TEACH, 3, 3, 12.0),
        Pace("carol", MANUAL, 1, 0, 0.0),
    ]
    alice, alice_teach, bob, carol = pace(rows)
    assert alice.hours == 90 / 3600 and alice.per_hour == 80.0  # 2 timed texts in 90 s
    assert alice_teach.per_hour == 600.0
    assert bob.per_hour == 900.0  # 3 decisions in 12 s
    assert carol.hours == 0.0 and carol.per_hour is None  # no time recorded: no rate
    assert pace([]) == []


def test_f1_by_hours_counts_the_answers_before_each_versions_training():
    rows = [
        Answer("alice", MANUAL, 1800.0, at(0)),  # seconds here are already capped sums
        Answer("bob", TEACH, 900.0, at(10)),
        Answer("alice", MANUAL, 1800.0, at(20)),
        Answer("alice", MANUAL, None, at(21)),
    ]
    assert hours_before(rows, at(0)) == 0.0
    assert hours_before(rows, at(15)) == 0.75
    points = [
        {"version": 1, "labels": 1, "f1": 10.0},
        {"version": 2, "labels": 3, "f1": 40.0},
        {"version": 3, "labels": 4, "f1": 50.0},
    ]
    trained = {1: at(5), 2: at(30)}  # version 3: no time known, left out
    assert f1_by_hours(points, trained, rows) == [
        {"version": 1, "labels": 1, "f1": 10.0, "hours": 0.5},
        {"version": 2, "labels": 3, "f1": 40.0, "hours": 1.25},
    ]


def _stored(url: str) -> dict[tuple[int, str], float | None]:
    with session_scope(url) as s:
        rows = s.execute(select(Annotation.document_id, Annotation.annotator, Annotation.seconds))
        return {(d, a): sec for d, a, sec in rows}


def _act(url: str, fn):
    with session_scope(url) as s:
        return fn(s, get_project(s, "p"))


def test_save_and_skip_store_capped_seconds_and_undo_takes_them_off(db_url, make_project):
    ids = make_project("p", TEXTS)
    who = svc.next_document
    _act(db_url, lambda s, p: who(s, p, "ann"))
    _act(db_url, lambda s, p: svc.save(s, p, ids[0], "ann", [], seconds=12.25))
    _act(db_url, lambda s, p: who(s, p, "ann"))
    _act(db_url, lambda s, p: svc.skip(s, p, ids[1], "ann", seconds=900.0))
    _act(db_url, lambda s, p: who(s, p, "ann"))
    _act(db_url, lambda s, p: svc.save(s, p, ids[2], "ann", []))  # not measured (CLI)
    stored = _stored(db_url)
    assert stored == {(ids[0], "ann"): 12.25, (ids[1], "ann"): 120.0, (ids[2], "ann"): None}

    # a second save of the same text adds its time; undo takes exactly that time off again
    span = {"start": 4, "end": 7, "label": "SHORT"}
    _act(db_url, lambda s, p: svc.save(s, p, ids[0], "ann", [span], seconds=-3))  # clock skew
    _act(db_url, lambda s, p: svc.save(s, p, ids[0], "ann", [span], seconds=7.75))
    assert _stored(db_url)[(ids[0], "ann")] == 20.0
    assert _act(db_url, lambda s, p: svc.undo(s, p, "ann")) == ids[0]
    assert _stored(db_url)[(ids[0], "ann")] == 12.25
    # undo walks back: the -3 s save (0 s), the unmeasured save, the skip, then the save that
    # created the row, which leaves no time behind
    undone = [_act(db_url, lambda s, p: svc.undo(s, p, "ann")) for _ in range(4)]
    assert undone == [ids[0], ids[2], ids[1], ids[0]]
    assert _stored(db_url) == {}


@pytest.mark.both_backends
def test_project_clock_reads_saves_skips_decisions_and_versions(db_url, make_project):
    ids = make_project("p", TEXTS)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        svc.next_document(s, p, "alice")
        svc.save(s, p, ids[0], "alice", [], seconds=40.0)
        svc.next_document(s, p, "alice")
        svc.skip(s, p, ids[1], "alice", seconds=500.0)  # capped: 120
        for start, end, secs in [(4, 7, 3.0), (12, 16, 5000.0)]:
            decisions.record(
                s, p, ids[0], "bob", start=start, end=end, label="SHORT", answer="accept",
                origin="rule", seconds=secs,
            )  # fmt: skip
        decisions.record(
            s, p, ids[2], "bob", start=0, end=2, label="SHORT", answer="reject", origin="rule"
        )
        assert s.scalars(select(Decision.seconds).order_by(Decision.id)).all() == [3.0, 120.0, None]
        # every answer was given before now; a version registered an hour from now after an
        # hour's training began now, so it trained on all of them
        times = {a.created_at for a in s.scalars(select(Annotation))}
        times |= {d.created_at for d in s.scalars(select(Decision))}
        start = max(times) + timedelta(seconds=1)
        gold = [[Span(0, 3, "SHORT")], [Span(0, 4, "SHORT")]]
        fold = span_prf(gold, [gold[0], []], ["SHORT", "LONG"])
        cv = summarize_folds([fold, fold, fold], fold, ["SHORT", "LONG"])
        s.add(
            ModelVersion(
                project_id=p.id, version=1, path="/nowhere/v1", base="default", n_labels=2,
                metrics={"dev": None, "cv": cv}, train_seconds=3600.0,
                created_at=start + timedelta(hours=1),
            )
        )  # fmt: skip
        s.flush()
        clock = project_clock(s, p)
    assert clock.pace == [
        Pace("alice", MANUAL, 2, 2, 160.0),
        Pace("bob", TEACH, 3, 2, 123.0),
    ]
    ((point),) = clock.curve
    assert point["version"] == 1 and point["labels"] == 2
    assert point["hours"] == round(283.0 / 3600, 4)
