"""Score a weak labeler against a labeled file: span P/R/F1 per label, counts and speed.

Gold is read by the one reader of labeled files (core.io.labeled): labels mapped onto the
task's case-insensitively (SciAD "short" -> SHORT; for the concept task every label is a
CONCEPT, so Inspec "KEY" and SemEval "Process/Task/Material" all count: core.tasks), spans
snapped to word boundaries, since a labeler (and the model) can only tag whole words.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import FewlabelError
from core.io.labeled import ReadCounts, read_labeled
from core.metrics import span_prf
from core.tasks import get_task, with_labeler
from core.text import Span, Word

Labeler = Callable[[str, Sequence[Word]], list[Span]]


def map_label(task: str, label: str) -> str | None:
    """The task label a gold label stands for, or None when it has none."""
    return _builtin(task).gold_label(label)


def _builtin(task: str):
    if task not in with_labeler():
        raise FewlabelError(f"weak labelers exist for {', '.join(with_labeler())}, not {task!r}")
    return get_task(task)


def evaluate_labeler(
    task: str,
    path: str | Path,
    fmt: str = "auto",
    labeler: Labeler | None = None,
    *,
    limit: int | None = None,
    keep_predictions: bool = False,
) -> dict:
    """Run a labeler (default: the task's weak labeler) over a labeled file and score it.

    Returns core.metrics.span_prf's dict plus task, path, labeler, seconds (labeling time
    only), texts_per_second, gold_snapped (gold spans moved to word boundaries),
    gold_dropped (spans covering no word), unmapped (gold labels outside the task, by
    label) and unlabeled (records without labels, skipped). With keep_predictions, also
    "items": [{"text", "gold", "pred"}] for error analysis.
    """
    found = _builtin(task)
    labels = found.label_set()
    if labeler is None:
        labeler = found.weak_labeler()
    gold: list[list[Span]] = []
    pred: list[list[Span]] = []
    items: list[dict] = []
    counts = ReadCounts()
    unlabeled = 0
    seconds = 0.0
    for doc in read_labeled(path, found.gold_label, fmt, counts):
        if not doc.labeled:
            unlabeled += 1
            continue
        t0 = time.perf_counter()
        p = labeler(doc.text, doc.words)
        seconds += time.perf_counter() - t0
        gold.append(doc.spans)
        pred.append(list(p))
        if keep_predictions:
            items.append({"text": doc.text, "gold": gold[-1], "pred": pred[-1]})
        if limit is not None and len(gold) >= limit:
            break
    if not gold:
        raise FewlabelError(f"{path}: no labeled records to evaluate against")
    result = span_prf(gold, pred, labels)
    result.update(
        task=task,
        path=str(path),
        labeler=getattr(labeler, "__name__", type(labeler).__name__),
        seconds=seconds,
        texts_per_second=len(gold) / seconds if seconds else float("inf"),
        gold_snapped=counts.snapped,
        gold_dropped=counts.dropped,
        unmapped=dict(counts.unmapped),
        unlabeled=unlabeled,
    )
    if keep_predictions:
        result["items"] = items
    return result


def format_report(result: dict) -> str:
    """A plain-text table of an evaluate_labeler result (percentages)."""
    lines = [
        f"{result.get('labeler', 'labeler')} on {result.get('path', '?')} "
        f"({result.get('task', '?')})",
        f"{'label':<10} {'P':>6} {'R':>6} {'F1':>6} {'support':>8} {'predicted':>9}",
    ]
    for label, m in result["per_label"].items():
        lines.append(
            f"{label:<10} {100 * m['p']:6.1f} {100 * m['r']:6.1f} {100 * m['f1']:6.1f} "
            f"{m['support']:8d} {m['predicted']:9d}"
        )
    lines.append(
        f"macro F1 {100 * result['f1_macro']:.1f}   micro P/R/F1 {100 * result['p_micro']:.1f}"
        f" / {100 * result['r_micro']:.1f} / {100 * result['f1_micro']:.1f}"
    )
    notes = [f"{result['documents']} texts"]
    if "seconds" in result:
        notes.append(f"{result['seconds']:.2f} s ({result['texts_per_second']:.0f} texts/s)")
    if result.get("gold_snapped"):
        notes.append(f"{result['gold_snapped']} gold spans snapped to word boundaries")
    if result.get("gold_dropped"):
        notes.append(f"{result['gold_dropped']} gold spans covered no word")
    if result.get("unmapped"):
        notes.append(
            "gold labels ignored: " + ", ".join(f"{k} x{v}" for k, v in result["unmapped"].items())
        )
    lines.append("; ".join(notes))
    return "\n".join(lines)
