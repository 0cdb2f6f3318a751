"""Kill the app (`fewlabel serve`) with SIGKILL at random moments and check what is left.

Issue 12's fault target for the app. The real server runs on a loopback port (headless,
no accounts) over a fresh SQLite file; annotators in Debian's chromium (Playwright, never a
downloaded browser) save spans, skip and undo on the Annotate page, one action at a time,
while a timer SIGKILLs the server's whole process group at a random moment. After each kill
the probe checks, with the server down:

- every save, skip and undo the UI acknowledged (the next text was drawn) is in the database
  exactly as marked: the annotator's annotation holds the words and labels marked; an action
  sent but not acknowledged when the kill came is there whole or not at all;
- nothing is half-written: each text's state agrees with its annotations, a claimed text is
  open, `PRAGMA integrity_check` is ok and no foreign key dangles;

then restarts the server and measures the seconds from the restart to the Annotate page
showing a text again, in every annotator's browser, and that an annotator who held a text
gets it back (a claim left by the kill does not strand it); after the last restart each
annotator saves once more. Last, it presses Retrain on the Train page (a tiny random BERT)
and kills the app the moment the job row is committed, at random just after the click, or
while the job runs: the job must end done (its worker runs in a session of its own, or the
lease logic retries it) rather than stay queued, no model version may disagree with its row
(scripts/fault_probe.py's checks), and the next Retrain's worker must claim its job within
10 s.

    .venv/bin/python scripts/app_kill_probe.py --kills 20 [--retrain-kills 3] [--json out.json]

Runs in a temporary folder; exit status 1 when an invariant was violated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

TEXT = "Probe text {:04d} about the NASA mission and the ESA probe"
WORDS = TEXT.format(0).split()
KEYS = {"1": "SHORT", "2": "LONG"}
ACK_TIMEOUT_S = 30.0  # a save, skip or undo the live server does not answer in this long
START_LIMIT_S = 10.0
STRANDED_S = 60.0  # a Retrain's job still queued this long after the app's restart
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20, help="kills while annotators save")
    p.add_argument("--retrain-kills", type=int, default=3, help="kills while Retrain runs")
    p.add_argument("--annotators", type=int, default=2)
    p.add_argument("--texts", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the figures here too")
    p.add_argument("--work", help="work folder (default: a new temporary one)")
    return p.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _doc_number(text: str | None) -> int | None:
    m = re.match(r"Probe text (\d{4})", text or "")
    return int(m.group(1)) if m else None


class Server:
    """`fewlabel serve` in a process group of its own, killed whole with SIGKILL."""

    def __init__(self, work: Path, url: str):
        self.work, self.url, self.port = work, url, _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.starts = 0

    def start(self) -> None:
        fewlabel = Path(sys.executable).parent / "fewlabel"
        cmd = [str(fewlabel)] if fewlabel.exists() else [sys.executable, "-m", "core.cli"]
        self.starts += 1
        log = (self.work / f"serve-{self.starts}.log").open("w")
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--db", self.url, "--port", str(self.port), "--no-demo"],
            cwd=self.work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # streamlit runs as its child: one group to kill
        )
        log.close()
        self.started = time.monotonic()
        deadline = self.started + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"fewlabel serve did not start: see {self.work}/serve-{self.starts}.log")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Annotator:
    """One browser context; `log` is what the UI acknowledged, in order: (doc, value), where
    value is ("done", sorted (words, label) pairs) or ("skipped", ())."""

    def __init__(self, name: str, browser, base: str):
        self.name, self.base = name, base
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(5_000)
        self.log: list[tuple[int, tuple]] = []
        self.pending: tuple[str, int, tuple | None] | None = None  # (action, doc, value)

    def expected(self) -> dict[int, tuple | None]:
        out: dict[int, tuple | None] = {}
        for doc, value in self.log:
            out[doc] = value
        return out

    def shown(self) -> int | None:
        try:
            box = self.page.locator("[data-testid='fewlabel-text']")
            if box.count() == 0:
                return None
            return _doc_number(box.first.text_content(timeout=1_000))
        except Exception:  # the page is reloading, or the server died under it
            return None

    def open(self, timeout: float = 120.0) -> float:
        """Load the Annotate page until it shows a text: the seconds it took."""
        t0 = time.monotonic()
        self.page.goto(f"{self.base}/?annotator={self.name}&project=p", timeout=timeout * 1000)
        self.page.locator("[data-testid='fewlabel-text']").filter(has_text="Probe text").wait_for(
            timeout=timeout * 1000
        )
        return time.monotonic() - t0


def _db_value(url: str, annotator: str, number: int) -> tuple | None:
    from sqlalchemy import select

    from core.store.db import session_scope
    from core.store.schema import Annotation, Document

    with session_scope(url) as s:
        row = s.execute(
            select(Annotation.status, Annotation.spans, Document.text)
            .join(Document)
            .where(Annotation.annotator == annotator, Document.text == TEXT.format(number))
        ).first()
    if row is None:
        return None
    status, spans, text = row
    return status, tuple(sorted((text[sp["start"] : sp["end"]], sp["label"]) for sp in spans))


def half_written(url: str) -> list[str]:
    """Rows that disagree with each other, and SQLite's own checks."""
    from sqlalchemy import select, text

    from core.labeling.overlap import document_state, overlap_of
    from core.labeling.projects import get_project
    from core.store.db import session_scope
    from core.store.schema import Annotation, Document, FinalAnnotation

    found = []
    with session_scope(url) as s:
        ok = s.execute(text("PRAGMA integrity_check")).scalar()
        if ok != "ok":
            found.append(f"integrity_check: {ok}")
        dangling = s.execute(text("PRAGMA foreign_key_check")).all()
        if dangling:
            found.append(f"{len(dangling)} rows with a dangling foreign key")
        p = get_project(s, "p")
        overlap = overlap_of(p)
        anns: dict[int, list[str]] = {}
        for doc_id, status in s.execute(
            select(Annotation.document_id, Annotation.status)
            .join(Document)
            .where(Document.project_id == p.id)
        ):
            anns.setdefault(doc_id, []).append(status)
        finals = set(s.scalars(select(FinalAnnotation.document_id)))
        for doc in s.scalars(
            select(Document).where(
                Document.project_id == p.id, Document.state.in_(("open", "done", "skipped"))
            )
        ):
            statuses = anns.get(doc.id, [])
            want = document_state(
                done=statuses.count("done"),
                skipped="skipped" in statuses,
                required=overlap.required(p.id, doc.id),
                final=doc.id in finals,
            )
            if doc.state != want:
                found.append(f"text #{doc.id} is {doc.state}, its annotations say {want}")
            if doc.assigned_to is not None and doc.state != "open":
                found.append(f"text #{doc.id} is {doc.state} but claimed by {doc.assigned_to}")
    return found


def check_saves(url: str, ann: Annotator) -> tuple[list[str], str | None]:
    """Compare the annotator's acknowledged actions with the database; settle the pending one
    (sent, not acknowledged) from what the database holds. Returns (problems, how the pending
    action ended: 'applied', 'not applied' or None)."""
    problems, outcome = [], None
    expected = ann.expected()
    if ann.pending is not None:
        action, doc, value = ann.pending
        before = expected.get(doc)
        if action == "undo":
            after = dict(ann.log[:-1]).get(doc)  # the value before the undone action
        else:
            after = value
        got = _db_value(url, ann.name, doc)
        if got == after and got != before:
            outcome = "applied"
            if action == "undo":
                ann.log.pop()
            else:
                ann.log.append((doc, value))
        elif got == before:
            outcome = "not applied"
        else:
            problems.append(
                f"{ann.name}'s unacknowledged {action} of text {doc}: the database holds "
                f"{got}, neither {before} nor {after}"
            )
        ann.pending = None
        expected = ann.expected()
    for doc, value in expected.items():
        got = _db_value(url, ann.name, doc)
        if got != value:
            problems.append(f"{ann.name}'s acknowledged text {doc}: expected {value}, got {got}")
    return problems, outcome


def held_by(url: str, name: str) -> int | None:
    from core.labeling.claims import held
    from core.labeling.projects import get_project
    from core.store.db import session_scope

    with session_scope(url) as s:
        doc = held(s, get_project(s, "p"), name)
        return _doc_number(doc.text) if doc is not None else None


class Driver:
    """Saves, skips and undoes in the browsers until the kill timer fires."""

    def __init__(self, rng: random.Random, killed: threading.Event):
        self.rng, self.killed = rng, killed
        self.acked = {"save": 0, "skip": 0, "undo": 0}
        self.slow: list[str] = []

    def _wait_ack(self, ann: Annotator, done) -> bool:
        t0 = time.monotonic()
        while True:
            if done(ann.shown()):
                return True
            if self.killed.is_set():
                time.sleep(0.3)  # an answer already on its way still counts
                return bool(done(ann.shown()))
            if time.monotonic() - t0 > ACK_TIMEOUT_S:
                self.slow.append(f"{ann.name}: no answer in {ACK_TIMEOUT_S:.0f} s")
                return False
            time.sleep(0.03)

    def _mark(self, ann: Annotator) -> tuple:
        """Clear whatever spans the text shows, mark one or two at random: what was marked."""
        page, rng = ann.page, self.rng
        spans = page.locator(".fl-span")
        for _ in range(10):
            if spans.count() == 0:
                break
            spans.first.click(timeout=2_000)
            time.sleep(0.05)
        page.keyboard.press("Escape")
        i, k = rng.randint(3, 8), rng.randint(0, 1)
        key = rng.choice("12")
        for press in ["ArrowRight"] * (i + 1) + ["Shift+ArrowRight"] * k + [key]:
            page.keyboard.press(press)
        marked = [(" ".join(WORDS[i : i + k + 1]), KEYS[key])]
        later = [j for j in range(i + k + 1, len(WORDS)) if WORDS[j] != "the"]
        if later and rng.random() < 0.5:
            j = rng.choice(later)
            key = rng.choice("12")
            page.locator(".fl-w").filter(has_text=re.compile(f"^{WORDS[j]}$")).first.click()
            page.keyboard.press(key)
            marked.append((WORDS[j], KEYS[key]))
        page.locator(".fl-span").nth(len(marked) - 1).wait_for(timeout=3_000)
        return tuple(sorted(marked))

    def step(self, ann: Annotator, roll: float | None = None) -> None:
        """One action on the text shown: undo (12 %), skip (13 %) or save (a `roll` of 0.25
        or more), and wait for the answer."""
        doc = ann.shown()
        if doc is None or self.killed.is_set():
            time.sleep(0.05)
            return
        roll = self.rng.random() if roll is None else roll
        if roll < 0.12 and ann.log:
            target = ann.log[-1][0]
            ann.pending = ("undo", target, None)
            ann.page.keyboard.press("u")
            if self._wait_ack(ann, lambda shown: shown == target):
                ann.log.pop()
                ann.pending = None
                self.acked["undo"] += 1
            return
        if roll < 0.25:
            value = ("skipped", ())
            ann.pending = ("skip", doc, value)
            ann.page.keyboard.press("s")
        else:
            value = ("done", self._mark(ann))
            if self.killed.is_set():
                return
            ann.pending = ("save", doc, value)
            ann.page.keyboard.press("Enter")
        if self._wait_ack(ann, lambda shown: shown is not None and shown != doc):
            ann.log.append((doc, value))
            ann.pending = None
            self.acked["save" if value[0] == "done" else "skip"] += 1

    def run(self, annotators: list[Annotator]) -> None:
        while not self.killed.is_set():
            for ann in annotators:
                try:
                    self.step(ann)
                except Exception as exc:  # a Playwright wait cut short by the kill
                    if not self.killed.is_set():
                        self.slow.append(f"{ann.name}: {type(exc).__name__}: {str(exc)[:120]}")
                        time.sleep(0.2)


def setup(work: Path, texts: int) -> str:
    """The database: project p (acronym) with a few labeled texts and `texts` probe texts
    first in the queue. Returns its URL."""
    os.environ["FEWLABEL_HOME"] = str(work / "home")
    from helpers import seed_labeled_project

    from core.io.imports import import_bytes
    from core.labeling.annotations import set_ranks
    from core.labeling.progress import browse
    from core.labeling.projects import get_project
    from core.store.db import session_scope, upgrade

    url = f"sqlite:///{work / 'probe.db'}"
    upgrade(url)
    seed_labeled_project(url)
    data = "\n".join(TEXT.format(i) for i in range(texts)).encode()
    with session_scope(url) as s:
        p = get_project(s, "p")
        import_bytes(s, p, "probe.txt", data)
        rows, _ = browse(s, p, search="Probe text", limit=texts)
        set_ranks(s, p, {r.document_id: -1e6 + _doc_number(r.text) for r in rows})
    return url


def tiny_base(url: str, work: Path) -> str:
    """A tiny random BERT over the project's words, made project p's base (the Retrain
    form's default), so a Retrain takes seconds. Returns its path."""
    from helpers import tiny_backbone
    from sqlalchemy import select

    from core.labeling.projects import get_project
    from core.store.db import session_scope
    from core.store.schema import Document

    with session_scope(url) as s:
        p = get_project(s, "p")
        texts = s.scalars(select(Document.text).where(Document.project_id == p.id)).all()
        tiny = tiny_backbone(work / "tiny", " ".join(texts).split())
        p.base_model = tiny
    return tiny


def retrain_phase(server: Server, browser, url: str, kills: int, rng, work: Path) -> dict:
    """Press Retrain, SIGKILL the app just after or while its job runs, restart: the job must
    end done, its version agreeing with its row; the project's base becomes a tiny BERT."""
    from fault_probe import Probe
    from sqlalchemy import select

    from core.jobs.queue import ACTIVE, request_cancel
    from core.store.db import session_scope
    from core.store.schema import Job

    class Checks(Probe):  # fault_probe's checks of versions against rows, on this database
        def __init__(self):
            self.url, self.tiny = url, tiny

    def newest():
        with session_scope(url) as s:
            job = s.scalar(select(Job).where(Job.kind == "train").order_by(Job.id.desc()))
            if job is None:
                return None
            pid = job.pid or job.params.get("worker_pid")  # running, or spawned and starting
            return job.id, job.status, pid, job.params.get("attempt", 1), job.error

    def alive(pid):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, TypeError):
            return False
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"

    tiny = tiny_base(url, work)
    checks = Checks()
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    violations, runs, claims = [], [], []
    for k in range(1, kills + 2):  # the last Retrain runs to the end, unkilled
        before = newest()
        page.goto(f"{server.base}/train?project=p")
        page.get_by_role("spinbutton", name="Max epochs").fill("3")
        cv = page.get_by_role("checkbox", name="Cross-validate F1 while labels are few")
        if cv.is_checked():
            cv.uncheck(force=True)
        page.get_by_role("button", name="Retrain").click()
        clicked = time.monotonic()
        # a third of the kills land the moment the job row is committed (the app is about to
        # start its worker), a third at random just after the click, the rest while the job
        # runs, once its worker claimed it
        mode = ("at enqueue", "after the click", "while running")[(k - 1) % 3]
        if k > kills:
            mode = "none"
        before_id = before[0] if before else 0
        if mode == "at enqueue":
            while (job := newest()) is None or job[0] == before_id:
                if time.monotonic() - clicked > 60:
                    break
        elif mode == "after the click":
            time.sleep(rng.uniform(0.0, 0.5))
        else:
            while (job := newest()) is None or job[0] == before_id or job[1] == "queued":
                if time.monotonic() - clicked > 60:
                    break
                time.sleep(0.05)
            claims.append(time.monotonic() - clicked)
            if claims[-1] > START_LIMIT_S:
                violations.append(
                    f"retrain {k}: the worker claimed its job {claims[-1]:.1f} s after"
                )
            if mode == "none":
                break
            time.sleep(rng.uniform(0.2, 8.0))
        server.kill()
        job = newest()
        if job is None or job[0] == before_id:  # killed before the job was queued
            server.start()
            runs.append({"kill": k, "mode": mode, "status_at_kill": "not queued"})
            print(f"  retrain kill {k} ({mode}): killed before the job was queued", flush=True)
            continue
        job_id, status, pid, _, _ = job
        survived = alive(pid) if pid else None
        server.start()
        t0 = time.monotonic()
        page.goto(f"{server.base}/train?project=p")  # the Train page lists (and reaps) jobs
        page.get_by_text(f"Job {job_id} (train)").first.wait_for()
        usable = time.monotonic() - t0
        bad = []
        while True:
            with session_scope(url) as s:
                active = s.scalar(select(Job.id).where(Job.status.in_(ACTIVE)))
            if active is None or time.monotonic() - t0 > 300:
                break
            waited = time.monotonic() - t0
            if newest()[1] == "queued" and waited > STRANDED_S and not bad:
                bad.append(f"job {job_id} still queued {STRANDED_S:.0f} s after the restart")
            if newest()[1] == "queued" and waited > STRANDED_S + 130:
                # reap fails a job whose worker never started after START_TIMEOUT (2 minutes);
                # still queued: no worker will take it, cancel it as a user would
                try:
                    page.get_by_role("button", name="Cancel").click(timeout=10_000)
                except Exception:
                    with session_scope(url) as s:
                        request_cancel(s, job_id)
                time.sleep(2.0)
                continue
            time.sleep(1.0)
            page.reload()  # as a user watching the Train page: each listing reaps lost workers
        _, end, pid, attempt, error = newest()
        bad += checks.violations()
        if end != "done":
            bad.append(f"job {job_id} ({status} at the kill) ended {end}: {error}")
        violations += [f"retrain kill {k}: {b}" for b in bad]
        runs.append(
            {
                "kill": k,
                "mode": mode,
                "status_at_kill": status,
                "worker_survived": survived,
                "ended": end,
                "attempt": attempt,
                "train_page_seconds": round(usable, 2),
                "job_seconds_after_restart": round(time.monotonic() - t0, 1),
            }
        )
        worker = {True: "survived", False: "lost", None: "pid not recorded yet"}[survived]
        print(
            f"  retrain kill {k} ({mode}): job {job_id} {status} at the kill, worker {worker}, "
            f"ended {end} (attempt {attempt}) {time.monotonic() - t0:.0f} s after the restart: "
            f"{'; '.join(bad) or 'ok'}",
            flush=True,
        )
    while newest()[1] in ACTIVE:
        time.sleep(0.5)
    violations += [f"after the last Retrain: {b}" for b in checks.violations()]
    left = checks.leftovers()
    if left:
        violations.append(f"after the last Retrain, left on disk: {', '.join(left)}")
    context.close()
    return {
        "kills": len(runs),
        "worker_survived": sum(r.get("worker_survived") is True for r in runs),
        "jobs_done": sum(r.get("ended") == "done" for r in runs),
        "claimed_after_click_seconds": {
            "median": round(statistics.median(claims), 2),
            "max": round(max(claims), 2),
        },
        "violations": violations,
        "runs": runs,
    }


def annotate_phase(server: Server, annotators: list[Annotator], url: str, kills: int, rng) -> dict:
    """Save, skip and undo in the browsers; SIGKILL the app at a random moment, check, restart,
    `kills` times; then every annotator saves once more."""
    violations, usable, runs, pending = [], [], [], {"applied": 0, "not applied": 0}
    for k in range(1, kills + 1):
        killed = threading.Event()
        delay = rng.uniform(0.3, 6.0)

        def fire(killed=killed):
            server.kill()
            killed.set()

        timer = threading.Timer(delay, fire)
        driver = Driver(rng, killed)
        timer.start()
        driver.run(annotators)
        timer.join()
        bad = [f"{s} (server up)" for s in driver.slow]
        outcomes = []
        for ann in annotators:
            problems, outcome = check_saves(url, ann)
            bad += problems
            if outcome:
                pending[outcome] += 1
                outcomes.append(outcome)
        bad += half_written(url)
        held = {ann.name: held_by(url, ann.name) for ann in annotators}
        server.start()
        seconds = []
        for ann in annotators:
            ann.open()
            seconds.append(time.monotonic() - server.started)
            shown = ann.shown()
            if held[ann.name] is not None and shown != held[ann.name]:
                bad.append(f"{ann.name} held text {held[ann.name]} but is shown {shown}")
        usable.append(seconds)
        violations += [f"kill {k}: {b}" for b in bad]
        runs.append(
            {
                "kill": k,
                "at": round(delay, 2),
                "acked": driver.acked,
                "pending": outcomes,
                "usable_seconds": [round(x, 2) for x in seconds],
            }
        )
        print(
            f"  kill {k:2d} at {delay:4.1f} s: acknowledged {driver.acked}, unacknowledged "
            f"{outcomes or 'none'}, usable after {max(seconds):.1f} s: "
            f"{'; '.join(bad) or 'ok'}",
            flush=True,
        )
    # after the last restart every annotator saves once more, acknowledged, and all holds
    driver = Driver(rng, threading.Event())
    for ann in annotators:
        saved = driver.acked["save"]
        try:
            driver.step(ann, roll=1.0)  # a save
        except Exception as exc:
            driver.slow.append(f"{ann.name}: {type(exc).__name__}: {str(exc)[:120]}")
        if driver.acked["save"] == saved:
            violations.append(f"after the last restart {ann.name} could not save")
            ann.pending = None
        violations += check_saves(url, ann)[0]
        ann.context.close()
    violations += [f"after the last restart: {b}" for b in driver.slow]
    violations += [f"in the end: {b}" for b in half_written(url)]
    return {"violations": violations, "usable": usable, "runs": runs, "pending": pending}


def main(argv=None) -> int:
    args = parse_args(argv)
    chromium = shutil.which("chromium")
    if chromium is None:
        print("app_kill_probe: Debian's chromium is needed (apt-get install chromium)")
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="fewlabel-app-kills-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    url = setup(work, args.texts)
    server = Server(work, url)
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            annotators = [
                Annotator(f"ann{i + 1}", browser, server.base) for i in range(args.annotators)
            ]
            server.start()
            for ann in annotators:
                ann.open()
            found = annotate_phase(server, annotators, url, args.kills, rng)
            retrain = {"kills": 0, "violations": []}
            if args.retrain_kills:
                retrain = retrain_phase(server, browser, url, args.retrain_kills, rng, work)
            browser.close()
    finally:
        server.kill()  # whatever went wrong, no server is left behind
    violations = found["violations"] + retrain["violations"]
    usable, runs, pending = found["usable"], found["runs"], found["pending"]
    first = [min(s) for s in usable]
    every = [max(s) for s in usable]
    summary = {
        "kills": args.kills,
        "annotators": args.annotators,
        "acknowledged": {a: sum(r["acked"][a] for r in runs) for a in ("save", "skip", "undo")},
        "unacknowledged_at_kill": pending,
        "restart_to_usable_seconds": {
            "first_browser_median": round(statistics.median(first), 2) if first else None,
            "every_browser_median": round(statistics.median(every), 2) if every else None,
            "every_browser_max": round(max(every), 2) if every else None,
        },
        "retrain": {k: v for k, v in retrain.items() if k != "violations"},
        "violations": violations,
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in summary.items() if k not in ("runs", "retrain")}))
    print(json.dumps({k: v for k, v in retrain.items() if k != "runs"}))
    for v in violations:
        print(f"  violation: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
