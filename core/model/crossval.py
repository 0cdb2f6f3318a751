"""k-fold cross-validated span F1 of a retrain, for when the dev slice is too small to trust.

Below `min_dev_for_selection` dev texts (50 with the default TrainArgs: below about 500 labels
at a 10% slice) finetune itself judges a dev slice too noisy to pick an epoch; it is as noisy
as a measurement: on 10 texts with ~25 gold spans the standard error of F1 is about 8 points,
on 50 texts about 4. So below that size the train job also finetunes k models, each on all
texts but one fold, with the same TrainArgs and base, and scores each on its held-out fold:
every labeled text is held out once, and the spread over folds shows how far to trust the
mean. The version itself is still the one model trained on every label (less its dev slice).

Cost: k extra finetunes on (k-1)/k of the texts, plus predicting each fold once. Measured on
the tiny test model (6 texts, 3 folds, 3 epochs, 2-core CPU): 0.1-0.3 s a fold, 0.7 s in all,
against 1.2 s for the version's own finetune. For the default MiniLM, from docs/benchmarks.md
("Finetuning took 11-14 s at n = 50", 38-47 s at 200, 83-89 s at 400, same CPU, at 20 epochs):
about 5 x 10 s = 50 s more at 50 labels, 5 x 35 s ~ 3 min at 200, 5 x 80 s ~ 7 min just under
500.
While labels are few a retrain takes about k + 1 times as long; the job says so in its progress.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from core.metrics import CV_FOLDS, CV_MIN_TEXTS, fold_count, span_prf, summarize_folds
from core.model.encoders import DEFAULT
from core.model.finetune import TrainArgs, finetune
from core.model.predict import predict
from core.model.trainer import Example, Progress
from core.text import Word, bio_to_spans, spans_to_bio


def dev_size(n_texts: int, args: TrainArgs) -> int:
    """How many texts finetune holds out as its dev slice (its own rule)."""
    if n_texts >= args.min_dev_examples and args.dev_fraction > 0:
        return max(1, round(n_texts * args.dev_fraction))
    return 0


def wants_cross_validation(n_texts: int, args: TrainArgs) -> bool:
    """True when the dev slice would be too small to pick epochs, hence to report F1 on,
    and there are enough texts to hold some out (core.metrics.CV_MIN_TEXTS)."""
    return n_texts >= CV_MIN_TEXTS and dev_size(n_texts, args) < args.min_dev_for_selection


def cross_validate(
    examples: Sequence[Example],
    labels: Sequence[str],
    *,
    task: str = "custom",
    base: str | os.PathLike | None = DEFAULT,
    args: TrainArgs | None = None,
    folds: int = CV_FOLDS,
    corpus: Sequence[tuple[str, Sequence[Word]]] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict | None:
    """Span F1 of `finetune(examples, labels, task=task, base=base, args=args)` by k-fold
    cross-validation: metrics["cv"] (core.metrics.summarize_folds), or None below
    CV_MIN_TEXTS texts. `folds` drops so that every fold holds at least two texts.

    Folds train on all their texts (no dev slice of their own: below min_dev_for_selection it
    would only report, never select), so each fold model differs from the version only by the
    texts held out. `progress` and `should_stop` are finetune's, over all folds.
    """
    args = args or TrainArgs()
    examples = [ex for ex in examples if len(ex[1]) > 0]
    k = fold_count(len(examples), folds)
    if k == 0:
        return None
    order = list(range(len(examples)))
    random.Random(args.seed).shuffle(order)
    fold_of = {i: pos % k for pos, i in enumerate(order)}
    fold_args = replace(args, dev_fraction=0.0)
    results, all_gold, all_pred = [], [], []
    for f in range(k):
        t0 = time.perf_counter()
        held = [ex for i, ex in enumerate(examples) if fold_of[i] == f]
        train = [ex for i, ex in enumerate(examples) if fold_of[i] != f]

        def fold_progress(x: float, msg: str, f: int = f) -> None:
            if progress is not None:
                progress((f + x) / k, f"cross-validation fold {f + 1}/{k}: {msg}")

        model = finetune(
            train,
            labels,
            task=task,
            base=base,
            args=fold_args,
            corpus=corpus,
            progress=fold_progress,
            should_stop=should_stop,
        ).model
        preds = predict(
            model,
            [(text, words) for text, words, _ in held],
            batch_size=args.batch_size * 2,
            precision=args.precision,
        )
        # gold snapped to words, as the model is trained and finetune's dev slice is scored
        gold = [bio_to_spans(words, spans_to_bio(words, spans)) for _, words, spans in held]
        pred = [p.spans for p in preds]
        m = span_prf(gold, pred, labels)
        m["seconds"] = time.perf_counter() - t0
        results.append(m)
        all_gold += gold
        all_pred += pred
        del model
    return summarize_folds(results, span_prf(all_gold, all_pred, labels), labels)
