"""Review that corrects: a reviewer's save is the text's final version, kept beside the
annotations; export and training take it first; disagreements between annotators are found.

Core functions run on a real migrated SQLite file (and PostgreSQL where marked both_backends);
the Review page runs under AppTest.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import func, select
from test_app import app, component, select_table_row, send_event  # noqa: F401 (fixture)

from core.errors import ConflictError, SpanError
from core.io.corpus import export_bytes
from core.io.imports import import_bytes
from core.jobs.training import labeled_texts
from core.labeling.annotations import next_document, save, skip, undo
from core.labeling.projects import create_project, get_project
from core.labeling.review import disagreements, final_of, finalize, versions
from core.store.db import downgrade, session_scope, upgrade
from core.store.schema import Annotation, Document, FinalAnnotation

TEXTS = [
    "Body mass index (BMI) is a value derived from mass and height.",
    "The World Health Organization (WHO) sets standards.",
    "Natural language processing (NLP) is fun.",
]
BMI = {"start": 17, "end": 20, "label": "SHORT"}
BMI_LONG = {"start": 0, "end": 15, "label": "LONG"}
WHO = {"start": 31, "end": 34, "label": "SHORT"}
WHO_LONG = {"start": 4, "end": 29, "label": "LONG"}


@pytest.fixture
def ids(make_project, db_url) -> list[int]:
    """Text 0: alice and bob disagree; text 1: they agree; text 2: open."""
    ids = make_project("p", TEXTS)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        save(s, p, ids[0], "alice", [BMI])
        save(s, p, ids[0], "bob", [BMI, BMI_LONG])
        save(s, p, ids[1], "alice", [WHO])
        save(s, p, ids[1], "bob", [{**WHO, "origin": "accepted"}])  # how it was made: no matter
    return ids


def _csv_rows(db_url, **kw) -> list[dict]:
    with session_scope(db_url) as s:
        data = export_bytes(s, get_project(s, "p"), "csv", **kw)
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


# ---------------------------------------------------------------- core


def test_migrations_since_0003_keep_every_existing_row(tmp_path):
    """A database as it was before final versions (0004) and project settings (0005), written
    with plain SQL since today's models describe the newer tables, upgrades with every row."""
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = create_engine(url)
    rows = {
        "projects": {"id": 1, "name": "old", "task": "acronym", "labels": '["SHORT", "LONG"]'},
        "documents": {"id": 1, "project_id": 1, "text": "The NASA team", "text_hash": "h"},
        "annotations": {"document_id": 1, "annotator": "ann", "status": "done"},
    }
    rows["projects"].update(label_spelling="{}", strategy="random", created_at="2026-12-01")
    rows["documents"].update(meta="{}", state="done", rank=0, created_at="2026-12-01")
    spans = '[{"start": 4, "end": 8, "label": "SHORT"}]'
    rows["annotations"].update(spans=spans, created_at="2026-12-01", updated_at="2026-12-01")
    with engine.begin() as c:
        for table, row in rows.items():
            names = ", ".join(row)
            values = ", ".join(f":{k}" for k in row)
            c.execute(text(f"INSERT INTO {table} ({names}) VALUES ({values})"), row)
    engine.dispose()
    upgrade(url)
    with session_scope(url) as s:
        assert s.scalar(select(func.count(Document.id))) == 1
        assert s.scalar(select(Annotation.spans)) == [{"start": 4, "end": 8, "label": "SHORT"}]
        assert s.scalar(select(func.count(FinalAnnotation.id))) == 0
        project = get_project(s, "old")
        assert project.settings == {}
        finalize(s, project, 1, "rev", [])
    downgrade(url, "0003")  # only the final versions and the settings go
    engine = create_engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM annotations")).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM projects")).scalar() == 1
    engine.dispose()


@pytest.mark.both_backends
def test_a_final_version_is_kept_beside_the_annotations(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        finalize(s, p, ids[0], "carol", [BMI_LONG, BMI], based_on="bob")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        anns = s.scalars(select(Annotation).where(Annotation.document_id == ids[0])).all()
        assert {a.annotator: len(a.spans) for a in anns} == {"alice": 1, "bob": 2}
        final = final_of(s, [ids[0]])[ids[0]]
        assert (final.reviewer, final.based_on) == ("carol", "bob")
        assert final.spans == [BMI_LONG, BMI] and final.reviewed_at is not None
        assert [(v.who, v.final) for v in versions(s, p, ids[0])] == [
            ("alice", False),
            ("bob", False),
            ("carol", True),
        ]

        # A second review replaces the final version and keeps the first in its history.
        finalize(s, p, ids[0], "dave", [BMI])
        final = final_of(s, [ids[0]])[ids[0]]
        assert (final.reviewer, final.based_on, final.spans) == ("dave", None, [BMI])
        assert [h["reviewer"] for h in final.previous] == ["carol"]
        assert s.scalar(select(func.count(FinalAnnotation.id))) == 1


@pytest.mark.both_backends
def test_finalize_validates_and_respects_claims(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        with pytest.raises(SpanError):
            finalize(s, p, ids[0], "carol", [{"start": 0, "end": 4, "label": "NOPE"}])
        assert next_document(s, p, "erin").document_id == ids[2]  # erin is labeling text 2
        with pytest.raises(ConflictError):
            finalize(s, p, ids[2], "carol", [])
        assert final_of(s, ids) == {}


@pytest.mark.both_backends
def test_a_reviewed_open_text_leaves_the_queue_and_stays_done_after_an_undo(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        skip(s, p, ids[2], "erin")
        finalize(s, p, ids[2], "carol", [{"start": 29, "end": 32, "label": "SHORT"}])
        assert s.get(Document, ids[2]).state == "done"
        assert undo(s, p, "erin") == ids[2]  # erin's skip is undone; the final version stays
        assert s.get(Document, ids[2]).state == "done"
        assert next_document(s, p, "erin") is None


@pytest.mark.both_backends
def test_export_prefers_the_final_version_and_names_its_source(db_url, ids):
    with session_scope(db_url) as s:
        finalize(s, get_project(s, "p"), ids[0], "carol", [BMI_LONG, BMI], based_on="alice")
    rows = _csv_rows(db_url)
    assert [r["id"] for r in rows] == [str(ids[0]), str(ids[1])]
    first, second = rows
    assert first["annotator"] == "carol" and first["status"] == "done"
    assert first["source"].startswith("final (reviewed by carol at ")
    assert [sp["text"] for sp in json.loads(first["spans"])] == ["Body mass index", "BMI"]
    assert second["source"] == f"annotation by {second['annotator']}"

    # With an annotator asked for, only that annotator's own annotations count.
    (alice,) = [r for r in _csv_rows(db_url, annotator="alice") if r["id"] == str(ids[0])]
    assert (alice["annotator"], alice["source"]) == ("alice", "annotation by alice")

    with session_scope(db_url) as s:
        lines = export_bytes(s, get_project(s, "p"), "jsonl").decode().splitlines()
    obj = json.loads(lines[0])
    assert obj["annotator"] == "carol" and obj["source"] == first["source"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.both_backends
def test_our_export_with_sources_imports_back(db_url, ids, fmt):
    with session_scope(db_url) as s:
        finalize(s, get_project(s, "p"), ids[0], "carol", [BMI_LONG, BMI])
        data = export_bytes(s, get_project(s, "p"), fmt)
    url = db_url.replace("fewlabel.db", "back.db")  # a second database beside the test's
    upgrade(url)
    with session_scope(url) as s:
        back = create_project(s, "back", "acronym")
        report = import_bytes(s, back, f"p.{fmt}", data, annotator="gold")
        assert (report.imported, report.annotations) == (2, 2)
        docs = {d.text: d for d in s.scalars(select(Document))}
        assert docs[TEXTS[0]].meta == {}  # annotator, source, status: not metadata
        spans = s.scalar(
            select(Annotation.spans).where(Annotation.document_id == docs[TEXTS[0]].id)
        )
        assert sorted(sp["start"] for sp in spans) == [0, 17]


@pytest.mark.both_backends
def test_disagreements_are_found_by_their_spans(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        found, total = disagreements(s, p)
        assert total == 1 and [d.document_id for d in found] == [ids[0]]
        (d,) = found
        assert [v.who for v in d.versions] == ["alice", "bob"] and d.final is None
        assert d.agreed == [BMI]
        assert disagreements(s, p, annotator="alice")[1] == 1
        assert disagreements(s, p, annotator="erin")[1] == 0
        assert disagreements(s, p, search="World")[1] == 0

        finalize(s, p, ids[0], "carol", [BMI])
        (d,), _ = disagreements(s, p)
        assert d.final is not None and d.final.who == "carol"
        assert disagreements(s, p, unsettled=True)[1] == 0


def test_training_prefers_the_final_version(db_url, ids):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        finalize(s, p, ids[0], "carol", [BMI_LONG])  # older than bob's save, still wins
        finalize(s, p, ids[2], "carol", [])  # a text only a reviewer labeled counts too
        got = {doc_id: spans for doc_id, (_, _, spans) in labeled_texts(s, p)}
    assert list(got) == ids
    assert [(sp.start, sp.label) for sp in got[ids[0]]] == [(0, "LONG")]
    assert got[ids[2]] == []


# ---------------------------------------------------------------- the Review page


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def _table(at, prefix: str):
    (table,) = [d for d in at.dataframe if (d.key or "").startswith(prefix)]
    return table.value


def test_review_correction_becomes_the_final_version_shown_in_the_editor(app, db_url, ids):  # noqa: F811
    at = app("views/review.py", annotator="carol")
    rows = _table(at, "review_table")
    keys = list(zip(rows["text #"], rows["annotator"], strict=True))
    select_table_row(at, "review_table", keys.index((ids[0], "bob")))
    assert component(at)["spans"] == [BMI_LONG, BMI]
    assert "bob's annotation stays as it is" in captions(at)

    send_event(at, "save", ids[0], [BMI])  # carol removes bob's long form
    at.run()  # a rerun with the table's selection unchanged keeps the final version open
    assert component(at)["spans"] == [BMI]
    assert "Showing the final version, reviewed by carol" in captions(at)
    with session_scope(db_url) as s:
        final = final_of(s, [ids[0]])[ids[0]]
        assert (final.reviewer, final.based_on, final.spans) == ("carol", "bob", [BMI])
        assert (
            s.scalar(select(func.count(Annotation.id)).where(Annotation.annotator == "carol")) == 0
        )
    table = _table(at, "review_table")
    assert set(table["final, reviewed by"][table["text #"] == ids[0]].str.startswith("carol"))


def test_review_disagreements_side_by_side_and_use_one(app, db_url, ids):  # noqa: F811
    at = app("views/review.py", annotator="carol")
    at.toggle(key="review_disagreements").set_value(True).run()
    table = _table(at, "review_disagreements_table")
    assert list(table["text #"]) == [ids[0]] and list(table["annotators"]) == ["alice, bob"]

    select_table_row(at, "review_disagreements_table", 0)
    assert component(at)["spans"] == [BMI]  # alice's, the first annotator's
    shown = [t.value for t in at.text]
    assert "Body mass index ([BMI]{SHORT}) is a value derived from mass and height." in shown
    assert (
        "[Body mass index]{LONG} ([BMI]{SHORT}) is a value derived from mass and height." in shown
    )

    at.button(key=f"review_use_{ids[0]}_bob").click().run()
    assert not at.exception, at.exception
    with session_scope(db_url) as s:
        final = final_of(s, [ids[0]])[ids[0]]
        assert (final.reviewer, final.based_on) == ("carol", "bob")
        assert sorted(sp["start"] for sp in final.spans) == [0, 17]
    assert sorted(sp["start"] for sp in component(at)["spans"]) == [0, 17]
    assert list(_table(at, "review_disagreements_table")["final, reviewed by"])[0].startswith(
        "carol"
    )
