"""Defaults that the CLI, the UI, the job handlers and the benchmarks all read.

One home for each number: change it here and every entry point follows.
"""

from __future__ import annotations

# Finetuning schedules: at most `epochs` passes over the labeled texts (early stopping on a
# dev split usually ends sooner), peak learning rate `lr`, and at least `min_steps` optimizer
# steps whatever `epochs` says (0 = no floor). A model that takes a rule's tags as evidence
# (acronyms) converges on them faster: 12 epochs at 3e-4 kept SciAD's F1 at 200 labels (92.40
# against 92.31, with rules 93.10 against 93.11, 3 seeds) in 60% of the steps, and its
# 60-step floor kept 50 labels (91.89 against 90.74). A project with its own labels, the
# common case, has no evidence: there the same schedule lost 1.0 on BC5CDR (66.8 against
# 67.8), so it keeps 20 epochs at 2e-4 (docs/benchmarks.md, issue 14).
SCHEDULE = {"epochs": 20, "lr": 2e-4, "min_steps": 0}
SCHEDULE_BY_EVIDENCE = {"acronym": {"epochs": 12, "lr": 3e-4, "min_steps": 60}}
EPOCHS = SCHEDULE["epochs"]
EPOCHS_HELP = (
    f"maximum epochs (default {SCHEDULE_BY_EVIDENCE['acronym']['epochs']} for acronyms, which "
    f"take the rule's tags as evidence, else {EPOCHS}; early stopping may end sooner)"
)


def schedule(evidence: str | None) -> dict:
    """The finetuning schedule of a model taking `evidence` (core.tasks.Task.evidence_for;
    None for none): a dict of epochs, lr and min_steps."""
    return dict(SCHEDULE_BY_EVIDENCE.get(evidence or "", SCHEDULE))


# Aligned or MLM-only pretraining: a wall-clock budget, in minutes.
PRETRAIN_MINUTES = 15.0
# BALD: forward passes with dropout on per document when scoring the pool.
BALD_SAMPLES = 8
# The queue's order when a project has not picked one (a name in core.active.strategies's registry).
STRATEGY = "least_confidence"
# Import: the longest text accepted, in characters (`fewlabel import --max-chars`). A longer
# one is refused with its line: the annotator draws a text whole, and a 50 MB text makes a
# page payload past Streamlit's 200 MB message limit.
MAX_TEXT_CHARS = 100_000
# Import: documents written per transaction. Between two, SQLite's write lock is free, so
# annotators keep saving during a long import (core.io.staging holds the rows back until the end).
IMPORT_BATCH = 2_000
# Bulk work (`fewlabel import`, job workers) runs at this CPU niceness, so on a busy machine
# the annotators' saves get a core first (core.config.background_priority). Measured with 8
# annotators and a 600k-line import on 2 cores: saves' p95 while importing 86-91 ms against
# 119-120 ms at the same priority, the import 62-65 s against 50 s (docs/operations.md).
BACKGROUND_NICE = 10

# Texts a new version scores before it orders the queue (core.active.candidates.candidate_ids): half
# the old queue's head, half a fresh random sample; the rest is scored in the background.
# About 10 s of scoring on a 2-core CPU (300 texts/s), whatever the size of the pool.
CANDIDATES = 3000

# The annotator's clock: the most seconds one answer (a save, a skip, a decision) is credited
# with, from the text or suggestion shown to the answer. An annotator who leaves a text open
# over lunch is not working: time beyond the cap is idle, not work (core.labeling.clock.capped).
# Two minutes is past the slowest sentences measured (Wei et al. 2019: about 1 s a word) and
# short of a break.
IDLE_CAP_S = 120.0
