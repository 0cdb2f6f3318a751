"""The annotator's clock in the app (issue 22, item 4), with AppTest: the seconds a component
event carries reach the database capped, and the Train page shows per-hour figures that agree
with the recorded times."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.state.session_state import STREAMLIT_INTERNAL_KEY_PREFIX
from streamlit.testing.v1 import AppTest

from app.components.span_annotator import parse_event
from core.defaults import IDLE_CAP_S
from core.labeling import decisions
from core.labeling.annotations import save
from core.labeling.projects import get_project
from core.metrics import span_prf, summarize_folds
from core.store.db import session_scope
from core.store.schema import Annotation, Decision, ModelVersion
from core.text import Span

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
TEXTS = [
    "The World Health Organization (WHO) sets standards.",
    "Natural language processing (NLP) is fun.",
    "A third text about nothing in particular.",
    "The NASA mission flew far.",
]


@pytest.fixture
def app(db_url, monkeypatch):
    monkeypatch.setenv("FEWLABEL_DB", db_url)

    def start(page: str | None = None) -> AppTest:
        at = AppTest.from_file(MAIN, default_timeout=20)
        at.query_params["annotator"] = "alice"
        at.run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    return start


def send_event(at: AppTest, value: dict) -> AppTest:
    """Run the app as if the browser component had fired its `event` trigger with `value`."""
    (el,) = at.get("bidi_component")
    states = at._tree.get_widget_states()
    trigger = WidgetState(id=f"{STREAMLIT_INTERNAL_KEY_PREFIX}_{el.proto.id}__events")
    trigger.json_trigger_value = json.dumps([{"event": "event", "value": value}])
    states.widgets.append(trigger)
    at._run(states)
    assert not at.exception, at.exception
    return at


def shown_doc(at: AppTest) -> int:
    (el,) = at.get("bidi_component")
    return json.loads(el.proto.json)["doc"]


def test_parse_event_keeps_a_finite_non_negative_seconds():
    base = {"action": "save", "doc": 1, "spans": []}
    assert parse_event({**base, "seconds": 3.25}).seconds == 3.25
    assert parse_event({**base, "seconds": 7}).seconds == 7.0
    for bad in (-1, "5", None, True, float("inf"), [2]):
        assert parse_event({**base, "seconds": bad}).seconds is None
    assert parse_event(base).seconds is None  # an older browser tab: not measured


def test_the_seconds_of_a_save_and_a_skip_reach_the_database_capped(app, make_project, db_url):
    ids = make_project("p", TEXTS[:3])
    at = app()
    assert shown_doc(at) == ids[0]
    span = {"start": 31, "end": 34, "label": "SHORT"}
    send_event(at, {"action": "save", "doc": ids[0], "spans": [span], "seconds": 8.5})
    assert shown_doc(at) == ids[1]
    send_event(at, {"action": "skip", "doc": ids[1], "spans": [], "seconds": 4000.0})
    send_event(at, {"action": "save", "doc": ids[2], "spans": [], "seconds": "abc"})
    with session_scope(db_url) as s:
        stored = dict(s.execute(select(Annotation.document_id, Annotation.seconds)).all())
    assert stored == {ids[0]: 8.5, ids[1]: IDLE_CAP_S, ids[2]: None}


def _record_times(db_url: str, ids: list[int]) -> None:
    """alice saves 3 texts in 30 + 45 + 200 (capped 120) s and skips one unmeasured; bob
    answers 4 suggestions in 2 + 3 + 5 + 6 s; version 1 trained after alice's first two."""
    t0 = datetime(2026, 1, 5, 9, 0, 0)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        for i, secs in enumerate([30.0, 45.0, 200.0]):
            save(s, p, ids[i], "alice", [], seconds=secs)
        save(s, p, ids[3], "alice", [])
        for start, end, secs in [(4, 9, 2.0), (10, 16, 3.0), (31, 34, 5.0)]:
            decisions.record(
                s, p, ids[0], "bob", start=start, end=end, label="SHORT", answer="reject",
                origin="rule", seconds=secs,
            )  # fmt: skip
        decisions.record(
            s, p, ids[3], "bob", start=4, end=8, label="SHORT", answer="accept", origin="rule",
            seconds=6.0,
        )  # fmt: skip
        s.flush()
        # the times the answers were given: alice's at minutes 0, 1, 10, 11; bob's at 2-5
        rows = s.scalars(select(Annotation).order_by(Annotation.document_id)).all()
        for row, minute in zip(rows, [0, 1, 10, 11], strict=True):
            row.created_at = t0 + timedelta(minutes=minute)
        for n, row in enumerate(s.scalars(select(Decision).order_by(Decision.id))):
            row.created_at = t0 + timedelta(minutes=2 + n)
        gold = [[Span(0, 3, "SHORT")], [Span(0, 4, "SHORT")]]
        fold = span_prf(gold, [gold[0], []], ["SHORT", "LONG"])
        cv = summarize_folds([fold, fold, fold], fold, ["SHORT", "LONG"])
        s.add(  # registered at minute 9 after 3 minutes of training: it began at minute 6
            ModelVersion(
                project_id=p.id, version=1, path="/nowhere/v1", base="default", n_labels=2,
                metrics={"dev": None, "cv": cv}, train_seconds=180.0,
                created_at=t0 + timedelta(minutes=9), is_current=True,
            )
        )  # fmt: skip


def test_train_page_shows_each_annotators_pace_and_f1_by_hours(app, make_project, db_url):
    ids = make_project("p", TEXTS)
    _record_times(db_url, ids)
    at = app("views/train.py")
    (table,) = at.table
    rows = table.value.reset_index().to_dict("records")
    # alice: 3 timed texts in 30 + 45 + 120 = 195 s -> 195/3600 h, 3 * 3600 / 195 per hour
    # bob: 4 decisions in 16 s -> 900 per hour
    assert rows == [
        {
            "Annotator": "alice",
            "Mode": "manual",
            "Answers": 4,
            "Timed": 3,
            "Hours": f"{195 / 3600:.3f}",
            "Per hour": f"{3 * 3600 / 195:.1f}",
        },
        {
            "Annotator": "bob",
            "Mode": "teach",
            "Answers": 4,
            "Timed": 4,
            "Hours": f"{16 / 3600:.3f}",
            "Per hour": "900.0",
        },
    ]
    assert rows[0]["Per hour"] == "55.4" and rows[0]["Hours"] == "0.054"
    assert any(f"at most {IDLE_CAP_S:g} s" in c.value for c in at.caption)

    # F1 against annotator hours: version 1 at the hours of the answers before minute 6:
    # alice's 30 + 45 s and bob's 2 + 3 + 5 + 6 s
    (chart,) = [
        c
        for c in at.get("vega_lite_chart")
        if json.loads(c.proto.spec).get("encoding", {}).get("x", {}).get("field") == "hours"
    ]
    data = []
    for d in chart.proto.datasets:
        data += pa.ipc.open_stream(d.data.data).read_all().to_pylist()
    assert [(d["version"], d["hours"], d["f1"]) for d in data] == [(1, round(91 / 3600, 4), 66.7)]


def test_train_page_without_recorded_time_draws_no_hours_chart(app, make_project, db_url):
    ids = make_project("p", TEXTS[:1])
    with session_scope(db_url) as s:
        save(s, get_project(s, "p"), ids[0], "alice", [])  # from the CLI: no seconds
    at = app("views/train.py")
    rows = at.table[0].value.reset_index().to_dict("records")
    assert rows == [
        {
            "Annotator": "alice",
            "Mode": "manual",
            "Answers": 1,
            "Timed": 0,
            "Hours": "0.000",
            "Per hour": "",
        }
    ]
    assert not [c for c in at.get("vega_lite_chart") if "Annotator hours" in c.proto.spec]
