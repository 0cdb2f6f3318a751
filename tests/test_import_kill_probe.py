"""scripts/import_kill_probe.py at issue 23's size: 20 kills of `fewlabel import`, 8 of them
aimed at the transaction that publishes the file, and a reader that looks every few
milliseconds never sees part of a file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_twenty_kills_never_show_part_of_an_import(tmp_path):
    out = tmp_path / "probe.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "import_kill_probe.py"), "--kills", "20"]
    cmd += ["--publish-kills", "8", "--lines", "6000", "--work", str(tmp_path / "work")]
    done = subprocess.run(
        [*cmd, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["violations"] == []
    runs = summary["runs"]
    assert len(runs) == 20
    # most runs were killed, some of them inside the transaction that publishes
    assert summary["killed_mid_import"] >= 10, done.stdout
    assert summary["killed_while_publishing"] >= 1, done.stdout
