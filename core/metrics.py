"""Exact-match span precision, recall and F1: per label, macro (the SciAD metric) and micro.

Pure Python/numpy, no torch: the benchmark, the jobs and the UI all call it. A predicted span
counts only when start, end and label all equal a gold span's (the conlleval/seqeval rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.text import Span


def _as_span(s: Span | dict) -> Span:
    return s if isinstance(s, Span) else Span(int(s["start"]), int(s["end"]), str(s["label"]))


def _prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall, F1; 0.0 where a denominator is zero (sklearn's zero_division=0)."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1


def span_prf(
    gold: Sequence[Iterable[Span | dict]],
    pred: Sequence[Iterable[Span | dict]],
    labels: Sequence[str],
) -> dict:
    """Span P/R/F1 (0..1) per label, macro F1 (mean over `labels`) and micro P/R/F1.

    `gold[i]` and `pred[i]` are the spans of document i (Span objects or {start,end,label}
    dicts); duplicates within a document count once. The macro mean runs over every label in
    `labels`, so a label never predicted nor present scores 0 and pulls the mean down (SciAD's
    official metric is this mean over SHORT and LONG). Spans with a label outside
    `labels` are ignored. The result is plain floats and ints, ready for json.dumps.
    """
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} documents but pred has {len(pred)}")
    wanted = list(dict.fromkeys(labels))
    tp = dict.fromkeys(wanted, 0)
    n_gold = dict.fromkeys(wanted, 0)
    n_pred = dict.fromkeys(wanted, 0)
    for g_doc, p_doc in zip(gold, pred, strict=True):
        g = {s for s in map(_as_span, g_doc) if s.label in tp}
        p = {s for s in map(_as_span, p_doc) if s.label in tp}
        for s in g:
            n_gold[s.label] += 1
        for s in p:
            n_pred[s.label] += 1
        for s in g & p:
            tp[s.label] += 1
    per_label = {}
    for label in wanted:
        p, r, f1 = _prf(tp[label], n_pred[label], n_gold[label])
        per_label[label] = {
            "p": p,
            "r": r,
            "f1": f1,
            "support": n_gold[label],
            "predicted": n_pred[label],
            "tp": tp[label],
        }
    p_micro, r_micro, f1_micro = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    f1_macro = sum(v["f1"] for v in per_label.values()) / len(wanted) if wanted else 0.0
    return {
        "per_label": per_label,
        "f1_macro": f1_macro,
        "f1_micro": f1_micro,
        "p_micro": p_micro,
        "r_micro": r_micro,
        "support": sum(n_gold.values()),
        "documents": len(gold),
    }
