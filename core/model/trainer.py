"""The one training loop that finetuning and pretraining share, in the nanoGPT style.

`train_loop` is a flat `for` over epochs and length-sorted batches that a reader follows top
to bottom; every step is

    stop, total = budget.before_step(trainer.step)   # when to stop, the schedule's horizon
    trainer.check_stop(...)                          # cancel (after saving a checkpoint)
    trainer.set_lr(total, warmup)
    batch = trainer.batch(chunks, idx)
    with trainer.autocast():
        losses = objective(model, batch)              # {"loss": ..., named parts}
    trainer.update(losses["loss"])                   # zero_grad, backward, clip, step
    trainer.losses.add(losses)                       # epoch means and moving averages

What differs between the two runs comes in as small, named pieces: the `Objective` (the
batch's loss: `Tagging` for finetuning; masked LM plus tagging for pretraining, in
core.model.pretrain), the `Budget` (`EpochBudget`: a fixed number of epochs; pretraining's
steps or minutes), an optional end-of-epoch hook (finetuning's dev evaluation, best-epoch
choice and early stop) and an optional `Checkpoint` (pretraining's). Where a word's tag
enters a loss, both objectives call one `WordLoss` (`gold_tag_loss` by default): the place
to plug in a per-word loss mask or a constraint loss, as finetuning does for partially
answered texts (core.model.partial.AnswerLoss). The small helpers both runs use
(seeding, labeled chunks, parameter groups, the schedule, hiding evidence, progress) live
here too.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from core.errors import Cancelled, ValidationError
from core.model.backbone import Tagger
from core.model.device import autocast
from core.model.encoding import IGNORE, Chunk, collate, length_batches
from core.text import Span, Word, spans_to_bio

Example = tuple[str, list[Word], Sequence[Span | dict]]
Progress = Callable[[float, str], None]
Batch = dict[str, torch.Tensor]
# A step's losses: "loss" is what backward runs on; other keys are named parts, logged.
Losses = dict[str, torch.Tensor]
# The loss of the words' tags: tag logits (batch, length, tags) and the batch -> a scalar.
WordLoss = Callable[[torch.Tensor, Batch], torch.Tensor]


class TrainingCancelled(Cancelled):
    """`should_stop()` returned True: training stopped between two steps."""


class LoopArgs(Protocol):
    """What the trainer reads of TrainArgs and PretrainArgs (both have these fields)."""

    lr: float
    weight_decay: float
    head_lr_mult: float
    shape_lr_mult: float
    grad_clip: float
    precision: str
    max_length: int
    freeze_embeddings: bool


def seed_everything(seed: int) -> None:
    """Python, numpy and torch (CPU and CUDA) seeds, so a retrain is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def word_tag_ids(example: Example, labels: Sequence[str], label2id: dict[str, int]) -> list[int]:
    """Tag id per word of an example; a label outside `labels` is a ValidationError."""
    _, words, spans = example
    for s in spans:
        label = s.label if isinstance(s, Span) else s["label"]
        if label not in labels:
            raise ValidationError(
                f"unknown label {label!r}; training labels are {', '.join(labels)}"
            )
    return [label2id[t] for t in spans_to_bio(words, spans)]


def labeled_chunks(model: Tagger, examples: Sequence[Example]) -> list[Chunk]:
    """Training chunks (at most model.max_length sub-tokens) with each word's tag id on its
    first sub-token and IGNORE on the rest."""
    word_tags = [word_tag_ids(ex, model.labels, model.label2id) for ex in examples]
    chunks = model.encode([(text, words) for text, words, _ in examples], model.max_length)
    for c in chunks:
        c.labels = [word_tags[c.doc][w] if w >= 0 else IGNORE for w in c.first]
    return chunks


def hide_evidence(
    evidence_ids: torch.Tensor, share: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The batch's evidence with a random `share` of its rows zeroed (no evidence): the model
    must also tag without the rule's opinion, so it does not merely copy it."""
    if share <= 0:
        return evidence_ids
    keep = torch.rand(evidence_ids.shape[0], generator=generator) >= share
    return evidence_ids * keep.to(evidence_ids.device).unsqueeze(1)


def param_groups(model: Tagger, args: LoopArgs) -> list[dict]:
    """AdamW groups: encoder (decay / no decay), head, and the zero-initialised feature
    embeddings (shape, evidence) at lr * shape_lr_mult."""
    groups: dict[str, dict[str, Any]] = {
        "decay": {"params": [], "lr": args.lr, "weight_decay": args.weight_decay},
        "no_decay": {"params": [], "lr": args.lr, "weight_decay": 0.0},
        "head": {"params": [], "lr": args.lr * args.head_lr_mult, "weight_decay": 0.0},
        "shape": {"params": [], "lr": args.lr * args.shape_lr_mult, "weight_decay": 0.0},
    }
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(("shape_embedding.", "evidence_embedding.")):
            groups["shape"]["params"].append(p)
        elif name.startswith("head."):
            groups["head"]["params"].append(p)
        elif p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name:
            groups["no_decay"]["params"].append(p)
        else:
            groups["decay"]["params"].append(p)
    out = []
    for group in groups.values():
        if group["params"]:
            group["initial_lr"] = group["lr"]
            out.append(group)
    return out


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up from 0 to 1 over `warmup` steps, then linear decay to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def tag_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of tag logits (batch, length, tags) in fp32; IGNORE positions skipped."""
    logits = logits.float()
    return nn.functional.cross_entropy(
        logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=IGNORE
    )


def gold_tag_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The default WordLoss: cross-entropy against every labeled word's tag (batch["labels"],
    on each word's first sub-token). Finetuning takes core.model.partial.AnswerLoss in its
    place, which is this loss for fully labeled texts and adds the partially answered ones'
    (accepted words fixed, rejected labelings pushed down, other words left out)."""
    return tag_loss(logits, batch["labels"])


class Objective(Protocol):
    """A training step's loss on one batch, computed under the loop's autocast."""

    def __call__(self, model: Tagger, batch: Batch) -> Losses: ...


@dataclass
class Tagging:
    """Finetuning's objective: `word_loss` on the tag logits, with the evidence of a random
    `evidence_dropout` share of the chunks hidden (drawn from `generator`)."""

    evidence_dropout: float
    generator: torch.Generator
    word_loss: WordLoss = gold_tag_loss

    def __call__(self, model: Tagger, batch: Batch) -> Losses:
        evidence = hide_evidence(batch["evidence_ids"], self.evidence_dropout, self.generator)
        logits = model(batch["input_ids"], batch["attention_mask"], batch["shape_ids"], evidence)
        return {"loss": self.word_loss(logits, batch)}


class LossMeter:
    """A run's losses as floats: each part's mean over the epoch so far (`end_epoch` returns
    and resets it) and its exponential moving average over the run (`ema`)."""

    def __init__(self, decay: float = 0.98):
        self.decay = decay
        self.sums: dict[str, float] = {}
        self.steps = 0
        self.ema: dict[str, float] = {}

    def add(self, losses: Losses) -> None:
        for name, loss in losses.items():
            value = float(loss.detach())
            self.sums[name] = self.sums.get(name, 0.0) + value
            prev = self.ema.get(name)
            fresh = prev is None or math.isnan(prev)
            self.ema[name] = value if fresh else self.decay * prev + (1 - self.decay) * value
        self.steps += 1

    def end_epoch(self) -> dict[str, float]:
        means = {name: total / max(1, self.steps) for name, total in self.sums.items()}
        self.sums, self.steps = {}, 0
        return means


class Budget(Protocol):
    """How long a run trains: `epochs` passes over the data (None: until `before_step` says
    stop), the schedule's warm-up share, and how far along a step is."""

    epochs: int | None
    warmup_ratio: float

    def before_step(self, step: int) -> tuple[bool, int]:
        """(stop now, the schedule's total steps) before optimizer step `step`."""
        ...

    def progress(self, step: int, epoch: int, losses: LossMeter) -> tuple[float, str]:
        """(fraction done, message) after `step`, for the progress callback."""
        ...


@dataclass
class EpochBudget:
    """Finetuning's budget: `epochs` passes of `steps_per_epoch` steps, the schedule spanning
    them all; progress runs to 0.95, the rest is the final evaluation's."""

    epochs: int
    steps_per_epoch: int
    warmup_ratio: float

    @property
    def total(self) -> int:
        return self.epochs * self.steps_per_epoch

    def before_step(self, step: int) -> tuple[bool, int]:
        return False, self.total

    def progress(self, step: int, epoch: int, losses: LossMeter) -> tuple[float, str]:
        return 0.95 * step / self.total, f"epoch {epoch}/{self.epochs}, step {step}/{self.total}"


class Checkpoint(Protocol):
    """What a run saves every `every` steps (0: never) and before a cancel takes effect."""

    every: int

    def save(self) -> None: ...


class Reporter:
    """`progress(fraction, message)` with the fraction kept in [0, 1]; `now_and_then` passes
    at most one message per `every` seconds, for the per-step ones."""

    def __init__(self, progress: Progress | None, every: float):
        self.progress = progress
        self.every = every
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        if self.progress is not None:
            self.progress(min(1.0, max(0.0, fraction)), message)

    def now_and_then(self, fraction: float, message: str) -> None:
        now = time.perf_counter()
        if now - self.last > self.every:
            self.last = now
            self(fraction, message)


class Trainer:
    """The model ready to train on `device`, AdamW over `param_groups` (plus `extra_params`,
    such as pretraining's MLM head, at the encoder's rate without decay), one step, and the
    run's state: the step count and the running losses (`losses`).

    Building it caps the model's max_length at `args.max_length`, freezes the vocabulary
    matrix when `args.freeze_embeddings` (on CPU its dense gradient and Adam update dominate
    the step of a small encoder) and moves the model to `device`.
    """

    def __init__(
        self,
        model: Tagger,
        args: LoopArgs,
        device: torch.device,
        *,
        extra_params: Iterable[nn.Parameter] = (),
        should_stop: Callable[[], bool] | None = None,
    ):
        model.max_length = min(model.max_length, args.max_length)
        if args.freeze_embeddings:
            model.word_embeddings().weight.requires_grad_(False)
        model.to(device)
        groups = param_groups(model, args)
        extra = list(extra_params)
        if extra:
            groups.append(
                {"params": extra, "lr": args.lr, "initial_lr": args.lr, "weight_decay": 0.0}
            )
        self.model = model
        self.device = device
        self.precision = args.precision
        self.grad_clip = args.grad_clip
        self.optimizer = torch.optim.AdamW(groups, lr=args.lr)
        # Clipped in model order, then the extras: the order of the gradient-norm sum shows in
        # the last bits of a MiniLM finetune.
        self.params = [p for p in model.parameters() if p.requires_grad] + extra
        self.pad_id = model.tokenizer.pad_token_id or 0
        self.should_stop = should_stop
        # called between backward and the optimizer step: data-parallel pretraining averages
        # the gradients across ranks there (core.model.distributed)
        self.before_step: Callable[[], None] | None = None
        self.step = 0
        self.losses = LossMeter()

    def check_stop(
        self, message: str = "training was cancelled", before: Callable[[], None] | None = None
    ) -> None:
        """Raise TrainingCancelled when should_stop() says so, after `before()` if given."""
        if self.should_stop is not None and self.should_stop():
            if before is not None:
                before()
            raise TrainingCancelled(message)

    def chunks(self, examples: Sequence[Example]) -> list[Chunk]:
        """The examples as labeled chunks of at most the (capped) model.max_length sub-tokens."""
        return labeled_chunks(self.model, examples)

    def set_lr(self, total: int, warmup: int) -> None:
        """Every group's learning rate for this step: its initial one times
        lr_factor(step, total, warmup)."""
        factor = lr_factor(self.step, total, warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor

    def batch(self, chunks: Sequence[Chunk], idx: Sequence[int]) -> dict[str, torch.Tensor]:
        """The chunks at `idx`, padded to the longest, as tensors on the device."""
        return collate([chunks[i] for i in idx], self.pad_id, self.device)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's precision (bf16 autocast or fp32, see core.model.device)."""
        return autocast(self.device, self.precision)

    def update(self, loss: torch.Tensor) -> None:
        """One optimizer step on `loss`: backward, clip the gradient norm, step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.before_step is not None:
            self.before_step()
        if self.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        self.step += 1


def train_loop(
    trainer: Trainer,
    chunks: Sequence[Chunk],
    objective: Objective,
    budget: Budget,
    *,
    batch_size: int,
    rng: random.Random,
    report: Reporter,
    end_epoch: Callable[[dict], bool] | None = None,
    checkpoint: Checkpoint | None = None,
    cancelled: str = "training was cancelled",
) -> list[dict]:
    """Train `trainer.model` on `chunks` until `budget` (or `end_epoch`) says stop; returns
    one record per finished epoch ({"epoch", then each loss part's mean}).

    Each epoch draws new length-sorted batches from `rng`. Before every step `should_stop()`
    is polled; a cancel saves `checkpoint` first and raises TrainingCancelled(`cancelled`).
    `end_epoch(record)` runs after every epoch, may add to its record, and returns True to
    stop (finetuning's dev evaluation and early stop). The step count, optimizer and running
    losses stay on `trainer`, for the caller's checkpoint and metrics.
    """
    model = trainer.model
    lengths = [len(c) for c in chunks]
    epochs = itertools.count(1) if budget.epochs is None else range(1, budget.epochs + 1)
    save = checkpoint.save if checkpoint is not None else None
    history: list[dict] = []
    for epoch in epochs:
        model.train()
        for idx in length_batches(lengths, batch_size, rng=rng):
            stop, total = budget.before_step(trainer.step)
            if stop:
                return history
            trainer.check_stop(cancelled, before=save)
            trainer.set_lr(total, int(total * budget.warmup_ratio))
            batch = trainer.batch(chunks, idx)
            with trainer.autocast():
                losses = objective(model, batch)
            trainer.update(losses["loss"])
            trainer.losses.add(losses)
            if checkpoint is not None and checkpoint.every and trainer.step % checkpoint.every == 0:
                checkpoint.save()
            report.now_and_then(*budget.progress(trainer.step, epoch, trainer.losses))
        record: dict[str, Any] = {"epoch": epoch, **trainer.losses.end_epoch()}
        history.append(record)
        if end_epoch is not None and end_epoch(record):
            break
    return history
