"""Run one child process in the foreground and go down with it: `fewlabel serve`'s Streamlit.

SIGTERM, SIGINT and SIGHUP sent to this process are passed on to the child, and this process
exits when the child does, with its code (128 + the signal's number when a signal ended it,
as a shell reports it). So `kill PID` of `fewlabel serve`, or a service manager stopping it,
stops the server too instead of leaving Streamlit serving as an orphan. On Linux the child is
also sent SIGTERM if this process dies without a chance to pass anything on (SIGKILL).
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

FORWARDED = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name)
)
# After a forwarded signal the child has this long to stop before it is killed.
STOP_GRACE_S = 15.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (AttributeError, OSError):
        pass


def exit_code(returncode: int) -> int:
    """A child's return code as an exit status: a signal's death is 128 + its number."""
    return 128 - returncode if returncode < 0 else returncode


def run_child(cmd: Sequence[str], env: Mapping[str, str], *, grace_s: float = STOP_GRACE_S) -> int:
    """Run `cmd` until it exits, passing on the signals of FORWARDED; its exit status."""
    child = subprocess.Popen(
        list(cmd),
        env=dict(env),
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    asked: list[float] = []  # when the first forwarded signal came

    def forward(signum: int, _frame) -> None:
        if not asked:
            asked.append(time.monotonic())
        if child.poll() is None:
            child.send_signal(signum)

    before = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while True:
            try:
                return exit_code(child.wait(timeout=0.5))
            except subprocess.TimeoutExpired:
                if asked and time.monotonic() - asked[0] > grace_s:
                    child.kill()  # it did not stop when asked
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # this process is going down on an error: so does the child
            child.kill()
            child.wait()
