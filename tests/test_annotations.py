"""The annotation service on real databases (SQLite, and PostgreSQL where marked both_backends):
queue, save, skip, undo, claims."""

import json
import multiprocessing as mp
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.errors import ConflictError, SpanError, ValidationError
from core.io.imports import import_bytes
from core.labeling import annotations as svc
from core.labeling import claims
from core.labeling import progress as listing
from core.labeling.projects import create_project, get_project
from core.store.db import session_scope
from core.store.schema import Document, utcnow

TEXTS = [f"Text {i} about the WHO and NASA." for i in range(30)]


@pytest.fixture
def project(db_url):
    with session_scope(db_url) as s:
        p = create_project(s, "p", "acronym")
        import_bytes(s, p, "t.txt", "\n".join(TEXTS).encode(), seed=1)
    return "p"


def _next(url, who):
    with session_scope(url) as s:
        task = svc.next_document(s, get_project(s, "p"), who)
        return task and task.document_id


@pytest.mark.both_backends
def test_next_is_stable_until_saved_then_moves_on(db_url, project):
    first = _next(db_url, "ann")
    assert _next(db_url, "ann") == first  # a reload shows the same text
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        task = svc.get_task(s, p, first, "ann")
        start = task.text.index("WHO")
        # a span inside a word is kept as it is, and the text's words follow it
        svc.save(s, p, first, "ann", [{"start": start + 1, "end": start + 2, "label": "SHORT"}])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        again = svc.get_task(s, p, first, "ann")
        assert again.spans == [{"start": start + 1, "end": start + 2, "label": "SHORT"}]
        assert [w.text for w in again.words if start <= w.start < start + 3] == ["W", "H", "O"]
        prog = listing.progress(s, p, "ann")
        assert (prog.done, prog.open, prog.mine, prog.total) == (1, 29, 1, 30)
    assert _next(db_url, "ann") != first


@pytest.mark.both_backends
def test_invalid_save_writes_nothing(db_url, project):
    doc = _next(db_url, "ann")
    with pytest.raises(SpanError, match="unknown label"), session_scope(db_url) as s:
        svc.save(s, get_project(s, "p"), doc, "ann", [{"start": 0, "end": 4, "label": "ORG"}])
    with session_scope(db_url) as s:
        assert listing.progress(s, get_project(s, "p")).done == 0
    with pytest.raises(ValidationError, match="annotator"), session_scope(db_url) as s:
        svc.next_document(s, get_project(s, "p"), "  ")


@pytest.mark.both_backends
def test_skip_and_undo_walk_back_in_order(db_url, project):
    a = _next(db_url, "ann")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        svc.save(s, p, a, "ann", [])
    b = _next(db_url, "ann")
    with session_scope(db_url) as s:
        svc.skip(s, get_project(s, "p"), b, "ann")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert (listing.progress(s, p).done, listing.progress(s, p).skipped) == (1, 1)
        assert svc.undo(s, p, "ann") == b
    assert _next(db_url, "ann") == b  # the undone text comes back first
    with session_scope(db_url) as s:
        assert svc.undo(s, get_project(s, "p"), "ann") == a
        assert svc.undo(s, get_project(s, "p"), "ann") is None
        prog = listing.progress(s, get_project(s, "p"))
        assert (prog.done, prog.skipped, prog.open) == (0, 0, 30)


@pytest.mark.both_backends
def test_undo_restores_an_edited_annotation(db_url, project):
    doc = _next(db_url, "ann")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        text = svc.get_task(s, p, doc, "ann").text
        who = text.index("WHO")
        svc.save(s, p, doc, "ann", [{"start": who, "end": who + 3, "label": "SHORT"}])
    with session_scope(db_url) as s:
        svc.save(s, get_project(s, "p"), doc, "ann", [])  # an edit (e.g. in Review)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert svc.undo(s, p, "ann") == doc
        assert svc.get_task(s, p, doc, "ann").spans[0]["label"] == "SHORT"


@pytest.mark.both_backends
def test_an_undone_save_comes_back_with_its_spans_on_every_later_read(db_url, project):
    """Undo brings the text back with the spans of the save it undid, unsaved: they are kept
    with the claim, so a reload (a fresh transaction, another tab) shows them again; the
    next save or skip, or a release of the claim, drops them."""
    doc = _next(db_url, "ann")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        who = svc.get_task(s, p, doc, "ann").text.index("WHO")
        span = {"start": who, "end": who + 3, "label": "SHORT"}
        svc.save(s, p, doc, "ann", [span])
    with session_scope(db_url) as s:
        assert svc.undo(s, get_project(s, "p"), "ann") == doc
    for _ in range(2):  # a reload, and another after it
        with session_scope(db_url) as s:
            task = svc.next_document(s, get_project(s, "p"), "ann")
            assert (task.document_id, task.spans, task.restored) == (doc, [span], True)
    with session_scope(db_url) as s:  # nothing is saved until the annotator saves
        assert listing.progress(s, get_project(s, "p")).done == 0
        svc.save(s, get_project(s, "p"), doc, "ann", [])  # a different answer this time
    with session_scope(db_url) as s:
        assert s.get(Document, doc).draft is None
        assert svc.get_task(s, get_project(s, "p"), doc, "ann").spans == []
        assert svc.undo(s, get_project(s, "p"), "ann") == doc
        claims.release(s, get_project(s, "p"), "ann")  # renamed, or logged out
    with session_scope(db_url) as s:
        assert s.get(Document, doc).draft is None
        task = svc.next_document(s, get_project(s, "p"), "bob")  # a fresh claim: no draft
        assert (task.document_id, task.spans, task.restored) == (doc, [], False)


@pytest.mark.both_backends
def test_two_annotators_never_share_an_open_document(db_url, project):
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: _next(db_url, f"a{i}"), range(16)))
    assert len(set(got)) == 16


def _claim_in_process(url, who, out):
    try:
        out.put(_next(url, who))
    except Exception as exc:  # surfaced in the parent's assertion
        out.put(repr(exc))


@pytest.mark.slow  # six spawned interpreters: about 10 s; the thread test above stays fast
@pytest.mark.both_backends
def test_processes_claim_distinct_documents(db_url, project):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_claim_in_process, args=(db_url, f"p{i}", q)) for i in range(6)]
    for p in procs:
        p.start()
    got = [q.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=180)
    assert all(isinstance(g, int) for g in got), got
    assert len(set(got)) == 6


@pytest.mark.both_backends
def test_an_expired_claim_returns_to_the_pool(db_url, project):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        # claim everything as "gone", long ago
        past = utcnow() - claims.CLAIM_LEASE - timedelta(minutes=1)
        held = [svc.next_document(s, p, f"gone{i}", now=past).document_id for i in range(30)]
    assert _next(db_url, "fresh") in held


def _holder(url, doc):
    with session_scope(url) as s:
        return s.get(Document, doc).assigned_to


@pytest.mark.both_backends
def test_save_and_skip_refuse_a_text_another_annotator_holds(db_url, project):
    doc = _next(db_url, "alice")
    for act in (
        lambda s, p: svc.save(s, p, doc, "bob", [{"start": 0, "end": 4, "label": "SHORT"}]),
        lambda s, p: svc.skip(s, p, doc, "bob"),
    ):
        with pytest.raises(ConflictError, match=f"#{doc} is being labeled by 'alice'"):
            with session_scope(db_url) as s:
                act(s, get_project(s, "p"))
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert listing.progress(s, p).done == 0 and listing.annotators(s, p) == []
        svc.save(s, p, doc, "alice", [])  # the holder saves, and the claim is done with
    assert _holder(db_url, doc) is None


@pytest.mark.both_backends
def test_undo_takes_back_only_the_callers_own_last_action(db_url, project):
    a = _next(db_url, "alice")
    with session_scope(db_url) as s:
        svc.save(s, get_project(s, "p"), a, "alice", [{"start": 0, "end": 4, "label": "SHORT"}])
    b = _next(db_url, "bob")
    with session_scope(db_url) as s:  # bob's save is the project's latest action
        svc.save(s, get_project(s, "p"), b, "bob", [])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert svc.undo(s, p, "alice") == a  # alice's own, not bob's later one
        assert svc.undo(s, p, "alice") is None
        assert svc.undo(s, p, "carol") is None  # nothing of carol's: nothing happens
        (row,) = listing.browse(s, p, state="done")[0]
        assert (row.document_id, row.annotator) == (b, "bob")
        assert svc.undo(s, p, "bob") == b
    assert _holder(db_url, a) == "alice" and _holder(db_url, b) == "bob"


@pytest.mark.both_backends
def test_undo_refuses_a_text_another_annotator_holds(db_url, project):
    a = _next(db_url, "alice")
    with session_scope(db_url) as s:
        svc.skip(s, get_project(s, "p"), a, "alice")
    with session_scope(db_url) as s:  # bob is writing that text right now (a review, a script)
        claims.take(s, s.get(Document, a), "bob")
    with pytest.raises(ConflictError, match=f"#{a} is being labeled by 'bob'"):
        with session_scope(db_url) as s:
            svc.undo(s, get_project(s, "p"), "alice")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        (row,) = listing.browse(s, p, annotator="alice")[0]
        assert row.status == "skipped" and _holder(db_url, a) == "bob"  # nothing changed
        s.get(Document, a).assigned_to = None  # bob is done with it
    with session_scope(db_url) as s:
        assert svc.undo(s, get_project(s, "p"), "alice") == a
    assert _holder(db_url, a) == "alice"


@pytest.mark.both_backends
def test_undo_of_a_text_someone_else_also_labeled_leaves_nobody_holding_it(db_url, project):
    a = _next(db_url, "alice")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        svc.save(s, p, a, "alice", [])
        svc.save(s, p, a, "bob", [])  # a second opinion on a done text
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert svc.undo(s, p, "alice") == a
        assert s.get(Document, a).state == "done"  # bob's annotation keeps it done
    assert _holder(db_url, a) is None


@pytest.mark.both_backends
def test_a_lapsed_claim_does_not_block_a_save(db_url, project):
    with session_scope(db_url) as s:
        past = utcnow() - claims.CLAIM_LEASE - timedelta(minutes=1)
        doc = svc.next_document(s, get_project(s, "p"), "gone", now=past).document_id
    with session_scope(db_url) as s:
        svc.save(s, get_project(s, "p"), doc, "bob", [])
    assert _holder(db_url, doc) is None


@pytest.mark.both_backends
def test_two_annotators_saving_in_turn_keep_every_save(db_url, project):
    """The lockstep of issue 11: two people, six texts each, twelve annotations."""
    for _ in range(6):
        docs = {who: _next(db_url, who) for who in ("ann", "bob")}
        assert docs["ann"] != docs["bob"]
        for who, doc in docs.items():
            with session_scope(db_url) as s:
                svc.save(s, get_project(s, "p"), doc, who, [])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert listing.progress(s, p).by_annotator == {"ann": 6, "bob": 6}
        assert listing.browse(s, p, state="done")[1] == 12


@pytest.mark.both_backends
def test_release_returns_the_claimed_text_to_the_queue_at_once(db_url, project):
    doc = _next(db_url, "alice")
    other = _next(db_url, "carol")
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        assert claims.release(s, p, "alice") == 1
        assert claims.release(s, p, "alice") == 0
    assert _holder(db_url, other) == "carol"  # only alice's claim went
    assert _next(db_url, "bob") == doc  # first in the queue again, not in 30 minutes
    with session_scope(db_url) as s:  # and the old name can no longer save over it
        with pytest.raises(ConflictError, match="'bob'"):
            svc.save(s, get_project(s, "p"), doc, "alice", [])


@pytest.mark.both_backends
def test_a_gold_import_claims_nothing_and_review_can_correct_it(db_url):
    spans = [[TEXTS[0].index("WHO"), TEXTS[0].index("WHO") + 3, "SHORT"]]
    lines = [json.dumps({"text": t, "spans": spans}) for t in TEXTS[:3]]
    with session_scope(db_url) as s:
        p = create_project(s, "p", "acronym")
        import_bytes(s, p, "gold.jsonl", "\n".join(lines).encode(), annotator="gold")
        docs = s.scalars(select(Document).where(Document.project_id == p.id)).all()
        assert [d.assigned_to for d in docs] == [None] * 3
        svc.save(s, p, docs[0].id, "reviewer", [])
        assert listing.progress(s, p).by_annotator == {"gold": 3, "reviewer": 1}


@pytest.mark.both_backends
def test_empty_queue_returns_none(db_url, project):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        for _ in range(30):
            svc.skip(s, p, svc.next_document(s, p, "ann").document_id, "ann")
        assert svc.next_document(s, p, "ann") is None


@pytest.mark.both_backends
def test_browse_filters_by_label_annotator_and_search(db_url, project):
    for who, label in (("ann", "SHORT"), ("bob", None)):
        doc = _next(db_url, who)
        with session_scope(db_url) as s:
            p = get_project(s, "p")
            text = svc.get_task(s, p, doc, who).text
            spans = [{"start": text.index("NASA"), "end": text.index("NASA") + 4, "label": label}]
            svc.save(s, p, doc, who, spans if label else [])
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        rows, total = listing.browse(s, p, label="SHORT")
        assert total == 1 and rows[0].annotator == "ann"
        assert listing.browse(s, p, annotator="bob")[1] == 1
        assert listing.browse(s, p, state="done")[1] == 2
        assert listing.browse(s, p, search="Text 7 ")[1] == 1
        assert listing.browse(s, p, search="%")[1] == 0  # LIKE wildcards are escaped
        assert listing.annotators(s, p) == ["ann", "bob"]


@pytest.mark.both_backends
def test_set_ranks_reorders_the_queue(db_url, project):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        rows, _ = listing.browse(s, p, limit=100)
        last = rows[-1].document_id
        svc.set_ranks(s, p, {last: -1.0})
    assert _next(db_url, "ann") == last


# ---------------------------------------------------------------- pre-filled spans (issue 11.4)

from core.io.corpus import export_bytes  # noqa: E402
from core.labeling import prefill  # noqa: E402
from core.store.schema import ModelVersion, Prediction  # noqa: E402

PRE_TEXT = "The World Health Organization (WHO) and NASA met ."
WHO_LONG = {"start": 4, "end": 29, "label": "LONG"}  # "World Health Organization"
WHO_SHORT = {"start": 31, "end": 34, "label": "SHORT"}
NASA = {"start": 40, "end": 44, "label": "SHORT"}


def _pre_annotated(url: str, suggestions: list[dict]) -> int:
    """A project `pre` of one text, with a current model version that suggests these spans."""
    with session_scope(url) as s:
        p = create_project(s, "pre", "acronym")
        import_bytes(s, p, "t.txt", PRE_TEXT.encode(), seed=1)
        (doc_id,) = s.scalars(select(Document.id).where(Document.project_id == p.id))
        version = ModelVersion(
            project_id=p.id, version=1, path="x", base="default", n_labels=0, is_current=True
        )
        s.add(version)
        s.flush()
        s.add(
            Prediction(
                document_id=doc_id, model_version_id=version.id, spans=suggestions, score=0.3
            )
        )
    return doc_id


def test_split_suggestions_prefills_only_confident_non_overlapping_ones():
    sugg = [
        {**WHO_LONG, "confidence": 0.97},
        {"start": 4, "end": 9, "label": "SHORT", "confidence": 0.96},  # overlaps, less sure
        {**WHO_SHORT, "confidence": 0.5},
        {**NASA},  # no confidence: never pre-filled
    ]
    spans, rest = prefill.split_suggestions(sugg, 0.95)
    assert spans == [WHO_LONG]
    assert [s["start"] for s in rest] == [4, 31, 40]
    assert prefill.split_suggestions(sugg, 0.0)[0] == [WHO_LONG, WHO_SHORT]
    assert prefill.split_suggestions([], 0.5) == ([], [])


def test_origin_says_model_edited_or_annotator():
    sugg = [{**WHO_LONG, "confidence": 0.9}, {**WHO_SHORT, "confidence": 0.4}]
    assert prefill.origin_of(WHO_LONG, sugg) == "model"
    assert prefill.origin_of({**WHO_SHORT, "label": "LONG"}, sugg) == "edited"  # label
    assert prefill.origin_of({"start": 10, "end": 29, "label": "LONG"}, sugg) == "edited"
    assert prefill.origin_of(NASA, sugg) == "annotator"


def test_a_confident_suggestion_opens_as_a_span_and_saves_with_its_origin(db_url):
    doc = _pre_annotated(
        db_url, [{**WHO_LONG, "confidence": 0.99}, {**WHO_SHORT, "confidence": 0.6}]
    )
    with session_scope(db_url) as s:
        p = get_project(s, "pre")
        assert prefill.prefill_threshold(p) == prefill.PREFILL_THRESHOLD
        task = svc.next_document(s, p, "ann")
        assert task.spans == [WHO_LONG]  # pre-filled: Enter keeps it
        assert [sg["start"] for sg in task.suggestions] == [31]  # unsure: still a suggestion
        saved = svc.save(s, p, doc, "ann", [*task.spans, NASA])
        assert saved.spans == [
            {**WHO_LONG, "origin": "model"},
            {**NASA, "origin": "annotator"},
        ]
        assert prefill.model_influence(s, p) == prefill.Influence(
            accepted=1, edited=0, added=1, texts=1
        )


def test_the_threshold_is_stored_with_the_project_and_validated(db_url):
    _pre_annotated(db_url, [{**WHO_LONG, "confidence": 0.9}])
    with session_scope(db_url) as s:
        p = get_project(s, "pre")
        assert svc.next_document(s, p, "ann").spans == []  # 0.9 < the default
        assert prefill.set_prefill_threshold(s, p, 0.85) == 0.85
        for bad in (1.5, -0.1, "x", float("nan")):
            with pytest.raises(ValidationError, match="threshold"):
                prefill.set_prefill_threshold(s, p, bad)
    with session_scope(db_url) as s:
        p = get_project(s, "pre")
        assert prefill.prefill_threshold(p) == 0.85
        assert svc.next_document(s, p, "ann").spans == [WHO_LONG]


def test_influence_counts_only_pre_annotated_texts_and_exports_round_trip(db_url, project):
    doc = _pre_annotated(db_url, [{**WHO_LONG, "confidence": 0.99}, {**NASA, "confidence": 0.5}])
    with session_scope(db_url) as s:
        p = get_project(s, "pre")
        svc.next_document(s, p, "ann")
        svc.save(s, p, doc, "ann", [{**WHO_LONG, "start": 10}, WHO_SHORT])  # edited, added
        # A text of a project without a model records no origin.
        q = get_project(s, "p")
        other = svc.next_document(s, q, "ann").document_id
        saved = svc.save(s, q, other, "ann", [{"start": 0, "end": 4, "label": "SHORT"}])
        assert saved.spans == [{"start": 0, "end": 4, "label": "SHORT"}]
        assert prefill.model_influence(s, q).spans == 0
        influence = prefill.model_influence(s, p)
        assert (influence.accepted, influence.edited, influence.added) == (0, 1, 1)
        assert "0 (0.0%) are the model's unchanged, 1 edited, 1 added" in influence.describe()
        exported = {fmt: export_bytes(s, p, fmt) for fmt in ("csv", "jsonl", "conll")}
    spans = json.loads(exported["jsonl"].decode().splitlines()[0])["spans"]
    assert [sp["origin"] for sp in spans] == ["edited", "annotator"]
    for fmt, data in exported.items():  # re-import into a fresh project: the same spans
        with session_scope(db_url) as s:
            again = create_project(s, f"again-{fmt}", "acronym")
            import_bytes(s, again, f"x.{fmt}", data, fmt=fmt, annotator="gold")
            (row,), _ = listing.browse(s, again)
            assert [(row.text[sp["start"] : sp["end"]], sp["label"]) for sp in row.spans] == [
                ("Health Organization", "LONG"),
                ("WHO", "SHORT"),
            ], fmt
