"""`fewlabel predict` writes each input format back, tokens unchanged, labels predicted."""

from __future__ import annotations

import json

import pytest
from helpers import ACRONYM_SENTENCES

from core.cli import main
from core.model.finetune import TrainArgs, finetune
from core.text import Span, tokenize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model_dir):
    examples = []
    for s in ACRONYM_SENTENCES:
        words = tokenize(s)
        spans = [
            Span(w.start, w.end, "SHORT") for w in words if w.text.isupper() and len(w.text) > 1
        ]
        examples.append((s, words, spans))
    args = TrainArgs(epochs=2)
    result = finetune(examples, ["SHORT", "LONG"], task="acronym", base=tiny_model_dir, args=args)
    out = tmp_path_factory.mktemp("model") / "v1"
    result.model.save(out, label_spelling={"SHORT": "short", "LONG": "long"})
    return str(out)


SENTS = [["The", "WHO", "met", "."], ["Support", "vector", "machines", "(", "SVM", ")", "."]]


def test_sciad_in_sciad_out(tmp_path, model_dir):
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"id": f"d{i}", "tokens": t} for i, t in enumerate(SENTS)]))
    out = tmp_path / "out.json"
    assert main(["predict", "--model", model_dir, "--input", str(src), "--output", str(out)]) == 0
    got = json.loads(out.read_text())
    assert [r["id"] for r in got] == ["d0", "d1"]
    assert [r["tokens"] for r in got] == SENTS
    assert all(len(r["labels"]) == len(r["tokens"]) for r in got)
    labels = {lbl for r in got for lbl in r["labels"]}
    assert labels <= {"O", "B-short", "I-short", "B-long", "I-long"}  # spelled as at training
    # the definition rule is merged at decoding: the long form and its short form are tagged
    assert got[1]["labels"] == ["B-long", "I-long", "I-long", "O", "B-short", "O", "O"]


def test_conll_in_conll_out_and_jsonl_and_txt(tmp_path, model_dir):
    src = tmp_path / "in.conll"
    src.write_text("\n\n".join("\n".join(f"{t}\tO" for t in s) for s in SENTS) + "\n")
    out = tmp_path / "out.conll"
    assert main(["predict", "--model", model_dir, "--input", str(src), "--output", str(out)]) == 0
    docs = [d.split("\n") for d in out.read_text().strip().split("\n\n")]
    assert [[ln.split("\t")[0] for ln in d] for d in docs] == SENTS

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": 1, "text": "Support vector machines (SVM) work."}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model", model_dir, "--input", str(src), "--output", str(out)]) == 0
    row = json.loads(out.read_text())
    assert row["id"] == "1"  # external ids are kept as strings
    assert {"start": 25, "end": 28, "label": "SHORT", "text": "SVM"}.items() <= row["spans"][
        1
    ].items()

    src = tmp_path / "in.txt"
    src.write_text("Support vector machines (SVM) work.\n")
    out = tmp_path / "tagged.txt"
    assert main(["predict", "--model", model_dir, "--input", str(src), "--output", str(out)]) == 0
    tagged = out.read_text()
    # the rule's definition is certain; what the tiny random model adds after it is not
    assert tagged.startswith("[Support vector machines]{LONG} ([SVM]{SHORT}")
    assert tagged.count("\n") == 1


def test_the_output_suffix_picks_the_format(tmp_path, model_dir):
    src = tmp_path / "in.conll"
    src.write_text("\n\n".join("\n".join(f"{t}\tO" for t in s) for s in SENTS) + "\n")
    out = tmp_path / "pred.jsonl"
    assert main(["predict", "--model", model_dir, "--input", str(src), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["tokens"] for r in rows] == SENTS and all("spans" in r for r in rows)
    out = tmp_path / "pred.tsv"  # no format of its own: the input's comes back
    assert main(["predict", "--model", model_dir, "--input", str(src), "--output", str(out)]) == 0
    docs = [d.split("\n") for d in out.read_text().strip().split("\n\n")]
    assert [[ln.split("\t")[0] for ln in d] for d in docs] == SENTS


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("x\n")
    code = main(
        [
            "predict",
            "--model",
            str(tmp_path / "nope"),
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.txt"),
        ]
    )
    assert code != 0 and "no such model directory" in capsys.readouterr().err
    assert not (tmp_path / "o.txt").exists()
