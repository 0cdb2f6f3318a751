"""Data-parallel pretraining: the building blocks on two gloo ranks, and `fewlabel pretrain`
run unchanged under torchrun with two CPU processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ACRONYM_SENTENCES, POOL_SENTENCES

from core.model.distributed import World, world_from_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, size: int, port: int, out: str) -> None:
    """One rank: different initial weights and gradients, then broadcast, average, step."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
    )
    import torch.distributed as dist

    from core.model.distributed import agree, average_gradients, broadcast_parameters

    world = world_from_env()
    torch.manual_seed(rank)  # replicas that would drift apart without the broadcast
    layer = torch.nn.Linear(3, 2)
    broadcast_parameters([layer], world)
    for p in layer.parameters():
        p.grad = torch.full_like(p, float(rank + 1))
    average_gradients(list(layer.parameters()), world)
    grads = [p.grad.clone() for p in layer.parameters()]
    torch.optim.SGD(layer.parameters(), lr=0.1).step()
    decided = agree([float(rank), 7.0 + rank], world)
    flat = torch.cat([p.detach().reshape(-1) for p in layer.parameters()])
    Path(out, f"rank{rank}.json").write_text(
        json.dumps(
            {
                "weights": flat.tolist(),
                "grads": [g.reshape(-1).tolist() for g in grads],
                "agreed": decided,
                "shard": world.shard(list(range(7))),
            }
        )
    )
    # both ranks done with every collective before either tears gloo down: a rank destroying
    # its group while the other still talks aborts ("terminate called without an active
    # exception"), seen on an idle machine in CI
    dist.barrier()
    dist.destroy_process_group()


def test_ranks_start_equal_average_gradients_and_agree_on_rank_0(tmp_path):
    torch.multiprocessing.spawn(_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["weights"] == r1["weights"]  # same start, same averaged step
    assert all(v == 1.5 for g in r0["grads"] + r1["grads"] for v in g)  # mean of 1 and 2
    assert r0["agreed"] == r1["agreed"] == [0.0, 7.0]
    assert sorted(r0["shard"] + r1["shard"]) == list(range(7))
    assert (r0["shard"], r1["shard"]) == ([0, 2, 4, 6], [1, 3, 5])


def test_one_process_is_a_world_of_one(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_from_env() == World()
    assert World().shard([1, 2, 3]) == [1, 2, 3] and World().main


def test_fewlabel_pretrain_runs_unchanged_under_torchrun(tmp_path, tiny_model_dir):
    """Two gloo ranks, each on its shard of the corpus; rank 0 writes the one checkpoint."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(ACRONYM_SENTENCES + POOL_SENTENCES), encoding="utf-8")
    out = tmp_path / "ck"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "core.cli", "pretrain", "--task", "acronym", "--corpus", str(corpus)]
    cmd += ["--out", str(out), "--steps", "3", "--base", tiny_model_dir]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("checkpoint written to") == 1  # rank 0 speaks for the run
    info = json.loads((out / "tagger.json").read_text())["info"]["pretraining"]
    assert info["ranks"] == 2 and info["steps"] == 3
    assert info["corpus_texts"] == len(ACRONYM_SENTENCES + POOL_SENTENCES)
    from core.model.backbone import Tagger

    assert Tagger.load(out).labels == ["SHORT", "LONG"]
    assert not list(out.glob("*.tmp"))


def test_pretrain_project_refuses_torchrun_in_one_line(tmp_path, monkeypatch, capsys):
    from core.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["pretrain", "--project", "p", "--db", db]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not under torchrun" in err
