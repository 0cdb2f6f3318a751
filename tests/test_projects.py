"""Projects, labels and texts renamed and deleted, on a real migrated SQLite file."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.errors import ConflictError, NotFoundError, ValidationError
from core.labeling.annotations import next_document, save
from core.labeling.claims import CLAIM_LEASE
from core.labeling.projects import (
    create_project,
    delete_document,
    delete_project,
    get_project,
    rename_label,
    rename_project,
)
from core.labeling.review import finalize
from core.store.db import session_scope
from core.store.schema import (
    Annotation,
    Document,
    FinalAnnotation,
    Job,
    ModelVersion,
    Prediction,
    Project,
    utcnow,
)

TEXTS = ["Ada Lovelace worked in London.", "Alan Turing lived in Manchester."]
ADA = {"start": 0, "end": 12, "label": "PER"}
LONDON = {"start": 23, "end": 29, "label": "LOC"}


def count(s, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


def test_rename_project_keeps_its_texts_and_refuses_a_taken_or_empty_name(make_project, db_url):
    make_project("a", TEXTS)
    make_project("b", TEXTS[:1])
    with session_scope(db_url) as s:
        renamed = rename_project(s, get_project(s, "a"), "  people ")
        assert renamed.name == "people"
    with session_scope(db_url) as s:
        p = get_project(s, "people")
        assert count(s, Document) == 3 and len(p.documents) == 2
        with pytest.raises(ConflictError, match="'b' already exists"):
            rename_project(s, p, "b")
        for bad in ("", "   ", "x" * 201):
            with pytest.raises(ValidationError):
                rename_project(s, p, bad)
        assert rename_project(s, p, "people").name == "people"  # unchanged is fine


def test_delete_project_needs_its_exact_name_and_cascades(make_project, db_url, tmp_path):
    ids = make_project("p", TEXTS, task="custom", labels=["PER", "LOC"])
    make_project("other", TEXTS[:1])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        save(s, p, ids[0], "alice", [ADA])
        finalize(s, p, ids[0], "rev", [ADA])
        version = ModelVersion(
            project_id=p.id, version=1, path=str(tmp_path / "1-p" / "v1"), base="b", n_labels=1
        )
        s.add(version)
        s.flush()
        s.add(Prediction(document_id=ids[1], model_version_id=version.id, spans=[], score=0.5))
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        for wrong in ("", "P", "p "):
            with pytest.raises(ValidationError, match="type the project's name, p,"):
                delete_project(s, p, wrong)
        deleted = delete_project(s, p, "p")
    assert deleted.documents == 2
    assert deleted.model_dirs == [str(tmp_path / "1-p")]
    assert str(tmp_path / "1-p") in deleted.summary()
    with session_scope(db_url) as s:
        assert [p.name for p in s.scalars(select(Project))] == ["other"]
        assert count(s, Document) == 1
        for model in (Annotation, FinalAnnotation, ModelVersion, Prediction):
            assert count(s, model) == 0, model


def test_delete_project_waits_for_its_running_job(make_project, db_url):
    make_project("p", TEXTS)
    with session_scope(db_url) as s:
        s.add(Job(project_id=get_project(s, "p").id, kind="train", status="running"))
    with session_scope(db_url) as s:
        with pytest.raises(ConflictError, match="train job of p is running"):
            delete_project(s, get_project(s, "p"), "p")


def test_rename_label_rewrites_every_stored_span_in_one_go(make_project, db_url):
    ids = make_project("p", TEXTS, task="custom", labels=["PER", "LOC"])
    make_project("q", TEXTS, task="custom", labels=["PER"])
    with session_scope(db_url) as s:
        p, q = get_project(s, "p"), get_project(s, "q")
        save(s, p, ids[0], "alice", [ADA])
        save(s, p, ids[0], "alice", [ADA, LONDON])  # the first save goes to undo history
        finalize(s, p, ids[0], "rev", [ADA])
        p.label_spelling = {"PER": "per"}
        version = ModelVersion(project_id=p.id, version=1, path="m", base="b", n_labels=2)
        s.add(version)
        s.flush()
        pred = {**ADA, "confidence": 0.9}
        s.add(Prediction(document_id=ids[1], model_version_id=version.id, spans=[pred], score=1))
        q_doc = s.scalar(select(Document.id).where(Document.project_id == q.id).limit(1))
        save(s, q, q_doc, "alice", [ADA])
        s.get(Document, ids[1]).draft = [ADA]  # an undone save's spans, with its claim
    with session_scope(db_url) as s:
        assert rename_label(s, get_project(s, "p"), "PER", "Person") == 2
        assert s.get(Document, ids[1]).draft == [{**ADA, "label": "Person"}]
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert p.labels == ["Person", "LOC"] and p.label_spelling == {"Person": "per"}
        ann = s.scalar(select(Annotation).where(Annotation.document_id == ids[0]))
        assert [sp["label"] for sp in ann.spans] == ["Person", "LOC"]
        assert [sp["label"] for sp in ann.previous[-1]["spans"]] == ["Person"]
        final = s.scalar(select(FinalAnnotation))
        assert [sp["label"] for sp in final.spans] == ["Person"]
        assert s.scalar(select(Prediction)).spans == [{**ADA, "label": "Person", "confidence": 0.9}]
        other = s.scalar(select(Annotation).where(Annotation.document_id.not_in(ids)))
        assert other.spans[0]["label"] == "PER"  # another project's label stays
        # The new name is a label the editor accepts.
        save(s, p, ids[1], "bob", [{"start": 0, "end": 11, "label": "Person"}])


def test_rename_label_refuses_a_taken_bad_or_unknown_name(make_project, db_url):
    make_project("p", TEXTS, task="custom", labels=["PER", "LOC"])
    make_project("a", TEXTS, task="acronym")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        with pytest.raises(ConflictError, match="already has a label 'LOC'"):
            rename_label(s, p, "PER", "LOC")
        for bad in ("", "1st", "O", "has space"):
            with pytest.raises(ValidationError):
                rename_label(s, p, "PER", bad)
        with pytest.raises(ValidationError, match="no label 'ORG'"):
            rename_label(s, p, "ORG", "Org")
        with pytest.raises(ValidationError, match="fixed labels"):
            rename_label(s, get_project(s, "a"), "SHORT", "Short")
        assert p.labels == ["PER", "LOC"]


def test_delete_document_removes_its_labels_unless_someone_is_labeling_it(make_project, db_url):
    ids = make_project("p", TEXTS, task="custom", labels=["PER", "LOC"])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        save(s, p, ids[1], "alice", [ADA])
        finalize(s, p, ids[1], "rev", [ADA])
        held = next_document(s, p, "bob").document_id
        assert held == ids[0]
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        with pytest.raises(ConflictError, match="being labeled by 'bob'"):
            delete_document(s, p, ids[0], "alice")
        with pytest.raises(NotFoundError):
            delete_document(s, p, 10_000, "alice")
        delete_document(s, p, ids[1], "alice")
        # bob may delete the text he holds; so may anyone once his claim has lapsed.
        later = utcnow() + CLAIM_LEASE + timedelta(minutes=1)
        delete_document(s, p, ids[0], "alice", now=later)
    with session_scope(db_url) as s:
        assert count(s, Document) == 0
        assert count(s, Annotation) == 0 and count(s, FinalAnnotation) == 0
        assert get_project(s, "p").labels == ["PER", "LOC"]


def test_create_refuses_an_overlong_name(db_url):
    with session_scope(db_url) as s:
        with pytest.raises(ValidationError, match="at most 200"):
            create_project(s, "x" * 201, "acronym")


def test_label_colors_are_set_read_validated_and_follow_a_rename(make_project, db_url):
    from core.labeling.projects import LABEL_COLOR_COUNT, label_colors, set_label_color

    make_project("p", TEXTS, task="custom", labels=["PER", "LOC"])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert label_colors(p) == {}  # the default order until one is chosen
        assert set_label_color(s, p, "LOC", 4) == 4
        set_label_color(s, p, "PER", LABEL_COLOR_COUNT - 1)
        for label, index, match in (
            ("ORG", 1, "no label 'ORG'"),
            ("PER", LABEL_COLOR_COUNT, "from 0 to 8, not 9"),
            ("PER", -1, "from 0 to 8"),
            ("PER", "#ff0000", "from 0 to 8"),
            ("PER", True, "from 0 to 8"),
        ):
            with pytest.raises(ValidationError, match=match):
                set_label_color(s, p, label, index)
    with session_scope(db_url) as s:
        assert label_colors(get_project(s, "p")) == {"LOC": 4, "PER": 8}  # stored and committed
        rename_label(s, get_project(s, "p"), "LOC", "Place")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert label_colors(p) == {"Place": 4, "PER": 8}
        assert "LOC" not in p.settings["label_colors"]


def test_a_project_named_with_digits_is_not_shadowed_by_a_project_id(db_url, tmp_path):
    """`fewlabel import 1 file` writes into the project named "1", not into project id 1."""
    from core.cli import main

    with session_scope(db_url) as s:
        first = create_project(s, "news", "acronym").id
        named_one = create_project(s, "1", "acronym").id
    assert (first, named_one) == (1, 2)
    with session_scope(db_url) as s:
        assert get_project(s, "1").id == named_one  # the name wins over the id
        assert get_project(s, 1).id == first  # an int is an id
        assert get_project(s, "2").id == named_one  # digits no project is named: an id
    texts = tmp_path / "one.txt"
    texts.write_text("A text for the project named one .\n", encoding="utf-8")
    assert main(["import", "1", str(texts), "--db", db_url]) == 0
    with session_scope(db_url) as s:
        assert [d.project_id for d in s.scalars(select(Document))] == [named_one]
