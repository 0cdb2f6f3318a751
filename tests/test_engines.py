"""ONNX Runtime engines (issue 14) on a tiny random BERT: same predictions as torch, exports
cached beside the weights and written atomically, torch whenever an export fails."""

from __future__ import annotations

import json
import logging
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import tiny_backbone

from core.model import engines
from core.model.backbone import Tagger
from core.model.predict import load_tagger, predict
from core.text import tokenize
from core.weak.evidence import Evidence

WORDS = ["the", "model", "uses", "a", "cnn", "and", "nlp", "on", "gpu", "data", "natural"]
TEXTS = [
    "The model uses a CNN on GPU data .",
    "NLP and natural data .",
    "a",
    "The CNN model uses the NLP model and a GPU on data and natural data and more data .",
    "",
]


def _docs(texts=TEXTS):
    return [(t, tokenize(t)) for t in texts]


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> str:
    """A saved model version whose head has margins wide enough for stable tags."""
    base = tiny_backbone(tmp_path_factory.mktemp("tiny") / "bert", WORDS)
    model = Tagger.from_base(base, ["SHORT", "LONG"], evidence=Evidence("acronym"))
    with torch.no_grad():
        torch.manual_seed(0)
        model.head.weight.normal_(std=1.0)
        model.shape_embedding.weight.normal_(std=0.5)
        model.evidence_embedding.weight.normal_(std=0.5)
    path = tmp_path_factory.mktemp("versions") / "v1"
    model.save(path)
    return str(path)


@pytest.fixture
def fresh(version, tmp_path):
    """A copy of the version, so each test starts without exports."""
    import shutil

    out = tmp_path / "v1"
    shutil.copytree(version, out)
    for name in (*engines.ONNX_FILES.values(), engines.RECORD_FILE):
        (out / name).unlink(missing_ok=True)
    return load_tagger(out, device="cpu")


def test_onnx_predicts_what_torch_predicts(fresh):
    docs = _docs()
    ref = predict(fresh, docs, engine="torch", precision="fp32", rules=False)
    fp32 = predict(fresh, docs, engine="onnx", rules=False)
    int8 = predict(fresh, docs, engine="onnx-int8", rules=False)
    agree = total = 0
    for r, a, b in zip(ref, fp32, int8, strict=True):
        np.testing.assert_allclose(a.word_probs, r.word_probs, atol=1e-4)
        assert a.tags == r.tags
        assert [(x["start"], x["end"], x["label"]) for x in a.spans] == [
            (x["start"], x["end"], x["label"]) for x in r.spans
        ]
        assert np.abs(b.word_probs - r.word_probs).max(initial=0) < 0.1
        agree += sum(x == y for x, y in zip(b.tags, r.tags, strict=True))
        total += len(r.tags)
    assert agree >= 0.9 * total
    assert sum(len(r.spans) for r in ref) > 0  # the comparison is not about empty outputs


def test_exports_are_cached_beside_the_weights_and_atomic(fresh, monkeypatch):
    folder = fresh.source[0]
    attention = fresh.encoder.config._attn_implementation
    predict(fresh, _docs(), engine="onnx-int8")
    assert fresh.encoder.config._attn_implementation == attention  # traced as eager, restored
    names = set(os.listdir(folder))
    assert {"model.onnx", "model.int8.onnx", "engines.json"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left
    record = json.loads((folder / "engines.json").read_text())
    assert record["stamp"] == fresh.source[1] and "error" not in record

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(engines, "_export_fp32", no_export)
    monkeypatch.setattr(engines, "_quantize", no_export)
    again = load_tagger(folder, device="cpu")  # another process, the same version
    assert predict(again, _docs(), engine="onnx-int8")[0].tags


def test_a_failed_export_leaves_no_file_and_falls_back_to_torch(fresh, monkeypatch, caplog):
    folder = fresh.source[0]

    def half_written(model, args, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half an onnx file")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", half_written)
    ref = predict(fresh, _docs(), engine="torch", rules=False)
    with caplog.at_level(logging.WARNING, logger="core.model.engines"):
        got = predict(fresh, _docs(), engine="onnx", rules=False)
    assert [p.tags for p in got] == [p.tags for p in ref]
    assert len(caplog.records) == 1
    assert "exporter crashed" in caplog.records[0].message
    assert not [n for n in os.listdir(folder) if n.endswith(".onnx") or n.startswith(".")]
    assert "exporter crashed" in json.loads((folder / "engines.json").read_text())["error"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.model.engines"):
        predict(fresh, _docs(), engine="auto")  # recorded: torch, no retry, no second line
    assert not caplog.records


def test_auto_measures_once_and_records_its_choice(fresh, monkeypatch):
    folder = fresh.source[0]
    predict(fresh, _docs(), engine="auto")  # too few texts to pay for an export: torch
    assert not (folder / "model.onnx").exists()
    monkeypatch.setattr(engines, "AUTO_MIN_DOCS", 3)
    preds = predict(fresh, _docs(TEXTS * 2), engine="auto")
    auto = json.loads((folder / "engines.json").read_text())["auto"]
    assert auto["choice"] in engines.ENGINES
    assert set(auto["texts_per_s"]) == set(engines.ENGINES)
    assert auto["estimated_f1_loss"]["torch"] == 0.0
    same = predict(fresh, _docs(TEXTS * 2), engine=auto["choice"])
    assert [p.tags for p in preds] == [p.tags for p in same]
    monkeypatch.setattr(engines, "choose", lambda *a: pytest.fail("measured twice"))
    predict(load_tagger(folder, device="cpu"), _docs(TEXTS * 2), engine="auto")


def test_auto_is_torch_when_the_export_cannot_handle_the_model(fresh, monkeypatch):
    def cannot(model, out):
        raise engines.EngineError("an operator the exporter lacks")

    monkeypatch.setattr(engines, "_export_fp32", cannot)
    monkeypatch.setattr(engines, "AUTO_MIN_DOCS", 1)
    predict(fresh, _docs(), engine="auto")
    assert engines.resolve(fresh, "auto", 10_000) == "torch"
    assert engines.resolve(fresh, "onnx-int8", 10_000) == "torch"


def test_torch_for_mc_dropout_and_unknown_engines_refused(fresh):
    assert engines.resolve(fresh, "onnx", 10, mc_dropout=3) == "torch"
    with pytest.raises(engines.EngineError):
        predict(fresh, _docs(), engine="tensorrt")


def test_a_renamed_version_folder_is_found_by_its_weights(version, tmp_path):
    model = load_tagger(version, device="cpu")
    tmp = tmp_path / "v2.tmp-7"
    model.save(tmp)  # as a retrain saves under a temporary name, then renames
    tmp.rename(tmp_path / "v2")
    assert engines.model_folder(model) == tmp_path / "v2"
    predict(model, _docs(), engine="onnx")
    assert (tmp_path / "v2" / "model.onnx").is_file()


def test_a_model_without_a_folder_exports_to_a_temporary_one(version):
    model = load_tagger(version, device="cpu")
    model.source = None
    ref = predict(model, _docs(), engine="torch", precision="fp32")
    got = predict(model, _docs(), engine="onnx")
    assert [p.tags for p in got] == [p.tags for p in ref]


def _pred(spans, probs):
    return SimpleNamespace(spans=spans, word_probs=np.asarray(probs, dtype=np.float32))


def test_estimated_f1_loss_is_zero_for_the_same_spans_and_large_for_wrong_ones():
    tags = ["O", "B-SHORT", "I-SHORT"]
    docs = [("CNN is a net", tokenize("CNN is a net"))]
    sure = [[0.02, 0.97, 0.01], [0.98, 0.01, 0.01], [0.98, 0.01, 0.01], [0.97, 0.02, 0.01]]
    ref = [_pred([{"start": 0, "end": 3, "label": "SHORT"}], sure)]
    assert engines.estimated_f1_loss(docs, ref, ref, tags) == 0.0
    # the other engine misses the sure span and tags "net", which both call unlikely
    wrong = [[0.6, 0.3, 0.1], [0.98, 0.01, 0.01], [0.98, 0.01, 0.01], [0.4, 0.5, 0.1]]
    other = [_pred([{"start": 9, "end": 12, "label": "SHORT"}], wrong)]
    assert engines.estimated_f1_loss(docs, ref, other, tags) > 30
    assert engines.agreement([p.spans for p in ref], [p.spans for p in other]) == 0.0


def test_bench_speed_times_every_engine_on_the_same_texts(fresh):
    from core.bench.speed import _scoring_rate

    rates = _scoring_rate(str(fresh.source[0]), _docs(TEXTS * 4), "least_confidence")
    assert set(rates) == set(engines.ENGINES) and min(rates.values()) > 0
