"""Model versions and the queue's order, as the UI and the CLI read and set them.

Plain queries over the database: no torch, no model; the jobs that train and score live in
core.training and core.scoring.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.active import get_strategy
from core.errors import NotFoundError
from core.metrics import headline, percent
from core.schema import Document, ModelVersion, Prediction, Project


def current_version(session: Session, project: Project) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.is_current.is_(True)
        )
    )


def list_versions(session: Session, project: Project) -> list[ModelVersion]:
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.project_id == project.id)
            .order_by(ModelVersion.version)
        )
    )


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


def set_strategy(session: Session, project: Project, strategy: str) -> None:
    """Choose how the queue is ordered after the next scoring (random keeps import order)."""
    project.strategy = get_strategy(strategy).name
    session.flush()
