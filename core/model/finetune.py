"""Finetune a tagger on labeled examples.

The loop is core.model.trainer's `train_loop`, shared with pretraining; finetuning brings its
pieces: the `Tagging` objective, an `EpochBudget`, and `DevSelection` (the dev slice, the
best epoch and early stopping) at the end of every epoch.

AdamW with linear warm-up and decay; batches of similar length padded to their longest; the
vocabulary matrix frozen by default (on CPU its dense gradient and Adam update dominate the
step of a small encoder); the zero-initialised word-shape embedding on a higher learning rate;
with enough examples, a held-out slice picks the best epoch and stops training early.
Runs on CUDA when present, the same code on CPU.

Partially answered texts (`partial=`, core.model.partial: accepted and rejected spans, teach
mode's answers) train beside the fully labeled ones, in the same batches, through the
loop's one WordLoss (`AnswerLoss`; its loss is written down in core.model.partial);
they never go into the dev slice, which needs every span of a text.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch

from core.defaults import schedule
from core.errors import FewlabelError
from core.metrics import span_prf
from core.model.backbone import Tagger
from core.model.device import resolve_device, torch_threads, training_threads
from core.model.encoders import DEFAULT
from core.model.partial import AnswerLoss, Partial, entity_ratio, partial_chunks
from core.model.predict import predict
from core.model.trainer import (
    EpochBudget,
    Example,
    Progress,
    Reporter,
    Tagging,
    Trainer,
    seed_everything,
    train_loop,
)
from core.tasks import Task, get_task
from core.text import Word, bio_to_spans, spans_to_bio


@dataclass
class TrainArgs:
    """Finetuning arguments; defaults are the best found on SciAD at 200 sentences, 2-core CPU."""

    # epochs, min_steps and lr: None = the schedule of the evidence the model takes
    # (core.defaults.schedule), resolved when the model is built
    epochs: int | None = field(
        default=None,
        metadata={"help": "maximum passes over the training set (more if under min_steps)"},
    )
    min_steps: int | None = field(
        default=None,
        metadata={
            "help": "train at least this many steps: with few labels, more epochs than `epochs` "
            "(0 = off)"
        },
    )
    lr: float | None = field(
        default=None, metadata={"help": "peak AdamW learning rate of the encoder"}
    )
    batch_size: int = field(default=16, metadata={"help": "examples (chunks) per step"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps spent warming up"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW decay, not on biases/norms"})
    seed: int = field(default=13, metadata={"help": "seeds init, dev split and batch order"})
    max_length: int = field(
        default=128, metadata={"help": "sub-tokens per chunk; longer texts are split at words"}
    )
    dev_fraction: float = field(
        default=0.1, metadata={"help": "held-out share for dev metrics (and selection, if large)"}
    )
    min_dev_examples: int = field(
        default=40, metadata={"help": "below this many examples, train on all and skip dev"}
    )
    min_dev_for_selection: int = field(
        default=50,
        metadata={
            "help": "dev examples needed to pick the best epoch and stop early; a smaller dev "
            "slice only reports metrics (on 20 SciAD sentences it picked bad epochs)"
        },
    )
    patience: int = field(
        default=3, metadata={"help": "epochs without dev improvement before stopping (0 = off)"}
    )
    min_epochs: int = field(default=6, metadata={"help": "no early stop before this many epochs"})
    select_best: bool = field(
        default=True, metadata={"help": "restore the best dev epoch (else keep the last one)"}
    )
    freeze_embeddings: bool = field(
        default=True, metadata={"help": "freeze the vocabulary matrix (3.5-9x faster CPU steps)"}
    )
    shape_features: bool = field(
        default=True, metadata={"help": "add a learned word-shape embedding (case for uncased)"}
    )
    shape_lr_mult: float = field(
        default=10.0,
        metadata={"help": "learning-rate multiplier of the shape and evidence embeddings"},
    )
    evidence: bool | None = field(
        default=None,
        metadata={
            "help": "give the model the weak labeler's tag of every word as input, where the "
            "task has one (core.tasks): None = the default (acronyms yes, concepts no)"
        },
    )
    evidence_dropout: float = field(
        default=0.0,
        metadata={"help": "share of training chunks whose evidence is hidden, per step"},
    )
    head_lr_mult: float = field(
        default=1.0, metadata={"help": "learning-rate multiplier of the tagging head"}
    )
    dropout: float | None = field(
        default=None, metadata={"help": "dropout before the head; None = the backbone's own"}
    )
    grad_clip: float = field(default=1.0, metadata={"help": "max gradient norm (0 = off)"})
    decode_rules: bool = field(
        default=True,
        metadata={"help": "merge the task's high-precision rule spans at prediction (acronyms)"},
    )
    device: str = field(default="auto", metadata={"help": "auto (CUDA when present), cuda, cpu"})
    precision: str = field(
        default="auto", metadata={"help": "auto (bf16 where native, else fp32), bf16, fp32"}
    )
    num_threads: int | None = field(
        default=None, metadata={"help": "CPU threads; None = one per core other work leaves idle"}
    )


@dataclass
class TrainResult:
    """The trained model (best epoch restored) with what happened, for the model_version row."""

    model: Tagger
    metrics: dict
    train_seconds: float
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    n_train: int
    n_dev: int
    history: list[dict] = field(default_factory=list)


def _evaluate(model: Tagger, dev: Sequence[Example], batch_size: int, precision: str) -> dict:
    """Span P/R/F1 of the model on held-out examples (gold snapped to words, as trained)."""
    docs = [(text, words) for text, words, _ in dev]
    preds = predict(model, docs, batch_size=batch_size * 2, precision=precision)
    gold = [bio_to_spans(words, spans_to_bio(words, spans)) for _, words, spans in dev]
    return span_prf(gold, [p.spans for p in preds], model.labels)


def with_schedule(args: TrainArgs, evidence: str | None) -> TrainArgs:
    """`args` with the epochs, lr and min_steps it leaves to the schedule (None) filled in
    from the schedule of the evidence the model takes (core.defaults.schedule)."""
    unset = {k: v for k, v in schedule(evidence).items() if getattr(args, k) is None}
    return replace(args, **unset) if unset else args


def finetune(
    examples: Sequence[Example],
    labels: Sequence[str],
    *,
    task: str = "custom",
    base: str | os.PathLike | None = DEFAULT,
    args: TrainArgs | None = None,
    corpus: Sequence[tuple[str, Sequence[Word]]] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    partial: Sequence[Partial] = (),
) -> TrainResult:
    """Train a tagger on (text, words, spans) examples and return it with its dev metrics.

    `base` is "default" (the shipped MiniLM), a Hub id in the local cache, an encoder
    directory, or a fewlabel checkpoint (aligned pretraining or a previous version: its head
    is reused where the label maps agree). `progress(fraction, message)` is called at most a
    few times a second and after every epoch; `should_stop()` is polled before every step and
    raises TrainingCancelled when it returns True. With at least `min_dev_examples` examples,
    a `dev_fraction` slice is held out and metrics["dev"] is the final model's span P/R/F1 on
    it (else all examples train and metrics["dev"] is None). Only a dev slice of at least
    `min_dev_for_selection` examples also picks the best epoch and stops early (`patience`):
    a smaller one chooses epochs by noise. The returned model is in eval mode, with
    train_args and metrics in `model.info`, so `result.model.save(path)` writes a
    self-describing version.

    `task` (core.tasks) decides the evidence the model takes (with `args.evidence`) and its
    decode-time rules (with `args.decode_rules`); a custom task has neither.
    `corpus`, (text, words) pairs such as all of a project's texts, is where evidence that
    needs corpus statistics (the concept keyphrases' IDFs) learns them; without it a
    checkpoint's own statistics are kept, or else the examples' texts serve.

    `partial`, (text, words, accepted spans, rejected spans) of texts answered only in part
    (core.model.partial.Partial, or any 4-tuple), trains with the examples: an accepted
    span fixes its words' tags, a rejected span's labeling is pushed down, their other
    words carry no loss. They train only (never the dev slice); `examples` may be empty
    when they are not. Without them, training is exactly as it was.
    """
    args = args or TrainArgs()
    t_start = time.perf_counter()
    examples = [ex for ex in examples if len(ex[1]) > 0]
    answered = [Partial(*p) for p in partial if len(p[1]) > 0 and (p[2] or p[3])]
    if not examples and not answered:
        raise FewlabelError("there are no labeled examples with words to train on")
    device = resolve_device(args.device)
    with torch_threads(training_threads(device, args.num_threads)):
        return _train(
            (examples, answered),
            (get_task(task), labels),
            base,
            args,
            corpus,
            device,
            progress,
            should_stop,
            t_start,
        )


def _train(
    data: tuple[list[Example], list[Partial]],
    space: tuple[Task, Sequence[str]],
    base: str | os.PathLike | None,
    args: TrainArgs,
    corpus: Sequence[tuple[str, Sequence[Word]]] | None,
    device: torch.device,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    t_start: float,
) -> TrainResult:
    report = Reporter(progress, every=0.5)
    seed_everything(args.seed)
    task, labels = space
    examples, answered = data
    report(0.0, "loading the backbone")
    model = Tagger.from_base(
        base,
        labels,
        shape_features=args.shape_features,
        evidence=task.evidence_for(args.evidence),
        dropout=args.dropout,
    )
    args = with_schedule(args, model.evidence.name if model.evidence else None)
    if model.evidence and (corpus is not None or model.evidence.state is None):
        texts = corpus if corpus is not None else [(t, w) for t, w, *_ in (*examples, *answered)]
        model.evidence = model.evidence.fit(texts)
    trainer = Trainer(model, args, device, should_stop=should_stop)

    dev, train = _dev_split(examples, args)
    chunks = trainer.chunks(train) + partial_chunks(model, answered)
    steps_per_epoch = math.ceil(len(chunks) / args.batch_size)
    # A few labels make few steps an epoch: the schedule still gets min_steps steps.
    epochs = max(args.epochs, math.ceil(args.min_steps / steps_per_epoch))
    budget = EpochBudget(epochs, steps_per_epoch, args.warmup_ratio)
    word_loss = AnswerLoss(ratio=entity_ratio(examples))
    objective = Tagging(args.evidence_dropout, torch.Generator().manual_seed(args.seed), word_loss)
    selection = DevSelection(trainer, dev, args, budget, report, t_start)
    trainer.check_stop()  # a cancel while the backbone loaded
    history = train_loop(
        trainer,
        chunks,
        objective,
        budget,
        batch_size=args.batch_size,
        rng=random.Random(args.seed),
        report=report,
        end_epoch=selection.end_epoch,
    )
    best_epoch = selection.restore(epochs_run=len(history))
    model.eval()
    # Set before the final evaluation, so dev metrics describe the model as it will predict.
    model.info["decode_rules"] = task.rules if args.decode_rules else None
    n_train = (len(train), len(answered))
    return _result(selection, history, best_epoch, labels, n_train, device)


def _result(
    selection: DevSelection,
    history: list[dict],
    best_epoch: int,
    labels: Sequence[str],
    n_train: tuple[int, int],
    device: torch.device,
) -> TrainResult:
    """The final model's dev metrics, recorded in its info with the run, as a TrainResult;
    `n_train` is (fully labeled texts trained on, partially answered texts)."""
    model, dev, args = selection.trainer.model, selection.dev, selection.args
    n_train, n_partial = n_train
    dev_metrics = _evaluate(model, dev, args.batch_size, args.precision) if dev else None
    seconds = time.perf_counter() - selection.t_start
    metrics = {
        "dev": dev_metrics,
        "dev_f1_macro": dev_metrics["f1_macro"] if dev_metrics else None,
        "n_train": n_train,
        **({"n_partial": n_partial} if n_partial else {}),
        "n_dev": len(dev),
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stopped_early": selection.stopped_early,
        "train_seconds": seconds,
        "device": str(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "history": history,
    }
    model.info.update({"train_args": asdict(args), "metrics": metrics, "labels": list(labels)})
    selection.report(1.0, "done" + (f": dev macro F1 {metrics['dev_f1_macro']:.3f}" if dev else ""))
    return TrainResult(
        model=model,
        metrics=metrics,
        train_seconds=seconds,
        epochs_run=len(history),
        best_epoch=best_epoch,
        stopped_early=selection.stopped_early,
        n_train=n_train,
        n_dev=len(dev),
        history=history,
    )


def _dev_split(examples: list[Example], args: TrainArgs) -> tuple[list[Example], list[Example]]:
    """(dev, train): a seeded `dev_fraction` slice held out once there are `min_dev_examples`."""
    order = list(range(len(examples)))
    random.Random(args.seed).shuffle(order)
    n_dev = 0
    if len(examples) >= args.min_dev_examples and args.dev_fraction > 0:
        n_dev = max(1, round(len(examples) * args.dev_fraction))
    return [examples[i] for i in order[:n_dev]], [examples[i] for i in order[n_dev:]]


class DevSelection:
    """Finetuning's end of an epoch: score the dev slice, keep the best epoch's trainable
    weights, stop after `patience` epochs without a better dev F1 (not before `min_epochs`),
    and report the epoch. Too small a dev slice (under `min_dev_for_selection`) picks epochs
    by noise: then nothing is scored or chosen, and the last epoch is the model."""

    def __init__(
        self,
        trainer: Trainer,
        dev: Sequence[Example],
        args: TrainArgs,
        budget: EpochBudget,
        report: Reporter,
        t_start: float,
    ):
        self.trainer, self.dev, self.args, self.budget = trainer, dev, args, budget
        self.report, self.t_start = report, t_start
        self.selecting = len(dev) >= args.min_dev_for_selection
        self.trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
        self.best_f1, self.best_epoch, self.bad_epochs = -1.0, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_early = False

    def end_epoch(self, record: dict) -> bool:
        """Add dev_f1_macro (when selecting) and seconds to the epoch's record; True: stop."""
        epoch, model = record["epoch"], self.trainer.model
        if self.selecting:
            self.trainer.check_stop()
            f1 = _evaluate(model, self.dev, self.args.batch_size, self.args.precision)["f1_macro"]
            record["dev_f1_macro"] = f1
            if f1 >= self.best_f1:
                self.bad_epochs = 0 if f1 > self.best_f1 else self.bad_epochs + 1
                self.best_f1, self.best_epoch = f1, epoch
                self.best_state = {
                    k: v.detach().clone()
                    for k, v in model.state_dict().items()
                    if k in self.trainable
                }
            else:
                self.bad_epochs += 1
        else:
            self.best_epoch = epoch
        record["seconds"] = time.perf_counter() - self.t_start
        dev_note = f", dev F1 {record['dev_f1_macro']:.3f}" if self.selecting else ""
        self.report(
            0.95 * self.trainer.step / self.budget.total,
            f"epoch {epoch}/{self.budget.epochs}: loss {record['loss']:.4f}{dev_note}",
        )
        patience_out = self.args.patience > 0 and self.bad_epochs >= self.args.patience
        if self.selecting and patience_out and epoch >= self.args.min_epochs:
            self.stopped_early = epoch < self.budget.epochs
            return True
        return False

    def restore(self, epochs_run: int) -> int:
        """Load the best epoch's weights when selecting (and `select_best`); returns the epoch
        the model now holds."""
        if self.selecting and self.best_state is not None and self.args.select_best:
            self.trainer.model.load_state_dict(self.best_state, strict=False)
            return self.best_epoch
        return epochs_run
