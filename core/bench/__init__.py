"""Benchmarks that prove (or disprove) Few Example Learning, with the product's own code.

`fewshot`: for each N and seed, sample N labeled documents, finetune every base the same
way, score span P/R/F1 on a test file. `active`: simulated annotation with gold labels, F1
per round per strategy. Both write JSON records other tools can read, print a table of
means and standard deviations, and can plot F1 against the number of labels.
"""

from core.bench.data import LabeledDoc, evaluate, evaluate_variants, load_labeled, task_labels
from core.bench.fewshot import fewshot, resolve_bases
from core.bench.report import (
    active_table,
    fewshot_table,
    labels_to_reach,
    mean_curves,
    metric_key,
    plot,
    write_json,
)
from core.bench.simulate import active

__all__ = [
    "LabeledDoc",
    "active",
    "active_table",
    "evaluate",
    "evaluate_variants",
    "fewshot",
    "fewshot_table",
    "labels_to_reach",
    "metric_key",
    "load_labeled",
    "mean_curves",
    "plot",
    "resolve_bases",
    "task_labels",
    "write_json",
]
