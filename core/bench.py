"""Benchmarks that prove (or disprove) Few Example Learning, with the product's own code.

`fewshot`: for each N and seed, sample N labeled documents, finetune every base the same
way, score span P/R/F1 on a test file. `active`: simulated annotation with gold labels, F1
per round per strategy. Both write JSON records other tools can read, print a table of
means and standard deviations, and can plot F1 against the number of labels.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.corpus import read_texts
from core.errors import FewlabelError
from core.metrics import span_prf
from core.text import TASK_LABELS, Span, Word, snap_span, words_of

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LabeledDoc:
    text: str
    words: list[Word]
    spans: list[Span]


def load_labeled(path: str | Path, task: str) -> list[LabeledDoc]:
    """A labeled file (SciAD JSON, CoNLL, JSONL with spans) with labels mapped to the task's.

    Spans are snapped to word boundaries, as `fewlabel import` and `fewlabel weak eval` snap
    them: a model tags whole words, and raw-text corpora hold spans that cut one ("Finite
    State Automato" in SDU@AAAI-22), which no tagger could match exactly.
    """
    from core.weak.evaluate import map_label

    if not Path(path).is_file():
        raise FewlabelError(f"{path}: no such file (benchmark data lives in ../shared/benchmarks)")
    docs = []
    for rec in read_texts(path):
        if not rec.text.strip():
            continue
        words = words_of(rec.text, rec.tokens)
        spans = set()
        for sp in rec.spans or []:
            label = map_label(task, str(sp["label"]))
            snapped = snap_span(int(sp["start"]), int(sp["end"]), words)
            if label is not None and snapped is not None:
                spans.add(Span(*snapped, label))
        docs.append(LabeledDoc(rec.text, words, sorted(spans)))
    if not docs:
        raise FewlabelError(f"{path}: no documents")
    return docs


def task_labels(task: str) -> list[str]:
    if task not in TASK_LABELS:
        raise FewlabelError(f"benchmarks know the tasks {', '.join(TASK_LABELS)}, not {task!r}")
    return list(TASK_LABELS[task])


def evaluate(model, test: Sequence[LabeledDoc], labels: Sequence[str]) -> dict:
    """Span P/R/F1 of a model's own predictions (no decode-time rules) on labeled documents."""
    return evaluate_variants(model, test, labels)[""]


def evaluate_variants(model, test: Sequence[LabeledDoc], labels: Sequence[str]) -> dict:
    """{"": the model alone, "+rules": with the label space's decode-time rules merged in}.

    One forward pass serves both; "+rules" is absent when no rule set fits the labels.
    """
    from core.model.predict import predict
    from core.model.rules import apply_rules, rules_for

    preds = predict(model, [(d.text, d.words) for d in test], rules=False)
    gold = [d.spans for d in test]
    out = {"": span_prf(gold, [p.spans for p in preds], labels)}
    rule_set = rules_for(labels)
    if rule_set:
        merged = [
            apply_rules(rule_set, d.text, d.words, p.spans)
            for d, p in zip(test, preds, strict=True)
        ]
        out["+rules"] = span_prf(gold, merged, labels)
    return out


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


def _train_args(seed: int, epochs: int | None, evidence: bool | None):
    """The benchmarks' finetuning arguments: the product's defaults, except what is asked."""
    from core.model.finetune import TrainArgs

    return TrainArgs(seed=seed, evidence=evidence, **({"epochs": epochs} if epochs else {}))


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
                from core.model.pretrain import PretrainArgs, pretrain

                budget = f"{pretrain_steps} steps" if pretrain_steps else f"{pretrain_minutes} min"
                progress(f"pretraining {name} on {len(train_texts)} texts ({budget})")
                pretrain(
                    train_texts,
                    task=task,
                    out_dir=target,
                    args=PretrainArgs(
                        objective=name,
                        base=backbone,
                        steps=pretrain_steps,
                        max_minutes=None if pretrain_steps else pretrain_minutes,
                    ),
                    corpus_names=[f"{task} benchmark training texts"],
                )
            out[name] = str(target)
        else:
            out[name] = name
    return out


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
    pretrain_minutes: float = 15.0,
    pretrain_steps: int | None = None,
    work_dir: str | Path = "bench_out",
    progress: Progress = print,
) -> list[dict]:
    """The few-example benchmark; returns its records (see the module docstring)."""
    from core.model.finetune import finetune

    labels = task_labels(task)
    train, test = load_labeled(train_path, task), load_labeled(test_path, task)
    if max(ns) > len(train):
        raise FewlabelError(f"--n {max(ns)} is more than the {len(train)} training documents")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    # unlabeled text is free: pretraining reads all of the training file, and so does evidence
    # that learns corpus statistics, as a project's learns them from all of its texts
    corpus = [(d.text, d.words) for d in train]
    locations = resolve_bases(
        bases,
        task=task,
        train_texts=corpus,
        work_dir=work,
        backbone=backbone,
        pretrain_minutes=pretrain_minutes,
        pretrain_steps=pretrain_steps,
        progress=progress,
    )
    records: list[dict] = []
    if rule:
        from core.weak import weak_labeler

        labeler = weak_labeler(task, corpus=[d.text for d in train])
        t0 = time.perf_counter()
        pred = [labeler(d.text, d.words) for d in test]
        metrics = span_prf([d.spans for d in test], pred, labels)
        seconds = time.perf_counter() - t0
        for n in ns:
            for seed in range(seeds):
                records.append(_record("rule", n, seed, metrics, 0.0))
        progress(f"rule: macro F1 {100 * metrics['f1_macro']:.1f} ({seconds:.1f} s)")
    for n in ns:
        for seed in range(seeds):
            sample = random.Random(seed).sample(train, n)
            examples = [(d.text, d.words, d.spans) for d in sample]
            for name, location in locations.items():
                args = _train_args(seed, epochs, evidence)
                result = finetune(examples, labels, base=location, args=args, corpus=corpus)
                for suffix, metrics in evaluate_variants(result.model, test, labels).items():
                    rec = _record(name + suffix, n, seed, metrics, result.train_seconds)
                    records.append(rec)
                    progress(
                        f"{name + suffix:>16} n={n:<4} seed={seed}: macro F1 "
                        f"{rec['f1_macro']:.1f} ({rec['train_seconds']:.0f} s)"
                    )
    return records


def fewshot_table(records: Sequence[dict]) -> str:
    """Mean ± standard deviation of macro F1 per base (rows) and N (columns)."""
    ns = sorted({r["n"] for r in records})
    bases = list(dict.fromkeys(r["base"] for r in records))
    head = f"{'base':<24}" + "".join(f"{'n=' + str(n):>16}" for n in ns)
    lines = [head, "-" * len(head)]
    for b in bases:
        cells = []
        for n in ns:
            vals = [r["f1_macro"] for r in records if r["base"] == b and r["n"] == n]
            if not vals:
                cells.append(f"{'-':>16}")
                continue
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):>10.1f} ± {sd:<3.1f}")
        lines.append(f"{Path(b).name or b:<24}" + "".join(cells))
    return "\n".join(lines)


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
) -> list[dict]:
    """Simulated annotation: from `seed_size` random labels, add `step` per round by each
    strategy until `budget`; F1 on the test file after every round. With `seeds` > 1 the
    whole simulation repeats from seeds seed, seed+1, ... (each with its own start set)."""
    from core.active import STRATEGIES

    labels = task_labels(task)
    for s in strategies:
        if s not in STRATEGIES:
            raise FewlabelError(f"unknown strategy {s!r}; choose from {', '.join(STRATEGIES)}")
    pool, test = load_labeled(train_path, task), load_labeled(test_path, task)
    if budget > len(pool):
        raise FewlabelError(f"--budget {budget} is more than the {len(pool)} pool documents")
    run = functools.partial(
        _simulate,
        pool,
        test,
        labels,
        seed_size=seed_size,
        step=step,
        budget=budget,
        base=base,
        epochs=epochs,
        evidence=evidence,
        diversity=diversity,
        progress=progress,
    )
    records: list[dict] = []
    for run_seed, strategy in itertools.product(range(seed, seed + seeds), strategies):
        records += run(strategy, run_seed)
    return records


def _simulate(
    pool: Sequence[LabeledDoc],
    test: Sequence[LabeledDoc],
    labels: Sequence[str],
    strategy: str,
    seed: int,
    *,
    seed_size: int,
    step: int,
    budget: int,
    base: str,
    epochs: int | None,
    evidence: bool | None,
    diversity: bool,
    progress: Progress,
) -> list[dict]:
    """One simulated annotation run of one strategy from one seed: its records per round."""
    from core.active import STRATEGIES, score_documents, select
    from core.model.finetune import finetune
    from core.model.predict import predict

    records: list[dict] = []
    labeled = random.Random(seed).sample(range(len(pool)), seed_size)
    corpus = [(d.text, d.words) for d in pool]  # the evidence's corpus statistics, if any
    rng_seed = seed
    while True:
        examples = [(pool[i].text, pool[i].words, pool[i].spans) for i in labeled]
        result = finetune(
            examples,
            labels,
            base=base,
            args=_train_args(seed, epochs, evidence),
            corpus=corpus,
        )
        metrics = evaluate(result.model, test, labels)
        records.append(
            {
                "strategy": strategy,
                "seed": seed,
                "labels": len(labeled),
                "words": sum(len(pool[i].words) for i in labeled),
                "f1_macro": round(100 * metrics["f1_macro"], 2),
                "f1_micro": round(100 * metrics["f1_micro"], 2),
                "train_seconds": round(result.train_seconds, 2),
            }
        )
        progress(
            f"{strategy:>16} seed={seed} labels={len(labeled):<4} "
            f"macro F1 {records[-1]['f1_macro']:.1f}"
        )
        if len(labeled) >= budget:
            break
        taken = set(labeled)
        rest = [i for i in range(len(pool)) if i not in taken]
        k = min(step, budget - len(labeled))
        spec = STRATEGIES[strategy]
        if strategy == "random":
            rng_seed += 1
            picks = random.Random(rng_seed).sample(rest, k)
        else:
            preds = predict(
                result.model,
                [(pool[i].text, pool[i].words) for i in rest],
                mc_dropout=8 if spec.needs_samples else 0,
            )
            scores = score_documents(
                [p.word_probs for p in preds],
                strategy=strategy,
                samples_list=[p.mc_probs for p in preds] if spec.needs_samples else None,
            )
            chosen = select(scores, k, texts=[pool[i].text for i in rest], diversity=diversity)
            picks = [rest[j] for j in chosen]
        labeled += picks
    return records


def mean_curves(records: Sequence[dict], key: str = "f1_macro") -> dict[str, dict[int, float]]:
    """Strategy -> {labels: mean of `key` over seeds}."""
    groups: dict[str, dict[int, list[float]]] = {}
    for r in records:
        groups.setdefault(r["strategy"], {}).setdefault(r["labels"], []).append(r[key])
    return {s: {n: statistics.mean(v) for n, v in sorted(c.items())} for s, c in groups.items()}


def labels_to_reach(records: Sequence[dict], reference: str = "random") -> dict[str, int | None]:
    """Labels each strategy needed to reach the reference strategy's final F1 (None: never),
    on F1 averaged over seeds."""
    curves = mean_curves(records)
    if reference not in curves:
        return {}
    ref = curves[reference]
    target = ref[max(ref)]
    out: dict[str, int | None] = {}
    for s, curve in curves.items():
        hit = [n for n, f1 in curve.items() if f1 >= target]
        out[s] = min(hit) if hit else None
    return out


def active_table(records: Sequence[dict]) -> str:
    """Mean macro F1 (over seeds) per round and strategy, and the labels each needed."""
    curves = mean_curves(records)
    sizes = sorted({r["labels"] for r in records})
    head = f"{'labels':>7}" + "".join(f"{s:>18}" for s in curves)
    lines = [head, "-" * len(head)]
    for n in sizes:
        cells = [f"{c[n]:>18.1f}" if n in c else f"{'-':>18}" for c in curves.values()]
        lines.append(f"{n:>7}" + "".join(cells))
    reach = labels_to_reach(records)
    if reach:
        lines.append(
            "labels needed to reach random's final F1: "
            + ", ".join(f"{s} {n if n is not None else 'never'}" for s, n in reach.items())
        )
    return "\n".join(lines)


def plot(records: Sequence[dict], out: str | Path, *, x: str, group: str, title: str) -> None:
    """F1 (mean over seeds, with a band of one standard deviation) against the labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for g in dict.fromkeys(r[group] for r in records):
        xs = sorted({r[x] for r in records if r[group] == g})
        means, sds = [], []
        for v in xs:
            vals = [r["f1_macro"] for r in records if r[group] == g and r[x] == v]
            means.append(statistics.mean(vals))
            sds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
        label = Path(str(g)).name or str(g)
        ax.plot(xs, means, marker="o", label=label)
        ax.fill_between(
            xs,
            [m - s for m, s in zip(means, sds, strict=True)],
            [m + s for m, s in zip(means, sds, strict=True)],
            alpha=0.15,
        )
    ax.set_xlabel("labeled documents")
    ax.set_ylabel("macro span F1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_json(records: Sequence[dict], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(list(records), indent=1) + "\n")
