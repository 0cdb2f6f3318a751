"""`fewlabel bench load` run tiny (2 annotators, 2 s, a 200-line import) on SQLite and on
PostgreSQL: its JSON holds every figure, and the invariants hold."""

import json

import pytest

from core.bench.load import KEYS
from core.cli import main


@pytest.mark.slow  # spawns three interpreters: about 15 s per backend
@pytest.mark.both_backends
def test_bench_load_keeps_every_save_and_claims_each_text_once(db_url, tmp_path, capsys):
    out = tmp_path / "load.json"
    argv = ["bench", "load", "--annotators", "2", "--seconds", "2", "--import-lines", "200"]
    code = main([*argv, "--db", db_url, "--json", str(out), "--work-dir", str(tmp_path)])
    record = json.loads(out.read_text())
    assert code == 0, record
    assert set(KEYS) <= set(record)
    assert (record["errors"], record["double_claims"], record["lost_saves"]) == (0, 0, 0)
    assert record["saves"] > 0 and record["saves_per_s"] == round(record["saves"] / 2, 1)
    assert 0 < record["save_p50_ms"] <= record["save_p95_ms"]
    assert record["import_imported"] == 200 and record["import_seconds"] > 0
    assert record["database"] == db_url.split(":")[0].split("+")[0]
    assert record["documents_after"] == record["open_texts"] + 200
    assert not record["queue_ran_dry"]
    during = record["saves_during_import"]  # the import is short: maybe none ran meanwhile
    assert 0 <= during <= record["saves"]
    assert (record["save_p95_during_import_ms"] is None) == (during == 0)
    assert "lost saves      0" in capsys.readouterr().out
