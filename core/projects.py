"""Projects: create, look up, list with progress counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError, ValidationError
from core.schema import Document, Project
from core.text import labels_for


@dataclass(frozen=True)
class ProjectSummary:
    id: int
    name: str
    task: str
    labels: list[str]
    strategy: str
    total: int
    done: int
    skipped: int

    @property
    def open(self) -> int:
        return self.total - self.done - self.skipped


def create_project(
    session: Session, name: str, task: str, labels: list[str] | None = None
) -> Project:
    """Create a project; the label set comes from the task, or from `labels` for `custom`."""
    name = (name or "").strip()
    if not name:
        raise ValidationError("a project needs a name")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise ConflictError(f"a project named {name!r} already exists")
    project = Project(name=name, task=task, labels=labels_for(task, labels), label_spelling={})
    session.add(project)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create with the same name
        raise ConflictError(f"a project named {name!r} already exists") from exc
    return project


def get_project(session: Session, name_or_id: str | int) -> Project:
    """A project by name, or by id when given an int or a string of digits."""
    project = None
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        project = session.get(Project, int(name_or_id))
    if project is None:
        project = session.scalar(select(Project).where(Project.name == str(name_or_id)))
    if project is None:
        raise NotFoundError(f"no project {name_or_id!r}; `fewlabel project list` shows them")
    return project


def list_projects(session: Session) -> list[ProjectSummary]:
    """Every project with its document counts by state."""
    counts: dict[int, dict[str, int]] = {}
    stmt = select(Document.project_id, Document.state, func.count()).group_by(
        Document.project_id, Document.state
    )
    projects = select(Project).order_by(Project.id)
    for pid, state, n in session.execute(stmt):
        counts.setdefault(pid, {})[state] = n
    out = []
    for p in session.scalars(projects):
        c = counts.get(p.id, {})
        out.append(
            ProjectSummary(
                id=p.id,
                name=p.name,
                task=p.task,
                labels=list(p.labels),
                strategy=p.strategy,
                total=sum(c.values()),
                done=c.get("done", 0),
                skipped=c.get("skipped", 0),
            )
        )
    return out
