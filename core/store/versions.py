"""Model versions and the queue's order, as the UI and the CLI read and set them; and how a
job allocates a version number and puts its files in place.

No torch, no model; the jobs that train and score live in core.jobs.training and
core.active.scoring.

A version's life: `reserve_version` inserts its row (its number taken in the database, in a
transaction of its own, so two jobs never get the same one; n_labels RESERVED, path the
temporary folder its files go into); the job writes the files there; `register_version`
renames the folder to `v<N>` and fills the row in one transaction under the job's lease. A
number is never handed out twice, so no job can overwrite a registered version's files.
`sweep_model_files` removes what a dead job left half-written.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from core.errors import ConflictError, JobLost, NotFoundError
from core.metrics import headline, percent
from core.store.db import session_scope
from core.store.schema import Document, Job, ModelVersion, Prediction, Project, utcnow

log = logging.getLogger(__name__)

# n_labels of a reserved number whose files are not in place (yet, or ever: a job that died)
RESERVED = -1
TMP_MARK = ".tmp-"
# a version folder's self-description (core.model.backbone writes it; no torch here)
TAGGER_FILE = "tagger.json"


def current_version(session: Session, project: Project) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.is_current.is_(True)
        )
    )


def list_versions(session: Session, project: Project) -> list[ModelVersion]:
    """The registered versions of a project (reserved numbers left out), oldest first."""
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.project_id == project.id, ModelVersion.n_labels != RESERVED)
            .order_by(ModelVersion.version)
        )
    )


def reserve_version(lease, project_id: int, models_dir: Path) -> tuple[int, int, Path]:
    """Take the project's next version number for a job: (row id, number, temporary folder).

    In a transaction of its own, under the job's lease (whose UPDATE also serialises
    reservations on SQLite); a lost race on the unique number (PostgreSQL) takes the next."""
    for _ in range(20):
        try:
            with session_scope(lease.url) as s:
                lease.hold(s, message="saving the model version")
                number = 1 + (
                    s.scalar(
                        select(func.max(ModelVersion.version)).where(
                            ModelVersion.project_id == project_id
                        )
                    )
                    or 0
                )
                tmp = models_dir / f"v{number}{TMP_MARK}{lease.job_id}"
                row = ModelVersion(
                    project_id=project_id,
                    version=number,
                    path=str(tmp),
                    base="",
                    n_labels=RESERVED,
                    metrics={},
                    train_args={"reserved_by_job": lease.job_id},
                    created_at=utcnow(),
                )
                s.add(row)
                s.flush()
                return row.id, number, tmp
        except (IntegrityError, OperationalError) as exc:
            log.info("version number race (%s); trying the next", type(exc).__name__)
    raise ConflictError("could not reserve a version number after 20 tries")


def register_version(lease, version_id: int, tmp: Path, **fields) -> Path:
    """Rename a reserved version's complete folder to `v<N>` and fill its row, in one
    transaction under the job's lease: a reaped job registers nothing (JobLost), and a crash
    leaves either the reservation (its folders swept later) or the registered version."""
    final = None
    try:
        with session_scope(lease.url) as s:
            lease.hold(s, message="registering the model version")
            mv = s.get(ModelVersion, version_id)
            if mv is None or mv.n_labels != RESERVED or mv.path != str(tmp):
                raise JobLost(f"version reservation {version_id} is no longer this job's")
            final = tmp.with_name(f"v{mv.version}")
            if final.exists():
                # only this reservation may hold the number: a folder there is debris of an
                # earlier crash (renamed, never registered), never a registered version
                shutil.rmtree(final)
            tmp.rename(final)
            for key, value in fields.items():
                setattr(mv, key, value)
            mv.path = str(final)
            s.flush()
    except BaseException:
        if final is not None and final.exists() and not tmp.exists():
            final.rename(tmp)  # the row is still a reservation: put the files back under it
        raise
    return final


def record_metrics(lease, version_id: int, metrics: dict) -> None:
    """Store figures measured after a version was registered (its cross-validated F1, which
    runs once the pool is scored) in its row and its folder's tagger.json, under the job's
    lease: a reaped job records nothing. The file is replaced whole, never half-written."""
    with session_scope(lease.url) as s:
        lease.hold(s, message="recording the cross-validated F1")
        mv = s.get(ModelVersion, version_id)
        if mv is None:
            raise JobLost(f"model version {version_id} no longer exists")
        meta_file = Path(mv.path) / TAGGER_FILE
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        meta.setdefault("info", {})["metrics"] = metrics
        tmp = meta_file.with_name(meta_file.name + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        os.replace(tmp, meta_file)
        mv.metrics = metrics


def discard_lost_files(url: str, job_id: int) -> list[str]:
    """Remove the files of a job's reserved version numbers that were never registered: what
    a run that lost its worker left, before the job runs again. The rows stay: a number is
    never handed out twice (a stalled run that wakes up must not write where the retry
    writes). Returns the folders removed."""
    removed = []
    with session_scope(url) as s:
        rows = s.execute(
            select(ModelVersion.version, ModelVersion.path, ModelVersion.train_args).where(
                ModelVersion.n_labels == RESERVED
            )
        ).all()
    for number, path, args in rows:
        if (args or {}).get("reserved_by_job") != job_id:
            continue
        folder = Path(path)
        for leftover in (folder, folder.with_name(f"v{number}")):
            if _rmtree(leftover):
                removed.append(leftover.name)
    return removed


def _rmtree(path: Path) -> bool:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
        return True
    return False


def sweep_model_files(url: str, project_id: int, models_dir: Path) -> list[str]:
    """Remove what dead jobs left in a project's model folder: the temporary folders of jobs
    no longer active, a reserved number's `v<N>` folder that was never registered, and an
    aligned base whose job did not finish. Registered versions and the project's base are
    never touched. Returns the names removed."""
    if not models_dir.is_dir():
        return []
    with session_scope(url) as s:
        active = set(
            s.scalars(
                select(Job.id).where(
                    Job.project_id == project_id, Job.status.in_(("queued", "running"))
                )
            )
        )
        done = set(
            s.scalars(select(Job.id).where(Job.project_id == project_id, Job.status == "done"))
        )
        rows = s.execute(
            select(
                ModelVersion.version,
                ModelVersion.path,
                ModelVersion.n_labels,
                ModelVersion.train_args,
            ).where(ModelVersion.project_id == project_id)
        ).all()
        base = s.scalar(select(Project.base_model).where(Project.id == project_id))
    registered = {Path(path).name for _, path, n, _ in rows if n != RESERVED}
    # a reservation of a job still at work may be mid-rename: its folders are its own
    reserved = {
        f"v{number}"
        for number, _, n, args in rows
        if n == RESERVED and (args or {}).get("reserved_by_job") not in active
    }
    referenced = {Path(p).name for p in (base,) if p}
    removed = []
    for entry in sorted(models_dir.iterdir()):
        name = entry.name
        if not entry.is_dir():
            continue
        if TMP_MARK in name:
            owner = name.rsplit(TMP_MARK, 1)[1]
            if not (owner.isdigit() and int(owner) in active) and _rmtree(entry):
                removed.append(name)
        elif name in reserved and name not in registered and _rmtree(entry):
            removed.append(name)
        elif name.startswith("aligned-") and name[len("aligned-") :].isdigit():
            job = int(name[len("aligned-") :])
            if job not in active and job not in done and name not in referenced:
                if _rmtree(entry):
                    removed.append(name)
    if removed:
        log.info("removed unfinished model files of project %s: %s", project_id, removed)
    return removed


def set_current(session: Session, project: Project, version: int) -> ModelVersion:
    """Make a version the one that pre-annotates and orders the queue."""
    mv = session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.version == version
        )
    )
    if mv is None:
        raise NotFoundError(f"project {project.name!r} has no model version {version}")
    session.execute(
        update(ModelVersion).where(ModelVersion.project_id == project.id).values(is_current=False)
    )
    mv.is_current = True
    session.flush()
    return mv


def base_name(base: str | None, aligned: bool = False) -> str:
    """How a version's base is shown: "default", a checkpoint's folder name, a Hub id. Never
    an absolute path, which says where the server keeps its files and hides the name."""
    if not base or base == "default":
        return "default"
    path = Path(base).expanduser()
    name = path.name or base
    if aligned:
        return f"aligned base ({name})"
    if re.fullmatch(r"v\d+", name):
        return f"version {name[1:]} (warm start)"
    return name if path.is_absolute() else base


def _figures(v: ModelVersion) -> dict:
    min_dev = (v.train_args or {}).get("min_dev_examples", 40)
    return headline(v.metrics, v.n_labels, min_dev)


def version_table(session: Session, project: Project) -> list[dict]:
    """One row per version for the Train page, under readable column names: its F1 (micro,
    percent, "± sd" when cross-validated, or why it was not measured), what measured it and
    on how many held-out texts and spans, F1 per label, times and the base's name."""
    versions = list_versions(session, project)
    any_cv = any((v.metrics or {}).get("cv") for v in versions)
    rows = []
    for v in versions:
        fig = _figures(v)
        row = {
            "Version": v.version,
            "Current": v.is_current,
            "Labels": v.n_labels,
            "F1 (%)": fig["note"] or percent(fig["f1"], fig["sd"]),
            "Measured by": fig["by"] or "",
            "Held-out texts": fig["texts"] or 0,
            "Held-out spans": fig["spans"] or 0,
        }
        for label in dict.fromkeys([*project.labels, *fig["per_label"]]):
            f1, sd = fig["per_label"].get(label, (None, None))
            if fig["note"]:
                row[f"F1 {label} (%)"] = ""
            else:
                row[f"F1 {label} (%)"] = "no spans" if f1 is None else percent(f1, sd)
        row["Train time (s)"] = round(v.train_seconds, 1)
        if any_cv:
            cv = (v.metrics or {}).get("cv") or {}
            row["Cross-validation time (s)"] = round(cv.get("seconds", 0.0), 1)
        row["Base"] = base_name(v.base, v.aligned)
        row["Created"] = v.created_at
        rows.append(row)
    return rows


def learning_curve(session: Session, project: Project) -> list[dict]:
    """The measured versions as numbers for the F1 chart: labels, F1 and its spread (percent,
    sd 0 when measured on a dev slice), what measured it and on how many texts and spans."""
    points = []
    for v in list_versions(session, project):
        fig = _figures(v)
        if fig["f1"] is None:
            continue
        points.append(
            {
                "version": v.version,
                "labels": v.n_labels,
                "f1": round(100 * fig["f1"], 1),
                "sd": round(100 * (fig["sd"] or 0.0), 1),
                "by": fig["by"],
                "texts": fig["texts"],
                "spans": fig["spans"],
            }
        )
    return points


def queue_preview(session: Session, project: Project, n: int = 10) -> list[dict]:
    """The next open documents in queue order with their stored uncertainty, for the CLI."""
    mv = current_version(session, project)
    stmt = (
        select(Document.id, Document.text, Prediction.score)
        .outerjoin(
            Prediction,
            (Prediction.document_id == Document.id)
            & (Prediction.model_version_id == (mv.id if mv else -1)),
        )
        .where(Document.project_id == project.id, Document.state == "open")
        .order_by(Document.rank, Document.id)
        .limit(n)
    )
    return [{"id": i, "text": t, "score": sc} for i, t, sc in session.execute(stmt)]
