"""Defaults that the CLI, the UI, the job handlers and the benchmarks all read.

One home for each number: change it here and every entry point follows.
"""

from __future__ import annotations

# Finetuning: at most this many passes over the labeled texts (early stopping on a dev split
# usually ends sooner).
EPOCHS = 20
# Aligned or MLM-only pretraining: a wall-clock budget, in minutes.
PRETRAIN_MINUTES = 15.0
# BALD: forward passes with dropout on per document when scoring the pool.
BALD_SAMPLES = 8
# The queue's order when a project has not picked one (a name in core.active's registry).
STRATEGY = "least_confidence"
