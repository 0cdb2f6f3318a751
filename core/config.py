"""Settings in one place: database URL, data directory, device. Environment variables override.

FEWLABEL_DB        SQLAlchemy URL or a path to a SQLite file (default: ./fewlabel.db)
FEWLABEL_HOME      where model versions and checkpoints live (default: ./fewlabel_data)
FEWLABEL_DEVICE    "cuda", "cpu" or "auto" (default: auto = CUDA when present)
FEWLABEL_MODELS    the model store: where versions and aligned bases are written and read
                   (default: $FEWLABEL_HOME/models); with workers on other machines, a
                   directory every one of them and the app reach at the same path
FEWLABEL_LOCAL_WORKER  "1" (default): the app and the CLI start a worker process on this
                   machine for each job they queue; "0": they only queue it, for
                   `fewlabel worker` processes to run (on a GPU machine, say)
FEWLABEL_BACKGROUND_NICE  the CPU niceness of imports and job workers (default 10; 0 keeps
                   the priority they were started with)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DB = "fewlabel.db"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = PROJECT_ROOT / "sample_data"


def normalize_db_url(value: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite)."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


@dataclass(frozen=True)
class Settings:
    db_url: str = field(
        default_factory=lambda: normalize_db_url(os.environ.get("FEWLABEL_DB", DEFAULT_DB))
    )
    home: Path = field(
        default_factory=lambda: Path(os.environ.get("FEWLABEL_HOME", "fewlabel_data")).resolve()
    )
    device: str = field(default_factory=lambda: os.environ.get("FEWLABEL_DEVICE", "auto"))
    models: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["FEWLABEL_MODELS"]).expanduser().resolve()
            if os.environ.get("FEWLABEL_MODELS")
            else None
        )
    )
    local_worker: bool = field(
        default_factory=lambda: (
            os.environ.get("FEWLABEL_LOCAL_WORKER", "1").strip().lower()
            not in ("0", "false", "no", "off")
        )
    )

    @property
    def models_dir(self) -> Path:
        return self.models or self.home / "models"


def get_settings(db: str | None = None) -> Settings:
    s = Settings()
    if db:
        s = Settings(
            db_url=normalize_db_url(db),
            home=s.home,
            device=s.device,
            models=s.models,
            local_worker=s.local_worker,
        )
    return s


def background_priority() -> int:
    """Run this process at the niceness of bulk work (FEWLABEL_BACKGROUND_NICE, default
    core.defaults.BACKGROUND_NICE): an import or a job then takes the CPU the annotators'
    saves leave, instead of half of it. Never raises the priority (a process started under
    `nice -n 15` stays at 15). Returns the niceness now, or -1 where it cannot be read.

    On Linux a niceness belongs to a thread: call it before starting threads (torch's
    inherit it), or use `bulk_priority` for one thread of a server."""
    from core import defaults

    try:
        wanted = int(os.environ.get("FEWLABEL_BACKGROUND_NICE", defaults.BACKGROUND_NICE))
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if wanted > current:
            os.setpriority(os.PRIO_PROCESS, 0, min(wanted, 19))
        return os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError, ValueError):
        return -1  # no priorities here (not POSIX), or a bad setting: run as started


@contextmanager
def bulk_priority() -> Iterator[None]:
    """Bulk work inside a server (an upload's import in the app's script thread) at the
    background niceness, then back to the thread's own where the system allows it (raising
    a priority needs CAP_SYS_NICE; otherwise the thread, which ends with its script run,
    stays niced). On Linux only the calling thread is affected."""
    try:
        before = os.getpriority(os.PRIO_PROCESS, 0)
    except (AttributeError, OSError):
        before = None
    background_priority()
    try:
        yield
    finally:
        if before is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, before)
            except OSError:
                pass  # not allowed to raise it again: the rest of this thread's run is niced
