"""The product loop of a project, simulated honestly for the few-example benchmark.

For N gold texts the weak sources are built only from those N labels (core.weak.sources:
`assemble`, as a project's are in core.labeling.weak_sources): the task's built-in labeler (acronym
and concept tasks) weighted by its precision on the N, their dictionary, the user's patterns
when given (fitted on the N), and the confident spans of a model trained on the N, over the
unlabeled pool: the rest of the training file plus any `--pool` texts (a project's other
texts). The model's threshold is chosen on texts it did not train on: two teachers, each
trained on half of the N and scored on the other half. Then aligned pretraining on the pool
with those weak labels, from the benchmark's backbone as a project's Build starts from its
base model, and the `aligned` base is finetuned on the same N. Nothing comes from the test file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.bench.data import LabeledDoc, Setup
from core.labeling.weak_sources import builtin_source
from core.text import Span
from core.weak.sources import (
    ModelSpans,
    WeakSources,
    assemble,
    choose_threshold,
    scored_spans,
)


def _scored(model, docs: Sequence[tuple[str, list]]) -> list[list[tuple[Span, float]]]:
    from core.model.predict import predict

    return [scored_spans(p.spans) for p in predict(model, docs)]


def sources_for(
    setup: Setup,
    sample: Sequence[LabeledDoc],
    pool: Sequence[LabeledDoc],
    *,
    seed: int,
    model,
    backbone: str = "default",
) -> WeakSources:
    """The weak sources a project with these N labels and this `model` (trained on them) has,
    prepared over the pool."""
    labeled = [(d.text, d.words, d.spans) for d in sample]
    halves = [list(sample[0::2]), list(sample[1::2])]
    scored, gold = [], []
    for k in (0, 1):
        if not halves[k] or not halves[1 - k]:
            continue
        teacher = setup.finetune(halves[k], base=backbone, seed=seed).model
        other = halves[1 - k]
        scored += _scored(teacher, [(d.text, d.words) for d in other])
        gold += [d.spans for d in other]
    docs = [(d.text, d.words) for d in pool]
    by_text = dict(zip((d.text for d in pool), _scored(model, docs), strict=True))
    builtin = builtin_source(setup.task, [d.text for d in [*sample, *pool]])
    model_spans = None
    if gold:
        threshold, precision = choose_threshold(scored, gold)
        model_spans = ModelSpans(
            lambda ds: [by_text.get(t, []) for t, _ in ds], threshold, precision
        )
    sources = assemble(labeled, builtin=builtin, patterns=setup.patterns, model=model_spans)
    weak, silent = WeakSources(sources).prepared(docs)
    if silent:
        setup.progress(f"weak sources {', '.join(silent)}: matched nothing, left out")
    return weak


def aligned_base(
    setup: Setup,
    sample: Sequence[LabeledDoc],
    *,
    seed: int,
    model,
    work: Path,
    backbone: str,
    minutes: float,
    steps: int | None,
    extra: Sequence[LabeledDoc] = (),
) -> tuple[str, dict]:
    """Pretrain the aligned base of one (N, seed) and return (its folder, its weak sources).
    Its pool is the training file less the N, plus the `extra` unlabeled texts."""
    from core.jobs.training import pretrain_args
    from core.model.pretrain import pretrain

    taken = {id(d) for d in sample}
    pool = [d for d in setup.train if id(d) not in taken] + list(extra)
    target = work / f"aligned-{setup.task}-n{len(sample)}-seed{seed}"
    weak = sources_for(setup, sample, pool, seed=seed, model=model, backbone=backbone)
    described = weak.describe()
    # a finished run found there ends at once (its budget is spent); an unfinished one resumes
    budget = f"{steps} steps" if steps else f"{minutes} min"
    setup.progress(
        f"pretraining aligned n={len(sample)} seed={seed} from {weak.__name__} ({budget})"
    )
    pretrain(
        [(d.text, d.words) for d in pool],
        task=setup.task,
        labels=setup.labels,
        labeler=weak,
        out_dir=target,
        args=pretrain_args("aligned", backbone, steps=steps, minutes=minutes),
        corpus_names=[
            f"{setup.task} benchmark pool (training file less the {len(sample)}"
            + (f", plus {len(extra)} pool texts)" if extra else ")")
        ],
    )
    return str(target), described
