"""The app's one doorway to core: every core name a page, component or app module uses is
imported here and only here (tests/test_layers.py checks it), so this file is the whole list
of what the UI asks of core.

What passes through:
- the database: `db_url()` (migrated once per server) and `session()`, one per action; it
  commits when the block ends and rolls back on any error, so a failed import or save writes
  nothing. Pages hand the session to the core functions below and never run SQL themselves;
- access: who is logged in, logging in and out, and the check before every action
  (core.labeling.access), used by app/auth.py;
- the labeling, import/export, job, version, strategy and weak-source functions the pages
  call, by their core names;
- plain data and exception types, allowed through as they are: core.errors' exceptions,
  core.text's Word, the tasks (`tasks()`), the projects' and reviews' row types, and a few
  constants (strategies, format registry, schedule defaults).

What never passes: the model stack (core.model: torch and transformers, seconds and
gigabytes per process) and SQLAlchemy; no app module imports either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import streamlit as st

from core import defaults
from core.active.scoring import set_strategy
from core.active.strategies import DEFAULT_STRATEGY, STRATEGIES
from core.config import bulk_priority, get_settings
from core.errors import (
    AccountDisabledError,
    AuthenticationError,
    FewlabelError,
    NotFoundError,
)
from core.io import formats
from core.io.corpus import export_bytes
from core.io.imports import import_bytes
from core.jobs import queue as _queue
from core.jobs.queue import ACTIVE, enqueue, recent_jobs, request_cancel
from core.jobs.training import project_records
from core.labeling import access as _access
from core.labeling import teach
from core.labeling.agreement import WINDOW, project_agreement
from core.labeling.annotations import get_task, next_document, save, skip, undo
from core.labeling.clock import Clock, Pace, project_clock
from core.labeling.decisions import decisions_for
from core.labeling.overlap import MAX_ANNOTATORS, overlap_of, set_overlap, shared_texts
from core.labeling.prefill import (
    PREFILL_THRESHOLD,
    model_influence,
    prefill_threshold,
    set_prefill_threshold,
)
from core.labeling.progress import ReviewRow, annotators, browse, progress
from core.labeling.projects import (
    ProjectSummary,
    create_project,
    delete_document,
    delete_project,
    get_project,
    label_colors,
    list_projects,
    rename_label,
    rename_project,
    set_label_color,
)
from core.labeling.review import Version, disagreements, final_of, finalize, span_set, versions
from core.labeling.users import DISABLED_MESSAGE, PERMISSIONS, Account
from core.labeling.weak_sources import (
    add_patterns,
    evaluate_sources,
    list_patterns,
    remove_patterns,
)
from core.store.db import ensure_schema, session_scope
from core.store.versions import learning_curve, version_table
from core.tasks import TASKS, Task
from core.text import Word, tagged_text

if TYPE_CHECKING:
    from core.store.db import Session

__all__ = [
    # the database and access
    "db_url",
    "session",
    "acting_session",
    "local_worker",
    "login_required",
    "find_account",
    "log_in",
    "release_held",
    "bulk_priority",
    # plain data, constants and exceptions
    "defaults",
    "formats",
    "Account",
    "DISABLED_MESSAGE",
    "PERMISSIONS",
    "AccountDisabledError",
    "AuthenticationError",
    "FewlabelError",
    "NotFoundError",
    "Task",
    "Word",
    "tagged_text",
    "ProjectSummary",
    "ReviewRow",
    "Version",
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "ACTIVE",
    "MAX_ANNOTATORS",
    "PREFILL_THRESHOLD",
    "WINDOW",
    "Clock",
    "Pace",
    # projects
    "create_project",
    "delete_document",
    "delete_project",
    "get_project",
    "label_colors",
    "list_projects",
    "rename_label",
    "rename_project",
    "set_label_color",
    "overlap_of",
    "set_overlap",
    "shared_texts",
    # annotating and reviewing
    "next_document",
    "save",
    "skip",
    "undo",
    "get_task",
    "progress",
    "annotators",
    "browse",
    "decisions_for",
    "disagreements",
    "final_of",
    "finalize",
    "span_set",
    "versions",
    "project_agreement",
    "model_influence",
    "prefill_threshold",
    "set_prefill_threshold",
    "project_clock",
    # teach mode: teach.next_suggestion, teach.answer, teach.undo, teach.prefer_of
    "teach",
    # files
    "import_bytes",
    "export_bytes",
    # jobs, versions, strategies, weak sources
    "enqueue",
    "start",
    "recent_jobs",
    "request_cancel",
    "project_records",
    "learning_curve",
    "set_strategy",
    "version_table",
    "add_patterns",
    "evaluate_sources",
    "list_patterns",
    "remove_patterns",
]


@st.cache_resource(show_spinner="Preparing the database…")
def _migrated(url: str) -> str:
    ensure_schema(url)
    return url


def db_url() -> str:
    """The database URL from the settings (FEWLABEL_DB), upgraded to the newest schema once."""
    return _migrated(get_settings().db_url)


def session() -> AbstractContextManager[Session]:
    """A transaction for one action: committed when the block ends, rolled back on an error."""
    return session_scope(db_url())


@contextmanager
def acting_session(name: str, permission: str, logged_in: str | None) -> Iterator[Session]:
    """A session for one action by `name`, refused before anything is written when the
    accounts do not allow it (core.labeling.access.check_actor)."""
    with session() as s:
        _access.check_actor(s, name, logged_in, permission)
        yield s


def local_worker() -> bool:
    """Whether this server starts a worker process per job (else `fewlabel worker` runs them)."""
    return get_settings().local_worker


def start(url: str, job_id: int) -> None:
    """Start the worker process of a queued job (core.jobs.queue.start, looked up when called)."""
    _queue.start(url, job_id)


def login_required() -> bool:
    """Whether this server has accounts (then nobody acts without logging in)."""
    return _access.login_required(db_url())


def find_account(name: str) -> Account | None:
    """The account `name` as the database holds it now; None when it no longer exists."""
    return _access.find_account(db_url(), name)


def log_in(name: str, password: str) -> Account:
    """The account these credentials open (a wrong password counts towards its lock)."""
    return _access.log_in(db_url(), name, password)


def release_held(name: str) -> int:
    """Give back the texts `name` holds in every project; how many."""
    return _access.release_held(db_url(), name)


def tasks() -> dict[str, Task]:
    """Every task a project can have, by name (core.tasks): its labels, help text, evidence
    and the Train page's words for it."""
    return dict(TASKS)
