"""Defaults that the CLI, the UI, the job handlers and the benchmarks all read.

One home for each number: change it here and every entry point follows.
"""

from __future__ import annotations

# Finetuning: at most this many passes over the labeled texts (early stopping on a dev split
# usually ends sooner), at TrainArgs.lr = 2e-4. Issue 14's faster schedule, 12 epochs at 3e-4,
# kept SciAD's F1 at 200 labels (92.40 against 92.31, 3 seeds) in 60% of the steps but lost
# 1.0 on BC5CDR's custom labels (66.8 against 67.8): a project with its own labels, the common
# case, has no rule evidence to converge on, so the longer schedule stays (docs/benchmarks.md).
EPOCHS = 20
# At least this many optimizer steps, whatever `epochs` says (TrainArgs.min_steps); 0 = off.
MIN_STEPS = 0
# Aligned or MLM-only pretraining: a wall-clock budget, in minutes.
PRETRAIN_MINUTES = 15.0
# BALD: forward passes with dropout on per document when scoring the pool.
BALD_SAMPLES = 8
# The queue's order when a project has not picked one (a name in core.active's registry).
STRATEGY = "least_confidence"
# Import: the longest text accepted, in characters (`fewlabel import --max-chars`). A longer
# one is refused with its line: the annotator draws a text whole, and a 50 MB text makes a
# page payload past Streamlit's 200 MB message limit.
MAX_TEXT_CHARS = 100_000
# Import: documents written per transaction. Between two, SQLite's write lock is free, so
# annotators keep saving during a long import (core.staging holds the rows back until the end).
IMPORT_BATCH = 2_000

# Texts a new version scores before it orders the queue (core.candidates.candidate_ids): half
# the old queue's head, half a fresh random sample; the rest is scored in the background.
# About 10 s of scoring on a 2-core CPU (300 texts/s), whatever the size of the pool.
CANDIDATES = 3000
