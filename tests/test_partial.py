"""Training from partial answers (core.model.partial): accepted spans fix their words' tags,
rejected spans' labelings are pushed down, other words carry no term of their own; full
annotations train as before, in the same batches."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import ACRONYM_SENTENCES, POOL_SENTENCES, seed_project

from core.jobs.queue import enqueue
from core.jobs.training import _train_plan
from core.jobs.worker import run_job
from core.labeling import annotations as svc
from core.labeling.decisions import record
from core.labeling.projects import get_project
from core.model.backbone import Tagger
from core.model.encoding import IGNORE, collate
from core.model.finetune import TrainArgs, finetune
from core.model.partial import AnswerLoss, Partial, answer_targets, partial_chunks
from core.model.predict import predict
from core.model.trainer import gold_tag_loss, labeled_chunks
from core.store.db import session_scope
from core.store.versions import current_version
from core.text import Span, tokenize


def _acronyms(text: str) -> list[Span]:
    return [Span(w.start, w.end, "SHORT") for w in tokenize(text) if w.text.isupper()]


def _full(texts=ACRONYM_SENTENCES):
    return [(t, tokenize(t), _acronyms(t)) for t in texts]


def _accepts(texts=ACRONYM_SENTENCES, rejected=None):
    return [Partial(t, tokenize(t), _acronyms(t), list((rejected or {}).get(t, []))) for t in texts]


def _model(base: str) -> Tagger:
    torch.manual_seed(0)
    return Tagger.from_base(base, ["SHORT"], evidence=False)


def _args(**kw) -> TrainArgs:
    base = {"epochs": 10, "min_steps": 60, "lr": 1e-3, "batch_size": 4}
    return TrainArgs(**{**base, "device": "cpu", "precision": "fp32", **kw})


def _probability(model: Tagger, text: str, span: Span) -> float:
    """The model's probability of exactly B-/I- over the span's words (their product)."""
    words = tokenize(text)
    chunk = model.encode([(text, words)], model.max_length)[0]
    batch = collate([chunk], model.tokenizer.pad_token_id or 0)
    model.eval()
    with torch.no_grad():
        logits = model(
            batch["input_ids"], batch["attention_mask"], batch["shape_ids"], batch["evidence_ids"]
        )
    probs = torch.softmax(logits[0].float(), dim=-1)
    inside = [i for i, w in enumerate(words) if w.start >= span.start and w.end <= span.end]
    tags = ["B-" + span.label] + ["I-" + span.label] * (len(inside) - 1)
    out = 1.0
    for w, tag in zip(inside, tags, strict=True):
        out *= float(probs[chunk.first.index(w), model.label2id[tag]])
    return out


def test_answer_targets_fix_accepted_words_and_push_rejected_labelings():
    text = "The WHO and NASA agreed ."
    words = tokenize(text)
    label2id = {"O": 0, "B-SHORT": 1, "I-SHORT": 2}
    reject = Span(text.index("and"), text.index("NASA") + 4, "SHORT")
    tags, pushed = answer_targets(Partial(text, words, [_acronyms(text)[0]], [reject]), label2id)
    assert tags == [IGNORE, 1, IGNORE, IGNORE, IGNORE, IGNORE]  # only WHO is known
    assert pushed == [
        [(2, 2, 1)],  # WHO's span ends there: "and" does not continue it
        [(2, 1, 1), (3, 2, 1), (4, 2, -1)],  # "and NASA" as SHORT, "agreed" not continuing it
    ]


def test_a_batch_without_partial_texts_is_the_gold_loss_bit_for_bit(tiny_model_dir):
    model = _model(tiny_model_dir)
    batch = collate(labeled_chunks(model, _full()), model.tokenizer.pad_token_id)
    assert "unanswered" not in batch and "reject_index" not in batch
    logits = torch.randn(*batch["input_ids"].shape, len(model.tags))
    assert torch.equal(AnswerLoss()(logits, batch), gold_tag_loss(logits, batch))


def test_a_reject_term_is_minus_log_one_minus_the_labelings_probability(tiny_model_dir):
    model = _model(tiny_model_dir)
    text = "The WHO and NASA agreed ."
    reject = Span(text.index("NASA"), text.index("NASA") + 4, "SHORT")
    [chunk] = partial_chunks(model, [Partial(text, tokenize(text), [], [reject])])
    batch = collate([chunk], model.tokenizer.pad_token_id)
    assert (batch["labels"] == IGNORE).all() and batch["reject_index"].shape[0] == 1
    logits = torch.randn(*batch["input_ids"].shape, len(model.tags), requires_grad=True)
    loss = AnswerLoss(ratio=1.0)(logits, batch)  # the entity-share bound never binds
    p = torch.softmax(logits[0].detach(), dim=-1)
    nasa, agreed = chunk.first.index(3), chunk.first.index(4)
    prob = float(p[nasa, model.label2id["B-SHORT"]] * (1 - p[agreed, model.label2id["I-SHORT"]]))
    assert float(loss.detach()) == pytest.approx(-math.log(1 - prob + 1e-4), rel=1e-5)
    loss.backward()
    assert logits.grad[0, nasa].abs().sum() > 0 and logits.grad[0, 0].abs().sum() == 0


def test_full_and_partial_texts_share_a_batch(tiny_model_dir):
    model = _model(tiny_model_dir)
    full = labeled_chunks(model, _full(ACRONYM_SENTENCES[:3]))
    reject = {ACRONYM_SENTENCES[3]: [Span(0, 3, "SHORT")]}
    part = partial_chunks(model, _accepts(ACRONYM_SENTENCES[3:], reject))
    batch = collate(full + part, model.tokenizer.pad_token_id)
    assert batch["unanswered"][: len(full)].sum() == 0 and batch["unanswered"][len(full) :].any()
    logits = torch.zeros(*batch["input_ids"].shape, len(model.tags), requires_grad=True)
    loss = AnswerLoss()(logits, batch)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad[: len(full)].abs().sum() > 0


@pytest.mark.slow
def test_training_on_accepts_alone_does_not_tag_everything(tiny_model_dir):
    result = finetune([], ["SHORT"], base=tiny_model_dir, args=_args(), partial=_accepts())
    assert result.metrics["n_partial"] == len(ACRONYM_SENTENCES)
    docs = [(t, tokenize(t)) for t in POOL_SENTENCES]
    preds = predict(result.model, docs)
    tagged = sum(s["end"] - s["start"] > 0 for p in preds for s in p.spans)
    words = sum(len(w) for _, w in docs)
    assert tagged < 0.3 * words  # most held-out words stay O


@pytest.mark.slow
def test_rejects_lower_the_rejected_spans_probability(tiny_model_dir):
    # a shouted word looks like an acronym: trained on the accepts, the model tags it
    text = "GOOD results on MNIST ."
    wrong = Span(0, 4, "SHORT")
    mnist = Span(text.index("MNIST"), text.index("MNIST") + 5, "SHORT")
    answers = [*_accepts(), Partial(text, tokenize(text), [mnist], [])]
    rejected = [*answers[:-1], answers[-1]._replace(rejected=[wrong])]
    # the same training, with and without the reject: the same seed, texts and accepts
    args = _args()
    base = finetune([], ["SHORT"], base=tiny_model_dir, args=args, partial=answers)
    pushed = finetune([], ["SHORT"], base=tiny_model_dir, args=args, partial=rejected)
    before = _probability(base.model, text, wrong)
    after = _probability(pushed.model, text, wrong)
    assert after < before


@pytest.fixture
def teach_project(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("FEWLABEL_HOME", str(tmp_path / "home"))
    ids = seed_project(db_url, "p", ACRONYM_SENTENCES + POOL_SENTENCES)
    with session_scope(db_url) as s:
        project = get_project(s, "p")
        for doc_id, text in zip(ids, ACRONYM_SENTENCES, strict=False):
            for span in _acronyms(text):
                record(
                    s, project, doc_id, "ann", start=span.start, end=span.end, label="SHORT",
                    answer="accept", origin="model",
                )  # fmt: skip
        text = ACRONYM_SENTENCES[0]
        record(
            s, project, ids[0], "ann", start=0, end=3, label="SHORT", answer="reject",
            origin="model",
        )  # fmt: skip
    return ids


def test_a_text_with_a_full_annotation_and_decisions_trains_from_the_full_one(
    db_url, teach_project
):
    ids = teach_project
    full = ACRONYM_SENTENCES[0]
    with session_scope(db_url) as s:
        svc.save(s, get_project(s, "p"), ids[0], "ann", _acronyms(full)[:1])  # WHO alone
    with session_scope(db_url) as s:
        plan = _train_plan(db_url, {"project_id": get_project(s, "p").id})
    assert [ex[0] for ex in plan.examples] == [full]
    assert plan.examples[0][2] == _acronyms(full)[:1]  # the saved annotation, not the answers
    assert full not in [p[0] for p in plan.partial]
    assert sorted(p[0] for p in plan.partial) == sorted(ACRONYM_SENTENCES[1:])


@pytest.mark.slow
def test_a_train_job_on_a_project_with_only_decisions_runs_end_to_end(
    db_url, teach_project, tiny_model_dir
):
    with session_scope(db_url) as s:
        p = get_project(s, "p")
        params = {"project_id": p.id, "base": tiny_model_dir, "train_args": {"epochs": 2}}
        job_id = enqueue(s, "train", p, params).id
    job = run_job(db_url, job_id)
    assert job.status == "done", job.error
    assert job.result["n_labels"] == 0 and job.result["n_partial"] == len(ACRONYM_SENTENCES)
    with session_scope(db_url) as s:
        assert current_version(s, get_project(s, "p")) is not None
