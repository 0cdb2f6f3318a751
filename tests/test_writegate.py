"""core.store.writegate: SQLite writers queue on a file lock next to the database, let go at commit
or rollback, and fall back to SQLite's own lock when the gate is held too long."""

import fcntl
import os
import threading
import time

from sqlalchemy import func, select

from core.labeling.projects import create_project
from core.store import writegate
from core.store.db import get_engine, session_scope, sqlite_path
from core.store.schema import Project


def _hold_gate(db_url):
    """Take the gate from outside fewlabel, as another process's writer would."""
    fd = os.open(sqlite_path(db_url) + ".writegate", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _create_in_thread(db_url, name, done):
    def run():
        with session_scope(db_url) as s:
            create_project(s, name, "acronym")
        done.append(time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _projects(db_url):
    with session_scope(db_url) as s:
        return s.scalar(select(func.count(Project.id)))


def test_a_write_waits_for_the_gate_and_goes_on_when_it_is_free(db_url):
    get_engine(db_url)  # the engine installs the gate
    fd = _hold_gate(db_url)
    done: list[float] = []
    thread = _create_in_thread(db_url, "p", done)
    time.sleep(0.3)
    assert done == [] and thread.is_alive()  # SQLite's own lock is free: only the gate waits
    freed = time.monotonic()
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    thread.join(timeout=10)
    assert done and done[0] >= freed
    assert _projects(db_url) == 1


def test_commit_and_rollback_let_the_gate_go(db_url):
    with session_scope(db_url) as s:
        create_project(s, "kept", "acronym")
    try:
        with session_scope(db_url) as s:
            create_project(s, "undone", "acronym")
            s.flush()
            raise RuntimeError("the caller fails after writing")
    except RuntimeError:
        pass
    fd = os.open(sqlite_path(db_url) + ".writegate", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: raises BlockingIOError otherwise
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    assert _projects(db_url) == 1


def test_a_gate_held_too_long_gives_way_to_sqlites_lock(db_url, monkeypatch):
    monkeypatch.setattr(writegate, "GATE_TIMEOUT_S", 0.2)
    get_engine(db_url)
    fd = _hold_gate(db_url)  # a stopped process that never lets go
    try:
        done: list[float] = []
        started = time.monotonic()
        _create_in_thread(db_url, "p", done).join(timeout=10)
        assert done and 0.2 <= done[0] - started < 5
        assert _projects(db_url) == 1
    finally:
        os.close(fd)


def test_writers_in_threads_all_get_through(db_url):
    get_engine(db_url)
    done: list[float] = []
    threads = [_create_in_thread(db_url, f"p{i}", done) for i in range(8)]
    for thread in threads:
        thread.join(timeout=30)
    assert len(done) == 8 and _projects(db_url) == 8
