"""Decisions in files (issue 22): Prodigy JSONL and JSONL export them, Prodigy JSONL and JSONL
import them; a Prodigy reject with no span is a skipped text, counted."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.io.corpus import export_bytes
from core.io.imports import import_bytes
from core.labeling.annotations import save
from core.labeling.decisions import decisions_for, record
from core.labeling.projects import create_project, get_project
from core.store.db import session_scope
from core.store.schema import Annotation, Decision, Document

TEXT = "Support vector machines (SVM) work."
OTHER = "The World Health Organization (WHO) sets standards."


def _task(text, spans, answer, view="ner", who="acro-alice"):
    return {
        "text": text,
        "_input_hash": 1,
        "_task_hash": 2,
        "spans": spans,
        "answer": answer,
        "_view_id": view,
        "_annotator_id": who,
    }


TEACH = [
    _task(TEXT, [{"start": 25, "end": 28, "label": "SHORT", "score": 0.52}], "accept"),
    _task(TEXT, [{"start": 0, "end": 23, "label": "SHORT"}], "reject"),
    _task(TEXT, [{"start": 0, "end": 7, "label": "LONG"}], "ignore"),
    _task(OTHER, [], "reject", view="ner_manual"),  # the whole text rejected
    _task(
        "A manual one (AMO).", [{"start": 14, "end": 17, "label": "SHORT"}], "accept", "ner_manual"
    ),
]


def _lines(objs) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objs).encode()


@pytest.fixture
def project(db_url):
    with session_scope(db_url) as s:
        create_project(s, "p", "acronym")


def _import(db_url, data: bytes, name="teach.jsonl", **kw):
    with session_scope(db_url) as s:
        return import_bytes(s, get_project(s, "p"), name, data, **kw)


@pytest.mark.both_backends
def test_a_prodigy_teach_file_comes_in_as_decisions(db_url, project):
    report = _import(db_url, _lines(TEACH))
    assert (report.imported, report.decisions, report.rejected_texts) == (3, 3, 1)
    assert report.duplicates == 0 and report.annotations == 1
    assert "3 decisions" in report.summary() and "1 texts rejected whole" in report.summary()
    with session_scope(db_url) as s:
        docs = {d.text: d for d in s.scalars(select(Document))}
        assert {t: d.state for t, d in docs.items()} == {
            TEXT: "open",
            OTHER: "skipped",
            "A manual one (AMO).": "done",
        }
        got = decisions_for(s, [docs[TEXT].id])[docs[TEXT].id]
        assert [(d["start"], d["end"], d["answer"]) for d in got] == [
            (25, 28, "accept"),
            (0, 23, "reject"),
            (0, 7, "ignore"),
        ]
        assert {d["annotator"] for d in got} == {"acro-alice"} and got[0]["confidence"] == 0.52
        assert {d["origin"] for d in got} == {"import"}
        skipped = s.scalars(select(Annotation).where(Annotation.document_id == docs[OTHER].id))
        assert [a.status for a in skipped] == ["skipped"]
    again = _import(db_url, _lines(TEACH))  # the same answers again: already answered
    assert (again.imported, again.decisions, again.answered_before) == (0, 0, 3)


def test_a_staged_import_keeps_skips_and_decisions(db_url, project):
    extra = [{"text": f"Filler text number {i}."} for i in range(5)]
    report = _import(db_url, _lines([*TEACH, *extra]), batch_size=2)
    assert (report.imported, report.decisions, report.rejected_texts) == (8, 3, 1)
    with session_scope(db_url) as s:
        states = dict(s.execute(select(Document.text, Document.state)).all())
        assert states[OTHER] == "skipped" and states[TEXT] == "open"
        assert states["A manual one (AMO)."] == "done"
        assert len(s.scalars(select(Decision)).all()) == 3


def test_a_bad_decision_span_names_its_line(db_url, project):
    bad = [_task(TEXT, [{"start": 24, "end": 28, "label": "SHORT"}], "accept")]  # "(SVM"
    bad[0]["spans"][0]["start"] = 23  # " (SVM": not exact
    with pytest.raises(Exception, match=r"teach.jsonl:1: .*not exact"):
        _import(db_url, _lines(bad))
    report = _import(db_url, _lines([*bad, TEACH[0]]), skip_invalid=True)
    assert report.skipped_invalid and report.decisions == 1


@pytest.mark.both_backends
def test_decisions_go_out_in_prodigy_and_jsonl_and_come_back(db_url, make_project):
    ids = make_project("p", [TEXT, OTHER])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        svm = {"start": 25, "end": 28, "label": "SHORT"}
        record(s, p, ids[0], "alice", **svm, answer="accept", origin="model", confidence=0.4)
        record(s, p, ids[0], "bob", start=0, end=23, label="LONG", answer="reject", origin="rule")
        save(s, p, ids[1], "alice", [{"start": 31, "end": 34, "label": "SHORT"}])
        prodigy = export_bytes(s, p, "prodigy").decode()
        jsonl = export_bytes(s, p, "jsonl").decode()
        csv = export_bytes(s, p, "csv").decode()
    tasks = [json.loads(line) for line in prodigy.splitlines()]
    assert [(t["text"], t["answer"], t.get("_view_id")) for t in tasks] == [
        (TEXT, "accept", "ner"),
        (TEXT, "reject", "ner"),
        (OTHER, "accept", None),
    ]
    accept = tasks[0]
    assert accept["spans"][0]["text"] == "SVM" and accept["spans"][0]["score"] == 0.4
    assert accept["_annotator_id"] == "alice"
    assert accept["tokens"][accept["spans"][0]["token_start"]]["start"] == 25
    rows = [json.loads(line) for line in jsonl.splitlines()]
    assert [r["status"] for r in rows] == ["open", "done"]
    assert [(d["label"], d["answer"], d["annotator"]) for d in rows[0]["decisions"]] == [
        ("SHORT", "accept", "alice"),
        ("LONG", "reject", "bob"),
    ]
    assert "decisions" not in rows[1]
    assert TEXT not in csv  # a format without decisions: a text with only decisions is not a row
    for fmt, data in (("prodigy", prodigy), ("jsonl", jsonl)):
        name = f"{fmt}-back"
        with session_scope(db_url) as s:
            create_project(s, name, "acronym")
            import_bytes(s, get_project(s, name), "back.jsonl", data.encode(), fmt=fmt)
            mine = Document.project_id == get_project(s, name).id
            doc = s.scalar(select(Document).where(Document.text == TEXT, mine))
            back = decisions_for(s, [doc.id])[doc.id]
        assert [(d["start"], d["label"], d["answer"], d["annotator"]) for d in back] == [
            (25, "SHORT", "accept", "alice"),
            (0, "LONG", "reject", "bob"),
        ], fmt
