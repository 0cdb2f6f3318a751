"""scripts/app_kill_probe.py, run small (2 kills of the app, no Retrain) so it cannot rot.

The full run (20 kills and kills during a Retrain) and its figures are in docs/operations.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_browser import require_chromium

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent


def test_two_kills_of_the_app_lose_no_acknowledged_save(tmp_path):
    require_chromium()
    out = tmp_path / "probe.json"
    cmd = [sys.executable, str(ROOT / "scripts" / "app_kill_probe.py"), "--kills", "2"]
    cmd += ["--retrain-kills", "0", "--texts", "80", "--work", str(tmp_path / "work")]
    done = subprocess.run(
        [*cmd, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["violations"] == []
    assert len(summary["runs"]) == 2
    assert sum(summary["acknowledged"].values()) >= 1  # the browsers did label between kills
    assert summary["restart_to_usable_seconds"]["every_browser_max"] < 120
