"""Model versions and the queue's order, as the UI and the CLI read and set them.

Plain queries over the database: no torch, no model; the jobs that train and score live in
core.training and core.scoring.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.active import get_strategy
from core.errors import NotFoundError
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


def version_table(session: Session, project: Project) -> list[dict]:
    """One row per version for the Train page: labels, dev F1 (macro, micro, per label), time."""
    rows = []
    for v in list_versions(session, project):
        dev = (v.metrics or {}).get("dev") or {}
        row = {
            "version": v.version,
            "current": v.is_current,
            "labels": v.n_labels,
            "f1_macro": dev.get("f1_macro"),
            "f1_micro": dev.get("f1_micro"),
            "train_seconds": round(v.train_seconds, 1),
            "base": v.base,
            "created": v.created_at,
        }
        for label, m in (dev.get("per_label") or {}).items():
            row[f"f1_{label}"] = m.get("f1")
        rows.append(row)
    return rows


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
