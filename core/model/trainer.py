"""The training step that finetuning and pretraining share, in the nanoGPT style.

A `Trainer` holds what every step needs: the model on its device, AdamW over its parameter
groups, the precision, the gradient clipping and the cancel callback. The two loops
(`finetune._train`, `pretrain._pretrain`) stay plain `for` loops over length-sorted batches
that a reader follows top to bottom; each step is

    trainer.check_stop()
    trainer.set_lr(total, warmup)
    batch = trainer.batch(chunks, idx)
    with trainer.autocast():
        loss = ...          # the loop's own forward pass and loss
    trainer.update(loss)    # zero_grad, backward, clip, optimizer step, step += 1

and what differs (epochs, dev selection and early stopping; a time budget, masking and
checkpoints) is written out in the loop itself. The small helpers both loops use (seeding,
labeled chunks, parameter groups, the schedule, hiding evidence, progress) live here too.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from core.errors import Cancelled, ValidationError
from core.model.backbone import Tagger
from core.model.device import autocast
from core.model.encoding import IGNORE, Chunk, collate
from core.text import Span, Word, spans_to_bio

Example = tuple[str, list[Word], Sequence[Span | dict]]
Progress = Callable[[float, str], None]


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
    such as pretraining's MLM head, at the encoder's rate without decay), and one step.

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
