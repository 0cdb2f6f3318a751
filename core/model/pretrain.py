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

import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

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
from core.model.encoding import IGNORE, length_batches
from core.model.mlm import MLMHead, bucketed, mask_tokens
from core.model.rules import fit_evidence
from core.model.trainer import Progress, Reporter, Trainer, hide_evidence, seed_everything, tag_loss
from core.text import TASK_LABELS, Word

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
    evidence: bool | None = None  # None: the label space's default (core.model.rules)
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
    """(text, words, weak spans) for every text, labeled by `labeler` (see corpus_labeler)."""
    return [(text, words, labeler(text, words)) for text, words in texts]


def corpus_labeler(task: str, texts: Sequence[tuple[str, list[Word]]], anchors=None):
    """The weak labeler for a pretraining corpus: the task's default, fitted on `texts`; for
    concepts, the corpus's link anchors ({plain text: spans}, core.weak.plain_corpus) first."""
    from core.weak import anchored, weak_labeler

    labeler = weak_labeler(task, corpus=[t for t, _ in texts])
    if anchors and task == "concept":
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
    if task in TASK_LABELS:
        labels = list(TASK_LABELS[task])
    elif task != "custom" or not labels:
        raise FewlabelError(
            f"pretraining knows the tasks {', '.join(TASK_LABELS)}, and custom with its labels"
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
            evidence=args.evidence if args.objective == "aligned" else False,
        )
    )
    if model.evidence and not resume:
        model.evidence_state = fit_evidence(model.evidence, texts)
    mlm_head = MLMHead(model.word_embeddings())
    trainer = Trainer(
        model, args, device, extra_params=mlm_head.parameters(), should_stop=should_stop
    )
    mlm_head.to(device)
    broadcast_parameters([model, mlm_head], world)
    if world.distributed:
        trainer.before_step = lambda: average_gradients(trainer.params, world)

    t_label = time.perf_counter()
    # the labeler and the evidence were fitted on the whole corpus, the same on every rank;
    # each rank labels and trains on its own shard
    shard = world.shard(texts)
    if args.objective == "aligned":
        examples = weak_examples(shard, labeler)
        n_weak = sum(1 for _, _, spans in examples if spans)
    else:
        examples = [(t, w, []) for t, w in shard]
        n_weak = 0
    label_seconds = time.perf_counter() - t_label
    chunks = trainer.chunks(examples)
    lengths = [len(c) for c in chunks]

    tok = model.tokenizer
    if tok.mask_token_id is None:
        raise FewlabelError("the backbone's tokenizer has no [MASK] token; MLM needs one")
    special_ids = [
        i for i in (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) if i is not None
    ]
    vocab = model.word_embeddings().num_embeddings

    seconds_before = 0.0
    if resume:
        state = _load_state(out / STATE_FILE, device)
        mlm_head.load_state_dict(state["mlm_head"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.step, seconds_before = int(state["step"]), float(state.get("seconds", 0.0))
    max_steps, max_minutes = args.budget()
    # The LR schedule needs a horizon: the step budget, or an estimate refined as we go.
    start_step = trainer.step
    horizon = max_steps or max(1, start_step + 1000)
    # ranks draw different batches and masks from their own shards
    generator = torch.Generator().manual_seed(args.seed + start_step + 100_003 * world.rank)
    batch_rng = random.Random(args.seed + start_step + 100_003 * world.rank)
    t0 = time.perf_counter()
    ema_tag = ema_mlm = None

    def elapsed() -> float:
        return time.perf_counter() - t0

    def done() -> bool:
        if max_steps is not None and trainer.step >= max_steps:
            return True
        return max_minutes is not None and (seconds_before + elapsed()) >= 60 * max_minutes

    describe = getattr(labeler, "describe", None)

    def save() -> None:
        if not world.main:
            return  # one checkpoint, written by rank 0 (the replicas are identical)
        info = {
            "objective": args.objective,
            "task": task,
            "corpus": list(corpus_names),
            "corpus_texts": len(texts),
            "ranks": world.size,
            "weak_labelers": _labeler_name(labeler) if args.objective == "aligned" else None,
            # a project's weak sources say what they were built from (core.weak.sources)
            "weak_sources": describe() if args.objective == "aligned" and describe else None,
            "weakly_labeled_texts": n_weak,
            "steps": trainer.step,
            "pretrain_seconds": round(seconds_before + elapsed(), 1),
            "pretrain_args": asdict(args),
            "losses": {"tag": ema_tag, "mlm": ema_mlm},
        }
        model.save(out, pretraining=info, objective=args.objective)
        # tensors and plain containers only, so resuming loads it with weights_only=True;
        # written beside and renamed, so a kill mid-save leaves the previous state whole
        tmp = out / f"{STATE_FILE}.tmp"
        torch.save(
            {
                "mlm_head": mlm_head.state_dict(),
                "optimizer": trainer.optimizer.state_dict(),
                "step": int(trainer.step),
                "seconds": float(seconds_before + elapsed()),
            },
            tmp,
        )
        os.replace(tmp, out / STATE_FILE)

    def batches():
        while True:  # epochs over this rank's shard, reshuffled each time
            yield from length_batches(lengths, args.batch_size, rng=batch_rng)

    def plan(step: int, horizon: int) -> tuple[bool, int]:
        """(stop, the schedule's horizon) before `step`; rank 0's on every rank."""
        if max_steps is None and step > start_step + 5:
            # time budget: estimate the total steps from the pace so far
            pace = (step - start_step) / max(elapsed(), 1e-6)
            remaining = 60 * max_minutes - seconds_before - elapsed()
            horizon = max(step + 1, int(step + pace * remaining))
        stop, horizon = agree([float(done()), float(horizon)], world)
        return bool(stop), int(horizon)

    model.train()
    mlm_head.train()
    ranks = f" on {world.size} ranks" if world.distributed else ""
    report(0.0, f"{len(texts)} texts{ranks}, {n_weak} weakly labeled ({label_seconds:.1f} s)")
    for idx in batches():
        stop, horizon = plan(trainer.step, horizon)
        if stop:
            break
        if world.main:
            trainer.check_stop("pretraining was cancelled (checkpoint saved)", before=save)
        trainer.set_lr(horizon, int(horizon * args.warmup_ratio))
        batch = trainer.batch(chunks, idx)
        masked, mlm_labels = mask_tokens(
            batch["input_ids"],
            batch["attention_mask"],
            special_ids=special_ids,
            mask_id=tok.mask_token_id,
            vocab_size=vocab,
            probability=args.mlm_probability,
            generator=generator,
        )
        with trainer.autocast():
            evidence = hide_evidence(batch["evidence_ids"], args.evidence_dropout, generator)
            embeds = model.input_embeddings(masked, batch["shape_ids"], evidence)
            hidden = model.hidden_states(embeds, batch["attention_mask"])
            picked, targets = bucketed(hidden, mlm_labels)
            loss_mlm = nn.functional.cross_entropy(
                mlm_head(picked).float(), targets, ignore_index=IGNORE
            )
            loss = args.mlm_weight * loss_mlm
            if args.objective == "aligned":
                loss_tag = tag_loss(model.tag_logits(hidden), batch["labels"])
                loss = loss + args.tag_weight * loss_tag
        trainer.update(loss)
        ema_mlm = _ema(ema_mlm, float(loss_mlm.detach()))
        if args.objective == "aligned":
            ema_tag = _ema(ema_tag, float(loss_tag.detach()))
        if args.checkpoint_every and trainer.step % args.checkpoint_every == 0:
            save()
        frac = (
            trainer.step / max_steps
            if max_steps
            else (seconds_before + elapsed()) / (60 * max_minutes)
        )
        tag_note = f" tag {ema_tag:.3f}" if ema_tag is not None else ""
        report.now_and_then(frac, f"step {trainer.step}: mlm {ema_mlm:.3f}{tag_note}")
    save()
    barrier(world)  # the checkpoint is whole before any rank returns
    report(1.0, f"done: {trainer.step} steps in {seconds_before + elapsed():.0f} s")
    return out


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


def _ema(prev: float | None, value: float, decay: float = 0.98) -> float:
    return value if prev is None or math.isnan(prev) else decay * prev + (1 - decay) * value


def _labeler_name(labeler) -> str | None:
    return None if labeler is None else getattr(labeler, "__name__", type(labeler).__name__)
