"""Evidence features: the weak labeler's tag of every word as a learned input embedding."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
from helpers import ACRONYM_SENTENCES

from core.errors import NotFoundError
from core.metrics import span_prf
from core.model.backbone import Tagger
from core.model.finetune import TrainArgs, finetune
from core.model.predict import predict
from core.model.trainer import hide_evidence
from core.tasks import get_task
from core.text import spans_to_bio, tokenize
from core.weak import KeyphraseExtractor, label_acronyms
from core.weak.evidence import Evidence

LABELS = ["SHORT", "LONG"]
DEFINITION = "We train a support vector machine ( SVM ) on GPU clusters ."
FAST = TrainArgs(epochs=10, lr=3e-3, batch_size=4, seed=1, precision="fp32", decode_rules=False)
ACRONYM = Evidence("acronym")


def _doc(text: str):
    return text, tokenize(text)


def test_evidence_tags_are_the_rule_tags_of_every_word():
    tags = ["O", "B-SHORT", "I-SHORT", "B-LONG", "I-LONG"]
    text, words = _doc(DEFINITION)
    [ids] = ACRONYM.tags(tags, [(text, words)])
    named = dict(zip([w.text for w in words], [tags[i] for i in ids], strict=True))
    assert [named[w] for w in ("support", "vector", "machine")] == ["B-LONG", "I-LONG", "I-LONG"]
    assert named["SVM"] == "B-SHORT" and named["GPU"] == "B-SHORT" and named["train"] == "O"
    assert get_task("acronym").evidence == ACRONYM and get_task("custom").evidence is None


def test_every_subtoken_of_a_word_carries_its_evidence(tiny_model_dir):
    model = Tagger.from_base(tiny_model_dir, LABELS, evidence=ACRONYM)
    assert model.evidence == ACRONYM
    text, words = _doc(DEFINITION)
    [tags] = ACRONYM.tags(model.tags, [(text, words)])
    [chunk] = model.encode([(text, words)])
    owner, word = [], -1  # the word each position belongs to (-1: a special token)
    for pos, first in enumerate(chunk.first):
        special = chunk.input_ids[pos] in model.tokenizer.all_special_ids
        word = first if first >= 0 else (-1 if special else word)
        owner.append(word)
        assert chunk.evidence_ids[pos] == (0 if special else tags[word] + 1)
    # "support" is not in the tiny vocabulary: several sub-tokens, all B-LONG
    support = [e for w, e in zip(owner, chunk.evidence_ids, strict=True) if w == 3]
    assert len(support) > 1 and set(support) == {model.tags.index("B-LONG") + 1}


def test_a_model_without_evidence_takes_none(tiny_model_dir):
    model = Tagger.from_base(tiny_model_dir, ["KEY"])
    assert model.evidence is None and model.evidence_embedding is None
    assert all(e == 0 for c in model.encode([_doc(DEFINITION)]) for e in c.evidence_ids)


def test_fresh_evidence_embedding_changes_nothing(tiny_model_dir):
    model = Tagger.from_base(tiny_model_dir, LABELS, evidence=ACRONYM).eval()
    assert torch.count_nonzero(model.evidence_embedding.weight) == 0
    ids, mask = torch.tensor([[2, 10, 11, 3]]), torch.ones((1, 4), dtype=torch.long)
    evidence = torch.tensor([[0, 4, 5, 0]])
    with torch.no_grad():
        assert torch.equal(model(ids, mask, None, evidence), model(ids, mask, None, None))


def test_hide_evidence_zeroes_whole_rows():
    evidence = torch.arange(1, 13).reshape(4, 3)
    assert torch.equal(hide_evidence(evidence, 0.0), evidence)
    assert torch.count_nonzero(hide_evidence(evidence, 1.0)) == 0
    half = hide_evidence(evidence, 0.5, torch.Generator().manual_seed(0))
    for row, orig in zip(half, evidence, strict=True):
        assert torch.equal(row, orig) or torch.count_nonzero(row) == 0


def test_finetuned_evidence_model_saves_loads_and_warm_starts(tiny_model_dir, tmp_path):
    sentences = [DEFINITION, *ACRONYM_SENTENCES] * 3
    examples = [(t, w, label_acronyms(t, w)) for t, w in map(_doc, sentences)]
    result = finetune(examples, LABELS, task="acronym", base=tiny_model_dir, args=FAST)
    model = result.model
    assert torch.count_nonzero(model.evidence_embedding.weight) > 0
    docs = [(t, w) for t, w, _ in examples]
    # the labels are the rule's own, which the model sees: it learns to follow them
    preds = predict(model, docs, precision="fp32")
    f1 = span_prf([s for _, _, s in examples], [p.spans for p in preds], LABELS)["f1_macro"]
    assert f1 >= 0.9
    saved = model.save(tmp_path / "v1")
    loaded = Tagger.load(saved)
    assert loaded.evidence == ACRONYM
    assert torch.equal(loaded.evidence_embedding.weight, model.evidence_embedding.weight)
    again = predict(loaded, docs, precision="fp32")
    assert [p.spans for p in again] == [p.spans for p in preds]
    warm = Tagger.from_base(saved, LABELS, evidence=ACRONYM)
    assert torch.equal(warm.evidence_embedding.weight, model.evidence_embedding.weight)
    # evidence=False trains without it, and a base that had it is not forced on the model
    off = replace(FAST, epochs=1, evidence=False)
    off = finetune(examples, LABELS, task="acronym", base=saved, args=off)
    assert off.model.evidence is None and off.model.evidence_embedding is None


# ---------------------------------------------------------------------------- concepts

CONCEPT_CORPUS = [
    "sentence number one mentions graph coloring today .",
    "graph coloring is hard , and graph coloring is slow .",
    "the learning rate of gradient descent matters .",
    "gradient descent with a small learning rate converges .",
    "cats and dogs sleep under trees .",
]


def test_concept_evidence_is_keyphrases_fitted_on_a_corpus():
    docs = [_doc(t) for t in CONCEPT_CORPUS]
    evidence = get_task("concept").evidence
    assert evidence == Evidence("concept") and evidence.needs_corpus
    fitted_evidence = evidence.fit(docs)
    state = fitted_evidence.state
    assert ACRONYM.fit(docs) == ACRONYM and not ACRONYM.needs_corpus  # the rules learn nothing
    # the state is plain JSON and rebuilds the very extractor that was fitted
    assert json.loads(json.dumps(state)) == state
    fitted = KeyphraseExtractor().fit(docs)
    assert [fitted(t, w) for t, w in docs] == [
        Evidence("concept", state).labeler()(t, w) for t, w in docs
    ]
    tags = ["O", "B-CONCEPT", "I-CONCEPT"]
    text, words = docs[1]
    [ids] = fitted_evidence.tags(tags, [(text, words)])
    named = [(w.text, tags[i]) for w, i in zip(words, ids, strict=True)]
    assert [t for _, t in named] == spans_to_bio(words, fitted(text, words))
    assert named[:2] == [("graph", "B-CONCEPT"), ("coloring", "I-CONCEPT")]
    assert ("is", "O") in named and (",", "O") in named


def test_which_evidence_a_model_takes():
    acronym, concept, custom = (get_task(t) for t in ("acronym", "concept", "custom"))
    names = [e and e.name for e in map(acronym.evidence_for, (None, True, False))]
    assert names == ["acronym"] * 2 + [None]
    names = [e and e.name for e in map(concept.evidence_for, (None, True, False))]
    assert names == [None, "concept", None]
    assert custom.evidence_for(True) is None  # a custom task has no built-in labeler


def test_a_concept_model_keeps_its_fitted_evidence(tiny_model_dir, tmp_path):
    docs = [_doc(t) for t in CONCEPT_CORPUS]
    examples = [(t, w, KeyphraseExtractor().fit(docs)(t, w)) for t, w in docs[:3]]
    # concept evidence is asked for; by default a concept model takes none (above)
    args = replace(FAST, epochs=2, evidence=True)
    concept = {"task": "concept", "args": args}
    # without a corpus, the examples' texts are the corpus
    alone = finetune(examples, ["CONCEPT"], base=tiny_model_dir, **concept).model
    assert alone.evidence.name == "concept"
    assert alone.evidence == Evidence("concept").fit([(t, w) for t, w, _ in examples])
    model = finetune(examples, ["CONCEPT"], base=tiny_model_dir, corpus=docs, **concept).model
    assert model.evidence == Evidence("concept").fit(docs) != alone.evidence
    saved = model.save(tmp_path / "v1")
    assert (saved / "evidence.json").is_file()
    loaded = Tagger.load(saved)
    assert loaded.evidence == model.evidence
    moved = tmp_path / "incomplete"
    shutil.copytree(saved, moved)
    (moved / "evidence.json").unlink()
    with pytest.raises(NotFoundError, match="evidence.json"):
        Tagger.load(moved)
    assert [c.evidence_ids for c in loaded.encode(docs)] == [
        c.evidence_ids for c in model.encode(docs)
    ]
    assert [p.spans for p in predict(loaded, docs, precision="fp32")] == [
        p.spans for p in predict(model, docs, precision="fp32")
    ]
    # a retrain from it without a corpus keeps the statistics it learned from the project
    again = replace(args, epochs=1)
    warm = finetune(examples, ["CONCEPT"], task="concept", base=saved, args=again).model
    assert warm.evidence == model.evidence
    # a model without evidence leaves no stale statistics behind in its folder
    off = replace(args, evidence=False)
    off = finetune(examples, ["CONCEPT"], task="concept", base=saved, args=off).model
    assert off.evidence is None and not (off.save(saved) / "evidence.json").exists()
