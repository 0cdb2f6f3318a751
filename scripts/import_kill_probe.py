"""Kill `fewlabel import` with SIGKILL at random moments and check it stays all or nothing.

Issue 23's target: a reader sees none or all of an import at every moment, whatever kills it
when. While each import runs, the probe reads the project's visible documents every few
milliseconds from another connection, as the app would, and counts any reading that is
neither the count before the file nor the count with all of it; after the kill it checks that
every annotation saved before is still there and that the next import into the project runs
to the end, leaving no staged row. `--publish-kills N` aims N of the kills at the transaction
that publishes the file: the probe waits until every batch is staged, then kills at a random
moment within the publishing time the calibration run measured. A labeled CoNLL file is
imported, so annotations are staged too.

    .venv/bin/python scripts/import_kill_probe.py --kills 20 --publish-kills 8 [--lines 30000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _counts(url: str) -> tuple[int, int, int]:
    """(visible documents, staged documents, annotations by 'seed')."""
    from sqlalchemy import func, select

    from core.store.db import session_scope
    from core.store.schema import STAGED, Annotation, Document

    with session_scope(url) as s:
        visible = s.scalar(select(func.count()).where(Document.state != STAGED))
        staged = s.scalar(select(func.count()).where(Document.state == STAGED))
        seeded = s.scalar(select(func.count()).where(Annotation.annotator == "seed"))
    return visible, staged, seeded


def _import(url: str, path: Path, tag: int) -> subprocess.Popen:
    env = {**os.environ, "FEWLABEL_DB": url, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "core.cli", "import", "p", str(path), "--annotator", f"imp{tag}"]
    return subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _write_file(path: Path, lines: int, tag: int) -> None:
    """A CoNLL file of `lines` one-sentence documents, distinct per tag (imports skip texts
    the project already has)."""
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            fh.write(f"Run\tO\n{tag}\tO\nsentence\tO\n{i}\tO\nabout\tO\nNASA\tB-SHORT\n\n")


def _watch(url, proc, before, lines, *, deadline=None, publish_window=None, rng=None):
    """Read the counts until the import ends or the kill moment comes (then kill it).

    Returns (killed, partial readings, the phase of the last reading before the kill:
    "before staging", "staging", "publishing" (every batch staged, nothing visible) or
    "published"). With
    `publish_window`, the kill moment is drawn once every batch is staged: a random moment
    within the window from then."""
    partial, phase = [], "before staging"
    while proc.poll() is None:
        visible, staged, _ = _counts(url)
        if visible not in (before, before + lines):
            partial.append(visible - before)
        if visible == before + lines:
            phase = "published"
        elif staged >= lines:
            phase = "publishing"
        elif staged:
            phase = "staging"
        now = time.monotonic()
        if publish_window is not None and deadline is None and phase == "publishing":
            deadline = now + rng.uniform(0, publish_window)
        if deadline is not None and now >= deadline:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True, partial, phase
        time.sleep(0.003)
    return False, partial, phase


def _calibrate(url, path, lines):
    """Time one whole import, and its publishing: from every batch staged to the file
    visible."""
    before = _counts(url)[0]
    t0 = time.monotonic()
    proc = _import(url, path, 0)
    staged_at = visible_at = None
    while proc.poll() is None:
        visible, staged, _ = _counts(url)
        now = time.monotonic()
        if staged_at is None and staged >= lines:
            staged_at = now
        if visible_at is None and visible == before + lines:
            visible_at = now
        time.sleep(0.003)
    full = time.monotonic() - t0
    _, err = proc.communicate()
    if proc.returncode != 0 or _counts(url)[0] != before + lines:
        raise SystemExit(f"calibration import failed: {err.strip()}")
    publishing = (visible_at or full + t0) - (staged_at or visible_at or t0)
    return full, max(publishing, 0.05)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument(
        "--publish-kills", type=int, default=8, help="of the kills, aimed at publishing"
    )
    parser.add_argument("--lines", type=int, default=30000, help="documents per import file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="folder for the database and files (default: a temp one)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    from core.labeling.annotations import next_document, save
    from core.labeling.projects import create_project, get_project
    from core.store.db import ensure_schema, session_scope

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="fewlabel-kills-"))
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'probe.db'}"
    ensure_schema(url)
    with session_scope(url) as s:
        create_project(s, "p", "acronym")
    from core.io.imports import import_bytes

    with session_scope(url) as s:
        p = get_project(s, "p")
        seed = "\n".join(f"Seed text {i} on NASA ." for i in range(50))
        import_bytes(s, p, "seed.txt", seed.encode())
    with session_scope(url) as s:
        p = get_project(s, "p")
        for _ in range(20):
            task = next_document(s, p, "seed")
            save(s, p, task.document_id, "seed", [{"start": 15, "end": 19, "label": "SHORT"}])

    rng = random.Random(args.seed)
    calib = work / "calib.conll"
    _write_file(calib, args.lines, 0)
    full, publishing = _calibrate(url, calib, args.lines)
    print(
        f"one import of {args.lines:,} documents takes {full:.1f} s, {publishing:.2f} s of it "
        "publishing",
        flush=True,
    )

    results, failures, cleanups = [], [], []
    for k in range(1, args.kills + 1):
        aimed = k <= args.publish_kills
        before_visible, _, before_seed = _counts(url)
        path = work / f"run{k}.conll"
        _write_file(path, args.lines, k)
        proc = _import(url, path, k)
        if aimed:
            killed, partial, phase = _watch(
                url, proc, before_visible, args.lines, publish_window=publishing, rng=rng
            )
        else:
            at = rng.uniform(0.05, 1.1) * full
            killed, partial, phase = _watch(
                url, proc, before_visible, args.lines, deadline=time.monotonic() + at
            )
        visible, staged, seeded = _counts(url)
        problems = []
        if partial:
            problems.append(f"a reader saw part of the file: {sorted(set(partial))[:5]}")
        if visible not in (before_visible, before_visible + args.lines):
            problems.append(f"{visible - before_visible} of {args.lines} texts visible")
        if seeded != before_seed:
            problems.append(f"saved annotations {before_seed} -> {seeded}")
        # the next import cleans up what the killed one staged, and runs to the end
        t1 = time.monotonic()
        again = work / f"next{k}.conll"
        _write_file(again, 50, 10_000 + k)
        follow = _import(url, again, 10_000 + k)
        _, err = follow.communicate(timeout=600)
        cleanup = time.monotonic() - t1
        after_visible, after_staged, _ = _counts(url)
        if follow.returncode != 0:
            problems.append(f"the next import failed: {err.strip()[:200]}")
        if after_staged:
            problems.append(f"{after_staged} staged rows left after the next import")
        if after_visible - 50 != visible:
            problems.append(
                f"the next import changed the visible count by {after_visible - visible}"
            )
        cleanups.append(cleanup)
        if killed:
            state = {
                "published": "killed after publishing",
                "before staging": "killed before staging",
            }.get(phase, f"killed while {phase}")
            state += f", {staged} staged, {visible - before_visible} visible"
        else:
            state = "finished first"
        print(f"  kill {k:2d}: {state}: {'ok' if not problems else '; '.join(problems)}")
        results.append(
            {
                "kill": k,
                "aimed_at_publishing": aimed,
                "killed": killed,
                "phase": phase,
                "staged": staged,
                "published": visible != before_visible,
            }
        )
        failures += [f"kill {k}: {p}" for p in problems]
    summary = {
        "kills": args.kills,
        "lines": args.lines,
        "import_seconds": round(full, 2),
        "publish_seconds": round(publishing, 2),
        "killed_mid_import": sum(r["killed"] for r in results),
        "killed_while_publishing": sum(r["killed"] and r["phase"] == "publishing" for r in results),
        "violations": failures,
        "next_import_seconds": {
            "median": round(statistics.median(cleanups), 2),
            "max": round(max(cleanups), 2),
        },
        "runs": results,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
