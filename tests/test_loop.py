"""The one training loop (core.model.trainer.train_loop) and the pieces it is given."""

from __future__ import annotations

import random

import pytest
import torch
from helpers import ACRONYM_SENTENCES

from core.model.backbone import Tagger
from core.model.finetune import TrainArgs
from core.model.mlm import MaskedObjective, MLMHead
from core.model.trainer import (
    EpochBudget,
    LossMeter,
    Reporter,
    Tagging,
    Trainer,
    TrainingCancelled,
    gold_tag_loss,
    train_loop,
)
from core.text import Span, tokenize


def _examples():
    out = []
    for text in ACRONYM_SENTENCES:
        words = tokenize(text)
        spans = [Span(w.start, w.end, "SHORT") for w in words if w.text.isupper()]
        out.append((text, words, spans))
    return out


def _trainer(base: str, should_stop=None, extra=()) -> Trainer:
    torch.manual_seed(0)
    model = Tagger.from_base(base, ["SHORT"], evidence=False)
    args = TrainArgs(lr=1e-3, precision="fp32", device="cpu")
    return Trainer(model, args, torch.device("cpu"), extra_params=extra, should_stop=should_stop)


class Spy:
    """A WordLoss that records what it is given and returns the default loss."""

    def __init__(self):
        self.calls = []

    def __call__(self, logits, batch):
        self.calls.append((tuple(logits.shape), set(batch)))
        return gold_tag_loss(logits, batch)


def test_both_objectives_take_the_words_tag_loss_from_one_word_loss(tiny_model_dir):
    for mlm in (False, True):
        trainer = _trainer(tiny_model_dir)
        chunks = trainer.chunks(_examples())
        spy = Spy()
        generator = torch.Generator().manual_seed(0)
        if mlm:
            head = MLMHead(trainer.model.word_embeddings())
            objective = MaskedObjective.for_model(
                trainer.model, head, probability=0.15, evidence_dropout=0.0,
                generator=generator, word_loss=spy,
            )  # fmt: skip
        else:
            objective = Tagging(0.0, generator, word_loss=spy)
        budget = EpochBudget(epochs=2, steps_per_epoch=2, warmup_ratio=0.0)
        history = train_loop(
            trainer, chunks, objective, budget, batch_size=4, rng=random.Random(0),
            report=Reporter(None, every=1.0),
        )  # fmt: skip
        assert trainer.step == 4 and len(spy.calls) == 4
        assert [r["epoch"] for r in history] == [1, 2]
        assert set(history[0]) == ({"epoch", "loss", "mlm", "tag"} if mlm else {"epoch", "loss"})
        shape, keys = spy.calls[0]
        assert shape[-1] == len(trainer.model.tags) and "labels" in keys


def test_end_epoch_stops_the_loop_and_adds_to_the_record(tiny_model_dir):
    trainer = _trainer(tiny_model_dir)
    chunks = trainer.chunks(_examples())

    def end_epoch(record: dict) -> bool:
        record["seen"] = True
        return record["epoch"] == 2

    history = train_loop(
        trainer, chunks, Tagging(0.0, torch.Generator()), EpochBudget(5, 2, 0.1),
        batch_size=4, rng=random.Random(0), report=Reporter(None, 1.0), end_epoch=end_epoch,
    )  # fmt: skip
    assert [(r["epoch"], r["seen"]) for r in history] == [(1, True), (2, True)]
    assert trainer.step == 4


class Budget:
    """Until `steps`; no epochs limit (like pretraining's)."""

    epochs = None
    warmup_ratio = 0.0

    def __init__(self, steps: int):
        self.steps = steps

    def before_step(self, step):
        return step >= self.steps, self.steps

    def progress(self, step, epoch, losses):
        return step / self.steps, f"step {step}"


class Saves:
    every = 2

    def __init__(self, trainer):
        self.trainer, self.at = trainer, []

    def save(self):
        self.at.append(self.trainer.step)


def test_checkpoints_every_n_steps_and_before_a_cancel(tiny_model_dir):
    polls = iter(range(100))
    trainer = _trainer(tiny_model_dir, should_stop=lambda: next(polls) >= 5)
    saves = Saves(trainer)
    with pytest.raises(TrainingCancelled, match="stopped here"):
        train_loop(
            trainer, trainer.chunks(_examples()), Tagging(0.0, torch.Generator()), Budget(50),
            batch_size=2, rng=random.Random(0), report=Reporter(None, 1.0), checkpoint=saves,
            cancelled="stopped here",
        )  # fmt: skip
    assert trainer.step == 5 and saves.at == [2, 4, 5]


def test_the_budget_stops_mid_epoch_and_epochs_repeat_until_it_does(tiny_model_dir):
    trainer = _trainer(tiny_model_dir)
    chunks = trainer.chunks(_examples())  # 6 chunks: 3 steps an epoch at batch 2
    history = train_loop(
        trainer, chunks, Tagging(0.0, torch.Generator()), Budget(7), batch_size=2,
        rng=random.Random(0), report=Reporter(None, 1.0),
    )  # fmt: skip
    assert trainer.step == 7 and [r["epoch"] for r in history] == [1, 2]


def test_loss_meter_keeps_epoch_means_and_a_moving_average():
    meter = LossMeter(decay=0.5)
    for value in (1.0, 3.0):
        meter.add({"loss": torch.tensor(value)})
    assert meter.ema == {"loss": 2.0}
    assert meter.end_epoch() == {"loss": 2.0}
    assert meter.end_epoch() == {} and meter.ema == {"loss": 2.0}
    meter.ema["loss"] = float("nan")  # a diverged average restarts from the next value
    meter.add({"loss": torch.tensor(5.0)})
    assert meter.ema == {"loss": 5.0}
