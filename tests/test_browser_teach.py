"""End to end: the Teach page in chromium, answered with the keyboard alone (test_browser.py's
server and browser; the same skip rules)."""

# ruff: noqa: F811 (the `page` fixture, imported from test_browser, is every test's argument)

from __future__ import annotations

import pytest
from helpers import seed_project
from sqlalchemy import select
from test_browser import _serve, browser, page, require_chromium  # noqa: F401 (fixtures)

from core.labeling.projects import get_project
from core.store.db import session_scope, upgrade
from core.store.schema import Decision, ModelVersion, Prediction

pytestmark = pytest.mark.browser

TEXTS = [
    "Body mass index (BMI) is a value derived from mass.",
    "The World Health Organization (WHO) sets standards.",
    "Natural language processing (NLP) is fun.",
    "The European Space Agency (ESA) flies probes.",
    "A support vector machine (SVM) separates classes.",
    "Magnetic resonance imaging (MRI) shows <b>tissue</b>.",  # suggested first
]
CARD = "[data-testid='fewlabel-teach']"


def _suggestions(text: str, k: int) -> list[dict]:
    """The long form and the short form of `text`, each with its own confidence."""
    open_, close = text.index("("), text.index(")")
    first = text.index(" ") + 1 if text.startswith(("The ", "A ")) else 0
    return [
        {"start": first, "end": open_ - 1, "label": "LONG", "confidence": 0.40 + 0.01 * k},
        {"start": open_ + 1, "end": close, "label": "SHORT", "confidence": 0.90 - 0.01 * k},
    ]


@pytest.fixture(scope="module")
def teach_server(tmp_path_factory):
    """A served database with project `teach`: six texts, a current model suggesting two
    spans in each (twelve suggestions)."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("teach")
    url = f"sqlite:///{tmp / 'teach.db'}"
    upgrade(url)
    ids = seed_project(url, "teach", TEXTS)
    with session_scope(url) as s:
        p = get_project(s, "teach")
        mv = ModelVersion(
            project_id=p.id, version=1, path=str(tmp), base="default", n_labels=0, is_current=True
        )
        s.add(mv)
        s.flush()
        for k, (doc, text) in enumerate(zip(ids, TEXTS, strict=True)):
            spans = _suggestions(text, k)
            s.add(Prediction(document_id=doc, model_version_id=mv.id, spans=spans, score=0.5))
    yield from _serve(url, tmp)


def _shown(page) -> tuple[str, str]:
    """(the suggestion's key doc:start:end:label, the card's version) on screen."""
    card = page.locator(CARD)
    return card.get_attribute("data-key"), card.get_attribute("data-version")


def _press(page, key: str) -> None:
    """Press `key` and wait until the card shows what the server answered (a new version)."""
    _, version = _shown(page)
    page.keyboard.press(key)
    page.locator(f"{CARD}:not([data-version='{version}'])").wait_for()


def test_ten_suggestions_taught_with_the_keyboard_alone(teach_server, page):
    page.goto(f"{teach_server['base']}/teach?annotator=teacher&project=teach")
    page.locator(CARD).wait_for()
    text = page.locator("[data-testid='fewlabel-teach-text']").text_content()
    assert text.startswith("Magnetic resonance imaging") and "<b>tissue</b>" in text  # literally
    assert page.locator("[data-testid='fewlabel-teach-text'] b").count() == 0

    answers = {"a": "accept", "Enter": "accept", "x": "reject", "Space": "ignore", "s": "ignore"}
    labels = {"1": "SHORT", "2": "LONG"}
    expected: list[tuple] = []
    for key in ["a", "x", "Space", "2", "a", "u", "a", "Enter", "x", "s", "1", "a"]:
        shown, _ = _shown(page)
        doc, start, end, label = shown.split(":")
        _press(page, key)
        if key == "u":
            undone = expected.pop()
            assert _shown(page)[0] == ":".join(map(str, undone[:4]))  # shown again
            continue
        answer = answers.get(key, "accept")
        expected.append((int(doc), int(start), int(end), labels.get(key, label), answer))

    assert len(expected) == 10
    with session_scope(teach_server["url"]) as s:
        rows = s.scalars(select(Decision).order_by(Decision.id)).all()
        stored = [(d.document_id, d.start, d.end, d.label, d.answer) for d in rows]
        assert {d.annotator for d in rows} == {"teacher"}
        assert all(d.seconds is not None and 0 <= d.seconds <= 120 for d in rows)
    assert sorted(stored) == sorted(expected)
    assert len(set(stored)) == 10
