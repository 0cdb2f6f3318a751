"""The active-learning benchmark: simulated annotation with gold labels, F1 per round per
strategy, against the document-level random baseline."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.active.strategies import Strategy, get_strategy, select
from core.bench.data import Progress, Setup, evaluate
from core.errors import FewlabelError


def active(
    *,
    task: str,
    train_path: str | Path,
    test_path: str | Path,
    strategies: Sequence[str],
    seed_size: int = 20,
    step: int = 20,
    budget: int = 200,
    base: str = "default",
    seed: int = 0,
    seeds: int = 1,
    epochs: int | None = None,
    evidence: bool | None = None,
    diversity: bool = False,
    progress: Progress = print,
    labels: Sequence[str] | None = None,
) -> list[dict]:
    """Simulated annotation: from `seed_size` random labels, add `step` per round by each
    strategy until `budget`; F1 on the test file after every round. With `seeds` > 1 the
    whole simulation repeats from seeds seed, seed+1, ... (each with its own start set)."""
    chosen = [get_strategy(s) for s in strategies]
    setup = Setup.load(
        task,
        train_path,
        test_path,
        epochs=epochs,
        evidence=evidence,
        progress=progress,
        labels=labels,
    )
    if budget > len(setup.train):
        raise FewlabelError(f"--budget {budget} is more than the {len(setup.train)} pool documents")
    records: list[dict] = []
    for run_seed, strategy in itertools.product(range(seed, seed + seeds), chosen):
        rounds = _Rounds(seed_size=seed_size, step=step, budget=budget, diversity=diversity)
        records += _simulate(setup, strategy, run_seed, rounds, base=base)
    return records


@dataclass(frozen=True, kw_only=True)
class _Rounds:
    """How a simulated annotation grows: start size, labels per round, budget, diversity."""

    seed_size: int
    step: int
    budget: int
    diversity: bool


def _simulate(
    setup: Setup, strategy: Strategy, seed: int, rounds: _Rounds, *, base: str
) -> list[dict]:
    """One simulated annotation run of one strategy from one seed: its records per round."""
    from core.active.scoring import predict_and_score

    pool = setup.train
    records: list[dict] = []
    labeled = random.Random(seed).sample(range(len(pool)), rounds.seed_size)
    rng_seed = seed
    while True:
        result = setup.finetune([pool[i] for i in labeled], base=base, seed=seed)
        metrics = evaluate(result.model, setup.test, setup.labels)
        records.append(
            {
                "strategy": strategy.name,
                "seed": seed,
                "labels": len(labeled),
                "words": sum(len(pool[i].words) for i in labeled),
                "f1_macro": round(100 * metrics["f1_macro"], 2),
                "f1_micro": round(100 * metrics["f1_micro"], 2),
                "train_seconds": round(result.train_seconds, 2),
            }
        )
        kind = "micro" if setup.task == "custom" else "macro"
        setup.progress(
            f"{strategy.name:>16} seed={seed} labels={len(labeled):<4} "
            f"{kind} F1 {records[-1][f'f1_{kind}']:.1f}"
        )
        if len(labeled) >= rounds.budget:
            break
        taken = set(labeled)
        rest = [i for i in range(len(pool)) if i not in taken]
        k = min(rounds.step, rounds.budget - len(labeled))
        if not strategy.needs_model:
            rng_seed += 1
            picks = random.Random(rng_seed).sample(rest, k)
        else:
            inputs = [(pool[i].text, pool[i].words) for i in rest]
            _, scores = predict_and_score(result.model, inputs, strategy)
            texts = [pool[i].text for i in rest]
            chosen = select(scores, k, texts=texts, diversity=rounds.diversity)
            picks = [rest[j] for j in chosen]
        labeled += picks
    return records
