"""Aligned and MLM-only pretraining on a tiny model, and both benchmarks end to end."""

from __future__ import annotations

import itertools
import json

import pytest
from helpers import ACRONYM_SENTENCES, POOL_SENTENCES
from sqlalchemy import select

from core.bench import active_table, labels_to_reach, mean_curves
from core.cli import main
from core.model.backbone import Tagger
from core.model.finetune import TrainArgs, finetune
from core.model.pretrain import STATE_FILE, PretrainArgs, pretrain
from core.store.db import session_scope
from core.store.schema import ModelVersion
from core.text import tokenize

pytestmark = pytest.mark.slow

CORPUS = [
    "Support vector machines ( SVM ) are popular .",
    "We use a convolutional neural network ( CNN ) here .",
    "The WHO and NASA agreed .",
    "Long short term memory ( LSTM ) models help .",
] * 4


def _texts(sentences):
    return [(s, tokenize(s)) for s in sentences]


@pytest.mark.parametrize("objective", ["aligned", "mlm"])
def test_pretraining_writes_a_loadable_checkpoint_with_the_task_head(
    tmp_path, tiny_model_dir, objective
):
    out = pretrain(
        _texts(CORPUS),
        task="acronym",
        out_dir=tmp_path / objective,
        args=PretrainArgs(objective=objective, base=tiny_model_dir, steps=4, batch_size=8),
        corpus_names=["corpus.txt"],
    )
    model = Tagger.load(out)
    assert model.labels == ["SHORT", "LONG"]
    assert model.tags == ["O", "B-SHORT", "I-SHORT", "B-LONG", "I-LONG"]
    info = model.info["pretraining"]
    assert info["objective"] == objective and info["steps"] == 4
    assert info["corpus"] == ["corpus.txt"] and info["corpus_texts"] == len(CORPUS)
    assert (info["weakly_labeled_texts"] > 0) == (objective == "aligned")
    # only the aligned run sees the weak labeler, as evidence too; MLM-only stays without
    assert (model.evidence and model.evidence.name) == (
        "acronym" if objective == "aligned" else None
    )
    assert (out / STATE_FILE).is_file()
    # resumable: asking for more steps continues from the saved step
    pretrain(
        _texts(CORPUS),
        task="acronym",
        out_dir=out,
        args=PretrainArgs(objective=objective, base=tiny_model_dir, steps=6, batch_size=8),
    )
    assert Tagger.load(out).info["pretraining"]["steps"] == 6
    # and finetuning takes it as a base, keeping the head (same label map)
    result = finetune(
        [(s, tokenize(s), []) for s in ACRONYM_SENTENCES],
        ["SHORT", "LONG"],
        task="acronym",
        base=out,
        args=TrainArgs(epochs=1),
    )
    assert result.model.info["head_reused"] == "full"


def test_pretraining_a_linked_corpus_trains_on_plain_text_with_anchors_as_labels(
    tmp_path, tiny_model_dir, capsys
):
    corpus = tmp_path / "notes.md"
    corpus.write_text(
        "A [support vector machine](https://w.org/SVM) separates classes.\n\n"
        "Trees and [[Random forest|random forests]] vote on <a href='/x'>decision trees</a>.\n\n"
        "A paragraph without links about kernels and margins.\n",
        encoding="utf-8",
    )
    out = tmp_path / "ck"
    args = ["pretrain", "--task", "concept", "--corpus", str(corpus), "--out", str(out)]
    assert main([*args, "--base", tiny_model_dir, "--steps", "2"]) == 0
    assert "2 texts with link anchors" in capsys.readouterr().err
    info = Tagger.load(out).info["pretraining"]
    assert info["corpus_texts"] == 3 and info["weakly_labeled_texts"] == 3
    assert info["weak_labelers"].startswith("link anchors (2 texts), then ")


def test_aligned_pretraining_moves_the_tagging_head_and_mlm_does_not(tmp_path, tiny_model_dir):
    heads = {}
    for objective in ("aligned", "mlm"):
        out = pretrain(
            _texts(CORPUS),
            task="acronym",
            out_dir=tmp_path / objective,
            args=PretrainArgs(objective=objective, base=tiny_model_dir, steps=3, batch_size=8),
        )
        heads[objective] = Tagger.load(out).head.bias.detach().abs().sum().item()
    assert heads["mlm"] == 0.0 and heads["aligned"] > 0.0


def _write_sciad(path, sentences):
    recs = []
    for i, s in enumerate(sentences):
        toks = s.split()
        recs.append(
            {
                "id": str(i),
                "tokens": toks,
                "labels": ["B-short" if t.isupper() and len(t) > 1 else "O" for t in toks],
            }
        )
    path.write_text(json.dumps(recs))
    return str(path)


def test_bench_fewshot_and_active_run_end_to_end(tmp_path, tiny_model_dir, capsys):
    train = _write_sciad(tmp_path / "train.json", ACRONYM_SENTENCES + POOL_SENTENCES[:10])
    test = _write_sciad(tmp_path / "test.json", POOL_SENTENCES[10:])
    data = ["--task", "acronym", "--train", train, "--test", test, "--epochs", "1"]
    out = tmp_path / "fewshot.json"
    fewshot = "--n 4,8 --seeds 2 --rule --pretrain-steps 2".split()
    fewshot += ["--bases", f"base,mlm,aligned,{tiny_model_dir}", "--backbone", tiny_model_dir]
    fewshot += ["--json", str(out), "--plot", str(tmp_path / "fewshot.png")]
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(POOL_SENTENCES[:3]) + "\n")
    fewshot += ["--pool", str(pool)]
    code = main(["bench", "fewshot", *data, *fewshot, "--work-dir", str(tmp_path / "work")])
    assert code == 0
    records = json.loads(out.read_text())
    keys = {"base", "n", "seed", "f1_macro", "f1_micro", "per_label", "train_seconds"}
    assert all(keys <= r.keys() for r in records)
    assert {(r["base"], r["n"]) for r in records} >= {
        ("rule", 4),
        ("base", 8),
        ("mlm", 4),
        ("aligned", 8),
        (tiny_model_dir, 4),
    }
    # the aligned base of every (N, seed) pretrained from the weak sources of those N, the
    # acronym rule among them, over the rest of the training file plus the --pool texts
    for n, seed in itertools.product((4, 8), (0, 1)):
        assert (tmp_path / "work" / f"aligned-acronym-n{n}-seed{seed}" / "tagger.json").is_file()
    aligned = [r for r in records if r["base"] == "aligned"]
    assert all("acronym rule" in r["weak_sources"] for r in aligned)
    meta = json.loads((tmp_path / "work" / "aligned-acronym-n4-seed0" / "tagger.json").read_text())
    assert "plus 3 pool texts" in json.dumps(meta)
    rule = [r for r in records if r["base"] == "rule"][0]
    assert rule["per_label"]["SHORT"]["f1"] > 50  # the rule finds all-caps short forms
    assert (tmp_path / "fewshot.png").stat().st_size > 1000
    assert "n=4" in capsys.readouterr().out

    out = tmp_path / "active.json"
    active = "--strategies random,entropy --seed-size 4 --step 4 --budget 12 --seeds 2".split()
    code = main(["bench", "active", *data, *active, "--base", tiny_model_dir, "--json", str(out)])
    assert code == 0
    records = json.loads(out.read_text())
    runs = [(s, strategy) for s in (0, 1) for strategy in ("random", "entropy")]
    assert [(r["seed"], r["strategy"], r["labels"]) for r in records] == [
        (s, strategy, n) for s, strategy in runs for n in (4, 8, 12)
    ]
    # each seed starts from its own random sentences
    starts = {r["seed"]: r["words"] for r in records if r["labels"] == 4}
    assert starts[0] != starts[1]
    assert "labels needed to reach random" in capsys.readouterr().out


def test_labels_to_reach_uses_f1_averaged_over_seeds():
    def rec(strategy, seed, labels, f1):
        return {"strategy": strategy, "seed": seed, "labels": labels, "f1_macro": f1}

    records = [
        rec("random", 0, 20, 50.0),
        rec("random", 0, 40, 70.0),
        rec("random", 1, 20, 50.0),
        rec("random", 1, 40, 60.0),  # random's final mean F1: 65
        rec("entropy", 0, 20, 66.0),
        rec("entropy", 1, 20, 62.0),  # mean 64: not yet
        rec("entropy", 0, 40, 66.0),
        rec("entropy", 1, 40, 64.0),  # mean 65: reached
        rec("margin", 0, 20, 90.0),  # one seed only at 20 labels, mean 90
        rec("margin", 0, 40, 10.0),
    ]
    assert labels_to_reach(records) == {"random": 40, "entropy": 40, "margin": 20}
    assert mean_curves(records)["entropy"] == {20: 64.0, 40: 65.0}
    table = active_table(records)
    assert "entropy 40" in table and "64.0" in table


def test_benchmarks_without_data_exit_non_zero(tmp_path, capsys):
    missing, out = str(tmp_path / "no.json"), str(tmp_path / "o.json")
    argv = "bench fewshot --task acronym --train".split() + [missing, "--test", missing]
    code = main([*argv, "--json", out])
    assert code != 0 and "no such file" in capsys.readouterr().err


def test_masked_rows_are_padded_to_a_bucket_without_changing_the_loss():
    import torch

    from core.model.encoding import IGNORE
    from core.model.mlm import bucketed

    hidden = torch.randn(2, 5, 4)
    labels = torch.full((2, 5), IGNORE)
    labels[0, 1], labels[1, 3], labels[1, 4] = 7, 2, 9
    picked, targets = bucketed(hidden, labels, bucket=8)
    assert picked.shape == (8, 4) and targets.tolist()[:3] == [7, 2, 9]
    assert torch.equal(picked[:3], hidden[labels != IGNORE])
    head = torch.nn.Linear(4, 10)
    loss = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    unpadded = loss(head(hidden[labels != IGNORE]), labels[labels != IGNORE])
    assert torch.allclose(loss(head(picked), targets), unpadded)


def test_benchmark_gold_spans_are_snapped_to_words_like_imports(tmp_path):
    from core.bench import load_labeled
    from core.text import Span

    text = "We use Finite State Automaton ( FSA ) here ."
    start = text.index("Finite")
    cut = {"start": start, "end": text.index("Automaton") + 8, "label": "LONG"}  # "Automato"
    short = {"start": text.index("FSA"), "end": text.index("FSA") + 3, "label": "SHORT"}
    path = tmp_path / "raw.jsonl"
    path.write_text(json.dumps({"id": "1", "text": text, "spans": [cut, short]}) + "\n")
    [doc] = load_labeled(path, "acronym")
    end = text.index("Automaton") + len("Automaton")
    assert doc.spans == [Span(start, end, "LONG"), Span(short["start"], short["end"], "SHORT")]


def _write_custom_conll(path, sentences):
    """Custom labels: all-caps words are Org, cats and dogs are Animal."""

    def tag(w):
        if w.isupper() and len(w) > 1:
            return "B-Org"
        return "B-Animal" if w in ("cats", "dogs") else "O"

    docs = ["\n".join(f"{w}\t{tag(w)}" for w in s.split()) for s in sentences]
    path.write_text("\n\n".join(docs) + "\n")
    return str(path)


def test_bench_fewshot_custom_builds_an_aligned_base_per_n_and_seed(tmp_path, tiny_model_dir):
    """A custom task: the aligned base of each (N, seed) is pretrained from weak sources built
    only from those N labels (and the patterns), over the rest of the training file."""
    sentences = ACRONYM_SENTENCES + POOL_SENTENCES
    train = _write_custom_conll(tmp_path / "train.conll", sentences[:20])
    test = _write_custom_conll(tmp_path / "test.conll", sentences[20:])
    patterns = tmp_path / "patterns.jsonl"
    patterns.write_text('{"label": "animal", "pattern": [{"lower": {"in": ["cats", "dogs"]}}]}\n')
    out = tmp_path / "fewshot.json"
    argv = ["bench", "fewshot", "--task", "custom", "--labels", "Org,Animal", "--train", train]
    argv += ["--test", test, "--epochs", "1", "--n", "6,8", "--seeds", "1", "--rule"]
    argv += ["--bases", "base,mlm,aligned", "--backbone", tiny_model_dir, "--pretrain-steps", "2"]
    argv += ["--patterns", str(patterns), "--json", str(out), "--work-dir", str(tmp_path / "w")]
    assert main(argv) == 0
    records = json.loads(out.read_text())
    assert {(r["base"], r["n"]) for r in records} == {
        (b, n) for b in ("rule", "base", "mlm", "aligned") for n in (6, 8)
    }
    for r in records:
        assert set(r["per_label"]) == {"Org", "Animal"}
    rule = [r for r in records if r["base"] == "rule"]
    assert all(r["per_label"]["Animal"]["f1"] == 100.0 for r in rule)  # the pattern is right
    aligned = [r for r in records if r["base"] == "aligned"]
    assert all("dictionary" in r["weak_sources"] for r in aligned)
    assert all(r["weak_sources"]["patterns"]["texts_with_spans"] > 0 for r in aligned)
    for n in (6, 8):
        ck = Tagger.load(tmp_path / "w" / f"aligned-custom-n{n}-seed0")
        assert ck.labels == ["Org", "Animal"]
        assert ck.info["pretraining"]["weak_sources"]["dictionary"]["entries"] > 0

    out = tmp_path / "active.json"
    argv = ["bench", "active", "--task", "custom", "--train", train, "--test", test]
    argv += ["--epochs", "1", "--strategies", "random,entropy", "--seed-size", "4", "--step", "4"]
    argv += ["--budget", "8", "--base", tiny_model_dir, "--json", str(out)]
    assert main(argv) == 0  # labels from the training file
    assert {r["labels"] for r in json.loads(out.read_text())} == {4, 8}


def test_bench_custom_refuses_a_bad_patterns_file_in_one_line(tmp_path, capsys):
    train = _write_custom_conll(tmp_path / "train.conll", ACRONYM_SENTENCES)
    patterns = tmp_path / "p.jsonl"
    patterns.write_text('{"label": "Org", "pattern": "x"}\n{"label": "Plant", "pattern": "y"}\n')
    argv = ["bench", "fewshot", "--task", "custom", "--train", train, "--test", train]
    argv += ["--patterns", str(patterns), "--json", str(tmp_path / "o.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "p.jsonl:2: unknown label 'Plant'" in err and "\n" not in err


def test_bench_speed_measures_the_loop_through_a_worker(tmp_path, tiny_model_dir, capsys):
    """One JSON object with the documented keys, from a real import, a Retrain run by a
    worker process and the queue it reorders; figures are only checked for being measured."""
    labeled = _write_sciad(tmp_path / "labeled.json", ACRONYM_SENTENCES)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(POOL_SENTENCES[:10]), encoding="utf-8")
    out = tmp_path / "speed.json"
    args = ["bench", "speed", "--docs", "30", "--corpus", str(corpus), "--labeled", labeled]
    args += ["--labels", "6", "--epochs", "1", "--backbone", tiny_model_dir, "--json", str(out)]
    args += ["--next-samples", "5", "--score-sample", "10", "--work-dir", str(tmp_path / "w")]
    assert main(args) == 0
    record = json.loads(out.read_text())
    from core.bench.speed import KEYS

    assert set(KEYS) <= record.keys()
    assert record["docs"] == 30 and record["n_labels"] == 6
    from core.model.backbone import Tagger

    with session_scope(f"sqlite:///{tmp_path / 'w' / 'speed.db'}") as s:
        (path,) = s.scalars(select(ModelVersion.path))
    assert Tagger.load(path).info["train_args"]["epochs"] == 1  # --epochs reached the job
    assert record["scored_in_job"] == 30  # the cycled copies are distinct texts
    assert 0 < record["retrain_s"] <= record["retrain_to_queue_s"] <= record["job_s"]
    assert record["next_p50_ms"] <= record["next_p95_ms"]
    assert record["score_texts_per_s"]["torch"] > 0
    assert "retrain to fresh queue" in capsys.readouterr().out
