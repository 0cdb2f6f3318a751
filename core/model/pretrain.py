"""Continued pretraining: objective-aligned (weak tagging + masked LM) or masked LM alone.

The paper's idea (Pierse & Lu, 2020): before finetuning on a few hundred labels, train the
model on an objective of the same form as the task, token tagging with the same label space,
using labels that cost nothing (core.weak), together with masked-LM so the encoder keeps its
language knowledge. The weak-tagging loss goes through the *same* head finetuning uses, so
the checkpoint already tags; `mlm` is the paper's "without objective alignment" baseline.

Both losses are computed on one forward pass over the masked input (half the cost of two
passes; the masking also acts as noise on the weak labels). The masked-LM pieces (the head
the shipped MiniLM lacks, BERT's masking) are core.model.mlm. A checkpoint is a tagger folder
(loadable as a finetuning base) plus `pretrain_state.pt` (MLM head, optimizer, step) for
resuming.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from core.defaults import PRETRAIN_MINUTES
from core.errors import FewlabelError
from core.model.backbone import Tagger, is_tagger_checkpoint
from core.model.device import resolve_device, torch_threads, training_threads
from core.model.distributed import (
    World,
    agree,
    average_gradients,
    barrier,
    broadcast_parameters,
    world_from_env,
)
from core.model.encoders import DEFAULT
from core.model.mlm import MaskedObjective, MLMHead
from core.model.trainer import (
    LossMeter,
    Progress,
    Reporter,
    Trainer,
    seed_everything,
    train_loop,
)
from core.tasks import get_task, with_labeler
from core.text import Word

STATE_FILE = "pretrain_state.pt"


@dataclass
class PretrainArgs:
    """Continued-pretraining arguments (`fewlabel pretrain` and the benchmark's bases)."""

    objective: str = field(default="aligned", metadata={"help": "aligned | mlm"})
    base: str = field(default=DEFAULT, metadata={"help": "backbone id or path"})
    steps: int | None = field(default=None, metadata={"help": "optimizer steps (or max_minutes)"})
    max_minutes: float | None = field(default=None, metadata={"help": "wall-clock budget"})
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mlm_probability: float = 0.15
    mlm_weight: float = 1.0
    tag_weight: float = 1.0
    max_length: int = 128
    seed: int = 13
    freeze_embeddings: bool = True
    shape_features: bool = True
    evidence: bool | None = None  # None: the task's default (core.tasks)
    evidence_dropout: float = 0.5
    shape_lr_mult: float = 10.0
    head_lr_mult: float = 1.0
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    device: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None

    def budget(self) -> tuple[int | None, float | None]:
        """(steps, minutes): core.defaults.PRETRAIN_MINUTES when neither is given."""
        if self.steps is None and self.max_minutes is None:
            return None, PRETRAIN_MINUTES
        return self.steps, self.max_minutes


def weak_examples(texts: Sequence[tuple[str, list[Word]]], labeler):
    """(text, words, weak spans) for every text, labeled by `labeler` (see corpus_labeler);
    no spans without one (the MLM-only objective)."""
    if labeler is None:
        return [(text, words, []) for text, words in texts]
    return [(text, words, labeler(text, words)) for text, words in texts]


def corpus_labeler(task: str, texts: Sequence[tuple[str, list[Word]]], anchors=None):
    """The weak labeler for a pretraining corpus: the task's default, fitted on `texts`; for
    concepts, the corpus's link anchors ({plain text: spans}, core.weak.plain_corpus) first."""
    from core.weak import anchored

    labeler = get_task(task).weak_labeler(corpus=[t for t, _ in texts])
    if anchors and get_task(task).link_anchors:
        labeler = anchored(labeler, anchors)
    return labeler


def pretrain(
    texts: Sequence[tuple[str, list[Word]]],
    *,
    task: str,
    out_dir: str | os.PathLike,
    args: PretrainArgs | None = None,
    labels: Sequence[str] | None = None,
    labeler=None,
    anchors: Mapping[str, Sequence] | None = None,
    corpus_names: Sequence[str] = (),
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Continue pretraining on `texts` and write a checkpoint folder; resumes one found there.

    `labeler` defaults to `corpus_labeler(task, texts, anchors)`: `anchors` are the link
    anchors of a marked-up corpus (core.weak.plain_corpus), concept labels for free. A
    `custom` task takes its `labels`, and for the aligned objective a `labeler` in them (a
    project's weak sources, core.weak.sources.WeakSources).

    Returns the folder, a tagger (`Tagger.load`, or `base` for finetuning) whose tagger.json
    records the objective, corpus, weak labelers, steps, label map and pretraining metrics.
    """
    args = args or PretrainArgs()
    if args.objective not in ("aligned", "mlm"):
        raise FewlabelError(f"unknown objective {args.objective!r}; use aligned or mlm")
    if task in with_labeler():
        labels = get_task(task).label_set()
    elif task != "custom" or not labels:
        raise FewlabelError(
            f"pretraining knows the tasks {', '.join(with_labeler())}, and custom with its labels"
        )
    elif labeler is None and args.objective == "aligned":
        raise FewlabelError("aligned pretraining of a custom task needs its weak sources")
    texts = [(t, w) for t, w in texts if w]
    if not texts:
        raise FewlabelError("the pretraining corpus has no text")
    if labeler is None and args.objective == "aligned":
        labeler = corpus_labeler(task, texts, anchors)
    out = Path(out_dir)
    # oneDNN caches a primitive per tensor shape; pretraining makes new shapes every step and
    # the cache held gigabytes (a 60-step run: 3.1 GB with it, 2.6 GB without, same speed).
    # Read when oneDNN first builds a primitive, so it works when pretraining comes first in
    # its process (the CLI, a job worker, a benchmark's on-the-fly bases).
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")
    # under torchrun: one rank of a data-parallel run (core.model.distributed)
    world = world_from_env()
    device = resolve_device(args.device)
    with torch_threads(training_threads(device, args.num_threads)):
        return _pretrain(
            texts,
            (task, list(labels)),
            out,
            args,
            labeler,
            corpus_names,
            progress,
            should_stop,
            device,
            world,
        )


def _pretrain(
    texts, space, out, args, labeler, corpus_names, progress, should_stop, device, world: World
):
    report = Reporter(progress if world.main else None, every=1.0)
    seed_everything(args.seed)
    task, labels = space
    resume = is_tagger_checkpoint(out) and (out / STATE_FILE).is_file()
    report(0.0, "resuming" if resume else "loading the backbone")
    model = (
        Tagger.load(out, device="cpu")
        if resume
        else Tagger.from_base(
            args.base,
            labels,
            shape_features=args.shape_features,
            # MLM-only is the run without the weak labeler: no evidence either.
            evidence=get_task(task).evidence_for(
                args.evidence if args.objective == "aligned" else False
            ),
        )
    )
    if model.evidence and not resume:
        model.evidence = model.evidence.fit(texts)
    mlm_head = MLMHead(model.word_embeddings())
    # rank 0 alone polls for a cancel (and writes the checkpoint it leaves)
    stop = should_stop if world.main else None
    trainer = Trainer(model, args, device, extra_params=mlm_head.parameters(), should_stop=stop)
    mlm_head.to(device)
    broadcast_parameters([model, mlm_head], world)
    if world.distributed:
        trainer.before_step = lambda: average_gradients(trainer.params, world)

    # the labeler and the evidence were fitted on the whole corpus, the same on every rank;
    # each rank labels and trains on its own shard
    t_label = time.perf_counter()
    examples = weak_examples(world.shard(texts), labeler if args.objective == "aligned" else None)
    n_weak = sum(1 for _, _, spans in examples if spans)
    label_seconds = time.perf_counter() - t_label
    chunks = trainer.chunks(examples)

    seconds_before = _resume(out / STATE_FILE, trainer, mlm_head, device) if resume else 0.0
    # ranks draw different batches and masks from their own shards
    seed = args.seed + trainer.step + 100_003 * world.rank
    objective = MaskedObjective.for_model(
        model,
        mlm_head,
        probability=args.mlm_probability,
        evidence_dropout=args.evidence_dropout,
        generator=torch.Generator().manual_seed(seed),
        mlm_weight=args.mlm_weight,
        tag_weight=args.tag_weight if args.objective == "aligned" else None,
    )
    budget = PretrainBudget(args, trainer.step, seconds_before, world)
    about = _about(args, task, corpus_names, len(texts), world, labeler, n_weak)
    checkpoint = PretrainCheckpoint(out, args, trainer, mlm_head, budget, about, world)
    mlm_head.train()
    ranks = f" on {world.size} ranks" if world.distributed else ""
    report(0.0, f"{len(texts)} texts{ranks}, {n_weak} weakly labeled ({label_seconds:.1f} s)")
    train_loop(
        trainer,
        chunks,
        objective,
        budget,
        batch_size=args.batch_size,
        rng=random.Random(seed),
        report=report,
        checkpoint=checkpoint,
        cancelled="pretraining was cancelled (checkpoint saved)",
    )
    checkpoint.save()
    barrier(world)  # the checkpoint is whole before any rank returns
    report(1.0, f"done: {trainer.step} steps in {budget.seconds():.0f} s")
    return out


def _resume(path: Path, trainer: Trainer, mlm_head: MLMHead, device) -> float:
    """Load a checkpoint's MLM head, optimizer and step; returns the seconds it had run."""
    state = _load_state(path, device)
    mlm_head.load_state_dict(state["mlm_head"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.step = int(state["step"])
    return float(state.get("seconds", 0.0))


class PretrainBudget:
    """Pretraining's budget: `steps`, or `max_minutes` of wall clock counting a resumed run's
    earlier seconds (PretrainArgs.budget). Without a step budget the schedule's horizon is
    estimated from the pace so far. Rank 0's stop and horizon hold on every rank (their
    clocks differ), so `before_step` is one collective call per step."""

    epochs = None  # passes over the shard, reshuffled each time, until the budget is spent

    def __init__(self, args: PretrainArgs, start_step: int, seconds_before: float, world: World):
        self.max_steps, self.max_minutes = args.budget()
        self.warmup_ratio = args.warmup_ratio
        self.start_step, self.seconds_before, self.world = start_step, seconds_before, world
        # The schedule needs a horizon: the step budget, or an estimate refined as we go.
        self.horizon = self.max_steps or max(1, start_step + 1000)
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def seconds(self) -> float:
        """Seconds pretrained, a resumed run's earlier ones included."""
        return self.seconds_before + self.elapsed()

    def spent(self, step: int) -> bool:
        if self.max_steps is not None and step >= self.max_steps:
            return True
        return self.max_minutes is not None and self.seconds() >= 60 * self.max_minutes

    def before_step(self, step: int) -> tuple[bool, int]:
        horizon = self.horizon
        if self.max_steps is None and step > self.start_step + 5:
            # time budget: estimate the total steps from the pace so far
            pace = (step - self.start_step) / max(self.elapsed(), 1e-6)
            remaining = 60 * self.max_minutes - self.seconds_before - self.elapsed()
            horizon = max(step + 1, int(step + pace * remaining))
        stop, horizon = agree([float(self.spent(step)), float(horizon)], self.world)
        self.horizon = int(horizon)
        return bool(stop), self.horizon

    def progress(self, step: int, epoch: int, losses: LossMeter) -> tuple[float, str]:
        if self.max_steps:
            fraction = step / self.max_steps
        else:
            fraction = self.seconds() / (60 * self.max_minutes)
        tag = losses.ema.get("tag")
        tag_note = f" tag {tag:.3f}" if tag is not None else ""
        return fraction, f"step {step}: mlm {losses.ema['mlm']:.3f}{tag_note}"


def _about(args, task, corpus_names, n_texts, world, labeler, n_weak) -> dict:
    """What a checkpoint's pretraining record says of the run besides its progress."""
    aligned = args.objective == "aligned"
    describe = getattr(labeler, "describe", None)
    return {
        "objective": args.objective,
        "task": task,
        "corpus": list(corpus_names),
        "corpus_texts": n_texts,
        "ranks": world.size,
        "weak_labelers": _labeler_name(labeler) if aligned else None,
        # a project's weak sources say what they were built from (core.weak.sources)
        "weak_sources": describe() if aligned and describe else None,
        "weakly_labeled_texts": n_weak,
    }


class PretrainCheckpoint:
    """The checkpoint folder, written by rank 0 (the replicas are identical): a tagger whose
    info["pretraining"] records the run (`about`, steps, seconds, args, moving-average
    losses), and beside it STATE_FILE (MLM head, optimizer, step, seconds) for resuming."""

    def __init__(self, out: Path, args, trainer, mlm_head, budget, about: dict, world: World):
        self.out, self.args, self.trainer, self.mlm_head = out, args, trainer, mlm_head
        self.budget, self.about, self.world = budget, about, world
        self.every = args.checkpoint_every

    def save(self) -> None:
        if not self.world.main:
            return
        trainer, args, out = self.trainer, self.args, self.out
        info = {
            **self.about,
            "steps": trainer.step,
            "pretrain_seconds": round(self.budget.seconds(), 1),
            "pretrain_args": asdict(args),
            "losses": {"tag": trainer.losses.ema.get("tag"), "mlm": trainer.losses.ema.get("mlm")},
        }
        trainer.model.save(out, pretraining=info, objective=args.objective)
        # tensors and plain containers only, so resuming loads it with weights_only=True;
        # written beside and renamed, so a kill mid-save leaves the previous state whole
        tmp = out / f"{STATE_FILE}.tmp"
        torch.save(
            {
                "mlm_head": self.mlm_head.state_dict(),
                "optimizer": trainer.optimizer.state_dict(),
                "step": int(trainer.step),
                "seconds": float(self.budget.seconds()),
            },
            tmp,
        )
        os.replace(tmp, out / STATE_FILE)


def _load_state(path: Path, device) -> dict:
    """The resume state, loaded with weights_only=True: tensors and plain containers, never
    code. A state that needs more (pickled objects) is refused with what to do."""
    import pickle

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise FewlabelError(
            f"{path} holds more than tensors and plain values, which fewlabel will not "
            f"unpickle; delete it to start pretraining over from the saved checkpoint "
            f"({str(exc).splitlines()[0][:120]})"
        ) from None


def _labeler_name(labeler) -> str | None:
    return None if labeler is None else getattr(labeler, "__name__", type(labeler).__name__)
