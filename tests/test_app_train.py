"""The Train page with AppTest: Retrain starts a real worker process on a tiny model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import seed_labeled_project
from streamlit.testing.v1 import AppTest

from core import defaults
from core.active.strategies import STRATEGIES
from core.jobs.queue import recent_jobs
from core.labeling.projects import get_project
from core.model.backbone import Tagger
from core.store.db import session_scope
from core.store.versions import list_versions
from core.text import Span

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
pytestmark = pytest.mark.slow


@pytest.fixture
def app_env(db_url, tmp_path, monkeypatch):
    """The app's database and home for the test."""
    monkeypatch.setenv("FEWLABEL_DB", db_url)
    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))


def open_train_page() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params["annotator"] = "alice"
    at.run()
    at.switch_page("views/train.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def train_page(db_url, app_env, tiny_model_dir):
    seed_labeled_project(db_url, "p", strategy="least_confidence")
    with session_scope(db_url) as s:
        get_project(s, "p").base_model = tiny_model_dir
    return open_train_page


def _wait_for_job(db_url: str, timeout: float = 180) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with session_scope(db_url) as s:
            jobs = recent_jobs(s, get_project(s, "p"), limit=1)
            if jobs and jobs[0].status not in ("queued", "running"):
                return jobs[0].status + (f": {jobs[0].error}" if jobs[0].error else "")
        time.sleep(0.5)
    pytest.fail("the training job did not finish")


def test_retrain_runs_in_a_worker_and_the_version_appears(db_url, train_page):
    at = train_page()
    assert at.title[0].value == "Train"
    assert any("No model version yet" in c.value for c in at.caption)
    assert at.text_input[0].value == get_base(db_url)
    # the acronym schedule, as the CLI and TrainArgs give an acronym model (core.defaults)
    assert at.number_input[0].value == defaults.schedule("acronym")["epochs"] == 12
    assert at.number_input(key="pretrain_minutes").value == defaults.PRETRAIN_MINUTES
    at.number_input[0].set_value(2)
    assert at.checkbox(key="train_evidence").value is True  # an acronym project: on
    assert at.checkbox(key="train_cv").value is True
    at.button(key="FormSubmitter:retrain-Retrain").click().run()
    assert not at.exception, at.exception
    assert _wait_for_job(db_url) == "done"
    at = train_page()
    assert any("version 1" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["Version"]) == [1] and list(table["Labels"]) == [6]
    assert list(table["Measured by"]) == ["3-fold cross-validation"]  # 6 texts, no dev slice
    assert list(table["Held-out texts"]) == [6]
    with session_scope(db_url) as s:
        versions = list_versions(s, get_project(s, "p"))
        assert [v.version for v in versions] == [1]
        assert Tagger.load(versions[0].path).evidence.name == "acronym"

    # Without the rule's tags: the next version takes no evidence.
    at.number_input[0].set_value(1)
    at.checkbox(key="train_evidence").uncheck()
    at.checkbox(key="train_cv").uncheck()
    at.button(key="FormSubmitter:retrain-Retrain").click().run()
    assert _wait_for_job(db_url) == "done"
    with session_scope(db_url) as s:
        versions = {v.version: v for v in list_versions(s, get_project(s, "p"))}
        assert sorted(versions) == [1, 2]
        assert Tagger.load(versions[2].path).evidence is None
        assert "cv" not in versions[2].metrics  # not cross-validated when told not to
    table = train_page().dataframe[0].value
    assert list(table["F1 (%)"])[1] == "not measured: fewer than 40 labels"


def test_strategy_choice_is_saved(db_url, train_page):
    at = train_page()
    assert any(f"{STRATEGIES['least_confidence'].help} (default)" in c.value for c in at.caption)
    at.selectbox(key="train_strategy").set_value("entropy").run()
    assert any(c.value == STRATEGIES["entropy"].help for c in at.caption)
    with session_scope(db_url) as s:
        assert get_project(s, "p").strategy == "entropy"


def test_rescore_without_a_model_says_why(db_url, train_page):
    at = train_page()
    rescore = next(b for b in at.button if b.label == "Rescore the queue now")
    rescore.click().run()
    assert "failed" in _wait_for_job(db_url)
    at = train_page()
    assert any("train one first" in e.value for e in at.error)


def get_base(db_url: str) -> str:
    with session_scope(db_url) as s:
        return get_project(s, "p").base_model


def test_a_queued_job_shows_progress_and_cancel_then_a_static_status(db_url, train_page):
    from core.jobs.queue import enqueue

    with session_scope(db_url) as s:
        p = get_project(s, "p")
        job_id = enqueue(s, "train", p, {"project_id": p.id}).id  # no worker: stays queued
    at = train_page()
    assert any(f"Job {job_id} (train): queued" in b.text for b in at.get("progress"))
    cancel = next(b for b in at.button if b.label == "Cancel")
    cancel.click().run()
    assert not at.exception, at.exception
    with session_scope(db_url) as s:
        assert recent_jobs(s, get_project(s, "p"), limit=1)[0].status == "cancelled"
    assert not at.get("progress") and not any(b.label == "Cancel" for b in at.button)
    assert any(f"Job {job_id} (train): cancelled" in i.value for i in at.info)


def test_a_concept_project_offers_keyphrase_evidence_off(db_url, app_env):
    from helpers import seed_project

    seed_project(db_url, "c", ["Graph coloring is hard.", "It is slow."], task="concept")
    at = open_train_page()
    box = at.checkbox(key="train_evidence")
    assert box.value is False and "keyphrase" in box.label  # offered, off by default


@pytest.fixture
def custom_train_page(db_url, app_env, tiny_model_dir):
    """The Train page of a custom project (helpers.seed_custom_project) on the tiny model."""
    from helpers import seed_custom_project

    seed_custom_project(db_url, "bio")
    with session_scope(db_url) as s:
        get_project(s, "bio").base_model = tiny_model_dir
    return open_train_page()


def _stored(db_url: str) -> list[tuple[str, int]]:
    from core.labeling.weak_sources import list_patterns

    with session_scope(db_url) as s:
        return [(f["name"], f["patterns"]) for f in list_patterns(s, get_project(s, "bio"))]


def test_patterns_are_uploaded_listed_scored_and_removed(db_url, custom_train_page):
    from helpers import CUSTOM_LABELED, CUSTOM_PATTERNS

    at = custom_train_page
    at.file_uploader(key="weak_patterns_file").set_value(
        ("terms.jsonl", CUSTOM_PATTERNS.encode(), "application/json")
    )
    at.button(key="weak_patterns_submit").click().run()
    assert not at.exception, at.exception
    assert any(
        s.value.replace("\\", "") == "Stored 3 patterns from terms.jsonl." for s in at.success
    )
    assert _stored(db_url) == [("terms.jsonl", 3)]
    assert any(t.value.startswith("terms.jsonl · 3 patterns · added ") for t in at.text)

    at.button(key="weak_evaluate").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    assert list(table["source"]) == ["dictionary", "patterns", "combined"]
    assert list(table.columns) == ["source", "P", "R", "F1", "coverage", "texts", "spans"]
    assert (table["texts"] == len(CUSTOM_LABELED)).all()
    assert ((table["P"] >= 0) & (table["P"] <= 100)).all()  # percent
    assert any(c.value.replace("\\", "") == "model: no model version yet" for c in at.caption)

    at.button(key="weak_remove_0").click().run()
    assert not at.exception, at.exception
    assert _stored(db_url) == []
    assert not any(t.value.startswith("terms.jsonl") for t in at.text)


def test_a_bad_patterns_file_is_refused_with_its_line(db_url, custom_train_page):
    at = custom_train_page
    bad = b'{"label": "Chemical", "pattern": "lithium"}\n{"label": "Drug", "pattern": "x"}\n'
    at.file_uploader(key="weak_patterns_file").set_value(("bad.jsonl", bad, "application/json"))
    at.button(key="weak_patterns_submit").click().run()
    assert not at.exception, at.exception
    (error,) = at.error
    shown = error.value.replace("\\", "")  # as rendered: Markdown escapes undone
    assert shown == "Nothing was stored. bad.jsonl:2: unknown label 'Drug'; use Chemical, Disease"
    assert _stored(db_url) == []


def test_a_custom_project_builds_an_aligned_base(
    db_url, custom_train_page, monkeypatch, tiny_model_dir
):
    """The button enqueues the project's pretrain job; its worker runs inline here, with a
    2-step budget instead of the page's minutes, so the test takes seconds."""
    import core.jobs.queue
    from core.jobs.queue import get_job
    from core.jobs.worker import run_job

    started = []

    def run_inline(url, job_id, log_dir=None):
        with session_scope(url) as s:
            job = get_job(s, job_id)
            started.append(dict(job.params))
            job.params = {**job.params, "steps": 2}
        run_job(url, job_id)

    monkeypatch.setattr(core.jobs.queue, "spawn_worker", run_inline)
    at = custom_train_page
    assert any("rebuild as they grow" in c.value for c in at.caption)
    at.number_input(key="pretrain_minutes").set_value(2.0)
    next(b for b in at.button if b.label == "Build an aligned base").click().run()
    assert not at.exception, at.exception
    assert [(p["max_minutes"], p["base"]) for p in started] == [(2.0, tiny_model_dir)]
    with session_scope(db_url) as s:
        job = recent_jobs(s, get_project(s, "bio"), limit=1)[0]
        assert (job.kind, job.status) == ("pretrain", "done"), job.error
        checkpoint = job.result["checkpoint"]
        assert get_project(s, "bio").base_model == checkpoint
    done = " ".join(s.value for s in at.success)
    assert "aligned base built from 10 texts and selected" in done
    assert "weak sources: dictionary" in done
    assert Tagger.load(checkpoint).labels == ["Chemical", "Disease"]


def _add_version(db_url: str, number: int, n_labels: int, metrics: dict, **kwargs) -> None:
    from core.store.schema import ModelVersion
    from core.store.versions import set_current

    with session_scope(db_url) as s:
        p = get_project(s, "p")
        s.add(
            ModelVersion(
                project_id=p.id,
                version=number,
                path=f"/srv/fewlabel/models/1-p/v{number}",
                n_labels=n_labels,
                metrics=metrics,
                train_seconds=12.3456,
                **kwargs,
            )
        )
        s.flush()
        set_current(s, p, number)


def _charts(at: AppTest) -> list[tuple[dict, list[dict]]]:
    """Every Altair chart on the page: its Vega-Lite spec and its data rows."""
    import json

    import pyarrow as pa

    charts = []
    for c in at.get("vega_lite_chart"):
        rows = []
        for d in c.proto.datasets:
            rows += pa.ipc.open_stream(d.data.data).read_all().to_pylist()
        charts.append((json.loads(c.proto.spec), rows))
    return charts


def _marks(spec: dict) -> list[dict]:
    layers = spec.get("layer", [spec])
    return [m if isinstance(m, dict) else {"type": m} for m in (x["mark"] for x in layers)]


def test_versions_show_readable_figures_with_their_held_out_texts(db_url, train_page, tmp_path):
    from core.metrics import span_prf, summarize_folds

    gold = [[Span(0, 3, "SHORT")], [Span(0, 4, "SHORT")]]
    fold = span_prf(gold, [gold[0], []], ["SHORT", "LONG"])
    cv = summarize_folds([fold, fold, fold], fold, ["SHORT", "LONG"])
    aligned = tmp_path / "home" / "models" / "1-p" / "aligned-7"
    _add_version(db_url, 1, 3, {"dev": None, "cv": None}, base="default")
    _add_version(db_url, 2, 6, {"dev": None, "cv": cv}, base=str(aligned), aligned=True)
    at = train_page()
    table = at.dataframe[0].value
    assert list(table.columns) == [
        "Version", "Current", "Labels", "F1 (%)", "Measured by", "Held-out texts",
        "Held-out spans", "F1 SHORT (%)", "F1 LONG (%)", "Train time (s)",
        "Cross-validation time (s)", "Base", "Created",
    ]  # fmt: skip
    first, second = table.to_dict("records")
    assert first["F1 (%)"] == "not measured: fewer than 4 labels"
    assert (first["Held-out texts"], first["Base"], first["Train time (s)"]) == (0, "default", 12.3)
    assert second["F1 (%)"] == "66.7 ± 0.0" and second["Measured by"] == "3-fold cross-validation"
    assert (second["Held-out texts"], second["Held-out spans"]) == (6, 6)
    assert (second["F1 SHORT (%)"], second["F1 LONG (%)"]) == ("66.7 ± 0.0", "no spans")
    assert second["Base"] == "aligned base (aligned-7)"
    cells = [str(v) for row in table.to_dict("records") for v in row.values()]
    assert not any(str(tmp_path) in c or c.startswith("/") or c == "None" for c in cells)

    # one measured version: the learning curve draws it as a point, labeled with its texts
    ((spec, data),) = _charts(at)
    assert any(m["type"] == "line" and m.get("point") for m in _marks(spec))
    assert [(d["labels"], d["f1"], d["held_out"]) for d in data] == [(6, 66.7, "6 texts, 6 spans")]


def test_a_retrain_whose_app_died_before_its_worker_started_is_failed_not_left_queued(
    db_url, train_page, monkeypatch
):
    """The app killed between queuing the job and starting its worker (app_kill_probe found
    it): the job must not stay queued for ever, blocking every Retrain of the project."""
    from datetime import timedelta

    from sqlalchemy import select

    import core.jobs.queue
    from core.jobs.queue import START_TIMEOUT, reap
    from core.store.schema import Job

    monkeypatch.setattr(core.jobs.queue, "start", lambda url, job_id: None)  # died right here
    at = train_page()
    at.button(key="FormSubmitter:retrain-Retrain").click().run()
    assert not at.exception, at.exception
    with session_scope(db_url) as s:
        (job,) = s.scalars(select(Job)).all()
        assert job.status == "queued"
        job.created_at -= START_TIMEOUT + timedelta(seconds=1)
    with session_scope(db_url) as s:
        reap(s)
        (job,) = s.scalars(select(Job)).all()
        assert (job.status, job.error) == ("failed", "the worker process never started")
