"""Fingerprint of the training loop: run before and after a refactor, the outputs must match.

Runs, on CPU in fp32 with fixed seeds and a tiny random BERT (tests/helpers.tiny_backbone):
a finetune that selects epochs on a dev slice and stops early (evidence on, evidence dropout),
a finetune without a dev slice, a finetune cancelled mid-epoch, an aligned pretraining that
checkpoints, resumes and is cancelled, and an MLM-only pretraining. Prints every optimizer
step's loss (recorded at backward), the chosen epoch, and a sha256 of the final weights.

    .venv/bin/python scripts/loop_proof.py > before.txt   # ... change the loop ...
    .venv/bin/python scripts/loop_proof.py > after.txt && diff before.txt after.txt
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import tiny_backbone  # noqa: E402

from core.errors import Cancelled  # noqa: E402
from core.model.backbone import Tagger  # noqa: E402
from core.model.finetune import TrainArgs, finetune  # noqa: E402
from core.model.pretrain import STATE_FILE, PretrainArgs, pretrain  # noqa: E402
from core.text import Span, tokenize  # noqa: E402

ACRONYMS = ["nlp", "cnn", "gpu", "api", "svm", "hmm", "lstm", "crf", "who", "nasa"]
FILLER = ["the", "model", "uses", "a", "fast", "for", "we", "train", "on", "data", "and", "with"]
LOSSES: list[float] = []
# the evidence comes from the task once finetune takes one (core.tasks); before, from the labels
ACRONYM = {"task": "acronym"} if "task" in inspect.signature(finetune).parameters else {}
_backward = torch.Tensor.backward


def _recording_backward(self, *args, **kwargs):
    LOSSES.append(float(self.detach()))
    return _backward(self, *args, **kwargs)


torch.Tensor.backward = _recording_backward


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.sample(FILLER, 5) + rng.sample(ACRONYMS, 2)
        rng.shuffle(words)
        acro = [i for i, w in enumerate(words) if w in ACRONYMS]
        words[acro[0]] = words[acro[0]].upper()
        if rng.random() < 0.5:  # a capitalised filler word: the acronym rule's evidence is wrong
            filler = [i for i, w in enumerate(words) if w in FILLER]
            words[filler[0]] = words[filler[0]].upper()
        out.append(" ".join(words) + " .")
    return out


def example(text: str):
    words = tokenize(text)
    spans = [
        Span(w.start, w.end, "SHORT")
        for w in words
        if w.text.isupper() and w.text.lower() in ACRONYMS
    ]
    return text, words, spans


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    state = torch.load(path, weights_only=True)
    h = hashlib.sha256()
    for name, tensor in sorted(state["mlm_head"].items()):
        h.update(name.encode())
        h.update(tensor.cpu().numpy().tobytes())
    return f"mlm_head {h.hexdigest()[:16]} step {state['step']}"


def show(title: str, extra: str = "") -> None:
    print(f"== {title}: {len(LOSSES)} steps {extra}")
    print("   losses " + " ".join(f"{x:.10g}" for x in LOSSES))
    LOSSES.clear()


def stop_after(n: int):
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] > n

    return should_stop


def run_finetunes(base: str) -> None:
    labels = ["SHORT", "LONG"]
    data = [example(t) for t in sentences(48, seed=0)]
    selecting = TrainArgs(
        epochs=8,
        min_steps=0,
        lr=1e-3,
        batch_size=4,
        seed=3,
        precision="fp32",
        device="cpu",
        num_threads=1,
        dev_fraction=0.25,
        min_dev_examples=10,
        min_dev_for_selection=10,
        patience=2,
        min_epochs=3,
        evidence=True,
        evidence_dropout=0.3,
    )
    progress: list[tuple[float, str]] = []
    report = lambda f, m: progress.append((f, m))  # noqa: E731
    r = finetune(data, labels, base=base, args=selecting, progress=report, **ACRONYM)
    hist = [
        {k: (round(v, 10) if isinstance(v, float) else v) for k, v in h.items() if k != "seconds"}
        for h in r.history
    ]
    show(
        "finetune, dev selection",
        f"best_epoch {r.best_epoch} epochs_run {r.epochs_run} stopped_early {r.stopped_early} "
        f"n_train {r.n_train} n_dev {r.n_dev} weights {digest(r.model)}",
    )
    print("   history", json.dumps(hist))
    print(
        "   dev",
        json.dumps({k: v for k, v in r.metrics["dev"].items()}, sort_keys=True, default=str),
    )
    print("   progress", [m for _, m in progress if "step" not in m])

    few = TrainArgs(
        epochs=3,
        min_steps=10,
        lr=2e-3,
        batch_size=3,
        seed=5,
        precision="fp32",
        device="cpu",
        num_threads=1,
        evidence=False,
    )
    r = finetune(data[:9], ["SHORT"], base=base, args=few)
    show(
        "finetune, no dev, min_steps",
        f"best_epoch {r.best_epoch} epochs_run {r.epochs_run} weights {digest(r.model)}",
    )
    r = finetune(
        data, labels, base=base, args=replace(selecting, precision="bf16", epochs=2), **ACRONYM
    )
    show("finetune, bf16 autocast", f"best_epoch {r.best_epoch} weights {digest(r.model)}")
    try:
        finetune(data[:9], ["SHORT"], base=base, args=few, should_stop=stop_after(4))
        print("   not cancelled!")
    except Cancelled as e:
        show("finetune, cancelled", f"{type(e).__name__}: {e}")


def run_pretrains(base: str, texts: list, tmp: Path) -> None:
    args = PretrainArgs(
        base=base,
        steps=6,
        batch_size=4,
        lr=1e-3,
        seed=7,
        precision="fp32",
        device="cpu",
        num_threads=1,
        checkpoint_every=3,
        evidence_dropout=0.5,
    )
    out = tmp / "aligned"
    pretrain(texts, task="acronym", out_dir=out, args=args)
    show("pretrain aligned 6 steps", f"weights {digest(Tagger.load(out, device='cpu'))}")
    print("  ", file_digest(out / STATE_FILE))
    pretrain(
        texts, task="acronym", out_dir=out, args=PretrainArgs(**{**args.__dict__, "steps": 10})
    )
    info = json.loads((out / "tagger.json").read_text())["info"]["pretraining"]
    show(
        "pretrain aligned resumed to 10",
        f"weights {digest(Tagger.load(out, device='cpu'))} losses {info.get('losses')} "
        f"steps {info.get('steps')}",
    )
    print("  ", file_digest(out / STATE_FILE))
    try:
        pretrain(
            texts,
            task="acronym",
            out_dir=out,
            args=PretrainArgs(**{**args.__dict__, "steps": 20}),
            should_stop=stop_after(3),
        )
        print("   not cancelled!")
    except Cancelled as e:
        show("pretrain cancelled", f"{type(e).__name__}: {e}")
    print("  ", file_digest(out / STATE_FILE))
    out = tmp / "bf16"
    pretrain(texts, task="acronym", out_dir=out, args=replace(args, precision="bf16", steps=4))
    show("pretrain aligned bf16 4 steps", f"weights {digest(Tagger.load(out, device='cpu'))}")
    out = tmp / "mlm"
    pretrain(
        texts,
        task="acronym",
        out_dir=out,
        args=PretrainArgs(**{**args.__dict__, "objective": "mlm"}),
    )
    show("pretrain mlm 6 steps", f"weights {digest(Tagger.load(out, device='cpu'))}")
    print("  ", file_digest(out / STATE_FILE))


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = tiny_backbone(tmp / "bert", ACRONYMS + FILLER)
        run_finetunes(base)
        texts = [(t, tokenize(t)) for t in sentences(30, seed=1)]
        run_pretrains(base, texts, tmp)


if __name__ == "__main__":
    main()
