"""Finetune a tagger on labeled examples: a flat, explicit loop in the nanoGPT style.

AdamW with linear warm-up and decay; batches of similar length padded to their longest; the
vocabulary matrix frozen by default (on CPU its dense gradient and Adam update dominate the
step of a small encoder); the zero-initialised word-shape embedding on a higher learning rate;
with enough examples, a held-out slice picks the best epoch and stops training early.
Runs on CUDA when present, the same code on CPU.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import Cancelled, FewlabelError, SpanError
from core.metrics import span_prf
from core.model.backbone import (
    DEFAULT,
    Tagger,
    autocast,
    available_cores,
    choose_threads,
    resolve_device,
    torch_threads,
)
from core.model.encoding import IGNORE, Chunk, collate, length_batches
from core.model.predict import predict
from core.model.rules import fit_evidence, rules_for
from core.text import Span, Word, bio_to_spans, spans_to_bio

Example = tuple[str, list[Word], Sequence[Span | dict]]
Progress = Callable[[float, str], None]


class TrainingCancelled(Cancelled):
    """`should_stop()` returned True: training stopped between two steps; nothing was saved."""


@dataclass
class TrainArgs:
    """Finetuning arguments; defaults are the best found on SciAD at 200 sentences, 2-core CPU."""

    epochs: int = field(default=20, metadata={"help": "maximum passes over the training set"})
    lr: float = field(default=2e-4, metadata={"help": "peak AdamW learning rate of the encoder"})
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
            "label space has one: None = the default (acronyms yes, concepts no)"
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
        metadata={"help": "merge high-precision rule spans at prediction (acronym labels)"},
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


def seed_everything(seed: int) -> None:
    """Python, numpy and torch (CPU and CUDA) seeds, so a retrain is reproducible."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# pretrain.py imports this name; the thread choice itself now lives in backbone.choose_threads.
_available_cores = available_cores


def _word_tag_ids(example: Example, labels: Sequence[str], label2id: dict[str, int]) -> list[int]:
    """Tag id per word of an example; a span with an unknown label is a SpanError."""
    _, words, spans = example
    for s in spans:
        label = s.label if isinstance(s, Span) else s["label"]
        if label not in labels:
            raise SpanError(f"unknown label {label!r}; training labels are {', '.join(labels)}")
    return [label2id[t] for t in spans_to_bio(words, spans)]


def _chunks_for(
    model: Tagger, examples: Sequence[Example], max_length: int
) -> tuple[list[Chunk], int]:
    """Training chunks with labels on first sub-tokens; also the count of labeled words."""
    label2id = model.label2id
    word_tags = [_word_tag_ids(ex, model.labels, label2id) for ex in examples]
    chunks = model.encode([(text, words) for text, words, _ in examples], max_length)
    n_words = 0
    for c in chunks:
        c.labels = [word_tags[c.doc][w] if w >= 0 else IGNORE for w in c.first]
        n_words += sum(1 for w in c.first if w >= 0)
    return chunks, n_words


def hide_evidence(
    evidence_ids: torch.Tensor, share: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The batch's evidence with a random `share` of its rows zeroed (no evidence): the model
    must also tag without the rule's opinion, so it does not merely copy it."""
    if share <= 0:
        return evidence_ids
    keep = torch.rand(evidence_ids.shape[0], generator=generator) >= share
    return evidence_ids * keep.to(evidence_ids.device).unsqueeze(1)


def _param_groups(model: Tagger, args: TrainArgs) -> list[dict]:
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


def _evaluate(model: Tagger, dev: Sequence[Example], batch_size: int, precision: str) -> dict:
    """Span P/R/F1 of the model on held-out examples (gold snapped to words, as trained)."""
    docs = [(text, words) for text, words, _ in dev]
    preds = predict(model, docs, batch_size=batch_size * 2, precision=precision)
    gold = [bio_to_spans(words, spans_to_bio(words, spans)) for _, words, spans in dev]
    return span_prf(gold, [p.spans for p in preds], model.labels)


def finetune(
    examples: Sequence[Example],
    labels: Sequence[str],
    *,
    base: str | os.PathLike | None = DEFAULT,
    args: TrainArgs | None = None,
    corpus: Sequence[tuple[str, Sequence[Word]]] | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
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

    `corpus`, (text, words) pairs such as all of a project's texts, is where evidence that
    needs corpus statistics (the concept keyphrases' IDFs) learns them; without it a
    checkpoint's own statistics are kept, or else the examples' texts serve.
    """
    args = args or TrainArgs()
    t_start = time.perf_counter()
    examples = [ex for ex in examples if len(ex[1]) > 0]
    if not examples:
        raise FewlabelError("there are no labeled examples with words to train on")
    device = resolve_device(args.device)
    threads = choose_threads(args.num_threads) if device.type == "cpu" else torch.get_num_threads()
    with torch_threads(threads):
        return _train(examples, labels, base, args, corpus, device, progress, should_stop, t_start)


def _train(
    examples: list[Example],
    labels: Sequence[str],
    base: str | os.PathLike | None,
    args: TrainArgs,
    corpus: Sequence[tuple[str, Sequence[Word]]] | None,
    device: torch.device,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    t_start: float,
) -> TrainResult:
    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(min(1.0, max(0.0, fraction)), message)

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise TrainingCancelled("training was cancelled")

    seed_everything(args.seed)
    report(0.0, "loading the backbone")
    model = Tagger.from_base(
        base,
        labels,
        shape_features=args.shape_features,
        evidence=args.evidence,
        dropout=args.dropout,
    )
    if model.evidence and (corpus is not None or model.evidence_state is None):
        texts = corpus if corpus is not None else [(t, w) for t, w, _ in examples]
        model.evidence_state = fit_evidence(model.evidence, texts)
    model.max_length = min(model.max_length, args.max_length)
    if args.freeze_embeddings:
        model.word_embeddings().weight.requires_grad_(False)
    model.to(device)

    order = list(range(len(examples)))
    random.Random(args.seed).shuffle(order)
    n_dev = 0
    if len(examples) >= args.min_dev_examples and args.dev_fraction > 0:
        n_dev = max(1, round(len(examples) * args.dev_fraction))
    dev = [examples[i] for i in order[:n_dev]]
    train = [examples[i] for i in order[n_dev:]]
    chunks, _ = _chunks_for(model, train, model.max_length)
    lengths = [len(c) for c in chunks]
    batch_rng = random.Random(args.seed)
    hide_rng = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = math.ceil(len(chunks) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = int(total * args.warmup_ratio)
    optimizer = torch.optim.AdamW(_param_groups(model, args), lr=args.lr)
    pad_id = model.tokenizer.pad_token_id or 0
    loss_fn = nn.CrossEntropyLoss(ignore_index=IGNORE)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # Too small a dev slice picks epochs by noise: then it only reports the final model.
    selecting = len(dev) >= args.min_dev_for_selection

    history: list[dict] = []
    best_f1, best_epoch, best_state, bad_epochs = -1.0, 0, None, 0
    stopped_early = False
    step, last_report = 0, 0.0
    check_stop()
    for epoch in range(1, args.epochs + 1):
        model.train()
        epoch_loss, n_batches = 0.0, 0
        for idx in length_batches(lengths, args.batch_size, rng=batch_rng):
            check_stop()
            factor = lr_factor(step, total, warmup)
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
            batch = collate([chunks[i] for i in idx], pad_id, device)
            evidence = hide_evidence(batch["evidence_ids"], args.evidence_dropout, hide_rng)
            with autocast(device, args.precision):
                logits = model(
                    batch["input_ids"], batch["attention_mask"], batch["shape_ids"], evidence
                )
            logits = logits.float()
            loss = loss_fn(logits.view(-1, logits.shape[-1]), batch["labels"].view(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.requires_grad], args.grad_clip
                )
            optimizer.step()
            step += 1
            epoch_loss += float(loss.detach())
            n_batches += 1
            now = time.perf_counter()
            if now - last_report > 0.5:
                last_report = now
                report(0.95 * step / total, f"epoch {epoch}/{args.epochs}, step {step}/{total}")
        record: dict[str, Any] = {"epoch": epoch, "loss": epoch_loss / max(1, n_batches)}
        if selecting:
            check_stop()
            f1 = _evaluate(model, dev, args.batch_size, args.precision)["f1_macro"]
            record["dev_f1_macro"] = f1
            if f1 >= best_f1:
                bad_epochs = 0 if f1 > best_f1 else bad_epochs + 1
                best_f1, best_epoch = f1, epoch
                best_state = {
                    k: v.detach().clone() for k, v in model.state_dict().items() if k in trainable
                }
            else:
                bad_epochs += 1
        else:
            best_epoch = epoch
        record["seconds"] = time.perf_counter() - t_start
        history.append(record)
        dev_note = f", dev F1 {record['dev_f1_macro']:.3f}" if selecting else ""
        report(
            0.95 * step / total,
            f"epoch {epoch}/{args.epochs}: loss {record['loss']:.4f}{dev_note}",
        )
        patience_out = args.patience > 0 and bad_epochs >= args.patience
        if selecting and patience_out and epoch >= args.min_epochs:
            stopped_early = epoch < args.epochs
            break

    if selecting and best_state is not None and args.select_best:
        model.load_state_dict(best_state, strict=False)
    else:
        best_epoch = len(history)
    model.eval()
    # Set before the final evaluation, so dev metrics describe the model as it will predict.
    model.info["decode_rules"] = rules_for(labels) if args.decode_rules else None
    dev_metrics = _evaluate(model, dev, args.batch_size, args.precision) if dev else None
    seconds = time.perf_counter() - t_start
    metrics = {
        "dev": dev_metrics,
        "dev_f1_macro": dev_metrics["f1_macro"] if dev_metrics else None,
        "n_train": len(train),
        "n_dev": len(dev),
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "stopped_early": stopped_early,
        "train_seconds": seconds,
        "device": str(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "history": history,
    }
    model.info.update({"train_args": asdict(args), "metrics": metrics, "labels": list(labels)})
    report(1.0, "done" + (f": dev macro F1 {metrics['dev_f1_macro']:.3f}" if dev else ""))
    return TrainResult(
        model=model,
        metrics=metrics,
        train_seconds=seconds,
        epochs_run=len(history),
        best_epoch=best_epoch,
        stopped_early=stopped_early,
        n_train=len(train),
        n_dev=len(dev),
        history=history,
    )
