"""The few-example benchmark: for each N and seed, sample N labeled documents, finetune every
base the same way, score span P/R/F1 on a test file."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path

from core import defaults
from core.bench.data import LabeledDoc, Progress, Setup, evaluate_variants
from core.bench.loop import aligned_base
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
    labels: Sequence[str] | None = None,
    train_texts: Sequence[tuple[str, list[Word]]],
    work_dir: Path,
    backbone: str,
    pretrain_minutes: float,
    pretrain_steps: int | None = None,
    progress: Progress,
) -> dict[str, str]:
    """Base name -> model location. `base` is the backbone; `mlm` is pretrained on the fly
    from the training texts (labels unused) unless already in work_dir; anything else is a
    path or a Hugging Face id. The `aligned` base is built per N and seed from the weak
    sources those N labels give (core.bench.loop) and maps to None here."""
    out: dict[str, str | None] = {}
    for name in bases:
        if name == "base":
            out[name] = backbone
        elif name == "aligned":
            out[name] = None
        elif name == "mlm":
            target = work_dir / f"pretrained-{task}-{name}"
            if not (target / "tagger.json").is_file():
                from core.jobs.training import pretrain_args
                from core.model.pretrain import pretrain

                budget = f"{pretrain_steps} steps" if pretrain_steps else f"{pretrain_minutes} min"
                progress(f"pretraining {name} on {len(train_texts)} texts ({budget})")
                args = pretrain_args(name, backbone, steps=pretrain_steps, minutes=pretrain_minutes)
                corpus_names = [f"{task} benchmark training texts"]
                pretrain(
                    train_texts,
                    task=task,
                    labels=labels,
                    out_dir=target,
                    args=args,
                    corpus_names=corpus_names,
                )
            out[name] = str(target)
        else:
            out[name] = name
    return out


def pool_texts(paths: Sequence[str | Path]) -> list[LabeledDoc]:
    """The texts of unlabeled files, read as `fewlabel pretrain --corpus` reads them (any
    format `fewlabel import` reads; link markup stripped), without labels."""
    from core.io.corpus import read_texts
    from core.weak import plain_corpus

    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise FewlabelError(f"{missing[0]}: no such file")
    texts, _ = plain_corpus(
        (r.text, r.tokens) for path in paths for r in read_texts(path) if r.text.strip()
    )
    return [LabeledDoc(text, words, []) for text, words in texts]


def _rule_records(setup: Setup, ns: Sequence[int], seeds: int) -> list[dict]:
    """The weak labeler alone, one record per (N, seed) so it lines up with the models. A
    custom task's is the dictionary of the N labels (plus the patterns when given)."""
    if setup.task == "custom":
        return [_weak_record(setup, n, seed) for n in ns for seed in range(seeds)]
    from core.tasks import get_task

    labeler = get_task(setup.task).weak_labeler(corpus=[d.text for d in setup.train])
    t0 = time.perf_counter()
    pred = [labeler(d.text, d.words) for d in setup.test]
    metrics = span_prf([d.spans for d in setup.test], pred, setup.labels)
    seconds = time.perf_counter() - t0
    setup.progress(f"rule: macro F1 {100 * metrics['f1_macro']:.1f} ({seconds:.1f} s)")
    return [_record("rule", n, seed, metrics, 0.0) for n in ns for seed in range(seeds)]


def _weak_record(setup: Setup, n: int, seed: int) -> dict:
    from core.weak.sources import Dictionary, Patterns, WeakSources

    labeled = [(d.text, d.words, d.spans) for d in random.Random(seed).sample(setup.train, n)]
    sources: list = [Dictionary.build(labeled)]
    if setup.patterns:
        sources.append(Patterns(setup.patterns).fit(labeled))
    pred = WeakSources(sources).label([(d.text, d.words) for d in setup.test])
    metrics = span_prf([d.spans for d in setup.test], pred, setup.labels)
    setup.progress(f"rule n={n} seed={seed}: micro F1 {100 * metrics['f1_micro']:.1f}")
    return _record("rule", n, seed, metrics, 0.0)


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
    labels: Sequence[str] | None = None,
    patterns: str | Path | None = None,
    pool: Sequence[str | Path] = (),
) -> list[dict]:
    """The few-example benchmark; returns its records (see the module docstring). A custom
    task takes `labels` (default: the training file's) and a `patterns` file; `pool` files
    hold unlabeled texts that join the aligned bases' pool (a project's other texts)."""
    setup = Setup.load(
        task,
        train_path,
        test_path,
        epochs=epochs,
        evidence=evidence,
        progress=progress,
        labels=labels,
        patterns_path=patterns,
    )
    if max(ns) > len(setup.train):
        raise FewlabelError(f"--n {max(ns)} is more than the {len(setup.train)} training documents")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    locations = resolve_bases(
        bases,
        task=task,
        labels=setup.labels,
        train_texts=setup.corpus,
        work_dir=work,
        backbone=backbone,
        pretrain_minutes=pretrain_minutes,
        pretrain_steps=pretrain_steps,
        progress=progress,
    )
    extra = pool_texts(pool)
    records = _rule_records(setup, ns, seeds) if rule else []
    for n in ns:
        for seed in range(seeds):
            sample = random.Random(seed).sample(setup.train, n)
            records += _sample_records(
                setup,
                sample,
                n,
                seed,
                locations,
                work=work,
                backbone=backbone,
                pretrain_minutes=pretrain_minutes,
                pretrain_steps=pretrain_steps,
                extra=extra,
                progress=progress,
            )
    return records


def _sample_records(
    setup: Setup,
    sample: list,
    n: int,
    seed: int,
    locations: dict,
    *,
    work: Path,
    backbone: str,
    pretrain_minutes: float,
    pretrain_steps: int | None,
    extra: list,
    progress: Progress,
) -> list[dict]:
    """The records of one sample of N training texts: a finetune from each base (a custom
    task's aligned base built from the sample first), each model's variants scored."""
    task = setup.task
    records: list[dict] = []
    plain = None  # the model of the N on the backbone: the loop's self-training source
    for name, location in locations.items():
        weak = None
        if location is None:  # a custom task's aligned base, built from these N
            if plain is None:
                plain = setup.finetune(sample, base=backbone, seed=seed).model
            location, weak = aligned_base(
                setup,
                sample,
                seed=seed,
                model=plain,
                work=work,
                backbone=backbone,
                minutes=pretrain_minutes,
                steps=pretrain_steps,
                extra=extra,
            )
        result = setup.finetune(sample, base=location, seed=seed)
        if location == backbone:
            plain = result.model
        variants = evaluate_variants(result.model, setup.test, setup.labels, task=setup.task)
        for suffix, metrics in variants.items():
            rec = _record(name + suffix, n, seed, metrics, result.train_seconds)
            if weak is not None:
                rec["weak_sources"] = weak
            records.append(rec)
            kind = "micro" if task == "custom" else "macro"
            progress(
                f"{name + suffix:>16} n={n:<4} seed={seed}: {kind} F1 "
                f"{rec[f'f1_{kind}']:.1f} ({rec['train_seconds']:.0f} s)"
            )
    return records
