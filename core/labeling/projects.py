"""Projects: create, look up, list with progress counts; rename and delete projects, rename
labels and choose their colours, delete texts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import ConflictError, NotFoundError, ValidationError
from core.labeling.claims import CLAIM_LEASE
from core.store.schema import (
    STAGED,
    Annotation,
    Document,
    FinalAnnotation,
    Job,
    ModelVersion,
    Prediction,
    Project,
    WeakPatterns,
    utcnow,
)
from core.tasks import labels_for
from core.text import clean_name
from core.weak.patterns import relabel_lines

# The annotator has this many (background, strong) colour pairs, each checked for contrast; a
# project picks one by index per label rather than any hex value, so the contrast holds.
LABEL_COLOR_COUNT = 9
_COLORS_SETTING = "label_colors"  # its name in Project.settings: {label: index}


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
    name = _project_name(name)
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
    """A project by name, or by id when given an int or a string of digits that is no
    project's name: a project named "1" is never shadowed by the project with id 1."""
    project = None
    if not isinstance(name_or_id, int):
        project = session.scalar(select(Project).where(Project.name == str(name_or_id)))
    if project is None and (isinstance(name_or_id, int) or str(name_or_id).isdigit()):
        project = session.get(Project, int(name_or_id))
    if project is None:
        raise NotFoundError(f"no project {name_or_id!r}; `fewlabel project list` shows them")
    return project


def list_projects(session: Session) -> list[ProjectSummary]:
    """Every project with its document counts by state."""
    counts: dict[int, dict[str, int]] = {}
    stmt = (
        select(Document.project_id, Document.state, func.count())
        .where(Document.state != STAGED)  # an import not finished yet
        .group_by(Document.project_id, Document.state)
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


_ACTIVE_JOBS = ("queued", "running")


def _project_name(name: str) -> str:
    """A name every backend stores alike (core.text.clean_name: length, no NUL or controls)."""
    return clean_name(name, "project name")


def rename_project(session: Session, project: Project, new_name: str) -> Project:
    """Give a project another name, unique like a new one's. Its model files stay where they
    are: each version's row keeps its path."""
    new_name = _project_name(new_name)
    if new_name == project.name:
        return project
    taken = select(Project.id).where(Project.name == new_name, Project.id != project.id)
    if session.scalar(taken) is not None:
        raise ConflictError(f"a project named {new_name!r} already exists")
    project.name = new_name
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create or rename took the name
        raise ConflictError(f"a project named {new_name!r} already exists") from exc
    return project


@dataclass(frozen=True)
class DeletedProject:
    """What delete_project removed, and the model folders it left on disk."""

    name: str
    documents: int
    model_dirs: list[str]

    def summary(self) -> str:
        texts = f"{self.documents} text{'s' if self.documents != 1 else ''}"
        kept = (
            f"; its model files stay on disk in {', '.join(self.model_dirs)}"
            if self.model_dirs
            else ""
        )
        return f"deleted project {self.name} with {texts} and their labels{kept}"


def delete_project(session: Session, project: Project, confirm: str) -> DeletedProject:
    """Delete a project with its texts, annotations, final versions, predictions, model
    version rows and jobs (the database's ON DELETE CASCADE). `confirm` must be the project's
    exact name, so a slip of the mouse deletes nothing. Model files are left on disk (they
    may be someone's only copy); the result says where."""
    if confirm != project.name:
        raise ValidationError(f"type the project's name, {project.name}, to delete it")
    running = session.scalar(
        select(Job.kind).where(Job.project_id == project.id, Job.status.in_(_ACTIVE_JOBS))
    )
    if running is not None:
        raise ConflictError(
            f"a {running} job of {project.name} is running; cancel it or wait, then delete"
        )
    documents = session.scalar(
        select(func.count()).select_from(Document).where(Document.project_id == project.id)
    )
    paths = session.scalars(select(ModelVersion.path).where(ModelVersion.project_id == project.id))
    model_dirs = sorted({str(Path(p).parent) for p in paths})
    name = project.name
    session.delete(project)
    session.flush()
    return DeletedProject(name, int(documents or 0), model_dirs)


def _relabel(spans: list | None, old: str, new: str) -> list | None:
    """The spans with label `old` renamed to `new`; None stays None."""
    if spans is None:
        return None
    return [{**s, "label": new} if s.get("label") == old else s for s in spans]


def _relabel_history(previous: list | None, old: str, new: str) -> list | None:
    """Earlier versions ({..., spans}) with the label renamed in each."""
    if previous is None:
        return None
    return [{**v, "spans": _relabel(v.get("spans"), old, new)} for v in previous]


def rename_label(session: Session, project: Project, old: str, new: str) -> int:
    """Rename one label of a custom project everywhere it is stored: the label set, every
    annotation (and its undo history and undone draft), final version, prediction, the import
    spelling and the lines of its stored patterns files (core.weak), parsed against the labels.

    One flush in the caller's transaction, so a failure renames nothing. Trained models keep
    the old name inside their files until the next retrain. Returns how many stored spans
    were renamed.
    """
    if project.task != "custom":
        raise ValidationError(f"task {project.task!r} has fixed labels; only custom ones rename")
    labels = list(project.labels)
    if old not in labels:
        raise ValidationError(f"{project.name} has no label {old!r}")
    new = (new or "").strip()
    if not new:
        raise ValidationError(f"a new name for label {old!r} is required")
    if new == old:
        return 0
    if new in labels:
        raise ConflictError(f"{project.name} already has a label {new!r}")
    project.labels = labels_for("custom", [new if lbl == old else lbl for lbl in labels])
    spelling = dict(project.label_spelling or {})
    if old in spelling:
        spelling[new] = spelling.pop(old)
        project.label_spelling = spelling
    colors = dict((project.settings or {}).get(_COLORS_SETTING) or {})
    if old in colors:
        colors[new] = colors.pop(old)
        project.settings = {**(project.settings or {}), _COLORS_SETTING: colors}

    renamed = 0

    def count(spans: list | None) -> None:
        nonlocal renamed
        renamed += sum(1 for s in spans or [] if s.get("label") == old)

    in_project = select(Document.id).where(Document.project_id == project.id)
    for row in session.scalars(select(Annotation).where(Annotation.document_id.in_(in_project))):
        count(row.spans)
        row.spans = _relabel(row.spans, old, new)
        row.previous = _relabel_history(row.previous, old, new)
    final_rows = select(FinalAnnotation).where(FinalAnnotation.document_id.in_(in_project))
    for row in session.scalars(final_rows):
        count(row.spans)
        row.spans = _relabel(row.spans, old, new)
        row.previous = _relabel_history(row.previous, old, new)
    for row in session.scalars(select(Prediction).where(Prediction.document_id.in_(in_project))):
        row.spans = _relabel(row.spans, old, new)
    drafts = select(Document).where(Document.project_id == project.id, Document.draft.is_not(None))
    for row in session.scalars(drafts):  # an undone save's spans, waiting for its annotator
        row.draft = _relabel(row.draft, old, new)
    for row in session.scalars(select(WeakPatterns).where(WeakPatterns.project_id == project.id)):
        lines = relabel_lines(list(row.lines or []), old, new, labels)
        if lines != row.lines:
            row.lines = lines
    session.flush()
    return renamed


def label_colors(project: Project) -> dict[str, int]:
    """The colour index chosen for each label of the project; labels not listed use the
    default order. Entries for labels no longer in the set, or out of range, are ignored."""
    stored = (project.settings or {}).get(_COLORS_SETTING) or {}
    return {
        label: index
        for label, index in stored.items()
        if label in project.labels
        and isinstance(index, int)
        and not isinstance(index, bool)
        and 0 <= index < LABEL_COLOR_COUNT
    }


def set_label_color(session: Session, project: Project, label: str, index: int) -> int:
    """Store the colour (an index into the annotator's palette) one label is drawn in."""
    if label not in project.labels:
        raise ValidationError(f"{project.name} has no label {label!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < LABEL_COLOR_COUNT:
        raise ValidationError(
            f"a label colour is a number from 0 to {LABEL_COLOR_COUNT - 1}, not {index!r}"
        )
    colors = {**label_colors(project), label: index}
    project.settings = {**(project.settings or {}), _COLORS_SETTING: colors}
    session.flush()
    return index


def delete_document(
    session: Session, project: Project, document_id: int, by: str, *, now: datetime | None = None
) -> None:
    """Delete one text of a project with its annotations, final version and predictions.

    Refused while another annotator holds a live claim on it (they are labeling it now):
    their save would otherwise vanish. `by` is who deletes; their own claim does not count.
    """
    doc = session.get(Document, document_id)
    if doc is None or doc.project_id != project.id:
        raise NotFoundError(f"no text #{document_id} in {project.name}")
    now = now or utcnow()
    live = doc.assigned_at is not None and doc.assigned_at >= now - CLAIM_LEASE
    if doc.state == "open" and doc.assigned_to not in (None, by) and live:
        raise ConflictError(
            f"text #{document_id} is being labeled by {doc.assigned_to!r} now; nothing was deleted"
        )
    session.delete(doc)
    session.flush()
