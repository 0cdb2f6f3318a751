"""Which annotator names browser sessions are labeling under right now.

Two people who pick the same name would be handed the same texts; the Annotate page warns the
second one before it shows any. Kept in the server's memory (one `fewlabel serve` process
serves every browser), one registry per database. A closed tab stops counting at once (the
Streamlit runtime no longer knows its session); an open, idle one after ACTIVE_FOR.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app import services

ACTIVE_FOR = timedelta(minutes=5)
_TOKEN = "_fl_presence_token"


class Presence:
    """Per name, when each session (a token of its own, and its Streamlit session id) last
    labeled under it. Thread-safe: every browser session runs in its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, tuple[datetime, str | None]]] = {}

    def seen(self, name: str, token: str, session_id: str | None, now: datetime) -> None:
        with self._lock:
            sessions = self._seen.setdefault(name, {})
            for stale in [t for t, (when, _) in sessions.items() if now - when >= ACTIVE_FOR]:
                del sessions[stale]  # closed tabs do not pile up
            sessions[token] = (now, session_id)

    def leave(self, name: str, token: str) -> None:
        with self._lock:
            self._seen.get(name, {}).pop(token, None)

    def elsewhere(
        self,
        name: str,
        token: str,
        now: datetime,
        alive: Callable[[str | None], bool] = lambda _: True,
    ) -> datetime | None:
        """When another live session last labeled as `name` within ACTIVE_FOR, else None."""
        with self._lock:
            others = [
                (when, sid)
                for other, (when, sid) in self._seen.get(name, {}).items()
                if other != token and now - when < ACTIVE_FOR
            ]
        times = [when for when, sid in others if alive(sid)]
        return max(times, default=None)


@st.cache_resource(show_spinner=False)
def _registry(db_url: str) -> Presence:
    return Presence()


def _token() -> str:
    """This browser session's own id (Streamlit's session id is shared by every AppTest)."""
    return st.session_state.setdefault(_TOKEN, uuid.uuid4().hex)


def _session_id() -> str | None:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else None


def _alive(session_id: str | None) -> bool:
    if session_id is None or not Runtime.exists():
        return True
    return bool(Runtime.instance().is_active_session(session_id))


def mark(name: str) -> None:
    """Record that this session labels as `name` now."""
    _registry(services.db_url()).seen(name, _token(), _session_id(), datetime.now())


def leave(name: str) -> None:
    """This session no longer labels as `name` (it chose another)."""
    _registry(services.db_url()).leave(name, _token())


def active_elsewhere(name: str) -> datetime | None:
    """When another open browser session last labeled as `name`, if in the last minutes."""
    return _registry(services.db_url()).elsewhere(name, _token(), datetime.now(), _alive)
