"""The tagger on a tiny random BERT: shapes, training, save/load, warm start, cancellation."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import tiny_backbone

from core.errors import NotFoundError
from core.metrics import span_prf
from core.model.backbone import Tagger
from core.model.encoding import SHAPE_ID, encode_docs, word_shape
from core.model.finetune import TrainArgs, finetune
from core.model.predict import decode_bio, load_tagger, predict
from core.model.trainer import TrainingCancelled
from core.text import Span, tokenize

ACRONYMS = ["nlp", "cnn", "gpu", "api", "svm", "hmm", "lstm", "crf"]
FILLER = ["the", "model", "uses", "a", "fast", "for", "we", "train", "on", "data", "and", "with"]
LABELS = ["SHORT"]
# Fixed-seed finetuning on 20 sentences; fp32 so the result does not depend on the CPU.
FAST = TrainArgs(epochs=12, lr=3e-3, batch_size=4, warmup_ratio=0.1, seed=1, precision="fp32")


def _sentences(n: int, seed: int) -> list[str]:
    """Sentences where a word is SHORT exactly when written in capitals: the same word appears
    lower-cased as O elsewhere, and the uncased tokenizer lower-cases everything, so only the
    word shape tells them apart."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(FILLER, 5) + rng.sample(ACRONYMS, 2)
        rng.shuffle(words)
        words[rng.randrange(len(words))] = words[0].upper()
        acro = [i for i, w in enumerate(words) if w in ACRONYMS]
        words[acro[0]] = words[acro[0]].upper()
        out.append(" ".join(words) + " .")
    return out


def _example(text: str):
    words = tokenize(text)
    spans = [Span(w.start, w.end, "SHORT") for w in words if w.text.isupper() and len(w.text) > 1]
    return text, words, spans


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", ACRONYMS + FILLER)


@pytest.fixture(scope="module")
def examples() -> list:
    return [_example(t) for t in _sentences(20, seed=0)]


@pytest.fixture(scope="module")
def trained(tiny, examples):
    calls: list[tuple[float, str]] = []
    result = finetune(
        examples, LABELS, base=tiny, args=FAST, progress=lambda f, m: calls.append((f, m))
    )
    return result, calls


def test_word_shapes():
    cases = {
        "QA": "allcaps",
        "GPT2": "allcaps",
        "A": "upper1",
        "The": "capitalised",
        "model": "lower",
        "BiLSTM": "mixed_caps",
        "ConvNet": "mixed",
        "2019": "digits",
        "3.5": "digits",
        "(": "punct",
        "漢字": "other",
    }
    for word, shape in cases.items():
        assert word_shape(word) == SHAPE_ID[shape], word


def test_shape_embedding_starts_at_zero_and_changes_nothing(tiny):
    torch.manual_seed(0)
    model = Tagger.from_base(tiny, LABELS).eval()
    assert model.shape_embedding is not None
    assert torch.count_nonzero(model.shape_embedding.weight) == 0
    assert model.tags == ["O", "B-SHORT", "I-SHORT"]
    ids = torch.tensor([[2, 10, 11, 3]])
    mask = torch.ones_like(ids)
    shapes = torch.tensor([[0, 1, 4, 0]])
    with torch.no_grad():
        assert torch.equal(model(ids, mask, shapes), model(ids, mask, None))


def test_long_documents_are_chunked_not_truncated(tiny):
    model = Tagger.from_base(tiny, LABELS)
    words = [w.text for w in tokenize(" ".join(["the model uses NLP"] * 10))]
    chunks = encode_docs(model.tokenizer, [words], max_length=10, shape_features=True)
    assert len(chunks) > 1 and all(len(c) <= 10 for c in chunks)
    firsts = [w for c in chunks for w in c.first if w >= 0]
    assert firsts == list(range(len(words)))
    shapes = {w: s for c in chunks for w, s in zip(c.first, c.shape_ids, strict=True) if w >= 0}
    assert shapes[3] == SHAPE_ID["allcaps"] and shapes[0] == SHAPE_ID["lower"]


def test_finetune_learns_capitalised_words(trained, examples):
    result, _ = trained
    preds = predict(result.model, [(t, w) for t, w, _ in examples], precision="fp32")
    f1 = span_prf([s for _, _, s in examples], [p.spans for p in preds], LABELS)["f1_macro"]
    # Chance (tagging every word, or a random one) is below 0.4; the seed-fixed run is ~1.0.
    assert f1 >= 0.8
    assert result.metrics["dev"] is None and result.n_dev == 0  # under 40 examples: no dev
    assert result.epochs_run == FAST.epochs and result.train_seconds > 0
    assert torch.count_nonzero(result.model.shape_embedding.weight) > 0
    frozen = result.model.word_embeddings().weight
    assert not frozen.requires_grad  # freeze_embeddings defaults to True


def test_without_shape_features_capitals_are_invisible(tiny, examples):
    args = replace(FAST, shape_features=False)
    result = finetune(examples, LABELS, base=tiny, args=args)
    assert result.model.shape_embedding is None
    preds = predict(result.model, [(t, w) for t, w, _ in examples], precision="fp32")
    f1 = span_prf([s for _, _, s in examples], [p.spans for p in preds], LABELS)["f1_macro"]
    assert f1 < 0.8  # seeds 0-5 gave 0.30-0.59: the uncased tokens are identical


def test_few_labels_train_at_least_min_steps(tiny, examples):
    # 20 examples in batches of 4 make 5 steps an epoch: 2 epochs are 10 steps, under 23, so
    # the floor asks for ceil(23 / 5) = 5 epochs; without it (min_steps=0) the 2 stand.
    floored = finetune(examples, LABELS, base=tiny, args=replace(FAST, epochs=2, min_steps=23))
    assert floored.epochs_run == 5 and len(floored.history) == 5
    plain = finetune(examples, LABELS, base=tiny, args=replace(FAST, epochs=2, min_steps=0))
    assert plain.epochs_run == 2
    # enough steps already: epochs is the bound, as before
    enough = finetune(examples, LABELS, base=tiny, args=replace(FAST, epochs=3, min_steps=15))
    assert enough.epochs_run == 3


def test_the_schedule_is_the_evidence_s_unless_given(tiny, examples):
    """Issue 14: a model that takes the acronym rule's tags as evidence trains 12 epochs at
    3e-4 with a 60-step floor, any other 20 at 2e-4; what the caller sets stays."""
    from core.model.finetune import with_schedule

    unset = replace(FAST, epochs=None, lr=None, min_steps=None)
    acronym = with_schedule(unset, "acronym")
    assert (acronym.epochs, acronym.lr, acronym.min_steps) == (12, 3e-4, 60)
    own = with_schedule(unset, None)
    assert (own.epochs, own.lr, own.min_steps) == (20, 2e-4, 0)
    assert with_schedule(replace(unset, epochs=3), "acronym").epochs == 3
    # 20 examples in batches of 4: 5 steps an epoch, so the acronym floor of 60 steps is 12
    args = replace(unset, lr=3e-3)
    result = finetune(examples, ["SHORT", "LONG"], task="acronym", base=tiny, args=args)
    assert result.model.evidence.name == "acronym" and result.epochs_run == 12
    recorded = result.model.info["train_args"]
    assert (recorded["epochs"], recorded["lr"], recorded["min_steps"]) == (12, 3e-3, 60)


def test_progress_is_reported(trained):
    _, calls = trained
    fractions = [f for f, _ in calls]
    assert len(calls) >= FAST.epochs and fractions[-1] == 1.0
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)


def test_save_load_predict_identical(trained, examples, tmp_path):
    result, _ = trained
    docs = [(t, w) for t, w, _ in examples[:8]]
    before = predict(result.model, docs, precision="fp32")
    result.model.save(tmp_path / "v1", project="demo")
    loaded = load_tagger(tmp_path / "v1", device="cpu")
    after = predict(loaded, docs, precision="fp32")
    assert [p.spans for p in before] == [p.spans for p in after]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a.word_probs, b.word_probs, atol=1e-5)
    assert loaded.info["project"] == "demo" and loaded.info["train_args"]["epochs"] == FAST.epochs
    assert loaded.labels == LABELS and loaded.max_length == result.model.max_length


def test_warm_start_reuses_the_head(trained, tmp_path):
    result, _ = trained
    result.model.save(tmp_path / "v1")
    same = Tagger.from_base(tmp_path / "v1", LABELS)
    assert same.info["head_reused"] == "full"
    assert torch.equal(same.head.weight, result.model.head.weight.cpu())
    assert torch.equal(same.shape_embedding.weight, result.model.shape_embedding.weight.cpu())
    more = Tagger.from_base(tmp_path / "v1", ["SHORT", "LONG"])
    assert more.info["head_reused"] == "partial"
    assert torch.equal(more.head.weight[:3], result.model.head.weight.cpu())


def test_warm_start_finetune_and_dev_split(tiny, trained, tmp_path):
    result, _ = trained
    result.model.save(tmp_path / "v1")
    examples = [_example(t) for t in _sentences(40, seed=3)]
    args = replace(FAST, epochs=3, patience=1, min_epochs=1, min_dev_for_selection=1)
    again = finetune(examples, LABELS, base=str(tmp_path / "v1"), args=args)
    assert again.model.info["head_reused"] == "full"
    assert again.n_dev == 4 and again.n_train == 36
    dev = again.metrics["dev"]
    assert set(dev) >= {"per_label", "f1_macro", "f1_micro"}
    assert dev["f1_macro"] > 0.5  # the warm start already knows the task


def test_should_stop_cancels(tiny, examples):
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 3

    with pytest.raises(TrainingCancelled):
        finetune(examples, LABELS, base=tiny, args=FAST, should_stop=should_stop)
    assert len(polls) == 4


def test_predict_outputs_and_mc_dropout(trained):
    result, _ = trained
    docs = [("the CNN uses a GPU", tokenize("the CNN uses a GPU")), ("", [])]
    preds = predict(result.model, docs, mc_dropout=3, precision="bf16")
    first, empty = preds
    assert first.word_probs.shape == (5, 3) and first.mc_probs.shape == (3, 5, 3)
    np.testing.assert_allclose(first.word_probs.sum(axis=1), 1.0, atol=1e-2)
    assert len(first.tags) == 5
    for span in first.spans:
        assert set(span) == {"start", "end", "label", "confidence"}
        assert 0.0 < span["confidence"] <= 1.0
    assert empty.spans == [] and empty.word_probs.shape == (0, 3)


def test_decode_repairs_i_after_o():
    tags = ["O", "B-SHORT", "I-SHORT"]
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.4, 0.5], [0.2, 0.1, 0.7]])
    assert decode_bio(probs, tags) == ["O", "B-SHORT", "I-SHORT"]
    assert decode_bio(np.array([[0.2, 0.3, 0.5]]), tags) == ["B-SHORT"]


def _viterbi_reference(word_probs: np.ndarray, tags: list[str]) -> list[str]:
    """decode_bio as it was before its greedy shortcut and cached transitions (issue 14)."""
    n, k = word_probs.shape
    logp = np.log(np.clip(word_probs.astype(np.float64), 1e-12, 1.0))
    trans, start = np.zeros((k, k)), np.zeros(k)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            start[j] = -np.inf
            for i in range(k):
                if i not in (tags.index("B-" + tag[2:]), j):
                    trans[i, j] = -np.inf
    score, back = logp[0] + start, np.zeros((n, k), dtype=np.int64)
    for i in range(1, n):
        cand = score[:, None] + trans
        back[i], score = cand.argmax(axis=0), cand.max(axis=0) + logp[i]
    path = [int(score.argmax())]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return [tags[j] for j in reversed(path)]


def test_decode_is_viterbi_on_random_and_tied_probabilities():
    tags = ["O", "B-SHORT", "I-SHORT", "B-LONG", "I-LONG"]
    rng = np.random.default_rng(0)
    for trial in range(400):
        n = int(rng.integers(1, 30))
        logits = rng.normal(scale=3.0, size=(n, len(tags)))
        if trial % 3 == 0:
            logits = np.round(logits)  # coarse values: ties, as bf16 logits produce
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        probs = probs.astype(np.float32)
        if trial % 5 == 0:
            probs[:, :] = 1.0 / len(tags)  # every word a five-way tie
        assert decode_bio(probs, tags) == _viterbi_reference(probs, tags)


def test_missing_backbone_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        Tagger.from_base(tmp_path / "nope", LABELS)


def test_a_half_precision_backbone_loads_in_float32(tmp_path):
    """transformers 5 keeps an fp16 checkpoint in fp16 unless told otherwise; the optimiser
    needs float32 master weights (autocast brings bf16 where it pays)."""
    from transformers import AutoModel

    from core.model.encoders import load_encoder

    path = tiny_backbone(tmp_path / "bb", ["acronym"])
    AutoModel.from_pretrained(path).half().save_pretrained(path)
    encoder, _ = load_encoder(path)
    assert {p.dtype for p in encoder.parameters()} == {torch.float32}
