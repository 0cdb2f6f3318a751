"""The Teach page, run headless with AppTest: the teach card's events sent the way the
browser sends them (a trigger value on the component), so the page's callback path runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.runtime.state.session_state import STREAMLIT_INTERNAL_KEY_PREFIX
from streamlit.testing.v1 import AppTest

from app.components.teach_card import card_data, parse_event
from core.labeling.projects import get_project
from core.store.db import session_scope
from core.store.schema import Decision, ModelVersion, Prediction

MAIN = str(Path(__file__).resolve().parent.parent / "app" / "main.py")
TEXTS = [
    "Body mass index (BMI) is a value derived from mass and height.",
    "The World Health Organization (WHO) sets standards.",
]


@pytest.fixture
def teach_page(db_url, make_project, monkeypatch):
    """Project p, its current model suggesting BMI (0.3), WHO (0.55) and the long form (0.9);
    the Teach page as `alice`."""
    monkeypatch.setenv("FEWLABEL_DB", db_url)
    ids = make_project("p", TEXTS)
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        mv = ModelVersion(project_id=p.id, version=1, path="m", base="b", n_labels=0)
        mv.is_current = True
        s.add(mv)
        s.flush()
        spans = {
            ids[0]: [(0, 15, "LONG", 0.9), (17, 20, "SHORT", 0.3)],
            ids[1]: [(31, 34, "SHORT", 0.55)],
        }
        for doc, found in spans.items():
            rows = [{"start": a, "end": b, "label": lab, "confidence": c} for a, b, lab, c in found]
            s.add(Prediction(document_id=doc, model_version_id=mv.id, spans=rows, score=0.5))
    at = AppTest.from_file(MAIN, default_timeout=20)
    at.query_params["annotator"] = "alice"
    at.run()
    at.switch_page("views/teach.py").run()
    assert not at.exception, at.exception
    return at, ids


def card(at: AppTest) -> dict:
    (el,) = at.get("bidi_component")
    return json.loads(el.proto.json)


def send(at: AppTest, action: str, data: dict | None = None, **extra) -> AppTest:
    data = data or card(at)
    (el,) = at.get("bidi_component")
    states = at._tree.get_widget_states()
    trigger = WidgetState(id=f"{STREAMLIT_INTERNAL_KEY_PREFIX}_{el.proto.id}__events")
    value = {"action": action, "nonce": "t", "ms": 2500, **data, **extra}
    value = {k: value[k] for k in ("action", "doc", "start", "end", "label", "nonce", "ms")} | {
        "as": extra.get("as")
    }
    trigger.json_trigger_value = json.dumps([{"event": "event", "value": value}])
    states.widgets.append(trigger)
    at._run(states)
    assert not at.exception, at.exception
    return at


def decisions(db_url: str) -> list[tuple]:
    with session_scope(db_url) as s:
        rows = s.scalars(select(Decision).order_by(Decision.id))
        return [(d.document_id, d.start, d.end, d.label, d.answer, d.seconds) for d in rows]


def test_parse_event_and_card_data():
    ok = parse_event({"action": "accept", "doc": "3", "start": 1, "end": 4, "label": "X"})
    assert ok.key == (3, 1, 4, "X") and ok.as_label is None and ok.seconds is None
    relabel = parse_event(
        {"action": "accept", "doc": 3, "start": 1, "end": 4, "label": "X", "as": "Y", "ms": 1500}
    )
    assert (relabel.as_label, relabel.seconds) == ("Y", 1.5)
    assert parse_event({"action": "drop", "doc": 1, "start": 0, "end": 1, "label": "X"}) is None
    assert parse_event({"action": "accept", "doc": 1}) is None
    data = card_data(
        document_id=1,
        text="a <b>BMI</b> c",
        start=5,
        end=8,
        label="SHORT",
        confidence=0.5,
        origin="model",
        labels=["SHORT", "LONG"],
    )
    assert (data["before"], data["span"], data["after"]) == ("a <b>", "BMI", "</b> c")


def test_teach_answers_undoes_and_relabels_through_card_events(teach_page, db_url):
    at, ids = teach_page
    first = card(at)
    assert (first["doc"], first["span"], first["confidence"]) == (ids[1], "WHO", 0.55)
    assert any("suggested by model" in c.value for c in at.caption)
    send(at, "accept")
    assert decisions(db_url) == [(ids[1], 31, 34, "SHORT", "accept", 2.5)]
    second = card(at)
    assert (second["doc"], second["span"]) == (ids[0], "BMI")
    send(at, "undo")
    assert decisions(db_url) == []
    assert card(at)["span"] == "WHO"  # the undone suggestion comes back first
    send(at, "reject")
    assert card(at)["span"] == "BMI"
    send(at, "accept", **{"as": "LONG"})  # a number key: accepted under another label
    assert decisions(db_url)[-1][3:5] == ("LONG", "accept")
    assert card(at)["span"] == "Body mass index"
    send(at, "ignore")
    assert [d[4] for d in decisions(db_url)] == ["reject", "accept", "ignore"]
    assert not at.get("bidi_component")  # nothing left
    assert any("No suggestion to answer" in i.value for i in at.info)


def test_an_answer_about_a_suggestion_not_on_screen_is_refused(teach_page, db_url):
    at, ids = teach_page
    stale = {**card(at), "start": 0, "end": 3}
    send(at, "accept", stale)
    assert decisions(db_url) == []
    assert any("no longer on screen" in e.value for e in at.error)
    assert card(at)["span"] == "WHO"
