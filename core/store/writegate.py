"""A fair gate in front of SQLite's write lock: writers queue on an OS file lock, not in
SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the lock taken sleeps in
its busy handler for 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms at a time and looks
again, so a writer that waited past about 50 ms waits in steps of 25-100 ms, and one that keeps
waking at the wrong moment can wait seconds while others get through. With 8 annotators and a
600k-line import on one file, saves queued this way: their latencies bunched at 53, 78, 103,
128, 178, 228 ms and on in 100 ms steps, with a p95 of 110-120 ms and a worst save of 2.7 s
(`bench load`, 2-core machine).

The gate: before its first write statement (INSERT, UPDATE, DELETE, REPLACE) a connection
takes an exclusive `flock` on `<database file>.writegate`, looking again every millisecond
while another holds it, and lets it go when its transaction commits or rolls back. The gate
is advisory and never needed for correctness: SQLite's own lock stays in force (busy_timeout
included). A connection that cannot get the gate within GATE_TIMEOUT_S (a stopped process
holding it), or cannot open the gate's file (a read-only folder), goes on to SQLite's lock as
before; a killed process's gate is released by the kernel. A thread that already holds the
gate through another connection does not wait for itself.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

GATE_TIMEOUT_S = 30.0  # as long as SQLite's busy_timeout: then SQLite's lock decides
# How often a waiting writer looks again. Waiting in the kernel instead (a blocking flock in a
# helper thread, so the wait could time out) measured worse on 2 cores: every waiter woken at
# each release, p50 47 ms and p95 100 ms while importing, against 20 and 94 ms polling.
WAIT_STEP_S = 0.001
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_KEY = "fewlabel_writegate"  # in the pooled DBAPI connection's info: its open gate file

# which thread holds each gate in this process, by gate path (only to never wait for oneself)
_holders: dict[str, int] = {}
_holders_lock = threading.Lock()


def install(engine: Engine, database: str) -> None:
    """Gate the writes of `engine`, whose SQLite database is the file `database`."""
    path = str(Path(database).resolve()) + ".writegate"
    event.listen(engine, "before_cursor_execute", _before(path))
    for name in ("commit", "rollback"):
        event.listen(engine, name, _release)
    event.listen(engine.pool, "checkin", _release_record)
    for name in ("close", "invalidate"):
        event.listen(engine.pool, name, _close_record)


def _before(path: str):
    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        info = conn.info
        gate = info.get(_KEY)
        if gate is not None and gate["held"]:
            return
        if not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        if gate is None:
            gate = info[_KEY] = {"fd": _open(path), "held": False, "path": path}
        if gate["fd"] is not None:
            _acquire(gate)

    return before_cursor_execute


def _open(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        return None  # a read-only folder: SQLite's lock alone, as without the gate


def _acquire(gate: dict) -> None:
    me = threading.get_ident()
    with _holders_lock:
        if _holders.get(gate["path"]) == me:
            return  # this thread holds it through another connection
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while True:
        try:
            fcntl.flock(gate["fd"], fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return  # held too long (a stopped process): SQLite's lock decides
            time.sleep(WAIT_STEP_S)
        except OSError:
            return  # the gate does not work here: SQLite's lock alone
    gate["held"] = True
    gate["thread"] = me
    with _holders_lock:
        _holders[gate["path"]] = me


def _release(conn) -> None:
    _release_info(conn.info)


def _release_record(dbapi_connection, record, *args) -> None:
    if record is not None:
        _release_info(record.info)


def _close_record(dbapi_connection, record, *args) -> None:
    if record is None:
        return
    _release_info(record.info)
    gate = record.info.pop(_KEY, None)
    if gate is not None and gate["fd"] is not None:
        os.close(gate["fd"])


def _release_info(info: dict) -> None:
    gate = info.get(_KEY)
    if gate is None or not gate["held"]:
        return
    gate["held"] = False
    with _holders_lock:
        if _holders.get(gate["path"]) == gate.get("thread"):
            del _holders[gate["path"]]
    fcntl.flock(gate["fd"], fcntl.LOCK_UN)
