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


# Cross-validation (core.model.crossval trains the folds; what follows is the arithmetic and
# the wording every view shares, so the page, the CLI and the chart say the same thing).
CV_FOLDS = 5
# Two folds of two texts: with fewer, nothing can be held out while the rest still trains.
CV_MIN_TEXTS = 4


def fold_count(n_texts: int, folds: int = CV_FOLDS) -> int:
    """Folds for `n_texts`: `folds`, fewer so that each holds at least two texts, 0 if < 2."""
    k = min(folds, n_texts // 2)
    return k if k >= 2 else 0


def mean_sd(values: Sequence[float]) -> dict:
    """{"mean", "sd"} with the sample standard deviation (n - 1); sd 0.0 for one value."""
    n = len(values)
    if n == 0:
        return {"mean": None, "sd": None}
    mean = sum(values) / n
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return {"mean": mean, "sd": sd}


def summarize_folds(folds: Sequence[dict], pooled: dict, labels: Sequence[str]) -> dict:
    """metrics["cv"] from each fold's span_prf (plus its "seconds") and span_prf of all the
    out-of-fold predictions pooled.

    Micro F1 is averaged over folds with its spread. A label's F1 is averaged only over the
    folds where it was in the gold or predicted: in a fold of a few texts a rare label is
    often absent, and counting that as 0 (as span_prf's macro does) would measure fold size.
    """
    per_label = {}
    for label in dict.fromkeys(labels):
        seen = [f["per_label"][label] for f in folds]
        present = [m["f1"] for m in seen if m["support"] or m["predicted"]]
        per_label[label] = {
            **mean_sd(present),
            "folds": len(present),
            "support": sum(m["support"] for m in seen),
        }
    return {
        "folds": len(folds),
        "texts": sum(f["documents"] for f in folds),
        "spans": sum(f["support"] for f in folds),
        "f1_micro": mean_sd([f["f1_micro"] for f in folds]),
        "per_label": per_label,
        "pooled": {
            "f1_micro": pooled["f1_micro"],
            "f1_macro": pooled["f1_macro"],
            "per_label": {k: v["f1"] for k, v in pooled["per_label"].items()},
        },
        "per_fold": [
            {
                "texts": f["documents"],
                "spans": f["support"],
                "f1_micro": f["f1_micro"],
                "seconds": f.get("seconds"),
            }
            for f in folds
        ],
        "seconds": sum(f.get("seconds") or 0.0 for f in folds),
    }


def percent(value: float | None, sd: float | None = None) -> str:
    """A 0..1 score as a percentage with one decimal, "± sd" beside it when given."""
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}" + (f" ± {100 * sd:.1f}" if sd is not None else "")


def headline(metrics: dict | None, n_labels: int, min_dev: int = 40) -> dict:
    """The figure to show for a version, with what it was measured on.

    Cross-validated F1 when the version has it (it only runs when the dev slice is too small
    to trust), else the dev slice's, else why neither was measured. Returns "by" (a phrase or
    None), "f1" and "sd" (0..1 or None), "per_label" {label: (f1, sd)} (f1 None where the
    label was neither in the held-out gold nor predicted), "texts", "spans"
    (held out) and "note" (a sentence to show instead of a number, or None). `min_dev` is the
    dev slice's threshold, for versions trained before cross-validation existed.
    """
    metrics = metrics or {}
    cv, dev = metrics.get("cv"), metrics.get("dev")
    if cv:
        return {
            "by": f"{cv['folds']}-fold cross-validation",
            "f1": cv["f1_micro"]["mean"],
            "sd": cv["f1_micro"]["sd"],
            "per_label": {k: (v["mean"], v["sd"]) for k, v in cv["per_label"].items()},
            "texts": cv["texts"],
            "spans": cv["spans"],
            "note": None,
        }
    if dev:
        return {
            "by": "dev slice",
            "f1": dev["f1_micro"],
            "sd": None,
            "per_label": {
                k: (v["f1"] if v["support"] or v["predicted"] else None, None)
                for k, v in dev["per_label"].items()
            },
            "texts": dev.get("documents", metrics.get("n_dev")),
            "spans": dev.get("support"),
            "note": None,
        }
    # below CV_MIN_TEXTS nothing can be measured; above it, cross-validation was off (or the
    # version predates it) and the dev slice needs `min_dev` labels
    floor = CV_MIN_TEXTS if n_labels < CV_MIN_TEXTS else min_dev
    return {
        "by": None,
        "f1": None,
        "sd": None,
        "per_label": {},
        "texts": None,
        "spans": None,
        "note": f"not measured: fewer than {floor} labels",
    }
