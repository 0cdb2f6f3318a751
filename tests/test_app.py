"""The Streamlit pages, run headless with AppTest against a real migrated SQLite file.

The span annotator's browser side is covered by test_browser.py; here its events are sent
the way the browser sends them (a trigger value on the component), so the page's real
callback path runs: save, skip, undo, errors.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.state.session_state import STREAMLIT_INTERNAL_KEY_PREFIX
from streamlit.testing.v1 import AppTest

from app.components.span_annotator import label_palette, parse_event
from app.ui import md_escape
from core.errors import PermissionDeniedError
from core.io import corpus
from core.io.corpus import export_bytes
from core.labeling import annotations, users
from core.labeling.annotations import next_document, save, set_ranks
from core.labeling.claims import release
from core.labeling.overlap import set_overlap
from core.labeling.progress import browse, progress
from core.labeling.projects import get_project, list_projects
from core.store.db import session_scope
from core.store.schema import Document, ModelVersion, Prediction, User

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
TEXTS = [
    "Body mass index (BMI) is a value derived from mass and height.",
    "The World Health Organization (WHO) sets standards.",
    "Natural language processing (NLP) is fun.",
]


@pytest.fixture
def app(db_url, monkeypatch):
    """An AppTest of the whole app on the test database, annotating as `alice`."""
    monkeypatch.setenv("FEWLABEL_DB", db_url)

    def start(page: str | None = None, annotator: str | None = "alice") -> AppTest:
        at = AppTest.from_file(MAIN, default_timeout=20)
        if annotator is not None:  # the browser remembers it in the URL
            at.query_params["annotator"] = annotator
        at.run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    return start


def component(at: AppTest) -> dict:
    """The data the span annotator was mounted with."""
    (el,) = at.get("bidi_component")
    return json.loads(el.proto.json)


def send_event(at: AppTest, action: str, doc: int, spans: list[dict] | None = None) -> AppTest:
    """Run the app as if the browser component had fired its `event` trigger."""
    (el,) = at.get("bidi_component")
    states = at._tree.get_widget_states()
    trigger = WidgetState(id=f"{STREAMLIT_INTERNAL_KEY_PREFIX}_{el.proto.id}__events")
    value = {"action": action, "doc": doc, "spans": spans or [], "nonce": "t"}
    trigger.json_trigger_value = json.dumps([{"event": "event", "value": value}])
    states.widgets.append(trigger)
    at._run(states)
    assert not at.exception, at.exception
    return at


def select_table_row(at: AppTest, key_prefix: str, row: int) -> AppTest:
    """Run the app as if the user had clicked row `row` of the dataframe keyed `key_prefix…`."""
    (table,) = [d for d in at.dataframe if (d.key or "").startswith(key_prefix)]
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    return at


def progress_text(at: AppTest) -> str:
    return at.get("progress")[0].proto.text


# ---------------------------------------------------------------- pure helpers


def test_parse_event_keeps_only_well_formed_payloads():
    ok = parse_event({"action": "save", "doc": "3", "spans": [{"start": 0, "end": 2, "label": 1}]})
    assert ok.action == "save" and ok.document_id == 3
    assert ok.spans == [{"start": 0, "end": 2, "label": "1"}]
    assert parse_event({"action": "drop table", "doc": 1}) is None
    assert parse_event({"action": "skip"}) is None
    assert parse_event("save") is None
    assert parse_event({"action": "save", "doc": 1, "spans": [{"start": "x"}, 5]}).spans == []


def test_markdown_escape_and_palette():
    assert md_escape("[click](javascript:alert(1))") == r"\[click\]\(javascript\:alert\(1\)\)"
    colors = label_palette([f"L{i}" for i in range(11)])
    assert colors[0]["bg"] == colors[9]["bg"] and len(colors) == 11


# ---------------------------------------------------------------- Projects


def test_projects_page_creates_a_project_and_imports_a_file(app, db_url):
    at = app("views/projects.py")
    at.text_input(key="new_name").input("people")
    at.radio(key="new_task").set_value("custom")
    at.text_input(key="new_labels").input("PERSON, ORG")
    at.button(key="new_submit").click().run()
    assert not at.exception
    assert at.selectbox(key="project").value == "people"  # the sidebar switched to it
    with session_scope(db_url) as s:
        (summary,) = list_projects(s)
    assert (summary.name, summary.labels) == ("people", ["PERSON", "ORG"])

    csv_bytes = b"id,body\n1,Alice met Bob.\n2,Carol works at ACME.\n3,Alice met Bob.\n"
    at.file_uploader(key="import_file").set_value(("people.csv", csv_bytes, "text/csv"))
    at.text_input(key="import_text_column").input("body")
    at.button(key="import_submit").click().run()
    assert not at.exception
    assert "Imported 2 documents" in at.success[0].value
    assert "1 duplicates skipped" in at.success[0].value
    with session_scope(db_url) as s:
        assert progress(s, get_project(s, "people")).total == 2


def test_projects_page_reports_a_bad_file_and_writes_nothing(app, make_project, db_url):
    make_project("p", TEXTS)
    at = app("views/projects.py")
    bad = b'{"text": "fine"}\n{"text": "also fine"}\n{not json\n'
    at.file_uploader(key="import_file").set_value(("bad.jsonl", bad, "application/json"))
    at.button(key="import_submit").click().run()
    assert not at.exception
    assert "Nothing was imported" in at.error[0].value
    assert "bad" in at.error[0].value and "3" in at.error[0].value  # file and line
    with session_scope(db_url) as s:
        assert progress(s, get_project(s, "p")).total == len(TEXTS)


def test_projects_page_rejects_a_duplicate_name(app, make_project):
    make_project("p", TEXTS)
    at = app("views/projects.py")
    at.text_input(key="new_name").input("p")
    at.button(key="new_submit").click().run()
    assert "already exists" in at.error[0].value


# ---------------------------------------------------------------- Annotate


def test_annotate_shows_the_next_text_and_progress(app, make_project):
    ids = make_project("p", TEXTS)
    at = app()
    data = component(at)
    assert data["doc"] == ids[0] and data["text"] == TEXTS[0]
    assert data["words"][0] == [0, 4]  # "Body", offsets for the browser to draw
    assert [lbl["name"] for lbl in data["labels"]] == ["SHORT", "LONG"]
    assert progress_text(at).startswith("0 of 3 labeled · 0 by you")


def test_annotate_save_skip_and_undo_through_component_events(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    at = app()
    # "BM" of "BMI": kept as sent (the component only sends whole words of the words it got)
    send_event(at, "save", ids[0], [{"start": 17, "end": 19, "label": "SHORT"}])
    assert component(at)["text"] == TEXTS[1]
    assert progress_text(at).startswith("1 of 3 labeled · 1 by you")
    assert "Saved 1 span" in at.toast[0].value

    send_event(at, "skip", ids[1])
    assert component(at)["text"] == TEXTS[2]

    send_event(at, "undo", ids[2])  # undoes the skip
    assert component(at)["doc"] == ids[1]
    send_event(at, "undo", ids[1])  # undoes the save: the text returns with its spans
    data = component(at)
    assert data["doc"] == ids[0]
    assert data["spans"] == [{"start": 17, "end": 19, "label": "SHORT"}]
    assert [17, 19] in data["words"] and [19, 20] in data["words"]  # the words follow it
    assert data["dirty"] is True
    with session_scope(db_url) as s:
        rows, _ = browse(s, get_project(s, "p"), annotator="alice")
    assert rows == []


def test_a_reload_after_undo_shows_the_undone_spans_again(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    bmi = {"start": 17, "end": 20, "label": "SHORT"}
    at = app()
    send_event(at, "save", ids[0], [bmi])
    send_event(at, "undo", ids[1])
    assert (component(at)["doc"], component(at)["spans"]) == (ids[0], [bmi])
    # a reload is a fresh browser session (which confirms the name it labels under): the
    # text is as undo left it, not empty
    fresh = app()
    fresh.button(key="confirm_annotator").click().run()
    reloaded = component(fresh)
    assert (reloaded["doc"], reloaded["spans"], reloaded["dirty"]) == (ids[0], [bmi], True)
    send_event(at, "save", ids[0], [bmi])  # saved again: done, and the draft goes
    assert (component(at)["doc"], component(at)["spans"]) == (ids[1], [])


def test_annotate_shows_a_span_error_and_keeps_the_text(app, make_project):
    ids = make_project("p", TEXTS)
    at = app()
    version = component(at)["version"]
    send_event(at, "save", ids[0], [{"start": 0, "end": 4, "label": "PERSON"}])
    assert "unknown label" in at.error[0].value
    data = component(at)
    assert data["doc"] == ids[0] and data["version"] == version  # the draft is kept


def _scored(db_url: str, doc: int, version: int, score: float) -> None:
    """Model version `version` of project p scored text `doc` (its newest prediction)."""
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        mv = s.scalar(
            select(ModelVersion).where(
                ModelVersion.project_id == p.id, ModelVersion.version == version
            )
        )
        if mv is None:
            mv = ModelVersion(project_id=p.id, version=version, path="m", base="b", n_labels=0)
            s.add(mv)
            s.flush()
        spans = [{"start": 0, "end": 15, "label": "LONG", "confidence": 0.8}]
        s.add(Prediction(document_id=doc, model_version_id=mv.id, spans=spans, score=score))


def _why(at: AppTest) -> str:
    (caption,) = [c.value for c in at.caption if c.value.startswith("Text #")]
    return caption


def test_annotate_renders_suggestions_and_why_this_text(app, make_project, db_url):
    """Why this text: the model version whose score ranked it, with that score."""
    ids = make_project("p", TEXTS)
    _scored(db_url, ids[0], 3, 0.42)
    with session_scope(db_url) as s:  # version 3's scores put it first in the queue
        set_ranks(s, get_project(s, "p"), {ids[0]: -1.0}, ranked_by=3)
    at = app()
    assert component(at)["suggestions"][0]["label"] == "LONG"
    why = _why(at)
    assert "why this text: model version 3 is uncertain about it (score 0.42)" in why
    assert "suggestions by model version 3" in why


def test_why_this_text_never_credits_a_model_that_did_not_choose_it(app, make_project, db_url):
    """A text version 1 ranked but version 2 scored since says so, and one in the import's
    order says no model ranked it: the score shown is never passed off as the reason."""
    ids = make_project("p", TEXTS)
    _scored(db_url, ids[0], 1, 0.9)
    _scored(db_url, ids[1], 2, 0.42)  # a newer version scored the second text since
    with session_scope(db_url) as s:  # but version 1 ordered the queue
        set_ranks(s, get_project(s, "p"), {ids[0]: -2.0, ids[1]: -1.0}, ranked_by=1)
    at = app()
    assert component(at)["doc"] == ids[0] and "version 1 is uncertain" in _why(at)
    send_event(at, "skip", ids[0])
    why = _why(at)
    assert component(at)["doc"] == ids[1]
    assert "why this text: model version 1 put it here" in why
    assert "version 2 has scored it since (score 0.42)" in why
    assert "uncertain" not in why
    send_event(at, "skip", ids[1])
    _scored(db_url, ids[2], 2, 0.42)  # scored, but its place is the import's random order
    at.run()
    why = _why(at)
    assert component(at)["doc"] == ids[2] and "uncertain" not in why
    assert "its place in the queue is not a model's ranking" in why
    assert "model version 2 scores it 0.42" in why


def test_annotate_says_when_the_queue_is_empty(app, make_project, db_url):
    ids = make_project("p", TEXTS[:1])
    with session_scope(db_url) as s:
        save(s, get_project(s, "p"), ids[0], "alice", [])
    at = app()
    assert "queue is empty" in at.success[0].value
    assert not at.get("bidi_component")
    at.button(key="undo_last").click().run()  # "Undo my last save or skip" brings the text back
    assert component(at)["doc"] == ids[0]


def test_annotate_points_to_projects_when_there_is_none(app):
    at = app()
    assert "No project yet" in at.info[0].value


# ---------------------------------------------------------------- who is labeling


def holder(db_url: str, doc: int) -> str | None:
    with session_scope(db_url) as s:
        return s.get(Document, doc).assigned_to


def test_a_fresh_session_shows_no_text_until_a_name_is_chosen(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    at = app(annotator=None)
    assert at.text_input(key="annotator").value == ""  # no shared default name
    assert "Who is labeling" in at.info[0].value
    assert not at.get("bidi_component") and holder(db_url, ids[0]) is None

    at.text_input(key="annotator_choice").input("carol")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="annotator").value == "carol"  # the sidebar (and URL) have it
    assert component(at)["doc"] == ids[0] and holder(db_url, ids[0]) == "carol"


def test_renaming_releases_the_claimed_text_at_once(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    at = app(annotator="alice")
    assert component(at)["doc"] == ids[0] and holder(db_url, ids[0]) == "alice"
    at.text_input(key="annotator").input("alicia").run()
    assert not at.exception, at.exception
    # alice's text went back to the queue, first in line, so the new name gets it
    assert component(at)["doc"] == ids[0] and holder(db_url, ids[0]) == "alicia"
    with session_scope(db_url) as s:
        assert next_document(s, get_project(s, "p"), "bob").document_id == ids[1]


def test_two_sessions_with_different_names_keep_every_save(app, make_project, db_url):
    ids = make_project("p", [f"Text {i} about NASA." for i in range(6)])
    alice, bob = app(annotator="alice"), app(annotator="bob")
    for _ in range(3):
        docs = [component(at)["doc"] for at in (alice, bob)]
        assert docs[0] != docs[1]
        for at, doc in zip((alice, bob), docs, strict=True):
            send_event(at, "save", doc)
            assert "Saved 0 spans" in at.toast[0].value
    with session_scope(db_url) as s:
        assert progress(s, get_project(s, "p")).by_annotator == {"alice": 3, "bob": 3}
    assert "queue is empty" in alice.success[0].value and len(set(ids)) == 6


def test_a_name_in_use_elsewhere_is_confirmed_or_changed(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    first = app(annotator="alice")
    assert component(first)["doc"] == ids[0]

    second = app(annotator="alice")  # another browser, same name
    assert "labeling as **alice** in another browser session" in second.warning[0].value
    assert not second.get("bidi_component")
    second.text_input(key="annotator_choice").input("bea")
    (pick,) = [b for b in second.button if b.label == "Use this name instead"]
    pick.click().run()
    assert component(second)["doc"] == ids[1]  # bea's own text

    third = app(annotator="alice")  # alice in a second tab of her own
    third.button(key="confirm_annotator").click().run()
    assert component(third)["doc"] == ids[0]  # the same claim as her first tab


def test_saving_a_text_someone_else_now_holds_is_refused(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    at = app(annotator="alice")
    with session_scope(db_url) as s:  # alice's claim lapses and bob picks the text up
        p = get_project(s, "p")
        release(s, p, "alice")
        assert next_document(s, p, "bob").document_id == ids[0]
    send_event(at, "save", ids[0], [{"start": 17, "end": 20, "label": "SHORT"}])
    refused = f"text #{ids[0]} is being labeled by 'bob'; nothing was saved"
    assert at.error[0].value == md_escape(refused)
    assert component(at)["doc"] == ids[1]  # alice moves on to a free text
    with session_scope(db_url) as s:
        assert progress(s, get_project(s, "p")).done == 0


# ---------------------------------------------------------------- Review


def _labeled(make_project, db_url) -> list[int]:
    ids = make_project("p", TEXTS)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        save(s, p, ids[0], "alice", [{"start": 17, "end": 20, "label": "SHORT"}])
        save(s, p, ids[1], "bob", [{"start": 4, "end": 29, "label": "LONG"}])
    return ids


def review_table(at: AppTest) -> pd.DataFrame:
    (table,) = [d for d in at.dataframe if (d.key or "").startswith("review_table")]
    return table.value


def test_review_filters_by_text_label_annotator_and_state(app, make_project, db_url):
    ids = _labeled(make_project, db_url)
    at = app("views/review.py")
    assert len(review_table(at)) == 3

    at.selectbox(key="review_label").set_value("LONG").run()
    df = review_table(at)
    assert list(df["annotator"]) == ["bob"]
    assert df["tagged text"][0] == "The [World Health Organization]{LONG} (WHO) sets standards."

    at.selectbox(key="review_label").set_value("Any")
    at.selectbox(key="review_who").set_value("alice").run()
    assert list(review_table(at)["spans"]) == ["BMI → SHORT"]

    at.selectbox(key="review_who").set_value("Any")
    at.selectbox(key="review_state").set_value("open").run()
    df = review_table(at)
    assert list(df["text #"]) == [ids[2]] and list(df["state"]) == ["open"]

    at.selectbox(key="review_state").set_value("Any")
    at.text_input(key="review_search").input("language").run()
    assert len(review_table(at)) == 1 and "NLP" in review_table(at)["tagged text"][0]


def test_review_pages_through_many_rows(app, make_project):
    make_project("many", [f"Text number {i} is here." for i in range(25)])
    at = app("views/review.py")
    assert len(review_table(at)) == 20
    at.pagination(key="review_page").select(2).run()
    assert list(review_table(at)["text #"]) == list(range(21, 26))
    at.text_input(key="review_search").input("number 7").run()  # a new filter: page 1
    assert list(review_table(at)["text #"]) == [8]
    assert not at.pagination


def test_review_opens_a_row_and_saves_it_as_the_final_version(app, make_project, db_url):
    """More of the review flow (disagreements, final versions) is in test_review.py."""
    from core.labeling.review import final_of

    ids = _labeled(make_project, db_url)
    at = app("views/review.py")
    select_table_row(at, "review_table", 1)  # bob's annotation of the second text
    data = component(at)
    assert data["doc"] == ids[1] and data["actions"] == ["save"]
    assert data["spans"] == [{"start": 4, "end": 29, "label": "LONG"}]

    send_event(at, "save", ids[1], [{"start": 31, "end": 34, "label": "SHORT"}])
    with session_scope(db_url) as s:
        rows, _ = browse(s, get_project(s, "p"), annotator="alice", label="SHORT")
        final = final_of(s, [ids[1]])[ids[1]]
    assert {r.document_id for r in rows} == {ids[0]}  # bob's text got no annotation of alice's
    assert (final.reviewer, final.based_on) == ("alice", "bob")
    assert component(at)["spans"] == [{"start": 31, "end": 34, "label": "SHORT"}]


# ---------------------------------------------------------------- Export


@pytest.fixture
def downloads(monkeypatch) -> list:
    """The data callables of deferred download buttons, as Streamlit registers them: it runs
    one when the browser requests the file (the click), not while the page renders."""
    seen: list = []
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, *args, **kwargs):
        seen.append(data_callable)
        return original(self, data_callable, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return seen


def _click_download(button, downloads: list) -> bytes:
    """The bytes the browser gets from the deferred download button rendered last."""
    assert button.proto.deferred_file_id, "the export is built on click, not on every rerun"
    return downloads[-1]()


def test_export_download_holds_the_core_export(app, make_project, db_url, downloads, monkeypatch):
    _labeled(make_project, db_url)
    limits: list = []  # the `limit` of every export the page runs
    real_export = corpus.export
    monkeypatch.setattr(
        corpus, "export", lambda *a, **kw: limits.append(kw.get("limit")) or real_export(*a, **kw)
    )
    at = app("views/export.py")
    (button,) = at.download_button
    assert button.label == "Download p.csv"
    assert limits and None not in limits  # rendering built a preview, not the whole file
    with session_scope(db_url) as s:
        expected = export_bytes(s, get_project(s, "p"), "csv")
    data = _click_download(button, downloads)
    assert data == expected and limits[-1] is None
    rows = pd.read_csv(io.BytesIO(data))
    assert sorted(rows["annotator"]) == ["alice", "bob"]
    assert "alice" in at.code[1].value  # the preview shows the same rows

    at.segmented_control(key="export_format").set_value("jsonl")
    at.selectbox(key="export_annotator").set_value("bob")
    at.checkbox(key="export_all").check().run()
    assert at.download_button[0].label == "Download p.jsonl"
    data = _click_download(at.download_button[0], downloads)
    records = [json.loads(line) for line in data.decode().splitlines()]
    assert len(records) == 3  # bob's one label, and the two texts he has not labeled
    assert [r["status"] for r in records].count("done") == 1
    assert "fewlabel export p -o p.jsonl --format jsonl --annotator bob --all" in at.code[0].value


def test_train_page_sets_the_prefill_threshold_and_shows_the_models_influence(
    app, make_project, db_url
):
    from core.labeling.prefill import PREFILL_THRESHOLD, prefill_threshold

    make_project("p", TEXTS)
    at = app("views/train.py")
    box = at.number_input(key="train_prefill")
    assert box.value == PREFILL_THRESHOLD
    assert f"Default {PREFILL_THRESHOLD:.2f}" in box.help
    assert any("No spans saved on texts the model pre-annotated" in c.value for c in at.caption)
    box.set_value(0.8).run()
    assert not at.exception, at.exception
    with session_scope(db_url) as s:
        assert prefill_threshold(get_project(s, "p")) == 0.8
    assert app("views/train.py").number_input(key="train_prefill").value == 0.8


def test_annotate_prefills_a_confident_suggestion_and_saves_its_origin(
    app, make_project, db_url, monkeypatch
):
    ids = make_project("p", TEXTS)
    sure = {"start": 0, "end": 15, "label": "LONG"}
    unsure = {"start": 17, "end": 20, "label": "SHORT", "confidence": 0.5}

    def provider(session, docs):
        return {d.id: ([{**sure, "confidence": 0.99}, unsure], 0.3, 1) for d in docs}

    monkeypatch.setattr(annotations, "stored_predictions", provider)
    at = app()
    data = component(at)
    assert (data["spans"], data["suggestions"]) == ([sure], [unsure])
    send_event(at, "save", data["doc"], data["spans"])
    assert "Saved 1 span, 1 as the model suggested" in at.toast[0].value
    with session_scope(db_url) as s:
        (row,), _ = browse(s, get_project(s, "p"), annotator="alice")
    assert row.document_id in ids and row.spans == [{**sure, "origin": "model"}]


# ---------------------------------------------------------------- managing projects and texts


def test_a_refused_create_form_keeps_what_was_typed_and_a_created_one_clears(app, make_project):
    make_project("p", TEXTS)
    at = app("views/projects.py")
    at.text_input(key="new_name").input("people")
    at.radio(key="new_task").set_value("custom")
    at.text_input(key="new_labels").input("PERSON, 2bad")
    at.button(key="new_submit").click().run()
    assert "bad label '2bad'" in at.error[0].value
    assert at.text_input(key="new_name").value == "people"
    assert at.text_input(key="new_labels").value == "PERSON, 2bad"
    at.text_input(key="new_labels").input("PERSON, ORG")
    at.button(key="new_submit").click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="project").value == "people"
    assert (at.text_input(key="new_name").value, at.text_input(key="new_labels").value) == ("", "")


def test_projects_page_renames_a_project_and_a_label(app, make_project, db_url):
    make_project("p", TEXTS, task="custom", labels=["PER", "ORG"])
    make_project("q", TEXTS)
    at = app("views/projects.py")
    at.selectbox(key="project").set_value("p").run()
    at.text_input(key="rename_name").input("q")
    at.button(key="rename_submit").click().run()
    assert "'q' already exists" in at.error[0].value
    assert at.text_input(key="rename_name").value == "q"  # kept to fix
    at.text_input(key="rename_name").input("people")
    at.button(key="rename_submit").click().run()
    assert not at.exception and not at.error
    assert at.selectbox(key="project").value == "people"

    at.selectbox(key="label_old").set_value("ORG")
    at.text_input(key="label_new").input("PER")
    at.button(key="label_submit").click().run()
    assert "already has a label 'PER'" in at.error[0].value
    at.text_input(key="label_new").input("Company")
    at.button(key="label_submit").click().run()
    assert not at.error and "Renamed label ORG to Company" in at.success[0].value
    with session_scope(db_url) as s:
        assert get_project(s, "people").labels == ["PER", "Company"]


def test_projects_page_deletes_a_project_only_when_its_name_is_typed(app, make_project, db_url):
    make_project("p", TEXTS)
    make_project("q", TEXTS)
    at = app("views/projects.py")
    at.selectbox(key="project").set_value("p").run()
    at.text_input(key="delete_confirm").input("q")
    at.button(key="delete_submit").click().run()
    assert "type the project's name, p, to delete it" in at.error[0].value.replace("\\", "")
    at.text_input(key="delete_confirm").input("p")
    at.button(key="delete_submit").click().run()
    assert not at.exception and not at.error
    assert "Deleted project p with 3 texts" in at.success[0].value.replace("\\", "")
    assert at.selectbox(key="project").value == "q"
    with session_scope(db_url) as s:
        assert [p.name for p in list_projects(s)] == ["q"]


def test_review_deletes_the_open_text_after_confirmation(app, make_project, db_url):
    ids = _labeled(make_project, db_url)
    at = app("views/review.py")
    select_table_row(at, "review_table", 1)
    doc_id = component(at)["doc"]
    button = at.button(key=f"review_delete_{doc_id}")
    assert button.disabled  # until the checkbox says yes
    at.checkbox(key=f"review_delete_sure_{doc_id}").check().run()
    at.button(key=f"review_delete_{doc_id}").click().run()
    assert not at.exception
    assert f"Deleted text \\#{doc_id}" in at.success[0].value
    assert not at.get("bidi_component")  # the editor closed
    with session_scope(db_url) as s:
        assert s.get(Document, doc_id) is None
        assert progress(s, get_project(s, "p")).total == len(ids) - 1


def test_label_palette_uses_chosen_colours_and_the_default_order_elsewhere():
    from app.components.span_annotator import LABEL_COLOR_NAMES, LABEL_COLORS
    from core.labeling.projects import LABEL_COLOR_COUNT

    assert len(LABEL_COLORS) == len(LABEL_COLOR_NAMES) == LABEL_COLOR_COUNT
    palette = label_palette(["A", "B", "C"], {"B": 0, "C": 42})
    chosen = [LABEL_COLORS[0], LABEL_COLORS[0], LABEL_COLORS[2]]  # 42 is no colour: default
    assert [(c["bg"], c["fg"]) for c in palette] == chosen
    assert label_palette(["A", "B"], None) == label_palette(["A", "B"])


def test_projects_page_changes_a_label_colour_and_the_annotator_draws_it(app, make_project, db_url):
    from app.components.span_annotator import LABEL_COLORS
    from core.labeling.projects import label_colors

    make_project("p", TEXTS)  # acronym: fixed labels SHORT, LONG, colours still editable
    at = app("views/projects.py")
    key = f"label_color:{get_project_id(db_url, 'p')}:LONG"
    assert at.selectbox(key=key).value == 1  # the default order: second label, blue
    at.selectbox(key=key).set_value(6).run()
    assert not at.exception and not at.error
    assert "LONG is now drawn in teal" in at.success[0].value
    with session_scope(db_url) as s:
        assert label_colors(get_project(s, "p")) == {"LONG": 6}
    assert at.selectbox(key=key).value == 6

    labels = component(app(annotator="bob"))["labels"]  # alice has a session open above
    assert [(lbl["bg"], lbl["fg"]) for lbl in labels] == [LABEL_COLORS[0], LABEL_COLORS[6]]


def get_project_id(db_url: str, name: str) -> int:
    with session_scope(db_url) as s:
        return get_project(s, name).id


# ---------------------------------------------------------------- issue 12: accounts and roles

PASSWORD = "correct horse"


def add_account(db_url: str, name: str, role: str) -> None:
    with session_scope(db_url) as s:
        users.add_user(s, name, role, PASSWORD)


def log_in(at: AppTest, name: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    (submit,) = at.button
    submit.click().run()
    assert not at.exception, at.exception
    return at


def pages(at: AppTest) -> list[str]:
    """The pages this browser session's navigation offers, by file name."""
    return sorted(
        Path(str(info["script_path"])).stem
        for info in at._registered_pages.values()
        if info.get("script_path")
    )


def test_with_an_account_every_browser_logs_in_first(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    add_account(db_url, "root", "admin")
    at = app(annotator="alice")  # a typed name in the address no longer labels
    assert at.title[0].value == "Log in" and pages(at) == ["login"]
    assert not at.get("bidi_component") and holder(db_url, ids[0]) is None

    log_in(at, "root", "wrong password")
    assert at.title[0].value == "Log in"
    assert "wrong name or password" in at.error[0].value
    assert at.text_input(key="login_password").value == ""  # not kept in the session

    log_in(at, "root")
    assert pages(at) == ["annotate", "export", "projects", "review", "teach", "train"]
    assert "Logged in as **root** · admin" in [c.value for c in at.sidebar.caption]


def test_wrong_passwords_in_a_row_lock_the_login_for_a_while(app, make_project, db_url):
    make_project("p", TEXTS)
    add_account(db_url, "root", "admin")
    at = app()
    for _ in range(users.LOCK_AFTER):
        log_in(at, "root", "a guess")
        assert "wrong name or password" in at.error[0].value
    log_in(at, "root")  # the right password, too late: locked, and the page says for how long
    assert at.title[0].value == "Log in" and pages(at) == ["login"]
    assert "too many wrong passwords for this account; try again in" in at.error[0].value
    with session_scope(db_url) as s:
        users.set_password(s, "root", PASSWORD)  # an admin's `fewlabel user passwd` ends it
    log_in(at, "root")
    assert "Logged in as **root** · admin" in [c.value for c in at.sidebar.caption]


def test_an_annotator_labels_as_the_account_and_sees_only_annotate(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    add_account(db_url, "ann", "annotator")
    at = log_in(app(annotator="mallory"), "ANN")  # names match whatever their case
    assert pages(at) == ["annotate", "teach"]
    assert not [t for t in at.text_input if t.key == "annotator"]  # no name to type
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/train.py")
    assert component(at)["doc"] == ids[0] and holder(db_url, ids[0]) == "ann"
    send_event(at, "save", ids[0], [{"start": 17, "end": 20, "label": "SHORT"}])
    assert "Saved 1 span" in at.toast[0].value
    with session_scope(db_url) as s:
        (row,) = browse(s, get_project(s, "p"), state="done")[0]
    assert row.annotator == "ann"


def test_the_navigation_follows_the_role(app, make_project, db_url):
    make_project("p", TEXTS)
    add_account(db_url, "rita", "reviewer")
    add_account(db_url, "root", "admin")
    assert pages(log_in(app(annotator=None), "rita")) == ["annotate", "export", "review", "teach"]
    at = log_in(app(annotator=None), "root")
    at.switch_page("views/train.py").run()
    assert at.title[0].value == "Train"
    add_account(db_url, "boss", "admin")
    with session_scope(db_url) as s:  # root becomes an annotator while the page is open
        users.set_role(s, "root", "annotator")
    at.run()
    assert not at.exception, at.exception
    assert pages(at) == ["annotate", "teach"] and at.title[0].value != "Train"


def test_reviewers_and_admins_land_where_nothing_is_claimed(app, make_project, db_url):
    """A reviewer opens on Review, an admin on Projects, and neither holds a text; one who
    opens Annotate on purpose is served a text that needs one annotator, never one the
    project's overlap keeps for annotators (an annotator is served that one)."""
    ids = make_project("p", [f"Sentence {i} about NASA ." for i in range(12)])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        overlap = set_overlap(s, p, 2, 0.5)
        shared = [d for d in ids if overlap.selects(p.id, d)]
        single = [d for d in ids if d not in shared]
        assert shared and single
        set_ranks(s, p, {d: 0.0 if d in shared else 1.0 for d in ids})  # shared texts first
    add_account(db_url, "rita", "reviewer")
    add_account(db_url, "root", "admin")
    add_account(db_url, "ann", "annotator")
    for name, title in [("rita", "Review"), ("root", "Projects")]:
        at = log_in(app(annotator=None), name)
        assert at.title[0].value == title
        assert not at.get("bidi_component")
        assert [d for d in ids if holder(db_url, d)] == []  # nothing claimed on landing
    at.switch_page("views/annotate.py").run()  # the admin opens Annotate on purpose
    assert not at.exception, at.exception
    assert component(at)["doc"] == single[0] and holder(db_url, single[0]) == "root"
    assert [d for d in shared if holder(db_url, d)] == []
    at = log_in(app(annotator=None), "ann")  # an annotator lands on Annotate, shared first
    assert at.title[0].value == "Annotate" and component(at)["doc"] == shared[0]


def test_a_crafted_request_for_a_page_the_role_lacks_shows_no_such_page(app, make_project, db_url):
    """The browser asks for the Train page by its hash, as an admin's browser would: an
    annotator's session runs no line of it, and the service refuses the permission too."""
    make_project("p", TEXTS)
    add_account(db_url, "root", "admin")
    add_account(db_url, "ann", "annotator")
    admin = log_in(app(annotator=None), "root")
    (train_hash,) = [
        h
        for h, info in admin._registered_pages.items()
        if Path(str(info.get("script_path"))).stem == "train"
    ]
    at = log_in(app(annotator=None), "ann")
    at._page_hash = train_hash
    at.run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Annotate"] and pages(at) == ["annotate", "teach"]
    with session_scope(db_url) as s:
        with pytest.raises(PermissionDeniedError, match=r"'ann' \(annotator\) may not retrain"):
            users.acting(s, "ann", "train")


def test_log_out_hands_the_text_back_and_shows_the_login_page(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    add_account(db_url, "ann", "annotator")
    at = log_in(app(annotator=None), "ann")
    assert holder(db_url, ids[0]) == "ann"
    at.button(key="log_out").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Log in" and pages(at) == ["login"]
    assert holder(db_url, ids[0]) is None  # back in the queue at once


def test_a_disabled_account_can_no_longer_save_and_is_logged_out(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    add_account(db_url, "ann", "annotator")
    add_account(db_url, "root", "admin")
    at = log_in(app(annotator=None), "ann")
    assert component(at)["doc"] == ids[0] and holder(db_url, ids[0]) == "ann"
    with session_scope(db_url) as s:
        users.disable_user(s, "ann")
    assert holder(db_url, ids[0]) is None  # back in the queue at once, not in 30 minutes
    send_event(at, "save", ids[0], [{"start": 17, "end": 20, "label": "SHORT"}])
    assert at.title[0].value == "Log in"
    # the login page says why this browser is there
    assert [w.value for w in at.warning] == [
        md_escape("You were logged out: this account was disabled by an admin.")
    ]
    with session_scope(db_url) as s:
        assert progress(s, get_project(s, "p")).done == 0  # nothing was saved
    log_in(at, "ann")  # the right password learns the account is disabled
    assert at.title[0].value == "Log in"
    assert "this account was disabled by an admin" in at.error[0].value
    log_in(at, "ann", "a wrong guess")  # a wrong one learns nothing
    assert "wrong name or password" in at.error[0].value
    assert "disabled" not in at.error[0].value
    with session_scope(db_url) as s:  # the right password of a disabled account is no guess
        assert s.scalar(select(User.failed_logins).where(User.name == "ann")) == 1
