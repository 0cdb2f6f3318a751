"""A text's gold (core.labeling.gold): its final version, else its latest done annotation;
training and export read it through the same function, so they agree on every text.

Runs on a real migrated SQLite file and on PostgreSQL (db_url)."""

from __future__ import annotations

from core.io.corpus import export_rows
from core.labeling.annotations import save, skip
from core.labeling.gold import gold_of, labeled_texts
from core.labeling.projects import get_project
from core.labeling.review import finalize
from core.store.db import session_scope
from core.store.schema import Document

TEXTS = [
    "Body mass index (BMI) is a value derived from mass and height.",
    "The World Health Organization (WHO) sets standards.",
    "Natural language processing (NLP) is fun.",
    "Magnetic resonance imaging (MRI) is a scan.",
    "Nothing to see here.",
]
BMI = {"start": 17, "end": 20, "label": "SHORT"}
BMI_LONG = {"start": 0, "end": 15, "label": "LONG"}
WHO = {"start": 31, "end": 34, "label": "SHORT"}
NLP = {"start": 29, "end": 32, "label": "SHORT"}
MRI = {"start": 28, "end": 31, "label": "SHORT"}


def _seed(make_project, db_url) -> list[int]:
    """0: alice and bob disagree; 1: disagree, then a reviewer settles it; 2: bob skipped,
    alice labeled it; 3: only skipped; 4: open."""
    ids = make_project("p", TEXTS)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        save(s, p, ids[0], "alice", [BMI])
        save(s, p, ids[0], "bob", [BMI, BMI_LONG])
        save(s, p, ids[1], "alice", [WHO])
        save(s, p, ids[1], "bob", [])
        finalize(s, p, ids[1], "carol", [WHO])
        save(s, p, ids[2], "alice", [NLP])
        skip(s, p, ids[2], "bob")
        skip(s, p, ids[3], "alice")
    return ids


def test_gold_picks_final_then_latest_done_then_skip(make_project, db_url):
    ids = _seed(make_project, db_url)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        gold = gold_of(s, [Document.project_id == p.id])
        assert sorted(gold) == ids[:3]  # done or final only: a skip is no gold by default
        assert gold[ids[0]].disputed and gold[ids[0]].by == "bob"
        assert gold[ids[1]].final and not gold[ids[1]].disputed and gold[ids[1]].by == "carol"
        assert gold[ids[2]].spans == [NLP] and gold[ids[2]].by == "alice"  # done beats a later skip
        with_skips = gold_of(s, [Document.project_id == p.id], skips=True)
        assert with_skips[ids[3]].status == "skipped"
        alices = gold_of(s, [Document.project_id == p.id], annotator="alice")
        assert not alices[ids[1]].final and alices[ids[1]].spans == [WHO]


def test_training_and_export_read_the_same_gold(make_project, db_url):
    ids = _seed(make_project, db_url)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        unresolved: set[int] = set()
        trained = {
            doc_id: [(sp.start, sp.end, sp.label) for sp in spans]
            for doc_id, (_, _, spans) in labeled_texts(s, p, unresolved=unresolved)
        }
        rows = {row.text: row for row in export_rows(s, p, include_unlabeled=True)}
    assert unresolved == {ids[0]} and sorted(trained) == [ids[1], ids[2]]
    for doc_id, spans in trained.items():
        row = rows[TEXTS[ids.index(doc_id)]]
        assert [(x["start"], x["end"], x["label"]) for x in row.spans] == spans
    # export writes the disputed text's latest version, the skip and the open text too
    assert (
        sorted(rows[TEXTS[0]].spans, key=str) == sorted([BMI, BMI_LONG], key=str)
        and rows[TEXTS[0]].annotator == "bob"
    )
    assert rows[TEXTS[1]].source.startswith("final (reviewed by carol")
    assert rows[TEXTS[3]].status == "skipped" and rows[TEXTS[4]].status == "open"
