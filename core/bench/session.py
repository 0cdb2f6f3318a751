"""`fewlabel bench session`: a simulated annotator, answering from the gold labels, works
through a budget of minutes in each mode; F1 on the test file at each budget.

Modes, as the app offers them:

- `manual`: the uncertainty queue (the project's default strategy, least confidence; random
  order before the first model), every gold span of a text marked by hand.
- `correct`: the same queue, the model's confident suggestions (at or above the app's
  pre-fill threshold, core.labeling.prefill) pre-filled: a right one is kept, a wrong one
  removed, the rest of the gold spans marked by hand.
- `teach`: binary decisions on the model's suggestions most uncertain across the pool
  (confidence nearest 0.5, as Prodigy's prefer_uncertain): accept when the suggestion is a
  gold span exactly, else reject. Before the first model the suggestions come from the
  `--patterns` file; without one the annotator marks texts by hand (as manual) until the first
  retrain. The model trains from the partial answers with the partial-answer loss of the one
  training loop (issue 22), which this mode needs.

What each action costs is core.bench.costs (published constants). The retraining policy is the
app's: after every `retrain_minutes` (5) simulated minutes of work the model is retrained on
everything answered so far, from the mode's base, and the queue or suggestions are rebuilt
from it. At each budget in `minutes` the model trained on what was answered by then is
scored (micro and macro span F1 on the test file). Simulated time is the annotator's alone:
training time is not charged (the app trains in the background while the annotator works).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.bench.costs import ASSISTED, Costs
from core.bench.data import LabeledDoc, Progress, Setup, evaluate
from core.errors import FewlabelError
from core.text import Span

MODES = ("manual", "correct", "teach")
RETRAIN_MINUTES = 5.0
# a near-miss suggestion for teach: a run of words whose chance of being in a span is this high
CANDIDATE_MIN = 0.2


@dataclass
class Action:
    """One thing the annotator did: a text saved (its spans) or a decision on a suggestion."""

    doc: int
    seconds: float
    spans: list[Span] = field(default_factory=list)  # a saved text's spans
    answer: str | None = None  # "accept" | "reject" for a decision
    suggestion: Span | None = None
    kept: int = 0
    removed: int = 0


@dataclass
class Run:
    """One simulated session: its mode, base, seed, the annotator's log and clock."""

    mode: str
    base: str
    seed: int
    log: list[Action] = field(default_factory=list)
    clock: float = 0.0

    def answered(self, upto: int | None = None) -> tuple[dict[int, list[Span]], dict]:
        """(saved texts -> spans, decided texts -> (accepted, rejected)) in the first `upto`
        actions. A saved text's full annotation wins over decisions on it."""
        full: dict[int, list[Span]] = {}
        partial: dict[int, tuple[list[Span], list[Span]]] = {}
        for a in self.log[:upto]:
            if a.answer is None:
                full[a.doc] = a.spans
            else:
                acc, rej = partial.setdefault(a.doc, ([], []))
                (acc if a.answer == "accept" else rej).append(a.suggestion)
        return full, {d: p for d, p in partial.items() if d not in full}


def _cost(action: Action, doc: LabeledDoc, costs: Costs) -> float:
    words, spans = len(doc.words), len(doc.spans)
    if action.answer is not None:
        return costs.decision(words, spans)
    if action.kept or action.removed:
        return costs.correct(words, spans, action.kept, action.removed)
    return costs.manual(words, spans)


class Session:
    """The pool, test file, costs and training of every run."""

    def __init__(self, setup: Setup, costs: Costs, *, retrain_minutes: float, pool_size: int):
        self.setup = setup
        self.costs = costs
        self.retrain_s = 60.0 * retrain_minutes
        self.pool = setup.train[:pool_size] if pool_size else setup.train
        self._models: dict = {}

    def train(self, run: Run, upto: int, base: str):
        """The model trained on the first `upto` actions of a run (None before any span),
        cached by what it saw."""
        full, partial = run.answered(upto)
        key = (run.mode, run.base, run.seed, tuple(sorted(full)), tuple(sorted(partial)), upto)
        if key not in self._models:
            docs = [LabeledDoc(self.pool[i].text, self.pool[i].words, s) for i, s in full.items()]
            if partial:
                model = _train_partial(self.setup, docs, self._partial(partial), base, run.seed)
            elif not any(d.spans for d in docs):
                model = None
            else:
                model = self.setup.finetune(docs, base=base, seed=run.seed).model
            self._models = {key: model}  # keep one: memory, and runs go forward
        return self._models[key]

    def _partial(self, partial: dict) -> list[tuple[str, list, list[Span], list[Span]]]:
        return [(self.pool[i].text, self.pool[i].words, a, r) for i, (a, r) in partial.items()]

    def step(self, run: Run, action: Action) -> None:
        action.seconds = _cost(action, self.pool[action.doc], self.costs)
        run.clock += action.seconds
        run.log.append(action)


def _train_partial(setup: Setup, docs: list[LabeledDoc], partial: list, base: str, seed: int):
    """A model trained on full annotations and partial answers (accepted and rejected spans)
    through the one training loop's partial-answer loss (core.model.partial, issue 22)."""
    import inspect

    from core.model.finetune import TrainArgs, finetune

    if "partial" not in inspect.signature(finetune).parameters:
        raise FewlabelError(
            "bench session --modes teach needs training from partial answers "
            "(issue 22: finetune(partial=...)), which this tree does not have"
        )
    epochs = {"epochs": setup.epochs} if setup.epochs else {}
    args = TrainArgs(seed=seed, evidence=setup.evidence, **epochs)
    examples = [(d.text, d.words, d.spans) for d in docs]
    result = finetune(
        examples,
        setup.labels,
        task=setup.task,
        base=base,
        args=args,
        corpus=setup.corpus,
        partial=partial,
    )
    return result.model


def _queue(session: Session, run: Run, model, rng: random.Random) -> tuple[list[int], dict]:
    """Unsaved pool texts, most uncertain first (random order without a model), and the
    model's suggestions ({text: [(Span, confidence)]}) from the same pass."""
    from core.active.scoring import predict_and_score
    from core.active.strategies import get_strategy

    full, _ = run.answered()
    rest = [i for i in range(len(session.pool)) if i not in full]
    if model is None:
        rng.shuffle(rest)
        return rest, {}
    docs = [(session.pool[i].text, session.pool[i].words) for i in rest]
    preds, scores = predict_and_score(model, docs, get_strategy("least_confidence"))
    shown = {
        i: [(Span(s["start"], s["end"], s["label"]), s["confidence"]) for s in p.spans]
        for i, p in zip(rest, preds, strict=True)
    }
    return [rest[j] for j in np.argsort(-scores, kind="stable")], shown


def _suggestions(session: Session, model, indices: Sequence[int]) -> dict[int, list[tuple]]:
    """Each text's suggestions as (Span, confidence): the model's decoded spans plus runs of
    words it thinks may be in a span (near misses), or the patterns' matches without a model."""
    pool = session.pool
    if model is None:
        from core.weak.patterns import match

        return {
            i: [
                (sp, 1.0)
                for p in session.setup.patterns
                for sp in match(p, pool[i].text, pool[i].words)
            ]
            for i in indices
        }
    from core.model.predict import predict

    preds = predict(model, [(pool[i].text, pool[i].words) for i in indices], rules=False)
    out = {}
    for i, p in zip(indices, preds, strict=True):
        spans = [(Span(s["start"], s["end"], s["label"]), s["confidence"]) for s in p.spans]
        out[i] = spans + _near_misses(pool[i].words, p.word_probs, model.tags, spans)
    return out


def _near_misses(words, probs: np.ndarray, tags: Sequence[str], spans: list) -> list[tuple]:
    """Runs of words outside the decoded spans whose probability of not being O is at least
    CANDIDATE_MIN, labeled by their likeliest label, with that mean probability."""
    if probs.size == 0 or "O" not in tags:
        return []
    covered = {k for k, w in enumerate(words) for sp, _ in spans if sp.start <= w.start < sp.end}
    inside = 1.0 - probs[:, list(tags).index("O")]
    out, k = [], 0
    while k < len(words):
        if inside[k] < CANDIDATE_MIN or k in covered:
            k += 1
            continue
        j = k
        while j + 1 < len(words) and inside[j + 1] >= CANDIDATE_MIN and j + 1 not in covered:
            j += 1
        mass: dict[str, float] = {}
        for t, name in enumerate(tags):
            if name != "O":
                mass[name[2:]] = mass.get(name[2:], 0.0) + float(probs[k : j + 1, t].sum())
        label = max(mass, key=mass.get)
        out.append((Span(words[k].start, words[j].end, label), float(inside[k : j + 1].mean())))
        k = j + 1
    return out


def _work_texts(session: Session, run: Run, model, rng: random.Random, until: float) -> None:
    """Manual or correct mode until the clock reaches `until` or the pool runs out."""
    from core.labeling.prefill import PREFILL_THRESHOLD

    order, suggested = _queue(session, run, model, rng)
    for i in order:
        gold = session.pool[i].spans
        action = Action(doc=i, seconds=0.0, spans=list(gold))
        if run.mode == "correct" and i in suggested:
            shown = [sp for sp, conf in suggested[i] if conf >= PREFILL_THRESHOLD]
            action.kept = sum(sp in gold for sp in shown)
            action.removed = len(shown) - action.kept
        session.step(run, action)
        if run.clock >= until:
            return


def _work_decisions(session: Session, run: Run, model, rng: random.Random, until: float) -> None:
    """Teach mode until the clock reaches `until`: decisions on the most uncertain suggestions
    of the texts not yet saved; by hand (as manual) when there is nothing to suggest."""
    full, partial = run.answered()
    rest = [i for i in range(len(session.pool)) if i not in full]
    asked = {(a.doc, a.suggestion) for a in run.log if a.answer is not None}
    found = (
        _suggestions(session, model, rest) if (model is not None or session.setup.patterns) else {}
    )
    ranked = sorted(
        (
            (abs(conf - 0.5), i, sp)
            for i, spans in found.items()
            for sp, conf in spans
            if (i, sp) not in asked
        ),
        key=lambda t: (t[0], t[1], t[2].start),
    )
    if not ranked:
        return _work_texts(session, run, model, rng, until)
    for _, i, sp in ranked:
        answer = "accept" if sp in session.pool[i].spans else "reject"
        session.step(run, Action(doc=i, seconds=0.0, answer=answer, suggestion=sp))
        if run.clock >= until:
            return
    return None


def simulate(session: Session, run: Run, minutes: Sequence[float], base: str) -> list[dict]:
    """One run to the largest budget, retraining every RETRAIN period; a record per budget."""
    rng = random.Random(run.seed)
    horizon = 60.0 * max(minutes)
    model = None
    while run.clock < horizon and len(run.log) < 10 * len(session.pool):
        before = len(run.log)
        until = min(run.clock + session.retrain_s, horizon)
        work = _work_decisions if run.mode == "teach" else _work_texts
        work(session, run, model, rng, until)
        if len(run.log) == before:
            break  # nothing left to do
        model = session.train(run, len(run.log), base)
    return [_record(session, run, m, base) for m in sorted(minutes)]


def _record(
    session: Session, run: Run, minutes: float, base: str, costs: Costs | None = None
) -> dict:
    """F1 of the model trained on what was answered within `minutes`."""
    upto, clock = 0, 0.0
    costs = costs or session.costs
    for a in run.log:
        seconds = _cost(a, session.pool[a.doc], costs)
        if clock + seconds > 60.0 * minutes:
            break
        clock += seconds
        upto += 1
    full, partial = run.answered(upto)
    model = session.train(run, upto, base)
    scores = evaluate(model, session.setup.test, session.setup.labels) if model else None
    decisions = sum(a.answer is not None for a in run.log[:upto])
    spans = sum(len(s) for s in full.values()) + sum(len(a) for a, _ in partial.values())
    return {
        "mode": run.mode,
        "base": run.base,
        "minutes": minutes,
        "seed": run.seed,
        "texts": len(full) + len(partial),
        "decisions": decisions,
        "spans": spans,
        "f1_micro": round(100 * scores["f1_micro"], 2) if scores else 0.0,
        "f1_macro": round(100 * scores["f1_macro"], 2) if scores else 0.0,
        "simulated_seconds": round(clock, 1),
    }


def session_bench(
    *,
    task: str,
    train_path: str | Path,
    test_path: str | Path,
    minutes: Sequence[float],
    modes: Sequence[str],
    costs: Costs,
    bases: Sequence[str] = ("base",),
    seed: int = 0,
    seeds: int = 1,
    epochs: int | None = None,
    evidence: bool | None = None,
    labels: Sequence[str] | None = None,
    patterns: str | None = None,
    backbone: str = "default",
    retrain_minutes: float = RETRAIN_MINUTES,
    pool_size: int = 0,
    sensitivity: bool = False,
    progress: Progress = print,
) -> dict:
    """{"costs", "policy", "records", "sensitivity"?}: a record per mode, base, budget, seed."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise FewlabelError(f"--modes: unknown mode {unknown[0]!r}; choose of {', '.join(MODES)}")
    if not minutes or min(minutes) <= 0:
        raise FewlabelError("--minutes: give positive budgets, e.g. 15,30,60")
    setup = Setup.load(
        task,
        train_path,
        test_path,
        epochs=epochs,
        evidence=evidence,
        progress=progress,
        labels=labels,
        patterns_path=patterns,
    )
    session = Session(setup, costs, retrain_minutes=retrain_minutes, pool_size=pool_size)
    records, runs = [], []
    for run_seed, base, mode in itertools.product(range(seed, seed + seeds), bases, modes):
        where = backbone if base == "base" else base
        run = Run(mode=mode, base=Path(base).name or base, seed=run_seed)
        for rec in simulate(session, run, minutes, where):
            progress(
                f"{mode:>8} {run.base} seed={run_seed} {rec['minutes']:g} min: "
                f"{rec['texts']} texts, {rec['decisions']} decisions, "
                f"micro F1 {rec['f1_micro']:.1f}"
            )
            records.append(rec)
        runs.append((run, where))
    out = {"costs": costs.as_dict(), "policy": _policy(retrain_minutes), "records": records}
    if sensitivity:
        out["sensitivity"] = _sensitivity(session, runs, minutes)
    return out


def _policy(retrain_minutes: float) -> str:
    return (
        f"retrain every {retrain_minutes:g} simulated minutes on all answers so far; "
        "least-confidence queue; training time not charged"
    )


def ranking(records: Sequence[dict], minutes: float, key: str = "f1_micro") -> list[str]:
    """Modes by mean `key` at a budget, best first."""
    means: dict[str, list[float]] = {}
    for r in records:
        if r["minutes"] == minutes:
            means.setdefault(r["mode"], []).append(r[key])
    return sorted(means, key=lambda m: -float(np.mean(means[m])))


def _sensitivity(session: Session, runs: list, minutes: Sequence[float]) -> list[dict]:
    """The modes' ranking at each budget with each assisted constant doubled and halved. The
    runs' order of work is kept (replayed with the changed costs, cut at each budget and
    retrained): an approximation, since changed costs would also move the retrain points."""
    out = []
    for name, factor in itertools.product(ASSISTED, (2.0, 0.5)):
        varied = session.costs.scaled(name, factor)
        recs = [_record(session, run, m, where, varied) for run, where in runs for m in minutes]
        out.append(
            {
                "constant": name,
                "factor": factor,
                "ranking": {f"{m:g}": ranking(recs, m) for m in sorted(minutes)},
                "records": recs,
            }
        )
    return out


def session_table(result: dict, key: str = "f1_micro") -> str:
    """Mean `key` per mode and base (rows) and budget (columns), and the sensitivity rankings."""
    import pandas as pd

    frame = pd.DataFrame(result["records"])
    cells = frame.groupby(["mode", "base", "minutes"], sort=False)[key].mean().unstack("minutes")
    cells.columns = [f"{m:g} min" for m in cells.columns]
    text = cells.to_string(float_format=lambda v: f"{v:.1f}")
    for s in result.get("sensitivity", []):
        ranks = "; ".join(f"{m} min: {' > '.join(r)}" for m, r in s["ranking"].items())
        text += f"\n{s['constant']} x{s['factor']:g}: {ranks}"
    return text
