"""`fewlabel bench load`: concurrent annotators and a long import on one database.

N annotator processes (each its own engine and connections, as N app servers' sessions
would be) loop next text -> save one span for S seconds, through the product's own service
calls, while another process imports an L-line text file into the same project. Afterwards
the database is checked against what the annotators were told: no text saved by two
annotators (the project needs one annotator a text), every acknowledged save present with
its span, no error anywhere. One JSON object holds the figures.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import FewlabelError

Progress = Callable[[str], None]
KEYS = (
    "annotators",
    "seconds",
    "saves",
    "saves_per_s",
    "save_p50_ms",
    "save_p95_ms",
    "errors",
    "double_claims",
    "lost_saves",
    "import_lines",
    "import_seconds",
    "database",
)
# Open texts per annotator-second, and for the whole team per second: sized so the queue never
# runs dry. One annotator on an idle SQLite file saves about 175 texts a second (a CI machine
# ran 2 annotators at 350 saves/s and emptied a queue sized at 25 per annotator-second); a
# team on one machine shares its cores, so the team's total is capped.
TEXTS_PER_ANNOTATOR_SECOND = 400
TEXTS_PER_SECOND_CAP = 2000
MIN_OPEN_TEXTS = 2000
STARTUP_TIMEOUT_S = 180


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _first_word_span(task) -> dict:
    """One SHORT span on the text's first word: a save with something to store and check."""
    word = task.words[0]
    return {"start": word.start, "end": word.end, "label": "SHORT"}


def _annotator(url: str, project_id: int, who: str, seconds: float, ready, go, out) -> None:
    """One annotator's loop: next -> save, until `seconds` after `go`; puts its record on `out`."""
    record = {
        "who": who,
        "saves": [],
        "save_ms": [],
        "save_at": [],  # when each save began, time.monotonic(): one clock for every process
        "next_ms": [],
        "errors": [],
        "dry": False,
    }
    try:
        from core.labeling.annotations import next_document, save
        from core.store.db import get_engine, session_scope
        from core.store.schema import Project

        with get_engine(url).connect():  # connect before the clock starts
            pass
        ready.put(who)
        go.wait()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                t0 = time.perf_counter()
                with session_scope(url) as s:
                    task = next_document(s, s.get(Project, project_id), who)
                    span = task and _first_word_span(task)
                    doc_id = task and task.document_id
                t1 = time.perf_counter()
                record["next_ms"].append((t1 - t0) * 1000)
                if task is None:
                    record["dry"] = True
                    break
                with session_scope(url) as s:
                    save(s, s.get(Project, project_id), doc_id, who, [span])
                # acknowledged: the commit returned
                record["save_ms"].append((time.perf_counter() - t1) * 1000)
                record["save_at"].append(time.monotonic() - (time.perf_counter() - t1))
                record["saves"].append([doc_id, span["start"], span["end"]])
            except Exception as exc:  # noqa: BLE001 - counted and reported, the loop goes on
                record["errors"].append(f"{type(exc).__name__}: {exc}"[:300])
                time.sleep(0.05)
    except Exception:  # noqa: BLE001 - the process could not even start its loop
        record["errors"].append(traceback.format_exc()[-300:])
        ready.put(who)
    out.put(record)


def _importer(url: str, project_id: int, path: str, ready, go, out) -> None:
    """Import `path` (one text a line) into the project once `go` is set."""
    record = {"who": "import", "imported": 0, "seconds": 0.0, "errors": [], "span": None}
    try:
        from core.config import background_priority
        from core.io.imports import import_file
        from core.store.db import get_engine, session_scope
        from core.store.schema import Project

        with get_engine(url).connect():
            pass
        ready.put("import")
        go.wait()
        background_priority()  # as `fewlabel import` runs
        t0, began = time.perf_counter(), time.monotonic()
        with session_scope(url) as s:
            report = import_file(s, s.get(Project, project_id), path, fmt="txt", txt_mode="lines")
        record["seconds"] = time.perf_counter() - t0
        record["span"] = (began, time.monotonic())
        record["imported"] = report.imported
    except Exception as exc:  # noqa: BLE001 - reported in the record
        record["errors"].append(f"{type(exc).__name__}: {exc}"[:300])
        ready.put("import")
    out.put(record)


def _write_lines(path: Path, n: int, template: str) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(template.format(i=i) + "\n")


def _check(url: str, project_id: int, records: list[dict]) -> dict:
    """Compare the database with what each annotator was told was saved."""
    from sqlalchemy import func, select

    from core.store.db import session_scope
    from core.store.schema import Annotation, Document

    acked = {(r["who"], doc): (start, end) for r in records for doc, start, end in r["saves"]}
    with session_scope(url) as s:
        stored = {
            (who, doc): spans
            for who, doc, spans in s.execute(
                select(Annotation.annotator, Annotation.document_id, Annotation.spans)
                .join(Document)
                .where(Document.project_id == project_id, Annotation.status == "done")
            )
        }
        # the project needs one annotator a text (overlap 1, the default)
        double = s.scalar(
            select(func.count()).select_from(
                select(Annotation.document_id)
                .join(Document)
                .where(Document.project_id == project_id)
                .group_by(Annotation.document_id)
                .having(func.count(func.distinct(Annotation.annotator)) > 1)
                .subquery()
            )
        )
        total = s.scalar(select(func.count(Document.id)).where(Document.project_id == project_id))
    lost = 0
    for key, (start, end) in acked.items():
        spans = stored.get(key)
        if not spans or [(x["start"], x["end"]) for x in spans] != [(start, end)]:
            lost += 1
    return {"double_claims": double, "lost_saves": lost, "documents_after": total}


def _server_version(url: str) -> str:
    from core.store.db import get_engine

    engine = get_engine(url)
    with engine.connect():
        info = engine.dialect.server_version_info or ()
    return ".".join(str(x) for x in info)


def load(
    *,
    annotators: int,
    seconds: float,
    import_lines: int,
    url: str | None = None,
    work_dir: str | Path | None = None,
    open_texts: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run the load on a fresh project (in a fresh SQLite file unless `url` names a database)
    and return one record with KEYS, the invariants' counts and what else was measured."""
    if annotators < 1 or seconds <= 0 or import_lines < 0:
        raise FewlabelError("--annotators and --seconds must be positive, --import-lines >= 0")
    say = progress or (lambda _m: None)
    work = Path(work_dir or tempfile.mkdtemp(prefix="fewlabel-load-"))
    work.mkdir(parents=True, exist_ok=True)
    if url is None:
        for leftover in work.glob("load.db*"):
            leftover.unlink()
        url = f"sqlite:///{work / 'load.db'}"
    per_second = min(annotators * TEXTS_PER_ANNOTATOR_SECOND, TEXTS_PER_SECOND_CAP)
    n_open = open_texts or max(MIN_OPEN_TEXTS, int(seconds * per_second))
    stamp = f"{int(time.time())}-{os.getpid()}"
    pool_file, import_file_path = work / f"open-{stamp}.txt", work / f"import-{stamp}.txt"
    project_id = _seed(url, stamp, n_open, import_lines, pool_file, import_file_path, say)
    meanwhile = f" and a {import_lines:,}-line import" if import_lines else ""
    say(f"starting {annotators} annotators{meanwhile}")
    records, wall, loads = _run(
        url, project_id, annotators, seconds, str(import_file_path) if import_lines else None
    )
    pool_file.unlink(missing_ok=True)
    import_file_path.unlink(missing_ok=True)
    say("checking the database against the acknowledged saves")
    ann = [r for r in records if r["who"] != "import"]
    checked = _check(url, project_id, ann)
    return _summary(
        records,
        checked,
        url=url,
        annotators=annotators,
        seconds=seconds,
        import_lines=import_lines,
        n_open=n_open,
        wall=wall,
        loads=loads,
    )


def _seed(url, stamp, n_open, import_lines, pool_file, import_file_path, say) -> int:
    """A fresh project with `n_open` open texts, and the file the import will read; its id."""
    from core.io.imports import import_file
    from core.labeling.projects import create_project
    from core.store.db import ensure_schema, session_scope
    from core.store.schema import Project

    ensure_schema(url)
    _write_lines(pool_file, n_open, "Open text {i} : the NASA and WHO budget report .")
    _write_lines(import_file_path, import_lines, "Imported line {i} : ESA and CERN news .")
    with session_scope(url) as s:
        project = create_project(s, f"load-{stamp}", "acronym")
        project_id = project.id
    say(f"importing {n_open:,} open texts")
    with session_scope(url) as s:
        import_file(s, s.get(Project, project_id), pool_file, fmt="txt", txt_mode="lines")
    return project_id


def _run(
    url: str, project_id: int, annotators: int, seconds: float, import_path: str | None
) -> tuple[list[dict], float, list[float]]:
    """The annotators (and the import of `import_path`) in their own processes, started
    together: (their records, the wall time, the 1-minute load before and after)."""
    ctx = mp.get_context("spawn")  # each process builds its own engine and pool
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=_annotator, args=(url, project_id, f"ann{i:02d}", seconds, ready, go, out)
        )
        for i in range(annotators)
    ]
    if import_path is not None:
        procs.append(
            ctx.Process(target=_importer, args=(url, project_id, import_path, ready, go, out))
        )
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=STARTUP_TIMEOUT_S)
        load_before = os.getloadavg()[0]
        go.set()
        t0 = time.perf_counter()
        records = [out.get(timeout=seconds + 3600) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    wall = time.perf_counter() - t0
    return records, wall, [load_before, os.getloadavg()[0]]


def _summary(
    records: list[dict],
    checked: dict,
    *,
    url: str,
    annotators: int,
    seconds: float,
    import_lines: int,
    n_open: int,
    wall: float,
    loads: list[float],
) -> dict:
    """The run's one record (KEYS first) from the processes' records and the check."""
    from core.store.db import display_url

    ann = [r for r in records if r["who"] != "import"]
    imp = next((r for r in records if r["who"] == "import"), None)
    save_ms = [x for r in ann for x in r["save_ms"]]
    next_ms = [x for r in ann for x in r["next_ms"]]
    errors = [e for r in records for e in r["errors"]]
    saves = sum(len(r["saves"]) for r in ann)
    # A fast import ends before the window does; the saves made while it ran are the ones the
    # targets speak of ("with a 600k-line import running")
    during = []
    if imp and imp["span"]:
        began, ended = imp["span"]
        during = [
            ms
            for r in ann
            for ms, at in zip(r["save_ms"], r["save_at"], strict=True)
            if began <= at < ended
        ]
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    return {
        "annotators": annotators,
        "seconds": seconds,
        "saves": saves,
        "saves_per_s": round(saves / seconds, 1),
        "save_p50_ms": round(statistics.median(save_ms), 1) if save_ms else None,
        "save_p95_ms": round(_percentile(save_ms, 0.95), 1) if save_ms else None,
        "errors": len(errors),
        "double_claims": checked["double_claims"],
        "lost_saves": checked["lost_saves"],
        "import_lines": import_lines,
        "import_seconds": round(imp["seconds"], 3) if imp else None,
        "database": dialect,
        "database_version": _server_version(url),
        "url": display_url(url),
        "import_imported": imp["imported"] if imp else 0,
        "next_p50_ms": round(statistics.median(next_ms), 1) if next_ms else None,
        "next_p95_ms": round(_percentile(next_ms, 0.95), 1) if next_ms else None,
        "save_max_ms": round(max(save_ms), 1) if save_ms else None,
        "saves_during_import": len(during),
        "save_p50_during_import_ms": round(statistics.median(during), 1) if during else None,
        "save_p95_during_import_ms": round(_percentile(during, 0.95), 1) if during else None,
        "save_p99_during_import_ms": round(_percentile(during, 0.99), 1) if during else None,
        "save_max_during_import_ms": round(max(during), 1) if during else None,
        "queue_ran_dry": any(r["dry"] for r in ann),
        "open_texts": n_open,
        "documents_after": checked["documents_after"],
        "error_samples": errors[:5],
        "wall_seconds": round(wall, 1),
        "machine": {"cpu_cores": os.cpu_count(), "load_1min": loads},
    }


def load_table(record: dict) -> str:
    """The record as the lines a person reads."""
    imp = (
        f"{record['import_lines']:,} lines in {record['import_seconds']} s"
        if record["import_lines"]
        else "none"
    )
    return "\n".join(
        [
            f"database        {record['database']} {record['database_version']}",
            f"annotators      {record['annotators']} for {record['seconds']} s",
            f"saves           {record['saves']:,} ({record['saves_per_s']}/s)",
            f"save latency    p50 {record['save_p50_ms']} ms, p95 {record['save_p95_ms']} ms",
            f"next latency    p50 {record['next_p50_ms']} ms, p95 {record['next_p95_ms']} ms",
            f"import          {imp}",
            *(
                [
                    f"while importing {record['saves_during_import']:,} saves, p50 "
                    f"{record['save_p50_during_import_ms']} ms, "
                    f"p95 {record['save_p95_during_import_ms']} ms, "
                    f"p99 {record['save_p99_during_import_ms']} ms, "
                    f"max {record['save_max_during_import_ms']} ms"
                ]
                if record.get("saves_during_import")
                else []
            ),
            f"errors          {record['errors']}",
            f"double claims   {record['double_claims']}",
            f"lost saves      {record['lost_saves']}",
        ]
    )
