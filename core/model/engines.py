"""Inference engines for a tagger's network: torch, or ONNX Runtime on CPU in fp32 or int8.

The network (`Tagger.forward`: encoder + shape and evidence embeddings + head) is exported
to ONNX once per model version, with dynamic batch and length axes, and dynamically quantised
to int8; the files sit beside the weights (`model.onnx`, `model.int8.onnx`), written under a
temporary name and renamed, so a crash never leaves half a file. `engines.json` beside them
records what `auto` decided for the version and why. Everything before and after the network
(tokenising, decoding, spans) is the same Python whichever engine runs it (core.model.predict).

`auto` on CPU measures once per version, on a sample of the texts it is asked to score: each
engine's texts/s and the span F1 it is expected to lose against torch (estimated_f1_loss, no
gold labels needed); it picks the fastest engine within MAX_F1_LOSS points. On CUDA, for MC
dropout, and for calls too small to pay for an export (under AUTO_MIN_DOCS texts, with no
decision recorded yet) it is torch. An export
that fails (no onnxruntime, an operator the exporter lacks) falls back to torch with one
logged line, recorded so it is not retried for that version.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import FewlabelError
from core.model.backbone import TAGGER_FILE, Tagger, weights_stamp

log = logging.getLogger(__name__)

ENGINES = ("torch", "onnx", "onnx-int8")
CHOICES = (*ENGINES, "auto")
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
RECORD_FILE = "engines.json"
INPUTS = ("input_ids", "attention_mask", "shape_ids", "evidence_ids")
OPSET = 17
EXPORT_VERSION = 2  # bumped when the export recipe changes, so older cached files are redone
# auto exports and measures only for a call of at least this many texts (a pool chunk): the
# export, quantisation and measurement cost about as much as scoring 2,000 texts with torch
AUTO_MIN_DOCS = 2000
AUTO_SAMPLE = 256  # texts measured per engine; SciAD averages ~1.5 spans a sentence
MAX_F1_LOSS = 0.3  # span F1 points against torch's spans that an engine may lose

Network = Callable[[dict[str, np.ndarray]], np.ndarray]


class EngineError(FewlabelError):
    """An engine was asked for that this model or installation cannot run."""


@dataclass
class _State:
    """What one in-memory model has of the engines: sessions by (engine, threads), and, for a
    model without a folder, the exports in a temporary directory and auto's decision."""

    sessions: dict[tuple[str, int], Any] = field(default_factory=dict)
    tmp: tempfile.TemporaryDirectory | None = None
    record: dict = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary[Tagger, _State] = weakref.WeakKeyDictionary()


def _state(model: Tagger) -> _State:
    if model not in _STATES:
        _STATES[model] = _State()
    return _STATES[model]


def model_folder(model: Tagger) -> Path | None:
    """The version folder that holds this model's weights, if any still does.

    A version is saved under a temporary name and then renamed, so a folder that is gone is
    looked for among its siblings by the weights' stamp (size and mtime of each file).
    """
    if model.source is None:
        return None
    root, stamp = model.source
    if not stamp:
        return None
    if root.is_dir() and weights_stamp(root) == stamp:
        return root
    try:
        siblings = [p for p in root.parent.iterdir() if p.is_dir() and p != root]
    except OSError:
        return None
    for p in siblings:
        if (p / TAGGER_FILE).is_file() and weights_stamp(p) == stamp:
            model.source = (p, stamp)
            return p
    return None


def _where(model: Tagger) -> tuple[Path, str]:
    """The folder the exports go to (the version's own, else a temporary one) and the stamp
    they are recorded against."""
    folder = model_folder(model)
    if folder is not None:
        return folder, model.source[1]  # type: ignore[index]
    state = _state(model)
    if state.tmp is None:
        state.tmp = tempfile.TemporaryDirectory(prefix="fewlabel-onnx-")
    return Path(state.tmp.name), "in-memory"


def read_record(model: Tagger) -> dict:
    """engines.json of the model's folder when it belongs to these weights, else the
    in-memory record; {} when nothing was exported or decided yet."""
    folder = model_folder(model)
    if folder is None:
        return _state(model).record
    try:
        record = json.loads((folder / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return {}
    current = record.get("export_version") == EXPORT_VERSION
    return record if current and record.get("stamp") == model.source[1] else {}  # type: ignore[index]


def _update_record(model: Tagger, **fields: Any) -> dict:
    folder, stamp = _where(model)
    record = {**read_record(model), **fields, "stamp": stamp, "export_version": EXPORT_VERSION}
    if folder == model_folder(model):
        _write_atomic(folder / RECORD_FILE, json.dumps(record, indent=2).encode())
    else:
        _state(model).record = record
    return record


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _dummy_inputs(model: Tagger) -> tuple:
    """Two rows of different lengths, so the traced graph masks padding (an all-ones mask
    could be traced as "no mask")."""
    import torch

    vocab = int(model.word_embeddings().num_embeddings)
    ids = torch.randint(5, max(6, vocab), (2, 7), generator=torch.Generator().manual_seed(0))
    mask = torch.ones((2, 7), dtype=torch.long)
    mask[1, 4:] = 0
    ids[1, 4:] = model.tokenizer.pad_token_id or 0
    shapes = torch.ones((2, 7), dtype=torch.long) * mask
    evidence = torch.ones((2, 7), dtype=torch.long) * mask
    return ids, mask, shapes, evidence


def _plain_attention(encoder: Any) -> str | None:
    """Switch a Hugging Face encoder to its plain ("eager") attention for tracing and return
    the implementation to restore, or None when it has no such switch. The same arithmetic as
    SDPA, but its traced graph runs about 20% faster once quantised (MiniLM, ONNX Runtime 1.32).
    """
    before = getattr(getattr(encoder, "config", None), "_attn_implementation", None)
    if before in (None, "eager") or not hasattr(encoder, "set_attn_implementation"):
        return None
    try:
        encoder.set_attn_implementation("eager")
    except (ValueError, ImportError, AttributeError):
        return None
    return before


def _export_fp32(model: Tagger, out: Path) -> None:
    """Tagger.forward to ONNX (TorchScript exporter, fp32, dropout off), atomically."""
    import torch

    if model.device.type != "cpu":
        raise EngineError(f"ONNX export runs on CPU; the model is on {model.device.type}")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    was_training = model.training
    model.eval()
    attention = _plain_attention(model.encoder)
    try:
        dynamic = {name: {0: "batch", 1: "length"} for name in (*INPUTS, "logits")}
        # the tracer warns about checks that hold for every input here (mask length = length)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                _dummy_inputs(model),
                str(tmp),
                input_names=list(INPUTS),
                output_names=["logits"],
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        model.train(was_training)
        if attention is not None:
            model.encoder.set_attn_implementation(attention)


def _quantize(src: Path, out: Path) -> None:
    """Dynamic int8 quantisation of the fp32 export (weights int8, activations quantised per
    batch at run time), atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.onnx")
    quiet = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the quantiser logs a line per tensor on the root logger
    try:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, out)
    finally:
        logging.disable(quiet)
        tmp.unlink(missing_ok=True)


def export(model: Tagger, engine: str) -> Path:
    """The ONNX file of an engine ("onnx" or "onnx-int8") for this model, exporting it (and
    the fp32 file it is quantised from) when missing. Raises on failure."""
    import onnxruntime  # noqa: F401  (fail before exporting when the runtime is missing)

    folder, stamp = _where(model)
    fp32 = folder / ONNX_FILES["onnx"]
    record = read_record(model)
    fresh = record.get("stamp") == stamp  # and the recipe is this one: read_record checks
    if not (fresh and fp32.is_file()):
        t0 = time.perf_counter()
        _export_fp32(model, fp32)
        _update_record(model, export_s=round(time.perf_counter() - t0, 2))
    if engine == "onnx":
        return fp32
    int8 = folder / ONNX_FILES["onnx-int8"]
    if not (fresh and int8.is_file() and record.get("quantize_s") is not None):
        t0 = time.perf_counter()
        _quantize(fp32, int8)
        _update_record(model, quantize_s=round(time.perf_counter() - t0, 2))
    return int8


def network(model: Tagger, engine: str, threads: int) -> Network:
    """A function from a padded numpy batch (the INPUTS, int64) to tag probabilities (batch,
    length, tags) run by ONNX Runtime; the session is cached per model, engine and threads."""
    if engine not in ONNX_FILES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(CHOICES)}")
    state = _state(model)
    key = (engine, threads)
    if key not in state.sessions:
        import onnxruntime as ort

        path = export(model, engine)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        wanted = [i.name for i in session.get_inputs()]  # an unused input is not in the graph
        state.sessions[key] = (session, wanted)
    session, wanted = state.sessions[key]

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        logits = session.run(None, {name: batch[name] for name in wanted})[0]
        logits = logits - logits.max(-1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(-1, keepdims=True)

    return run


def disable(model: Tagger, error: BaseException) -> None:
    """Record that this model's export failed, so it is not retried, with one logged line."""
    line = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    log.warning("ONNX engines unavailable for this model, scoring with torch (%s)", line)
    try:
        _update_record(model, error=line)
    except OSError:
        _state(model).record = {**_state(model).record, "error": line}


def agreement(reference: Sequence[Sequence[dict]], other: Sequence[Sequence[dict]]) -> float:
    """Micro span F1 (0..100) of `other`'s spans against `reference`'s; 100 when neither has
    any."""
    ref = [{(s["start"], s["end"], s["label"]) for s in doc} for doc in reference]
    got = [{(s["start"], s["end"], s["label"]) for s in doc} for doc in other]
    tp = sum(len(a & b) for a, b in zip(ref, got, strict=True))
    n = sum(map(len, ref)) + sum(map(len, got))
    return 100.0 if n == 0 else 200.0 * tp / n


def _span_words(words: Sequence, span: dict) -> list[int]:
    return [i for i, w in enumerate(words) if w.start >= span["start"] and w.end <= span["end"]]


def estimated_f1_loss(
    docs: Sequence[tuple[str, list]], reference: Sequence, other: Sequence, tags: Sequence[str]
) -> float:
    """F1 points that `other`'s predictions (DocPrediction) are expected to lose against
    `reference`'s, with no gold labels: each span counts as correct with the probability the
    two models give its tags on average (a judge that favours neither), the gold spans are
    taken to be the ones either predicts (what both miss costs both alike).

    Plain span agreement would overstate the loss: the spans on which the two disagree are
    the ones the model is unsure of, which either side gets right about as often (int8 agreed
    with torch on 97.6% of spans on the SciAD split yet scored 0.1 F1 higher).
    """
    index = {t: i for i, t in enumerate(tags)}
    tp = {"reference": 0.0, "other": 0.0}
    n = {"reference": 0, "other": 0}
    gold = 0.0
    for (_, words), ref, oth in zip(docs, reference, other, strict=True):
        sets = {
            "reference": {(s["start"], s["end"], s["label"]) for s in ref.spans},
            "other": {(s["start"], s["end"], s["label"]) for s in oth.spans},
        }
        for start, end, label in sets["reference"] | sets["other"]:
            ks = _span_words(words, {"start": start, "end": end})
            cols = [index[f"B-{label}"]] + [index[f"I-{label}"]] * (len(ks) - 1)
            both = ref.word_probs[ks, cols] + oth.word_probs[ks, cols] if ks else np.zeros(0)
            q = float(both.mean() / 2) if ks else 0.0
            gold += q
            for side, spans in sets.items():
                if (start, end, label) in spans:
                    tp[side] += q
        for side, spans in sets.items():
            n[side] += len(spans)
    if gold == 0.0:
        return 0.0
    f1 = {side: 200.0 * tp[side] / (n[side] + gold) for side in tp}
    return f1["reference"] - f1["other"]


def choose(
    model: Tagger,
    sample: Sequence[tuple[str, list]],
    run: Callable[[str], list],
) -> dict:
    """Measure each engine on `sample` and record the fastest one whose expected span F1
    (estimated_f1_loss against torch) is within MAX_F1_LOSS points of torch's; `run(engine)`
    predicts the sample (DocPredictions, decode-time rules off).

    Each engine runs twice in turn (torch, onnx, onnx-int8, then again) and keeps its faster
    time, since other processes may share the CPU. Returns the record.
    """
    preds: dict[str, list] = {}
    best: dict[str, float] = {}
    for _ in range(2):
        for engine in ENGINES:
            t0 = time.perf_counter()
            preds[engine] = run(engine)
            best[engine] = min(best.get(engine, float("inf")), time.perf_counter() - t0)
    rates = {e: len(sample) / max(best[e], 1e-9) for e in ENGINES}
    loss = {e: estimated_f1_loss(sample, preds["torch"], preds[e], model.tags) for e in ENGINES}
    agree = {
        e: agreement([p.spans for p in preds["torch"]], [p.spans for p in preds[e]])
        for e in ENGINES
    }
    ok = [e for e in ENGINES if loss[e] <= MAX_F1_LOSS]
    choice = max(ok, key=lambda e: rates[e])
    log.info("engine %s chosen (texts/s %s, estimated F1 loss %s)", choice, rates, loss)
    return _update_record(
        model,
        auto={
            "choice": choice,
            "texts_per_s": {e: round(r, 1) for e, r in rates.items()},
            "estimated_f1_loss": {e: round(x, 3) for e, x in loss.items()},
            "span_f1_vs_torch": {e: round(a, 2) for e, a in agree.items()},
            "sample": len(sample),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def resolve(model: Tagger, engine: str, n_docs: int, *, mc_dropout: int = 0) -> str:
    """The engine a call runs with, before any measuring: "torch", "onnx", "onnx-int8", or
    "measure" (auto on CPU with no decision yet for a call large enough to pay for one)."""
    if engine not in CHOICES:
        raise EngineError(f"unknown engine {engine!r}; choose one of {', '.join(CHOICES)}")
    if engine == "torch" or mc_dropout > 0 or model.device.type != "cpu":
        return "torch"  # MC dropout needs torch's dropout; ONNX Runtime here is CPU only
    record = read_record(model)
    if record.get("error"):
        return "torch"
    if engine != "auto":
        return engine
    choice = (record.get("auto") or {}).get("choice")
    if choice in ENGINES:
        return choice
    return "measure" if n_docs >= AUTO_MIN_DOCS else "torch"
