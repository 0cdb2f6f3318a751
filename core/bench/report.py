"""What the benchmarks' records say: tables of means, the labels a strategy needed, plots,
and the JSON file other tools read."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def _mean_sd(values: Sequence[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def metric_key(task: str) -> str:
    """The figure a task is judged by: SciAD's macro mean over SHORT and LONG for acronyms,
    micro span F1 for a custom label set (as BC5CDR and NER results are reported)."""
    return "f1_micro" if task == "custom" else "f1_macro"


def fewshot_table(records: Sequence[dict], key: str = "f1_macro") -> str:
    """Mean ± standard deviation of `key` (macro F1) per base (rows) and N (columns)."""
    frame = pd.DataFrame(records)
    cells = frame.groupby(["base", "n"], sort=False)[key].agg(_mean_sd).unstack("n")
    bases = list(dict.fromkeys(frame["base"]))  # in the order they ran
    cells = cells.reindex(index=bases, columns=sorted(cells.columns)).fillna("-")
    cells.columns = [f"n={n}" for n in cells.columns]
    cells.index = [Path(b).name or b for b in cells.index]
    cells.index.name = "base"
    return cells.to_string()


def mean_curves(records: Sequence[dict], key: str = "f1_macro") -> dict[str, dict[int, float]]:
    """Strategy -> {labels: mean of `key` over seeds}."""
    groups: dict[str, dict[int, list[float]]] = {}
    for r in records:
        groups.setdefault(r["strategy"], {}).setdefault(r["labels"], []).append(r[key])
    return {s: {n: statistics.mean(v) for n, v in sorted(c.items())} for s, c in groups.items()}


def labels_to_reach(
    records: Sequence[dict], reference: str = "random", key: str = "f1_macro"
) -> dict[str, int | None]:
    """Labels each strategy needed to reach the reference strategy's final F1 (None: never),
    on F1 averaged over seeds."""
    curves = mean_curves(records, key)
    if reference not in curves:
        return {}
    ref = curves[reference]
    target = ref[max(ref)]
    out: dict[str, int | None] = {}
    for s, curve in curves.items():
        hit = [n for n, f1 in curve.items() if f1 >= target]
        out[s] = min(hit) if hit else None
    return out


def active_table(records: Sequence[dict], key: str = "f1_macro") -> str:
    """Mean `key` (macro F1, over seeds) per round and strategy, and the labels each needed."""
    frame = pd.DataFrame(mean_curves(records, key)).sort_index()
    frame.index.name = "labels"
    text = frame.to_string(float_format=lambda v: f"{v:.1f}", na_rep="-")
    reach = labels_to_reach(records, key=key)
    if reach:
        text += "\nlabels needed to reach random's final F1: " + ", ".join(
            f"{s} {n if n is not None else 'never'}" for s, n in reach.items()
        )
    return text


def plot(
    records: Sequence[dict],
    out: str | Path,
    *,
    x: str,
    group: str,
    title: str,
    key: str = "f1_macro",
) -> None:
    """F1 (mean over seeds, with a band of one standard deviation) against the labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for g in dict.fromkeys(r[group] for r in records):
        xs = sorted({r[x] for r in records if r[group] == g})
        means, sds = [], []
        for v in xs:
            vals = [r[key] for r in records if r[group] == g and r[x] == v]
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
    ax.set_ylabel(f"{'micro' if key == 'f1_micro' else 'macro'} span F1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_json(records: Sequence[dict], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(list(records), indent=1) + "\n")
