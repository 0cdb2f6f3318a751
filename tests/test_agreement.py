"""Overlap and agreement: texts several annotators label, and span F1 between them.

The pure functions take literal spans; the queue, settings, export and CLI run on a real
migrated database; the Review and Projects pages run under AppTest.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime

import pytest
from sqlalchemy import select
from test_app import app, component, select_table_row  # noqa: F401 (fixture)

from core.cli import main
from core.errors import ValidationError
from core.io.corpus import export_bytes
from core.labeling.agreement import Counts, agreement, over_time, pair_agreement, project_agreement
from core.labeling.annotations import next_document, save, set_ranks, skip, undo
from core.labeling.overlap import Overlap, document_state, overlap_of, set_overlap, shared_texts
from core.labeling.projects import get_project
from core.labeling.review import disagreements, finalize
from core.store.db import session_scope
from core.store.schema import Document

TEXTS = [f"Text number {i} mentions NASA and the WHO ." for i in range(6)]
NASA = {"start": 23, "end": 27, "label": "SHORT"}
WHO = {"start": 36, "end": 39, "label": "SHORT"}
WHO_LONG = {"start": 32, "end": 39, "label": "LONG"}  # "the WHO": a boundary disagreement

# ---------------------------------------------------------------- pure functions


def test_pair_agreement_is_span_f1_per_label_and_micro_on_shared_texts():
    a = {
        1: [(0, 3, "SHORT"), (5, 10, "LONG")],
        2: [(0, 4, "SHORT")],
        3: [(7, 9, "SHORT")],  # only a labeled it: not compared
    }
    b = {
        1: [(0, 3, "SHORT"), (5, 9, "LONG")],  # the long form one word shorter
        2: [(0, 4, "SHORT")],
        4: [(1, 2, "LONG")],
    }
    pair = pair_agreement(a, b, names=("ann", "bob"))
    assert (pair.a, pair.b, pair.texts, pair.differ) == ("ann", "bob", 2, 1)
    assert pair.micro == Counts(matched=2, a=3, b=3)
    assert pair.micro.f1 == pytest.approx(4 / 6)
    assert pair.labels["SHORT"] == Counts(2, 2, 2) and pair.labels["SHORT"].f1 == 1.0
    assert pair.labels["LONG"] == Counts(0, 1, 1) and pair.labels["LONG"].f1 == 0.0
    assert pair_agreement(b, a).micro.f1 == pair.micro.f1  # symmetric


def test_unequal_span_counts_and_texts_without_spans():
    pair = pair_agreement({1: [(0, 3, "X"), (4, 6, "X")], 2: []}, {1: [(0, 3, "X")], 2: []})
    assert pair.micro == Counts(1, 2, 1) and pair.micro.f1 == pytest.approx(2 / 3)
    assert pair.differ == 1 and pair.texts == 2
    empty = pair_agreement({1: []}, {1: []})
    assert empty.texts == 1 and empty.micro.f1 is None and empty.labels == {}


def test_more_than_two_annotators_take_the_mean_over_pairs():
    found = agreement(
        {
            "a": {1: [(0, 3, "X")], 2: [(4, 6, "Y")]},
            "b": {1: [(0, 3, "X")], 2: [(4, 6, "Y")]},
            "c": {1: [(0, 2, "X")]},  # shares text 1 only
            "d": {9: [(0, 1, "X")]},  # shares nothing: no pair
        }
    )
    assert [(p.a, p.b) for p in found.pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [p.micro.f1 for p in found.pairs] == [1.0, 0.0, 0.0]
    assert found.micro == pytest.approx(1 / 3)
    assert found.labels == {"X": pytest.approx(1 / 3), "Y": 1.0}
    assert found.texts == 2 and found.label_spans == {"X": 3, "Y": 2}


def test_agreement_over_time_in_windows_of_texts_and_by_week():
    labeled = {
        "a": {d: [(0, 1, "X")] for d in range(1, 6)},
        "b": {d: [(0, 1, "X")] if d <= 3 else [(0, 2, "X")] for d in range(1, 6)},
    }
    at = {d: datetime(2026, 11, 20 + 2 * d) for d in range(1, 6)}  # days 22, 24 ... 30
    windows = over_time(labeled, at, size=2)
    assert [(w.name, w.texts, w.micro) for w in windows] == [
        ("texts 1-2", 2, 1.0),
        ("texts 3-4", 2, 0.5),
        ("text 5", 1, 0.0),
    ]
    weeks = over_time(labeled, at, by="week")
    assert [(w.name, w.texts) for w in weeks] == [("2026-W47", 1), ("2026-W48", 3), ("2026-W49", 1)]
    assert weeks[1].micro == pytest.approx(4 / 6)
    with pytest.raises(ValidationError):
        over_time(labeled, at, by="month")


def test_overlap_picks_texts_by_a_stable_hash_of_project_and_document():
    overlap = Overlap(2, 0.2)
    picked = [d for d in range(1, 5001) if overlap.selects(7, d)]
    assert picked == [d for d in range(1, 5001) if Overlap(2, 0.2).selects(7, d)]  # stable
    assert 900 < len(picked) < 1100  # about a fifth
    assert picked != [d for d in range(1, 5001) if overlap.selects(8, d)]  # per project
    assert all(overlap.required(7, d) == (2 if d in picked else 1) for d in range(1, 200))
    assert not Overlap(1, 1.0).selects(7, 1) and all(Overlap(3, 1.0).selects(7, d) for d in (1, 2))
    assert Overlap().describe() == "one annotator per text"


def test_document_state_waits_for_the_required_annotators():
    assert document_state(done=1, skipped=False, required=2, final=False) == "open"
    assert document_state(done=2, skipped=False, required=2, final=False) == "done"
    assert document_state(done=1, skipped=True, required=2, final=False) == "skipped"
    assert document_state(done=0, skipped=False, required=2, final=True) == "done"
    assert document_state(done=1, skipped=True, required=1, final=False) == "done"


# ---------------------------------------------------------------- the queue


@pytest.fixture
def ids(make_project, db_url) -> list[int]:
    """A project `p` of TEXTS, every text needing two annotators."""
    ids = make_project("p", TEXTS)
    with session_scope(db_url) as s:
        set_overlap(s, get_project(s, "p"), 2, 1.0)
    return ids


def _label_all(db_url, who: str, spans_of=lambda doc: [NASA]) -> list[int]:
    """Every text the queue serves `who`, saved with spans_of(doc id); the ids in order."""
    served = []
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        while (task := next_document(s, p, who)) is not None:
            assert task.document_id not in served, "served twice to one annotator"
            assert task.spans == []  # never another annotator's spans
            served.append(task.document_id)
            save(s, p, task.document_id, who, spans_of(task.document_id))
    return served


@pytest.mark.both_backends
def test_an_overlap_text_goes_to_two_distinct_annotators_and_never_twice_to_one(db_url, ids):
    assert _label_all(db_url, "alice") == ids  # in queue order; each stays open after her save
    with session_scope(db_url) as s:
        assert {d.state for d in s.scalars(select(Document))} == {"open"}
    assert _label_all(db_url, "bob") == ids
    assert _label_all(db_url, "carol") == []  # two saved each: done
    with session_scope(db_url) as s:
        assert {d.state for d in s.scalars(select(Document))} == {"done"}


@pytest.mark.both_backends
def test_two_annotators_label_overlap_texts_side_by_side(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        first = next_document(s, p, "alice").document_id
        # alice holds it: bob is served the next text, and the held one after alice saved it
        assert next_document(s, p, "bob").document_id == ids[1] != first
        save(s, p, first, "alice", [NASA])
        save(s, p, ids[1], "bob", [WHO])
        assert next_document(s, p, "bob").document_id == first
        assert next_document(s, p, "alice").document_id == ids[1]


@pytest.mark.both_backends
def test_a_share_of_texts_needs_two_the_rest_one(make_project, db_url):
    ids = make_project("p", [f"Sentence {i} about NASA ." for i in range(40)])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        overlap = set_overlap(s, p, 2, 0.5)
        shared = [d for d in ids if overlap.selects(p.id, d)]
        assert shared_texts(s, p) == (len(shared), 40) and 0 < len(shared) < 40
    assert _label_all(db_url, "alice", lambda d: []) == ids
    assert sorted(_label_all(db_url, "bob", lambda d: [])) == shared


@pytest.mark.both_backends
def test_a_reviewer_is_never_served_a_text_overlap_keeps_for_annotators(make_project, db_url):
    """next_document(shared=False), as the Annotate page asks it for a reviewer or an admin:
    the texts needing several annotators are neither served nor held; the others are, in
    queue order, however many shared texts come first (more than one batch of the queue)."""
    ids = make_project("p", [f"Sentence {i} about NASA ." for i in range(400)])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        overlap = set_overlap(s, p, 2, 0.8)
        shared = [d for d in ids if overlap.selects(p.id, d)]
        single = [d for d in ids if d not in shared]
        assert len(shared) > 300 and single
        set_ranks(s, p, {d: 0.0 if d in shared else 1.0 for d in ids})  # shared texts first
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        served = []
        while (task := next_document(s, p, "rita", shared=False)) is not None:
            served.append(task.document_id)
            skip(s, p, task.document_id, "rita")
        assert served == single
        held = s.scalars(select(Document.id).where(Document.assigned_to.is_not(None))).all()
        assert held == []  # no shared text was held away from the annotators
        assert next_document(s, p, "alice").document_id == shared[0]
        set_overlap(s, p, 2, 1.0)  # every text is shared: nothing for a reviewer
        assert next_document(s, p, "rita", shared=False) is None


@pytest.mark.both_backends
def test_a_skip_sets_an_overlap_text_aside_for_everyone(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        save(s, p, ids[0], "alice", [NASA])
        assert next_document(s, p, "bob").document_id == ids[0]
        skip(s, p, ids[0], "bob")
        assert s.get(Document, ids[0]).state == "skipped"
        assert next_document(s, p, "carol").document_id == ids[1]
        assert undo(s, p, "bob") == ids[0]  # bob's undo brings it back to him
        assert next_document(s, p, "bob").document_id == ids[0]


def test_changing_the_overlap_reopens_or_closes_labeled_texts(make_project, db_url):
    ids = make_project("p", TEXTS[:3])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        for d in ids:
            save(s, p, d, "alice", [NASA])
        assert next_document(s, p, "bob") is None
        set_overlap(s, p, 2, 1.0)  # every text now needs a second annotator
        assert {s.get(Document, d).state for d in ids} == {"open"}
        assert next_document(s, p, "alice") is None  # she did them all
        assert next_document(s, p, "bob").document_id == ids[0]
        set_overlap(s, p, 1, 0.0)
        assert {s.get(Document, d).state for d in ids} == {"done"}


def test_overlap_setting_round_trip_and_refusals(make_project, db_url):
    make_project("p", TEXTS[:1])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert overlap_of(p) == Overlap(1, 0.0)
        assert set_overlap(s, p, 3, 0.25) == Overlap(3, 0.25)
        p.settings = {**p.settings, "prefill_threshold": 0.9}  # other settings stay
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert overlap_of(p) == Overlap(3, 0.25) and p.settings["prefill_threshold"] == 0.9
        for bad in [(0, 0.5), (2, 1.5), (2, -0.1), (11, 0.5), (2.5, 0.5), (True, 0.5), (2, "x")]:
            with pytest.raises(ValidationError):
                set_overlap(s, p, *bad)
        assert set_overlap(s, p, 1, 0.7) == Overlap(1, 0.0)  # one annotator: no share
        p.settings = {**p.settings, "overlap": {"annotators": "lots"}}
        assert overlap_of(p) == Overlap()  # an unreadable value is the default


# ---------------------------------------------------------------- agreement, review, export


@pytest.fixture
def labeled(db_url, ids) -> list[int]:
    """alice and bob labeled every text: they agree on NASA, differ on the WHO in texts 0-1."""
    _label_all(db_url, "alice", lambda d: [NASA, WHO])
    _label_all(db_url, "bob", lambda d: [NASA, WHO_LONG if d in ids[:2] else WHO])
    return ids


def test_project_agreement_counts_pairs_labels_and_settled_texts(db_url, labeled):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        report = project_agreement(s, p, size=4)
        assert report.agreement.texts == 6 and report.disagreeing == 2 and report.resolved == 0
        (pair,) = report.agreement.pairs
        assert (pair.a, pair.b, pair.texts, pair.differ) == ("alice", "bob", 6, 2)
        assert pair.micro == Counts(10, 12, 12)
        assert report.agreement.labels == {"LONG": 0.0, "SHORT": pytest.approx(20 / 22)}
        assert [(w.name, w.micro) for w in report.over_time] == [
            ("texts 1-4", pytest.approx(12 / 16)),
            ("texts 5-6", 1.0),
        ]
        # the Review page lists the disagreeing texts; a final version settles them
        found, total = disagreements(s, p)
        assert total == 2 and [d.document_id for d in found] == labeled[:2]
        finalize(s, p, labeled[0], "carol", [NASA, WHO], based_on="alice")
        assert project_agreement(s, p).resolved == 1
        assert disagreements(s, p, unsettled=True)[1] == 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_says_which_version_each_overlap_row_is(db_url, labeled, fmt):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        finalize(s, p, labeled[0], "carol", [NASA, WHO], based_on="alice")
        data = export_bytes(s, p, fmt).decode("utf-8")
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(data)))
    else:
        rows = [json.loads(line) for line in data.splitlines()]
    sources = [r["source"] for r in rows]
    assert sources[0].startswith("final (reviewed by carol at ")
    assert sources[1:] == ["annotation by bob"] * 5  # the latest save, named as such


def test_cli_project_overlap_and_agreement(db_url, labeled, capsys):
    assert main(["--db", db_url, "project", "overlap", "p"]) == 0
    assert "p: 2 annotators on every text (6 of 6 texts shared)" in (capsys.readouterr().out)
    assert main(["--db", db_url, "agreement", "p", "--window", "4"]) == 0
    out = capsys.readouterr().out
    assert "6 texts labeled by two annotators or more; span F1 (mean over pairs) 83.3" in out
    assert "annotators differ on 2, 0 of them settled by a final version" in out
    assert "alice bob      6       2       12       12       10 83.3" in out
    assert "LONG       2  0.0" in out and "SHORT     22 90.9" in out
    assert "texts 1-4      4  75.0" in out
    assert main(["--db", db_url, "agreement", "p", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["micro_f1"] == pytest.approx(10 / 12) and got["texts_disagreeing"] == 2
    assert got["pairs"][0]["labels"]["LONG"] == {"f1": 0.0, "matched": 0, "a": 0, "b": 2}
    assert [w["texts"] for w in got["over_time"]["windows"]] == [6]

    assert main(["--db", db_url, "project", "overlap", "p", "--share", "0.5"]) == 0
    assert "p: 2 annotators on 50% of texts" in capsys.readouterr().out
    assert main(["--db", db_url, "project", "overlap", "p", "--annotators", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fewlabel: error: annotators per text") and err.count("\n") == 1
    assert main(["--db", db_url, "agreement", "nope"]) == 2


def test_cli_agreement_without_shared_texts_says_how_to_get_some(make_project, db_url, capsys):
    make_project("solo", TEXTS[:2])
    assert main(["--db", db_url, "agreement", "solo"]) == 0
    out = capsys.readouterr().out
    assert "solo: one annotator per text" in out
    assert "fewlabel project overlap solo --annotators 2 --share 0.2" in out


# ---------------------------------------------------------------- the pages


def agreement_tables(at) -> list:
    """The Review page's agreement tables: per label, per pair, over time."""
    (section,) = [e for e in at.expander if e.label == "Agreement between annotators"]
    return [d.value for d in section.dataframe]


def test_review_page_shows_agreement_per_label_pair_and_over_time(app, db_url, labeled):  # noqa: F811
    at = app("views/review.py", annotator="carol")
    labels, pairs, times = agreement_tables(at)
    assert list(labels["label"]) == ["LONG", "SHORT"] and list(labels["F1"]) == [0.0, 90.9]
    assert list(pairs["annotators"]) == ["alice / bob"] and list(pairs["F1"]) == [83.3]
    assert list(times["texts"]) == [6]
    assert [m.value for m in at.metric] == ["83.3", "6", "2, 0"]

    at.radio(key="review_agreement_by").set_value("week").run()
    assert not at.exception, at.exception
    weeks = agreement_tables(at)[2]
    assert re.fullmatch(r"\d{4}-W\d{2}", list(weeks["window"])[0])

    # the disagreeing texts are listed; using bob's version settles one
    at.toggle(key="review_disagreements").set_value(True).run()
    select_table_row(at, "review_disagreements_table", 0)
    at.button(key=f"review_use_{labeled[0]}_bob").click().run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][2] == "2, 1"


def test_review_page_agreement_without_overlap(app, make_project):  # noqa: F811
    make_project("solo", TEXTS[:2])
    at = app("views/review.py")
    assert any("No text is labeled by two annotators yet" in i.value for i in at.info)


def test_projects_page_sets_the_overlap(app, db_url, ids):  # noqa: F811
    at = app("views/projects.py")
    with session_scope(db_url) as s:
        pid = get_project(s, "p").id
    at.number_input(key=f"overlap_annotators_{pid}").set_value(3)
    at.number_input(key=f"overlap_share_{pid}").set_value(20.0)
    at.button(key="overlap_submit").click().run()
    assert not at.exception, at.exception
    with session_scope(db_url) as s:
        assert overlap_of(get_project(s, "p")) == Overlap(3, 0.2)
    assert any("3 annotators on 20% of texts" in c.value for c in at.caption)

    at.number_input(key=f"overlap_annotators_{pid}").set_value(2)
    at.number_input(key=f"overlap_share_{pid}").set_value(0.0)
    at.button(key="overlap_submit").click().run()
    with session_scope(db_url) as s:
        assert overlap_of(get_project(s, "p")) == Overlap(2, 0.0)


@pytest.mark.both_backends
def test_training_waits_for_a_reviewer_where_overlap_annotators_disagree(db_url, ids):
    """Texts both annotators saved alike train; a text they disagree on is left out until a
    reviewer's final version settles it (one of the two is wrong)."""
    from core.jobs.training import labeled_texts

    with session_scope(db_url) as s:
        p = get_project(s, "p")
        for doc in ids[:2]:
            save(s, p, doc, "alice", [NASA])
            save(s, p, doc, "bob", [NASA] if doc == ids[0] else [NASA, WHO])
        unresolved: set[int] = set()
        assert [d for d, _ in labeled_texts(s, p, unresolved=unresolved)] == [ids[0]]
        assert unresolved == {ids[1]}
        finalize(s, p, ids[1], "rita", [NASA, WHO])
        ((doc, (_, _, spans)),) = [x for x in labeled_texts(s, p) if x[0] == ids[1]]
        assert [(sp.start, sp.end) for sp in spans] == [(23, 27), (36, 39)]
