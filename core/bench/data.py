"""What every benchmark shares: labeled files read in a task's labels, one finetuning recipe,
and span P/R/F1 on a test file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from core.errors import FewlabelError
from core.io.labeled import LabeledDoc, read_labeled
from core.metrics import span_prf
from core.tasks import get_task, with_labeler
from core.text import Word

Progress = Callable[[str], None]


def load_labeled(
    path: str | Path, task: str, labels: Sequence[str] | None = None
) -> list[LabeledDoc]:
    """A labeled file (SciAD JSON, CoNLL, JSONL with spans) with labels mapped to the task's
    (a custom task's `labels`, matched case-insensitively; without them, the file's own) and
    spans snapped to whole words (core.io.labeled, as `fewlabel weak eval` reads gold)."""
    if not Path(path).is_file():
        raise FewlabelError(f"{path}: no such file (benchmark data lives in ../shared/benchmarks)")
    found = get_task(task)
    docs = [
        d
        for d in read_labeled(path, lambda label: found.gold_label(label, labels))
        if d.text.strip()
    ]
    if not docs:
        raise FewlabelError(f"{path}: no documents")
    return docs


def task_labels(task: str, labels: Sequence[str] | None = None) -> list[str]:
    """A task's labels; a custom task's are `labels` (validated as a project's are)."""
    if task == "custom" and labels:
        return get_task(task).label_set(labels)
    if task not in with_labeler():
        raise FewlabelError(
            f"benchmarks know the tasks {', '.join(with_labeler())} and custom (with --labels), "
            f"not {task!r}"
        )
    return get_task(task).label_set()


def file_labels(docs: Sequence[LabeledDoc]) -> list[str]:
    """The labels a file's spans use, in order of first use."""
    return list(dict.fromkeys(sp.label for d in docs for sp in d.spans))


@dataclass(frozen=True)
class Setup:
    """A benchmark's task, its training and test documents, and how every model is finetuned:
    the product's defaults, except the epochs and evidence asked for."""

    task: str
    labels: list[str]
    train: list[LabeledDoc]
    test: list[LabeledDoc]
    epochs: int | None
    evidence: bool | None
    progress: Progress
    patterns: tuple = ()  # a custom task's user patterns (core.weak.patterns), if given

    @classmethod
    def load(
        cls,
        task: str,
        train_path: str | Path,
        test_path: str | Path,
        *,
        epochs: int | None,
        evidence: bool | None,
        progress: Progress,
        labels: Sequence[str] | None = None,
        patterns_path: str | Path | None = None,
    ) -> Setup:
        """A custom task without `labels` takes the training file's own."""
        train = load_labeled(train_path, task, labels)
        labels = task_labels(task, labels or (file_labels(train) if task == "custom" else None))
        test = load_labeled(test_path, task, labels)
        patterns: tuple = ()
        if patterns_path is not None:
            from core.weak.patterns import parse_patterns

            if not Path(patterns_path).is_file():
                raise FewlabelError(f"{patterns_path}: no such file")
            with open(patterns_path, encoding="utf-8-sig") as f:
                patterns = tuple(parse_patterns(f, str(patterns_path), labels))
        return cls(task, labels, train, test, epochs, evidence, progress, patterns)

    @cached_property
    def corpus(self) -> list[tuple[str, list[Word]]]:
        """All training texts, labels unused: unlabeled text is free, so pretraining reads all
        of it, and so does evidence that learns corpus statistics, as a project's learns them
        from all of its texts."""
        return [(d.text, d.words) for d in self.train]

    def finetune(self, docs: Sequence[LabeledDoc], *, base: str, seed: int):
        """A model finetuned on `docs` from `base` (core.model.finetune's result)."""
        from core.model.finetune import TrainArgs, finetune

        epochs = {"epochs": self.epochs} if self.epochs else {}
        args = TrainArgs(seed=seed, evidence=self.evidence, **epochs)
        examples = [(d.text, d.words, d.spans) for d in docs]
        return finetune(
            examples, self.labels, task=self.task, base=base, args=args, corpus=self.corpus
        )


def evaluate(model, test: Sequence[LabeledDoc], labels: Sequence[str]) -> dict:
    """Span P/R/F1 of a model's own predictions (no decode-time rules) on labeled documents."""
    return evaluate_variants(model, test, labels)[""]


def evaluate_variants(
    model, test: Sequence[LabeledDoc], labels: Sequence[str], *, task: str = "custom"
) -> dict:
    """{"": the model alone, "+rules": with the task's decode-time rules merged in}.

    One forward pass serves both; "+rules" is absent for a task without rules.
    """
    from core.model.predict import predict
    from core.model.rules import apply_rules

    preds = predict(model, [(d.text, d.words) for d in test], rules=False)
    gold = [d.spans for d in test]
    out = {"": span_prf(gold, [p.spans for p in preds], labels)}
    rule_set = get_task(task).rules
    if rule_set:
        merged = [
            apply_rules(rule_set, d.text, d.words, p.spans)
            for d, p in zip(test, preds, strict=True)
        ]
        out["+rules"] = span_prf(gold, merged, labels)
    return out
