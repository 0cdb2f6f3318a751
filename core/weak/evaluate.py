"""Score a weak labeler against a labeled file: span P/R/F1 per label, counts and speed.

Gold labels are mapped onto the task's label space case-insensitively (SciAD "short" ->
SHORT; for the concept task every label is a CONCEPT, so Inspec "KEY" and SemEval
"Process/Task/Material" all count). Gold spans are snapped to word boundaries the way an
import snaps them, since a labeler (and the model) can only tag whole words.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import FewlabelError
from core.io.corpus import read_texts
from core.metrics import span_prf
from core.text import TASK_LABELS, Span, Word, snap_span, words_of

Labeler = Callable[[str, Sequence[Word]], list[Span]]

# Spellings of the acronym labels in public data sets, beyond the labels themselves.
_ALIASES = {
    "acronym": {"sf": "SHORT", "acronym": "SHORT", "lf": "LONG", "expansion": "LONG"},
}


def map_label(task: str, label: str) -> str | None:
    """The task label a gold label stands for, or None when it has none."""
    labels = TASK_LABELS.get(task)
    if labels is None:
        raise FewlabelError(f"weak labelers exist for {', '.join(TASK_LABELS)}, not {task!r}")
    low = label.lower()
    for lbl in labels:
        if lbl.lower() == low:
            return lbl
    if task == "concept":
        return "CONCEPT"  # keyphrases, Process/Task/Material: all concepts of interest
    return _ALIASES.get(task, {}).get(low)


def evaluate_labeler(
    task: str,
    path: str | Path,
    fmt: str = "auto",
    labeler: Labeler | None = None,
    *,
    limit: int | None = None,
    keep_predictions: bool = False,
) -> dict:
    """Run a labeler (default: the task's weak_labeler()) over a labeled file and score it.

    Returns core.metrics.span_prf's dict plus task, path, labeler, seconds (labeling time
    only), texts_per_second, gold_snapped (gold spans moved to word boundaries),
    gold_dropped (spans covering no word), unmapped (gold labels outside the task, by
    label) and unlabeled (records without labels, skipped). With keep_predictions, also
    "items": [{"text", "gold", "pred"}] for error analysis.
    """
    from core.weak import weak_labeler

    labels = list(TASK_LABELS.get(task, ()))
    if not labels:
        raise FewlabelError(f"weak labelers exist for {', '.join(TASK_LABELS)}, not {task!r}")
    if labeler is None:
        labeler = weak_labeler(task)
    gold: list[list[Span]] = []
    pred: list[list[Span]] = []
    items: list[dict] = []
    unmapped: Counter[str] = Counter()
    snapped = dropped = unlabeled = 0
    seconds = 0.0
    for rec in read_texts(path, fmt):
        if rec.spans is None:
            unlabeled += 1
            continue
        words = words_of(rec.text, rec.tokens)
        g: set[Span] = set()
        for sp in rec.spans:
            label = map_label(task, str(sp["label"]))
            if label is None:
                unmapped[str(sp["label"])] += 1
                continue
            start, end = int(sp["start"]), int(sp["end"])
            got = snap_span(start, end, words)
            if got is None:
                dropped += 1
                continue
            snapped += got != (start, end)
            g.add(Span(got[0], got[1], label))
        t0 = time.perf_counter()
        p = labeler(rec.text, words)
        seconds += time.perf_counter() - t0
        gold.append(sorted(g))
        pred.append(list(p))
        if keep_predictions:
            items.append({"text": rec.text, "gold": gold[-1], "pred": pred[-1]})
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
        gold_snapped=snapped,
        gold_dropped=dropped,
        unmapped=dict(unmapped),
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
