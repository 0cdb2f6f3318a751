"""The few-example benchmark: for each N and seed, sample N labeled documents, finetune every
base the same way, score span P/R/F1 on a test file."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path

from core import defaults
from core.bench.data import Progress, Setup, evaluate_variants
from core.errors import FewlabelError
from core.metrics import span_prf
from core.text import Word


def _record(base: str, n: int, seed: int, metrics: dict, seconds: float) -> dict:
    return {
        "base": base,
        "n": n,
        "seed": seed,
        "f1_macro": round(100 * metrics["f1_macro"], 2),
        "f1_micro": round(100 * metrics["f1_micro"], 2),
        "per_label": {
            lbl: {k: round(100 * m[k], 2) for k in ("p", "r", "f1")}
            for lbl, m in metrics["per_label"].items()
        },
        "train_seconds": round(seconds, 2),
    }


def resolve_bases(
    bases: Sequence[str],
    *,
    task: str,
    train_texts: Sequence[tuple[str, list[Word]]],
    work_dir: Path,
    backbone: str,
    pretrain_minutes: float,
    pretrain_steps: int | None = None,
    progress: Progress,
) -> dict[str, str]:
    """Base name -> model location. `base` is the backbone; `mlm`/`aligned` are pretrained
    on the fly from the training texts (labels unused) unless already in work_dir; anything
    else is a path or a Hugging Face id."""
    out: dict[str, str] = {}
    for name in bases:
        if name == "base":
            out[name] = backbone
        elif name in ("mlm", "aligned"):
            target = work_dir / f"pretrained-{task}-{name}"
            if not (target / "tagger.json").is_file():
                from core.model.pretrain import pretrain
                from core.training import pretrain_args

                budget = f"{pretrain_steps} steps" if pretrain_steps else f"{pretrain_minutes} min"
                progress(f"pretraining {name} on {len(train_texts)} texts ({budget})")
                args = pretrain_args(name, backbone, steps=pretrain_steps, minutes=pretrain_minutes)
                corpus_names = [f"{task} benchmark training texts"]
                pretrain(
                    train_texts, task=task, out_dir=target, args=args, corpus_names=corpus_names
                )
            out[name] = str(target)
        else:
            out[name] = name
    return out


def _rule_records(setup: Setup, ns: Sequence[int], seeds: int) -> list[dict]:
    """The weak labeler alone, one record per (N, seed) so it lines up with the models."""
    from core.weak import weak_labeler

    labeler = weak_labeler(setup.task, corpus=[d.text for d in setup.train])
    t0 = time.perf_counter()
    pred = [labeler(d.text, d.words) for d in setup.test]
    metrics = span_prf([d.spans for d in setup.test], pred, setup.labels)
    seconds = time.perf_counter() - t0
    setup.progress(f"rule: macro F1 {100 * metrics['f1_macro']:.1f} ({seconds:.1f} s)")
    return [_record("rule", n, seed, metrics, 0.0) for n in ns for seed in range(seeds)]


def fewshot(
    *,
    task: str,
    train_path: str | Path,
    test_path: str | Path,
    ns: Sequence[int],
    seeds: int,
    bases: Sequence[str],
    rule: bool = False,
    backbone: str = "default",
    epochs: int | None = None,
    evidence: bool | None = None,
    pretrain_minutes: float = defaults.PRETRAIN_MINUTES,
    pretrain_steps: int | None = None,
    work_dir: str | Path = "bench_out",
    progress: Progress = print,
) -> list[dict]:
    """The few-example benchmark; returns its records (see the module docstring)."""
    setup = Setup.load(
        task, train_path, test_path, epochs=epochs, evidence=evidence, progress=progress
    )
    if max(ns) > len(setup.train):
        raise FewlabelError(f"--n {max(ns)} is more than the {len(setup.train)} training documents")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    locations = resolve_bases(
        bases,
        task=task,
        train_texts=setup.corpus,
        work_dir=work,
        backbone=backbone,
        pretrain_minutes=pretrain_minutes,
        pretrain_steps=pretrain_steps,
        progress=progress,
    )
    records = _rule_records(setup, ns, seeds) if rule else []
    for n in ns:
        for seed in range(seeds):
            sample = random.Random(seed).sample(setup.train, n)
            for name, location in locations.items():
                result = setup.finetune(sample, base=location, seed=seed)
                variants = evaluate_variants(result.model, setup.test, setup.labels)
                for suffix, metrics in variants.items():
                    rec = _record(name + suffix, n, seed, metrics, result.train_seconds)
                    records.append(rec)
                    progress(
                        f"{name + suffix:>16} n={n:<4} seed={seed}: macro F1 "
                        f"{rec['f1_macro']:.1f} ({rec['train_seconds']:.0f} s)"
                    )
    return records
