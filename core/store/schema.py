"""SQLAlchemy 2.0 ORM models. The tables are created only by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.defaults import STRATEGY as DEFAULT_STRATEGY


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


def _owned_rows(back_populates: str):
    """A one-to-many whose rows live and die with their parent. Deleting the parent leaves
    them to the database's ON DELETE CASCADE (passive_deletes) instead of loading them first."""
    return relationship(
        back_populates=back_populates, cascade="all, delete-orphan", passive_deletes=True
    )


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(20))
    labels: Mapped[list] = mapped_column(JSON)
    # Spelling of labels in the files they came from (e.g. {"SHORT": "short"}), so a CoNLL
    # export writes labels back exactly as they were imported.
    label_spelling: Mapped[dict] = mapped_column(JSON, default=dict)
    # How the queue is ordered after each model scores the pool (random = import order).
    strategy: Mapped[str] = mapped_column(String(40), default=DEFAULT_STRATEGY)
    base_model: Mapped[str | None] = mapped_column(String(500))
    # Per-project settings a page can change (e.g. core.labeling.prefill's threshold), by name.
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    documents: Mapped[list[Document]] = _owned_rows("project")


# The state of a document (and status of its annotations) that a long import has staged but
# not published (core.io.staging): in no queue, count, export or training set.
STAGED = "importing"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("project_id", "text_hash", name="uq_documents_project_text"),
        # The queue: open documents of a project in rank order.
        Index("ix_documents_queue", "project_id", "state", "rank"),
        Index("ix_documents_assigned", "project_id", "assigned_to", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    # Pre-tokenized imports (CoNLL, SciAD) keep their tokens; text is them joined by spaces.
    tokens: Mapped[list | None] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(String(500))
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    # open: waiting in the queue; done: labeled; skipped: set aside by an annotator.
    state: Mapped[str] = mapped_column(String(10), default="open")
    # Queue order, lowest first. Random at import; active learning rewrites it after scoring.
    rank: Mapped[float] = mapped_column(Float, default=0.0)
    # The model version (its number) whose scores gave the text its rank; None: the import's
    # random order (or a hand-set one). "Why this text" names it (core.labeling.annotations).
    ranked_by: Mapped[int | None] = mapped_column(Integer)
    assigned_to: Mapped[str | None] = mapped_column(String(100))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Unsaved spans its holder (assigned_to) left: an undone save's, so a reload shows the
    # text as undo left it. Set by core.labeling.annotations.undo; dropped with the claim
    # (core.labeling.claims).
    draft: Mapped[list | None] = mapped_column(JSON(none_as_null=True))  # None: SQL NULL
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="documents")
    annotations: Mapped[list[Annotation]] = _owned_rows("document")


class Annotation(Base):
    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("document_id", "annotator", name="uq_annotations_doc_annotator"),
        Index("ix_annotations_annotator_updated", "annotator", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))  # done | skipped
    spans: Mapped[list] = mapped_column(JSON, default=list)  # [{start, end, label}]
    # Earlier versions of this row, oldest first: [{status, spans, updated_at}], at most
    # core.labeling.annotations.UNDO_DEPTH. Undo pops the last; with none left it deletes the row.
    previous: Mapped[list | None] = mapped_column(JSON)
    # The seconds the save or skip took, from the text shown to the answer, capped at
    # core.defaults.IDLE_CAP_S (None: not measured, e.g. imported or saved before migration 0010).
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    document: Mapped[Document] = relationship(back_populates="annotations")


class Decision(Base):
    """One answer about one suggested span (core.labeling.decisions): accept, reject or ignore.

    A text's gold is its final version, else its latest done annotation (core.labeling.gold);
    decisions add partial knowledge beside it. One answer per suggestion (text, start, end,
    label), whoever gives it, so a team teaching at once never answers one twice.
    """

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("document_id", "start", "end", "label", name="uq_decisions_suggestion"),
        Index("ix_decisions_annotator", "annotator", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(String(100))
    start: Mapped[int] = mapped_column(Integer)
    end: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(40))
    answer: Mapped[str] = mapped_column(String(10))  # accept | reject | ignore
    origin: Mapped[str] = mapped_column(String(20))  # model | rule | dictionary | patterns | import
    # the suggestion's probability when it was shown (None: a rule's or an imported one)
    confidence: Mapped[float | None] = mapped_column(Float)
    # seconds from the suggestion shown to the answer, capped at core.defaults.IDLE_CAP_S
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    document: Mapped[Document] = relationship()


class FinalAnnotation(Base):
    """A document's reviewed, final spans: what export and training take first.

    Kept beside the annotators' own rows, which a review never changes. `based_on` names the
    annotator whose version the reviewer started from (None: from scratch); `previous` holds
    earlier final versions, oldest first: [{reviewer, based_on, spans, reviewed_at}].
    """

    __tablename__ = "final_annotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), unique=True
    )
    reviewer: Mapped[str] = mapped_column(String(100))
    based_on: Mapped[str | None] = mapped_column(String(100))
    spans: Mapped[list] = mapped_column(JSON, default=list)  # [{start, end, label}]
    previous: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    reviewed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    document: Mapped[Document] = relationship()


class ModelVersion(Base):
    """A trained model on disk; one per project is current and pre-annotates the queue."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version", name="uq_model_versions_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1000))
    base: Mapped[str] = mapped_column(String(1000))
    aligned: Mapped[bool] = mapped_column(default=False)
    n_labels: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    train_args: Mapped[dict] = mapped_column(JSON, default=dict)
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    is_current: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Prediction(Base):
    """A model version's spans for a document, with the document's uncertainty score."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("document_id", "model_version_id", name="uq_predictions_doc_version"),
        Index("ix_predictions_version", "model_version_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    spans: Mapped[list] = mapped_column(JSON, default=list)  # [{start, end, label, confidence}]
    score: Mapped[float] = mapped_column(Float)  # uncertainty: higher = less sure


class Job(Base):
    """Background work (training, scoring, pretraining) run by a worker process."""

    __tablename__ = "jobs"
    __table_args__ = (
        # One active job of a kind per project, enforced by the database itself.
        Index(
            "uq_jobs_active",
            "project_id",
            "kind",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # train | score | pretrain
    status: Mapped[str] = mapped_column(String(12), default="queued")
    # queued | running | done | failed | cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(200))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class WeakPatterns(Base):
    """A patterns file a user gave a project (core.weak.patterns), kept as its lines.

    One row per file name; adding a file of the same name again replaces it. The lines are
    parsed again against the project's labels whenever the weak sources are built.
    """

    __tablename__ = "weak_patterns"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_weak_patterns_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    lines: Mapped[list] = mapped_column(JSON)
    n_patterns: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class User(Base):
    """An account on a shared server: who may log in, and in which role (core.labeling.users).

    The name is the annotator name the account labels under. Only an Argon2 hash of the
    password is kept. A disabled account stays (its annotations keep their name) but cannot
    log in.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin | reviewer | annotator
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # wrong passwords in a row, and the lockout they earned (core.labeling.users.note_failed_login)
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
