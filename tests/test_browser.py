"""End to end: `fewlabel serve` driven by Debian's chromium through Playwright.

Never runs `playwright install`: the browser is the system's chromium. Without it these
tests skip, unless FEWLABEL_REQUIRE_BROWSER is set (CI), where they fail instead. Set
FEWLABEL_UPDATE_SCREENSHOT=1 to refresh docs/annotate.png from the demo corpus.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import seed_project

from app.components.common import source
from core.config import SAMPLE_DATA
from core.io.imports import import_file
from core.labeling.annotations import save, set_ranks
from core.labeling.claims import release
from core.labeling.progress import browse
from core.labeling.projects import create_project, get_project
from core.store.db import session_scope, upgrade

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
XSS_TEXT = (
    "Body mass index (BMI) is a value. <script>window.__xss=1</script> "
    '<img src=x onerror="window.__xss=2"> ends here.'
)
SECOND = "The World Health Organization (WHO) sets standards."
THIRD = "A third text about nothing in particular."
BMI_TEXT = "Body mass index (BMI) is a value derived from the mass (weight) and height of a person."
TIMEOUT_MS = 15_000


def require_chromium() -> None:
    if CHROMIUM is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("FEWLABEL_REQUIRE_BROWSER"):  # CI: the browser test must run
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fewlabel() -> list[str]:
    script = Path(sys.executable).parent / "fewlabel"
    return [str(script)] if script.exists() else [sys.executable, "-m", "core.cli"]


def _serve(url: str, tmp: Path):
    """`fewlabel serve` of `url` on a free port until the fixture ends: {base, url, tmp}."""
    port = _free_port()
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen(
        [*_fewlabel(), "serve", "--db", url, "--port", str(port), "--no-demo"],
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # streamlit runs as a child; stop the whole group
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            pytest.fail(f"fewlabel serve did not start:\n{(tmp / 'serve.log').read_text()}")
        time.sleep(0.2)
    yield {"base": base, "url": url, "tmp": tmp}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A served database with project `e2e` (three known texts) and the `demo` corpus."""
    require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    seed_project(url, "e2e", [XSS_TEXT, SECOND, THIRD])
    with session_scope(url) as s:
        demo = create_project(s, "demo", "acronym")
        import_file(s, demo, SAMPLE_DATA / "wiki_sentences.jsonl", seed=0)
        rows, _ = browse(s, demo, search="Body mass index (BMI) is a value derived")
        set_ranks(s, demo, {rows[0].document_id: -1.0})
    yield from _serve(url, tmp)


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    yield pg
    context.close()


def word(page, text: str):
    return page.locator(".fl-w").filter(has_text=re.compile(f"^{re.escape(text)}$")).first


def drag(page, first: str, last: str) -> None:
    a = word(page, first).bounding_box()
    b = word(page, last).bounding_box()
    page.mouse.move(a["x"] + 3, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=8)
    page.mouse.up()


def shown_text(page) -> str:
    return page.locator("[data-testid='fewlabel-text']").text_content()


def wait_for_text(page, fragment: str) -> None:
    page.locator("[data-testid='fewlabel-text']").filter(has_text=fragment).wait_for()


def test_label_save_skip_undo_and_no_script_runs(server, page):
    page.goto(f"{server['base']}/?annotator=tester&project=e2e")
    wait_for_text(page, "Body mass index")

    # The corpus text is shown literally, and nothing in it ran.
    text = shown_text(page)
    assert "<script>window.__xss=1</script>" in text
    assert '<img src=x onerror="window.__xss=2">' in text
    assert page.locator("[data-testid='fewlabel-text'] img").count() == 0
    assert page.locator("[data-testid='fewlabel-text'] script").count() == 0

    # Drag across three words, label them LONG (key 2); click BMI, label it SHORT (key 1).
    drag(page, "Body", "index")
    page.keyboard.press("2")
    page.locator(".fl-span[data-label='LONG']").filter(has_text="Body mass index").wait_for()
    word(page, "BMI").click()
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='SHORT']").filter(has_text="BMI").wait_for()
    assert page.locator(".fl-span").count() == 2

    page.keyboard.press("Enter")
    wait_for_text(page, "World Health")
    assert page.evaluate("typeof window.__xss") == "undefined"

    # The export (the CLI, the same code as the Export page) holds both spans.
    out = server["tmp"] / "out.csv"
    subprocess.run(
        [*_fewlabel(), "export", "e2e", "-o", str(out), "--db", server["url"]],
        check=True,
        capture_output=True,
    )
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["text"] == XSS_TEXT
    assert row["annotator"] == "tester"
    spans = json.loads(row["spans"])
    assert {"start": 0, "end": 15, "label": "LONG", "text": "Body mass index"} in spans
    assert {"start": 17, "end": 20, "label": "SHORT", "text": "BMI"} in spans

    # S skips the second text; U brings it back; U again brings back the first text
    # with the spans that were saved, as an unsaved draft.
    page.keyboard.press("s")
    wait_for_text(page, "A third text")
    page.keyboard.press("u")
    wait_for_text(page, "World Health")
    page.keyboard.press("u")
    wait_for_text(page, "Body mass index")
    page.locator(".fl-span").nth(1).wait_for()
    assert page.locator(".fl-span").count() == 2
    assert "unsaved changes" in page.locator(".fl-status").text_content()
    with session_scope(server["url"]) as s:
        rows, _ = browse(s, get_project(s, "e2e"), annotator="tester")
    assert rows == []  # both the save and the skip were undone
    assert page.evaluate("typeof window.__xss") == "undefined"

    # A reload shows the text as undo left it: its spans, still unsaved.
    page.reload()
    wait_for_text(page, "Body mass index")
    page.locator(".fl-span").nth(1).wait_for()
    assert page.locator(".fl-span").count() == 2
    assert "unsaved changes" in page.locator(".fl-status").text_content()
    with session_scope(server["url"]) as s:  # the next tests start from the text untouched
        release(s, get_project(s, "e2e"), "tester")


def test_clicking_a_span_removes_it_and_keys_leave_text_inputs_alone(server, page):
    page.goto(f"{server['base']}/?annotator=tester&project=e2e")
    wait_for_text(page, "Body mass index")
    # Keys work straight after load, before any click: → selects the first word.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    span = page.locator(".fl-span[data-label='SHORT']")
    span.filter(has_text="Body mass").wait_for()
    span.click()  # clicking a span removes it
    span.wait_for(state="detached")

    # Typing a name with digits and "s" into the sidebar must not label or skip.
    name = page.get_by_role("textbox", name="Annotator")
    name.click()
    name.press_sequentially("s12u")
    assert page.locator(".fl-span").count() == 0
    assert "Body mass index" in shown_text(page)


def test_model_suggestions_are_shown_and_accepted_with_a(server, page):
    """The pre-annotation path: the current model's stored spans appear as suggestions;
    A accepts them, Enter saves, and the export holds them."""
    from core.store.schema import ModelVersion, Prediction

    text = "Support vector machines (SVM) separate classes."
    (doc_id,) = seed_project(server["url"], "sugg", [text])
    with session_scope(server["url"]) as s:
        project = get_project(s, "sugg")
        version = ModelVersion(
            project_id=project.id,
            version=1,
            path=str(server["tmp"]),
            base="default",
            n_labels=0,
            is_current=True,
        )
        s.add(version)
        s.flush()
        s.add(
            Prediction(
                document_id=doc_id,
                model_version_id=version.id,
                score=0.42,
                spans=[
                    {"start": 0, "end": 23, "label": "LONG", "confidence": 0.8},
                    {"start": 25, "end": 28, "label": "SHORT", "confidence": 0.9},
                ],
            )
        )
        set_ranks(s, project, {doc_id: 0.0}, ranked_by=1)  # version 1's scores ranked it
    page.goto(f"{server['base']}/?annotator=suggester&project=sugg")
    wait_for_text(page, "Support vector machines")
    assert page.locator(".fl-sugg").count() == 2
    page.get_by_text("score 0.42").first.wait_for()  # why this text: its uncertainty
    page.keyboard.press("a")
    page.locator(".fl-span[data-label='LONG']").wait_for()
    assert page.locator(".fl-span").count() == 2
    page.keyboard.press("Enter")
    page.get_by_text("The queue is empty").first.wait_for()
    out = server["tmp"] / "sugg.csv"
    subprocess.run(
        [*_fewlabel(), "export", "sugg", "-o", str(out), "--db", server["url"]],
        check=True,
        capture_output=True,
    )
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert json.loads(row["spans"]) == [  # accepted suggestions: their origin is the model
        {
            "start": 0,
            "end": 23,
            "label": "LONG",
            "origin": "model",
            "text": "Support vector machines",
        },
        {"start": 25, "end": 28, "label": "SHORT", "origin": "model", "text": "SVM"},
    ]


def test_component_alone_suggestions_and_hostile_text(page):
    """The component's JS on a bare page: suggestions, keys, events; markup stays text."""
    from app.components.span_annotator import component_data
    from core.text import tokenize

    text = 'NLP (<b>natural</b> language processing) <svg onload="window.__xss=3"> ok'
    suggestions = [
        {"start": 0, "end": 3, "label": "SHORT", "confidence": 0.9},
        {"start": 8, "end": 14, "label": "LONG", "confidence": 0.6},  # "natural", snapped
    ]
    data = component_data(
        document_id=7,
        text=text,
        words=tokenize(text),
        spans=[],
        labels=["SHORT", "LONG"],
        suggestions=suggestions,
    )
    js = source("span_annotator", "js")  # common.js in front, as Streamlit gets it
    page.set_content("<div id='host'></div>")
    page.evaluate(
        """async ([js, data]) => {
            const url = URL.createObjectURL(new Blob([js], {type: "text/javascript"}));
            const mod = await import(url);
            window.__events = [];
            const root = document.getElementById("host").attachShadow({mode: "open"});
            mod.default({data, parentElement: root,
                         setTriggerValue: (name, value) => window.__events.push([name, value])});
        }""",
        [js, data],
    )
    assert page.locator(".fl-sugg").count() == 2
    assert '</b> language processing) <svg onload="window.__xss=3"> ok' in shown_text(page)
    assert page.locator("[data-testid='fewlabel-text'] b, svg").count() == 0

    page.locator(".fl-sugg[data-label='SHORT']").click()  # a click accepts one
    page.locator(".fl-span[data-label='SHORT']").wait_for()
    page.keyboard.press("a")  # A accepts the rest
    page.locator(".fl-span[data-label='LONG']").wait_for()
    page.keyboard.press("Control+z")  # undo the last edit
    page.locator(".fl-span[data-label='LONG']").wait_for(state="detached")
    page.keyboard.press("Enter")
    events = page.evaluate("window.__events")
    assert events == [
        [
            "event",
            {
                "action": "save",
                "doc": 7,
                "spans": [{"start": 0, "end": 3, "label": "SHORT"}],
                "seconds": events[0][1]["seconds"],
                "nonce": events[0][1]["nonce"],
            },
        ]
    ]
    assert 0 < events[0][1]["seconds"] < 60  # the annotator's clock: the time on this text
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_annotate_screenshot(server, page):
    """The Annotate page on the demo corpus with two labeled spans (docs/annotate.png)."""
    page.set_viewport_size({"width": 1200, "height": 700})
    page.goto(f"{server['base']}/?annotator=demo-user&project=demo")
    wait_for_text(page, "Body mass index (BMI)")
    drag(page, "Body", "index")
    page.keyboard.press("2")
    word(page, "BMI").click()
    page.keyboard.press("1")
    word(page, "weight").click()
    page.locator(".fl-span").nth(1).wait_for()
    page.mouse.move(5, 5)
    shot = server["tmp"] / "annotate.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("FEWLABEL_UPDATE_SCREENSHOT"):
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(shot, ROOT / "docs" / "annotate.png")


def test_export_page_downloads_the_file_built_on_click(server, page):
    """The Export page builds the file only when its button is clicked (a deferred
    download); the browser receives the same bytes as `fewlabel export`."""
    (doc_id,) = seed_project(server["url"], "exp", [SECOND])
    who = {"start": SECOND.index("WHO"), "end": SECOND.index("WHO") + 3, "label": "SHORT"}
    with session_scope(server["url"]) as s:
        save(s, get_project(s, "exp"), doc_id, "exporter", [who])
    page.goto(f"{server['base']}/export?project=exp")
    button = page.get_by_role("button", name="Download exp.csv")
    button.wait_for()
    with page.expect_download() as info:
        button.click()
    got = Path(info.value.path()).read_bytes()
    out = server["tmp"] / "exp.csv"
    subprocess.run(
        [*_fewlabel(), "export", "exp", "-o", str(out), "--db", server["url"]],
        check=True,
        capture_output=True,
    )
    assert got == out.read_bytes()
    (row,) = list(csv.DictReader(io.StringIO(got.decode("utf-8"))))
    assert json.loads(row["spans"]) == [{**who, "text": "WHO"}]


EMOJI_TEXT = "🚀🛰️ The ESA 👍🏽 and NASA 🌍 launched the mission 🎉 today."
MARKS_TEXT = "Le cafe\u0301 de Noe\u0308l (CDN) ouvre."
ARABIC_TEXT = "قالت منظمة الصحة العالمية (WHO) إن 🌍 الوضع مستقر."


def _words_of_spans(text: str, spans: list[dict]) -> list[tuple[str, str]]:
    return sorted((text[sp["start"] : sp["end"]], sp["label"]) for sp in spans)


def test_words_after_emoji_combining_marks_and_arabic_save_exactly(server, page):
    """Offsets are code points in Python and UTF-16 in the browser: what is marked after an
    emoji, a combining mark or in Arabic is what is stored, exported and imported back."""
    seed_project(server["url"], "uni", [EMOJI_TEXT, MARKS_TEXT, ARABIC_TEXT])
    page.goto(f"{server['base']}/?annotator=uni&project=uni")
    wait_for_text(page, "launched the mission")
    assert shown_text(page).startswith(EMOJI_TEXT)
    word(page, "ESA").click()
    page.keyboard.press("1")
    word(page, "mission").click()
    page.keyboard.press("2")
    page.locator(".fl-span[data-label='LONG']").filter(has_text="mission").wait_for()
    page.keyboard.press("Enter")

    wait_for_text(page, "ouvre")
    drag(page, "cafe\u0301", "Noe\u0308l")
    page.keyboard.press("2")
    word(page, "CDN").click()
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='SHORT']").filter(has_text="CDN").wait_for()
    page.keyboard.press("Enter")

    wait_for_text(page, "WHO")
    drag(page, "منظمة", "العالمية")
    page.keyboard.press("2")
    word(page, "WHO").click()
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='SHORT']").filter(has_text="WHO").wait_for()
    page.keyboard.press("Enter")
    page.get_by_text("The queue is empty").first.wait_for()

    expected = {
        EMOJI_TEXT: [("ESA", "SHORT"), ("mission", "LONG")],
        MARKS_TEXT: [("CDN", "SHORT"), ("cafe\u0301 de Noe\u0308l", "LONG")],
        ARABIC_TEXT: [("WHO", "SHORT"), ("منظمة الصحة العالمية", "LONG")],
    }
    with session_scope(server["url"]) as s:
        rows, _ = browse(s, get_project(s, "uni"), annotator="uni")
        stored = {r.text: _words_of_spans(r.text, r.spans) for r in rows}
    assert stored == {t: sorted(w) for t, w in expected.items()}

    # Every export format, imported back into a new project, slices the same words.
    for fmt in ("csv", "jsonl", "conll"):
        out = server["tmp"] / f"uni.{fmt}"
        subprocess.run(
            [*_fewlabel(), "export", "uni", "-o", str(out), "--format", fmt, "--db", server["url"]],
            check=True,
            capture_output=True,
        )
        with session_scope(server["url"]) as s:
            back = create_project(s, f"uni-{fmt}", "acronym")
            import_file(s, back, out, annotator="back")
            rows, _ = browse(s, back, annotator="back")
            again = {r.text: _words_of_spans(r.text, r.spans) for r in rows}
        if fmt == "conll":  # tokens joined by single spaces: compare the words only
            again = {" ".join(t.split()): w for t, w in again.items()}
            assert sorted(again.values()) == sorted(stored.values())
        else:
            assert again == stored


# ---------------------------------------------------------------- issue 11: keys, hover, layout

NASA_TEXTS = [f"Text {i} mentions the NASA mission ." for i in range(30)]
LONG_TEXT = (" ".join(f"filler{k}" for k in range(2300)) + " and the last acronym is ZULU here .")[
    -20_040:
]


def mount(page, data: dict) -> None:
    """The component's JS and CSS on a bare page; window.__render(data) redraws it, as
    Streamlit does, and window.__events collects what it sends."""
    js = source("span_annotator", "js")  # common.js in front, as Streamlit gets it
    css = source("span_annotator", "css")
    page.set_content("<div id='host'></div>")
    page.evaluate(
        """async ([js, css, data]) => {
            const url = URL.createObjectURL(new Blob([js], {type: "text/javascript"}));
            const mod = await import(url);
            window.__events = [];
            const root = document.getElementById("host").attachShadow({mode: "open"});
            const style = document.createElement("style");
            style.textContent = css;
            root.append(style);
            const send = (name, value) => window.__events.push([name, value]);
            window.__render = (d) => mod.default({data: d, parentElement: root,
                                                  setTriggerValue: send});
            window.__render(data);
        }""",
        [js, css, data],
    )


def _data(doc: int, text: str, *, seq: int = 0, spans=(), version: str | None = None) -> dict:
    from app.components.span_annotator import component_data
    from core.text import tokenize

    return component_data(
        document_id=doc,
        text=text,
        words=tokenize(text),
        spans=list(spans),
        labels=["SHORT", "LONG"],
        version=version if version is not None else f"v{doc}",
        seq=seq,
    )


def _saved_spans(page) -> list[list[dict]]:
    return [value["spans"] for _, value in page.evaluate("window.__events")]


def test_component_holds_keys_typed_while_saving(page):
    """Keys typed before the next text arrives apply to it once it is drawn; a bare repeated
    Enter does not save an unseen text; an error answer drops held keys."""
    mount(page, _data(1, NASA_TEXTS[1]))
    for key in ["ArrowRight"] * 5 + ["1", "Enter"]:
        page.keyboard.press(key)
    # The server has not answered: these keys are for the next text, typed blind.
    for key in ["ArrowRight"] * 4 + ["Shift+ArrowRight", "1", "Enter", "Enter"]:
        page.keyboard.press(key)
    assert _saved_spans(page) == [[{"start": 20, "end": 24, "label": "SHORT"}]]  # NASA
    page.evaluate("(d) => window.__render(d)", _data(2, NASA_TEXTS[2], seq=1))
    page.wait_for_function("window.__events.length === 2")
    assert _saved_spans(page)[1] == [{"start": 16, "end": 24, "label": "SHORT"}]  # the NASA

    # The second Enter was a double press: the third text arrives and is not saved.
    page.evaluate("(d) => window.__render(d)", _data(3, NASA_TEXTS[3], seq=2))
    page.locator(".fl-hint").filter(has_text="press Enter again").wait_for()
    assert len(page.evaluate("window.__events")) == 2
    assert page.locator(".fl-span").count() == 0

    # A save that fails comes back as the same text: held keys are dropped, not applied.
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("1")
    page.evaluate("(d) => window.__render(d)", _data(3, NASA_TEXTS[3], seq=3))
    page.locator(".fl-hint").filter(has_text="2 keys typed while waiting").wait_for()
    page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert page.locator(".fl-span, .fl-w.fl-sel").count() == 0


def _set_visibility(page, state: str) -> None:
    """Make the page report `state` ("hidden" or "visible") and fire visibilitychange, as a
    switch to another tab and back does."""
    page.evaluate(
        """(state) => {
            Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_the_clock_counts_visible_time_since_the_text_was_drawn(page):
    """A save carries the seconds since its text was drawn; time in a hidden tab does not
    count; a redraw of the same text (an error) keeps the clock, a new text restarts it."""
    mount(page, _data(1, NASA_TEXTS[1]))
    page.wait_for_timeout(600)
    _set_visibility(page, "hidden")
    page.wait_for_timeout(1500)  # another tab: not work
    _set_visibility(page, "visible")
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    (first,) = [v["seconds"] for _, v in page.evaluate("window.__events")]
    assert 0.8 <= first < 1.5, first  # about 0.9 s visible, not the 2.4 s that passed

    page.evaluate("(d) => window.__render(d)", _data(1, NASA_TEXTS[1], seq=1))  # an error
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    second = page.evaluate("window.__events")[1][1]["seconds"]
    assert second >= first + 0.25, (first, second)  # the same text: its clock ran on

    page.evaluate("(d) => window.__render(d)", _data(2, NASA_TEXTS[2], seq=2))  # next text
    page.wait_for_timeout(200)
    page.keyboard.press("s")
    third = page.evaluate("window.__events")[2][1]
    assert third["action"] == "skip" and 0.15 <= third["seconds"] < first, third


def test_a_save_in_the_app_records_its_seconds(server, page):
    """A save from the real component stores a plausible positive time: at least the wait
    before Enter, at most the time the test took."""
    from sqlalchemy import select

    from core.store.schema import Annotation

    ids = seed_project(server["url"], "clock", ["The NASA clock ticks .", "A second text ."])
    began = time.monotonic()
    page.goto(f"{server['base']}/?annotator=timer&project=clock")
    wait_for_text(page, "NASA clock")
    page.wait_for_timeout(1200)
    page.keyboard.press("Enter")
    wait_for_text(page, "A second text")
    took = time.monotonic() - began
    with session_scope(server["url"]) as s:
        seconds = s.scalar(select(Annotation.seconds).where(Annotation.document_id == ids[0]))
    assert seconds is not None and 1.1 <= seconds <= took, (seconds, took)


def test_machine_speed_typing_through_30_texts_saves_every_text(server, page):
    """No lost keystroke: keys sent as fast as Playwright sends them, never waiting for the
    next text, label every one of 30 texts exactly as typed."""
    seed_project(server["url"], "fast", NASA_TEXTS)
    plans = {  # per text: keys, and the one span they mean
        0: (["ArrowRight"] * 5 + ["1"], ("NASA", "SHORT")),
        1: (["ArrowRight"] * 6 + ["2"], ("mission", "LONG")),
        2: (["ArrowRight"] * 4 + ["Shift+ArrowRight", "1"], ("the NASA", "SHORT")),
    }
    page.goto(f"{server['base']}/?annotator=typist&project=fast")
    wait_for_text(page, NASA_TEXTS[0])
    expected = {}
    for i, text in enumerate(NASA_TEXTS):
        keys, (words, label) = plans[i % 3]
        for key in [*keys, "Enter"]:
            page.keyboard.press(key)
        start = text.index(words)
        expected[text] = [{"start": start, "end": start + len(words), "label": label}]
    page.get_by_text("The queue is empty").first.wait_for(timeout=120_000)
    with session_scope(server["url"]) as s:
        rows, _ = browse(s, get_project(s, "fast"), annotator="typist", limit=100)
        stored = {r.text: [dict(sp) for sp in r.spans] for r in rows}
    assert stored == expected


def test_hovering_a_span_moves_nothing(page):
    text = "The NASA mission and the ESA probe flew far beyond the Moon ."
    mount(page, _data(1, text, spans=[{"start": 4, "end": 8, "label": "SHORT"}]))
    after = page.locator(".fl-text > .fl-w")
    boxes = [after.nth(i).bounding_box() for i in range(after.count())]
    tag = page.locator(".fl-span .fl-tag")
    hint = "(t) => getComputedStyle(t, '::after').opacity"  # the remove hint
    page.locator(".fl-span").hover()
    assert [after.nth(i).bounding_box() for i in range(after.count())] == boxes
    assert tag.evaluate(hint) == "1"
    page.mouse.move(1, 1)
    assert tag.evaluate(hint) == "0"


def test_right_to_left_text_reads_right_to_left(page):
    mount(page, _data(1, ARABIC_TEXT))
    box = page.locator("[data-testid='fewlabel-text']")
    assert box.evaluate("(b) => getComputedStyle(b).direction") == "rtl"
    assert page.locator(".fl-legend").evaluate("(b) => getComputedStyle(b).direction") == "ltr"
    page.keyboard.press("ArrowLeft")  # left is forward: the first word, at the right
    assert page.locator(".fl-w.fl-sel").text_content() == "قالت"


def test_a_long_text_scrolls_inside_the_editor_and_save_stays_visible(server, page):
    assert len(LONG_TEXT) >= 20_000
    seed_project(server["url"], "long", [LONG_TEXT])
    page.goto(f"{server['base']}/?annotator=reader&project=long")
    wait_for_text(page, "ZULU")
    save_box = page.locator(".fl-btn[data-action='save']").bounding_box()
    assert 0 <= save_box["y"] and save_box["y"] + save_box["height"] <= 900
    word(page, "ZULU").click()  # scrolls the text box, not the page
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='SHORT']").filter(has_text="ZULU").wait_for()
    assert page.locator(".fl-btn[data-action='save']").bounding_box() == save_box
    page.keyboard.press("Enter")
    page.get_by_text("The queue is empty").first.wait_for()
    with session_scope(server["url"]) as s:
        (row,) = browse(s, get_project(s, "long"), annotator="reader")[0]
    start = LONG_TEXT.index("ZULU")
    assert [dict(sp) for sp in row.spans] == [{"start": start, "end": start + 4, "label": "SHORT"}]


# ---------------------------------------------------------------- issue 11, item 5: review


def test_a_reviewers_correction_is_the_final_version_shown_and_exported(server, page):
    """A reviewer corrects another annotator's text on the Review page: the editor shows the
    correction after the save, the annotator's own annotation stays, and the export holds the
    final version and says where it comes from."""
    (doc_id,) = seed_project(server["url"], "rev", [SECOND])
    start, who = SECOND.index("World"), SECOND.index("WHO")
    spans = [
        {"start": start, "end": start + len("World Health"), "label": "LONG"},
        {"start": who, "end": who + 3, "label": "SHORT"},
    ]
    with session_scope(server["url"]) as s:  # ann marks "World Health" only
        save(s, get_project(s, "rev"), doc_id, "ann", spans)
    page.goto(f"{server['base']}/review?annotator=reviewer&project=rev")
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.wait_for()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 12, box["y"] + 35 + 17)  # the first row's selection marker
    wait_for_text(page, "World Health")
    page.get_by_text("ann's annotation stays as it is").wait_for()

    page.locator(".fl-span").filter(has_text="World Health").click()  # removes it
    page.locator(".fl-span[data-label='LONG']").wait_for(state="detached")
    drag(page, "World", "Organization")
    page.keyboard.press("2")
    page.locator(".fl-span[data-label='LONG']").filter(has_text="Organization").wait_for()
    page.keyboard.press("Enter")

    page.get_by_text("Showing the final version, reviewed by reviewer").wait_for()
    # The editor redraws from the stored final version: nothing left unsaved.
    page.locator(".fl-status").filter(has_not_text="unsaved").wait_for()
    long_span = page.locator(".fl-span[data-label='LONG']")
    assert long_span.text_content().startswith("World Health Organization")
    assert page.locator(".fl-span").count() == 2

    out = server["tmp"] / "rev.csv"
    subprocess.run(
        [*_fewlabel(), "export", "rev", "-o", str(out), "--db", server["url"]],
        check=True,
        capture_output=True,
    )
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["annotator"] == "reviewer"
    assert row["source"].startswith("final (reviewed by reviewer at ")
    assert _words_of_spans(SECOND, json.loads(row["spans"])) == [
        ("WHO", "SHORT"),
        ("World Health Organization", "LONG"),
    ]
    with session_scope(server["url"]) as s:
        (ann,) = browse(s, get_project(s, "rev"), annotator="ann")[0]
    assert ("World Health", "LONG") in _words_of_spans(SECOND, ann.spans)


# ---------------------------------------------------------------- issue 11: pre-filled spans

PREFILL_FIRST = "\U0001f680 Support vector machines (SVM) separate classes."
PREFILL_SECOND = "Random forests (RF) and neural networks (NN) compete."


def _suggested(text: str, words: str, label: str, confidence: float) -> dict:
    start = text.index(words)  # code points, as Python stores them
    return {"start": start, "end": start + len(words), "label": label, "confidence": confidence}


def test_confident_suggestions_open_as_spans_and_save_with_their_origin(server, page):
    """A confident suggestion opens as a span and Enter saves it as the model's; an unsure one
    stays a dashed suggestion; a changed one is saved as edited, a new one as the annotator's."""
    from core.labeling.prefill import model_influence
    from core.store.schema import ModelVersion, Prediction

    ids = seed_project(server["url"], "prefill", [PREFILL_FIRST, PREFILL_SECOND])
    suggestions = {
        ids[0]: [
            _suggested(PREFILL_FIRST, "Support vector machines", "LONG", 0.99),
            _suggested(PREFILL_FIRST, "SVM", "SHORT", 0.6),
        ],
        ids[1]: [
            _suggested(PREFILL_SECOND, "Random forests", "LONG", 0.99),
            _suggested(PREFILL_SECOND, "RF", "SHORT", 0.97),
        ],
    }
    with session_scope(server["url"]) as s:
        project = get_project(s, "prefill")
        version = ModelVersion(
            project_id=project.id,
            version=1,
            path=str(server["tmp"]),
            base="default",
            n_labels=0,
            is_current=True,
        )
        s.add(version)
        s.flush()
        for doc_id, spans in suggestions.items():
            s.add(
                Prediction(document_id=doc_id, model_version_id=version.id, spans=spans, score=0.3)
            )

    page.goto(f"{server['base']}/?annotator=prefiller&project=prefill")
    wait_for_text(page, "Support vector machines")
    span = page.locator(".fl-span[data-label='LONG']").filter(has_text="Support vector machines")
    span.wait_for()  # pre-filled after an emoji, on exactly its words
    assert page.locator(".fl-span").count() == 1
    assert page.locator(".fl-sugg").count() == 1
    assert page.locator(".fl-sugg[data-label='SHORT']").filter(has_text="SVM").count() == 1
    page.keyboard.press("Enter")  # no keystroke on the text: the pre-filled span is saved

    wait_for_text(page, "Random forests")
    page.locator(".fl-span").nth(1).wait_for()
    assert page.locator(".fl-span").count() == 2 and page.locator(".fl-sugg").count() == 0
    drag(page, "Random", "forests")
    page.keyboard.press("1")  # the model said LONG: relabelled, it is edited
    page.locator(".fl-span[data-label='SHORT']").filter(has_text="Random forests").wait_for()
    page.locator(".fl-span").filter(has_text="RF").click()  # a pre-filled span removed
    page.locator(".fl-span").filter(has_text="RF").wait_for(state="detached")
    word(page, "NN").click()
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='SHORT']").filter(has_text="NN").wait_for()
    page.keyboard.press("Enter")
    page.get_by_text("The queue is empty").first.wait_for()

    with session_scope(server["url"]) as s:
        project = get_project(s, "prefill")
        rows, _ = browse(s, project, annotator="prefiller")
        stored = {
            r.text: [(r.text[sp["start"] : sp["end"]], sp["label"], sp["origin"]) for sp in r.spans]
            for r in rows
        }
        influence = model_influence(s, project)
    assert stored == {
        PREFILL_FIRST: [("Support vector machines", "LONG", "model")],
        PREFILL_SECOND: [("Random forests", "SHORT", "edited"), ("NN", "SHORT", "annotator")],
    }
    assert (influence.accepted, influence.edited, influence.added) == (1, 1, 1)


def test_two_annotators_in_two_browsers_get_their_own_texts_and_keep_every_save(server, browser):
    """Issue 11, item 3: no pre-filled name; each browser chooses one and gets texts of its
    own; renaming hands the claimed text back to the queue."""
    texts = [f"Team text {i} about the ESA probe ." for i in range(4)]
    seed_project(server["url"], "duo", texts)
    pages = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(f"{server['base']}/?project=duo")
        pg.get_by_text("Who is labeling?").first.wait_for()
        assert pg.locator("[data-testid='fewlabel-text']").count() == 0  # no text, no name
        pages.append(pg)
    for pg, name in zip(pages, ("ana", "ben"), strict=True):
        box = pg.get_by_role("textbox", name="Your name")
        box.fill(name)
        pg.get_by_role("button", name="Start labeling").click()
        pg.locator("[data-testid='fewlabel-text']").filter(has_text="Team text").wait_for()
    shown = [shown_text(pg) for pg in pages]
    assert shown[0] != shown[1]  # two people, two texts
    for pg, seen in zip(pages, shown, strict=True):
        word(pg, "ESA").click()
        pg.keyboard.press("1")
        pg.locator(".fl-span[data-label='SHORT']").wait_for()
        pg.keyboard.press("Enter")
        head = seen.split(" about")[0]  # "Team text N"
        text_box = pg.locator("[data-testid='fewlabel-text']")
        text_box.filter(has_text="Team text").filter(has_not_text=head).wait_for()
    with session_scope(server["url"]) as s:
        project = get_project(s, "duo")
        saved = {r.annotator: r.text for r in browse(s, project, state="done")[0]}
    assert saved == {"ana": shown[0], "ben": shown[1]}  # both saves kept, one each

    # ben clears his name (as when handing the browser over): the text he held goes back to
    # the queue at once, not after the 30-minute lease
    held = shown_text(pages[1])
    sidebar_name = pages[1].get_by_role("textbox", name="Annotator")
    sidebar_name.fill("")
    sidebar_name.press("Enter")
    pages[1].get_by_text("Who is labeling?").first.wait_for()
    pages[0].keyboard.press("s")  # ana skips her text and is handed the one ben let go
    handed = held.split(" about")[0]
    pages[0].locator("[data-testid='fewlabel-text']").filter(has_text=handed).wait_for()
    for pg in pages:
        pg.context.close()


# ---------------------------------------------------------------- issue 12: accounts


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    """A served database with accounts: an admin and the annotator `ann`, project `team`."""
    from core.labeling.users import add_user

    require_chromium()
    tmp = tmp_path_factory.mktemp("team")
    url = f"sqlite:///{tmp / 'team.db'}"
    upgrade(url)
    seed_project(url, "team", [SECOND, THIRD])
    with session_scope(url) as s:
        add_user(s, "root", "admin", "root password")
        add_user(s, "ann", "annotator", "ann password")
    yield from _serve(url, tmp)


def test_an_annotator_logs_in_and_labels_as_the_account(team_server, page):
    """Issue 12: with accounts the app opens on a login page; the annotator sees Annotate and
    not Train, and what she saves is stored under her account, not under a typed name."""
    page.goto(f"{team_server['base']}/?annotator=mallory&project=team")
    page.get_by_role("button", name="Log in").wait_for()
    assert page.locator("[data-testid='fewlabel-text']").count() == 0
    page.get_by_role("textbox", name="Name").fill("ann")
    page.get_by_label("Password", exact=True).fill("ann password")
    page.get_by_role("button", name="Log in").click()

    wait_for_text(page, "World Health")
    page.get_by_text("Logged in as").first.wait_for()
    page.get_by_role("heading", name="Annotate").wait_for()
    assert page.get_by_role("link", name="Train").count() == 0
    assert page.get_by_text("Train", exact=True).count() == 0
    assert page.get_by_role("textbox", name="Annotator").count() == 0  # no name to type

    word(page, "WHO").click()
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='SHORT']").filter(has_text="WHO").wait_for()
    page.keyboard.press("Enter")
    wait_for_text(page, "A third text")
    with session_scope(team_server["url"]) as s:
        (row,) = browse(s, get_project(s, "team"), state="done")[0]
    assert row.annotator == "ann" and row.text == SECOND
    start = SECOND.index("WHO")
    assert [dict(sp) for sp in row.spans] == [{"start": start, "end": start + 3, "label": "SHORT"}]


# ------------------------------------------------------- issue 23: every script, every span
SCRIPT_SPANS = [  # (text, start, end, label): each span as a file holds it
    ("我爱北京天安门。", 2, 4, "LOC"),  # Chinese: no spaces, two characters of seven
    ("私は東京に住んでいます。", 2, 4, "LOC"),  # Japanese
    ("ฉันรักกรุงเทพมาก", 6, 13, "LOC"),  # Thai
    ("서울은 한국의 수도입니다.", 0, 2, "LOC"),  # Korean: the name without its particle
    ("The NASAfoo mission flew.", 4, 8, "ORG"),  # ends inside a word
]


def _script_files(tmp: Path) -> dict[str, Path]:
    """SCRIPT_SPANS as a JSONL, a CSV, a Label Studio and a Prodigy file."""
    files = {
        fmt: tmp / name
        for fmt, name in (
            ("jsonl", "s.jsonl"),
            ("csv", "s.csv"),
            ("labelstudio", "s.json"),
            ("prodigy", "s.prodigy.jsonl"),
        )
    }
    spans = [[{"start": s, "end": e, "label": lbl}] for _, s, e, lbl in SCRIPT_SPANS]
    texts = [t for t, *_ in SCRIPT_SPANS]
    files["jsonl"].write_text(
        "".join(
            json.dumps({"text": t, "spans": sp}, ensure_ascii=False) + "\n"
            for t, sp in zip(texts, spans, strict=True)
        ),
        encoding="utf-8",
    )
    with files["csv"].open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "spans"])
        for t, sp in zip(texts, spans, strict=True):
            writer.writerow([t, json.dumps(sp, ensure_ascii=False)])
    tasks = [
        {
            "id": i,
            "data": {"text": t},
            "annotations": [
                {
                    "result": [
                        {
                            "from_name": "label",
                            "to_name": "text",
                            "type": "labels",
                            "value": {"start": s, "end": e, "text": t[s:e], "labels": [lbl]},
                        }
                    ]
                }
            ],
        }
        for i, (t, s, e, lbl) in enumerate(SCRIPT_SPANS, 1)
    ]
    files["labelstudio"].write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    files["prodigy"].write_text(
        "".join(
            json.dumps({"text": t, "spans": sp, "answer": "accept"}, ensure_ascii=False) + "\n"
            for t, sp in zip(texts, spans, strict=True)
        ),
        encoding="utf-8",
    )
    return files


def _exported_spans(server, project: str, fmt: str) -> dict[str, list[tuple[int, int, str]]]:
    """`fewlabel export` of a project in `fmt`, imported back: each text's (start, end, label).
    CoNLL's texts are its tokens joined by spaces: those come back keyed by the words."""
    suffix = {"labelstudio": "json", "sciad": "json"}.get(fmt, fmt)
    out = server["tmp"] / f"{project}-out.{suffix}"
    done = subprocess.run(
        [*_fewlabel(), "export", project, "-o", str(out), "--format", fmt, "--db", server["url"]],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    with session_scope(server["url"]) as s:
        back = create_project(s, f"{project}-{fmt}", "custom", ["LOC", "ORG"])
        import_file(s, back, out, fmt=fmt, annotator="back")
        rows, _ = browse(s, back, annotator="back")
        return {
            r.text: sorted((sp["start"], sp["end"], sp["label"]) for sp in r.spans) for r in rows
        }


def test_every_script_and_mid_word_span_is_kept_by_every_format_and_the_browser(server, page):
    """Issue 23: a span in Chinese, Japanese, Thai or Korean, or one that ends inside a word,
    is stored as the file gave it, shown on its own words, and every export gives it back; a
    span marked in the browser on Chinese text is stored exactly too."""
    from core.text import words_of

    files = _script_files(server["tmp"])
    expected = {t: [(s, e, lbl)] for t, s, e, lbl in SCRIPT_SPANS}
    for fmt, path in files.items():
        with session_scope(server["url"]) as s:
            project = create_project(s, f"scripts-{fmt}", "custom", ["LOC", "ORG"])
            report = import_file(s, project, path, fmt=fmt)
            assert report.annotations == len(SCRIPT_SPANS), report.summary()
            rows, _ = browse(s, project)
            stored = {
                r.text: sorted((sp["start"], sp["end"], sp["label"]) for sp in r.spans)
                for r in rows
            }
        assert stored == expected, fmt
        for out in ("jsonl", "csv", "labelstudio", "prodigy", "spacy"):
            assert _exported_spans(server, f"scripts-{fmt}", out) == expected, (fmt, out)
    # CoNLL and SciAD hold words: the span's words come back, tagged B- then I-, nothing more
    want = {}
    for text, s, e, lbl in SCRIPT_SPANS:
        words = words_of(text, None, [{"start": s, "end": e, "label": lbl}])
        joined = " ".join(w.text for w in words)
        inside = [w.text for w in words if s <= w.start and w.end <= e]
        offset = len(" ".join(w.text for w in words if w.end <= s))
        offset += 1 if offset else 0
        want[joined] = [(offset, offset + len(" ".join(inside)), lbl)]
    for tokenized in ("conll", "sciad"):  # token formats: the text is its words joined
        assert _exported_spans(server, "scripts-jsonl", tokenized) == want, tokenized

    # In the browser: each Chinese and Japanese character is a word to select
    seed_project(
        server["url"],
        "scripts-ui",
        ["我爱北京天安门。", "私は東京に住んでいます。"],
        task="custom",
        labels=["LOC", "ORG"],
    )
    page.goto(f"{server['base']}/?annotator=scripter&project=scripts-ui")
    wait_for_text(page, "我爱北京")
    drag(page, "北", "京")  # each character is a word: the two of 北京
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='LOC']").filter(has_text="北京").wait_for()
    page.keyboard.press("Enter")
    wait_for_text(page, "東京")
    drag(page, "東", "京")
    page.keyboard.press("1")
    page.locator(".fl-span[data-label='LOC']").filter(has_text="東京").wait_for()
    page.keyboard.press("Enter")
    page.get_by_text("The queue is empty").first.wait_for()
    ui = {"我爱北京天安门。": [(2, 4, "LOC")], "私は東京に住んでいます。": [(2, 4, "LOC")]}
    with session_scope(server["url"]) as s:
        rows, _ = browse(s, get_project(s, "scripts-ui"), annotator="scripter")
        assert {
            r.text: sorted((sp["start"], sp["end"], sp["label"]) for sp in r.spans) for r in rows
        } == ui
    for out in ("jsonl", "csv", "labelstudio", "prodigy"):
        assert _exported_spans(server, "scripts-ui", out) == ui, out


def test_a_shortcut_right_after_switching_project_acts_on_the_annotator(server, page):
    """Picking a project in the sidebar leaves the keyboard's focus in its select box; the
    annotator takes it when the new project's text arrives, so S skips that text at once."""
    seed_project(server["url"], "focus-a", ["Alpha text about the WHO ."])
    seed_project(server["url"], "focus-b", ["Beta first text .", "Beta second text ."])
    page.goto(f"{server['base']}/?annotator=focuser&project=focus-a")
    wait_for_text(page, "Alpha text")
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").click()
    page.keyboard.type("focus-b")  # the list holds every test's projects: filter it
    page.get_by_role("option", name="focus-b", exact=True).click()
    wait_for_text(page, "Beta first text")
    page.keyboard.press("s")  # no click on the text first
    wait_for_text(page, "Beta second text")
    with session_scope(server["url"]) as s:
        rows, _ = browse(s, get_project(s, "focus-b"), state="skipped")
    assert [r.text for r in rows] == ["Beta first text ."]
