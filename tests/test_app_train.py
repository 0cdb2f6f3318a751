"""The Train page with AppTest: Retrain starts a real worker process on a tiny model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import seed_labeled_project
from streamlit.testing.v1 import AppTest

from core import defaults
from core.active import STRATEGIES
from core.db import session_scope
from core.jobs import recent_jobs
from core.model.backbone import Tagger
from core.projects import get_project
from core.versions import list_versions

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
pytestmark = pytest.mark.slow


@pytest.fixture
def train_page(db_url, tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("FEWLABEL_DB", db_url)
    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    seed_labeled_project(db_url, "p", strategy="least_confidence")
    with session_scope(db_url) as s:
        get_project(s, "p").base_model = tiny_model_dir

    def start() -> AppTest:
        at = AppTest.from_file(MAIN, default_timeout=30)
        at.query_params["annotator"] = "alice"
        at.run()
        at.switch_page("views/train.py").run()
        assert not at.exception, at.exception
        return at

    return start


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
    assert at.number_input[0].value == defaults.EPOCHS  # as the CLI and TrainArgs
    assert at.number_input(key="pretrain_minutes").value == defaults.PRETRAIN_MINUTES
    at.number_input[0].set_value(2)
    assert at.checkbox(key="train_evidence").value is True  # an acronym project: on
    at.button(key="FormSubmitter:retrain-Retrain").click().run()
    assert not at.exception, at.exception
    assert _wait_for_job(db_url) == "done"
    at = train_page()
    assert any("version 1" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert list(table["version"]) == [1] and list(table["labels"]) == [6]
    with session_scope(db_url) as s:
        versions = list_versions(s, get_project(s, "p"))
        assert [v.version for v in versions] == [1]
        assert Tagger.load(versions[0].path).evidence == "acronym"

    # Without the rule's tags: the next version takes no evidence.
    at.number_input[0].set_value(1)
    at.checkbox(key="train_evidence").uncheck()
    at.button(key="FormSubmitter:retrain-Retrain").click().run()
    assert _wait_for_job(db_url) == "done"
    with session_scope(db_url) as s:
        versions = {v.version: v.path for v in list_versions(s, get_project(s, "p"))}
        assert sorted(versions) == [1, 2]
        assert Tagger.load(versions[2]).evidence is None


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
    from core.jobs import enqueue

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


def test_a_concept_project_offers_keyphrase_evidence_off(db_url, tmp_path, monkeypatch):
    from helpers import seed_project

    monkeypatch.setenv("FEWLABEL_DB", db_url)
    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    seed_project(db_url, "c", ["Graph coloring is hard.", "It is slow."], task="concept")
    at = AppTest.from_file(MAIN, default_timeout=30)
    at.query_params["annotator"] = "alice"
    at.run()
    at.switch_page("views/train.py").run()
    assert not at.exception, at.exception
    box = at.checkbox(key="train_evidence")
    assert box.value is False and "keyphrase" in box.label  # offered, off by default
