"""Inference: word-level tag probabilities, valid-BIO decoding, char-offset spans with confidence.

Documents are batched in length order and padded to each batch's longest chunk, under
`torch.inference_mode`. The word probabilities (first sub-token of each word) feed both the
decoder and the query strategies in `core.active.strategies`; MC-dropout samples feed BALD.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.model import engines
from core.model.backbone import Tagger
from core.model.device import autocast, choose_threads, resolve_device, torch_threads
from core.model.encoding import collate, length_batches
from core.model.rules import RULE_SETS, apply_rules
from core.text import Word, bio_to_spans, spans_to_bio

Progress = Callable[[float, str], None]


@dataclass(slots=True)
class DocPrediction:
    """What the model says about one document.

    spans: [{start, end, label, confidence}] in char offsets; confidence is the mean
        probability of the decoded tag over the span's words.
    word_probs: (words, tags) float32, softmax at each word's first sub-token; a word the
        tokenizer maps to nothing gets probability 1 for O.
    tags: the decoded BIO tag of every word.
    mc_probs: (samples, words, tags) with dropout on, when predict had mc_dropout > 0.
    """

    spans: list[dict]
    word_probs: np.ndarray
    tags: list[str]
    mc_probs: np.ndarray | None = None


def load_tagger(path: str | os.PathLike, *, device: str | torch.device | None = "auto") -> Tagger:
    """A saved model version, in eval mode, on CUDA when present (device="auto")."""
    return Tagger.load(path, device=resolve_device(device))


@functools.lru_cache(maxsize=64)
def _transitions(tags: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, transition) log-masks: I-X may only follow B-X or I-X, and may not start; and
    the same rule as a boolean matrix `allowed[prev, tag]`. Cached per tag set (read-only)."""
    n = len(tags)
    trans = np.zeros((n, n))
    start = np.zeros(n)
    index = {t: i for i, t in enumerate(tags)}
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            ok = {index.get("B-" + tag[2:]), j}
            start[j] = -np.inf
            for i in range(n):
                if i not in ok:
                    trans[i, j] = -np.inf
    allowed = np.isfinite(trans)
    for a in (start, trans, allowed):
        a.flags.writeable = False
    return start, trans, allowed


def _greedy_if_optimal(logp: np.ndarray, start: np.ndarray, allowed: np.ndarray):
    """The per-word argmax path when it is valid BIO and every word's maximum is strict: then
    it is the unique best sequence, so Viterbi would return it too. Else None."""
    path = logp.argmax(axis=1)
    if not np.isfinite(start[path[0]]) or not allowed[path[:-1], path[1:]].all():
        return None
    top2 = np.partition(logp, -2, axis=1)[:, -2:] if logp.shape[1] > 1 else None
    if top2 is not None and (top2[:, 0] == top2[:, 1]).any():
        return None
    return path


def decode_bio(word_probs: np.ndarray, tags: Sequence[str]) -> list[str]:
    """The most probable tag sequence that is valid BIO (Viterbi over word log-probabilities).

    Fixes "O I-X" and "B-X I-Y" by choosing the best legal sequence as a whole, rather than
    patching a stray I- into a B- after the fact. Most documents need no fixing: when the
    per-word argmax is already legal (and has no ties) it is the answer, without the loop.
    """
    n = word_probs.shape[0]
    if n == 0:
        return []
    logp = np.log(np.clip(word_probs.astype(np.float64), 1e-12, 1.0))
    start, trans, allowed = _transitions(tuple(tags))
    greedy = _greedy_if_optimal(logp, start, allowed)
    if greedy is not None:
        return [tags[k] for k in greedy.tolist()]
    score = logp[0] + start
    back = np.zeros((n, len(tags)), dtype=np.int64)
    for i in range(1, n):
        cand = score[:, None] + trans
        back[i] = cand.argmax(axis=0)
        score = cand.max(axis=0) + logp[i]
    path = [int(score.argmax())]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    path.reverse()
    return [tags[k] for k in path]


def spans_with_confidence(
    words: Sequence[Word], tags: Sequence[str], word_probs: np.ndarray, tag_names: Sequence[str]
) -> list[dict]:
    """Char spans of a decoded tag sequence, each with the mean probability of its words' tags."""
    if all(t == "O" for t in tags):
        return []
    index = {t: i for i, t in enumerate(tag_names)}
    first_word = {w.start: i for i, w in enumerate(words)}
    last_word = {w.end: i for i, w in enumerate(words)}
    out = []
    for span in bio_to_spans(words, tags):
        a, b = first_word[span.start], last_word[span.end]
        conf = float(np.mean([word_probs[k, index[tags[k]]] for k in range(a, b + 1)]))
        out.append({"start": span.start, "end": span.end, "label": span.label, "confidence": conf})
    return out


def _dropout_on(model: nn.Module) -> None:
    """Dropout layers to train mode, everything else stays in eval (MC dropout)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.train()


def _numpy_batch(chunks: Sequence, pad_id: int) -> dict[str, np.ndarray]:
    """A batch padded to its longest chunk as int64 arrays (the ONNX engines' inputs)."""
    width = max(len(c) for c in chunks)
    n = len(chunks)
    batch = {
        "input_ids": np.full((n, width), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((n, width), dtype=np.int64),
        "shape_ids": np.zeros((n, width), dtype=np.int64),
        "evidence_ids": np.zeros((n, width), dtype=np.int64),
    }
    for i, c in enumerate(chunks):
        k = len(c)
        batch["input_ids"][i, :k] = c.input_ids
        batch["attention_mask"][i, :k] = 1
        batch["shape_ids"][i, :k] = c.shape_ids
        if c.evidence_ids:
            batch["evidence_ids"][i, :k] = c.evidence_ids
    return batch


def _auto_engine(model: Tagger, docs: Sequence, threads: int, **options) -> str:
    """auto's first large call on a version: export, measure on a spread-out sample, record."""
    step = max(1, len(docs) // engines.AUTO_SAMPLE)
    sample = list(docs[::step][: engines.AUTO_SAMPLE])

    def run(engine: str) -> list:
        return predict(model, sample, engine=engine, rules=False, num_threads=threads, **options)

    try:
        return engines.choose(model, sample, run)["auto"]["choice"]
    except Exception as e:  # any exporter or runtime failure means torch
        engines.disable(model, e)
        return "torch"


def predict(
    model: Tagger,
    docs: Sequence[tuple[str, list[Word]]],
    *,
    batch_size: int = 32,
    progress: Progress | None = None,
    mc_dropout: int = 0,
    rules: str | bool | None = None,
    precision: str = "auto",
    num_threads: int | None = None,
    engine: str = "torch",
) -> list[DocPrediction]:
    """Predictions for (text, words) documents, in input order.

    `mc_dropout=k` adds k extra forward passes with dropout on (k x the cost) for BALD.
    `precision` as in TrainArgs: "auto" runs bf16 autocast where the hardware has it (about
    2.5x faster on a bf16 CPU; probabilities differ from fp32 in the third decimal).
    `num_threads` None picks torch CPU threads from the cores other processes leave idle
    (a 0.2 s probe, so only for more than a few batches; a handful of documents keep the
    current setting). `rules` merges a rule set's high-precision spans (core.model.rules):
    None follows the model's `info["decode_rules"]` (its task's, core.tasks), False turns it
    off, a name picks that one. The model is left in eval mode.
    `engine` runs the network with torch, or ONNX Runtime in fp32 ("onnx") or int8
    ("onnx-int8"), exported once per version; "auto" picks per version on CPU (see
    core.model.engines); MC dropout and CUDA always run torch. `precision` is torch's only.
    """
    tag_names = model.tags
    chosen = engines.resolve(model, engine, len(docs), mc_dropout=mc_dropout)
    chunks = model.encode(docs)
    batches = length_batches([len(c) for c in chunks], batch_size)
    threads = torch.get_num_threads()
    if model.device.type == "cpu" and (num_threads or len(batches) > 4):
        threads = choose_threads(num_threads)
    if chosen == "measure":
        chosen = _auto_engine(model, docs, threads, batch_size=batch_size, precision=precision)
    run_onnx = None
    if chosen != "torch":
        try:
            run_onnx = engines.network(model, chosen, threads)
        except Exception as e:  # a failed export falls back to torch
            engines.disable(model, e)
    probs = [_no_tags(len(words), len(tag_names)) for _, words in docs]
    samples = [np.tile(p, (mc_dropout, 1, 1)) if mc_dropout > 0 else None for p in probs]
    model.eval()
    with torch_threads(threads), torch.inference_mode(), autocast(model.device, precision):
        for b, idx in enumerate(batches):
            batch_chunks = [chunks[i] for i in idx]
            out, mc_out = _batch_probs(model, batch_chunks, run_onnx, mc_dropout)
            for row, chunk in enumerate(batch_chunks):
                first = np.asarray(chunk.first)
                pos = np.nonzero(first >= 0)[0]
                probs[chunk.doc][first[pos]] = out[row, pos]
                for s, sample in enumerate(mc_out):
                    samples[chunk.doc][s, first[pos]] = sample[row, pos]
            if progress is not None:
                progress((b + 1) / len(batches), f"scored {b + 1}/{len(batches)} batches")
    rule_set = _rule_set(model, rules)
    return [
        _decoded(text, words, p, mc, tag_names, rule_set)
        for (text, words), p, mc in zip(docs, probs, samples, strict=True)
    ]


def _no_tags(n_words: int, n_tags: int) -> np.ndarray:
    """(words, tags) probabilities before scoring: 1 for O (a word no chunk covers keeps it)."""
    p = np.zeros((n_words, n_tags), dtype=np.float32)
    p[:, 0] = 1.0
    return p


def _batch_probs(
    model: Tagger, chunks: Sequence, run_onnx, mc_dropout: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Tag probabilities (batch, length, tags) of a batch of chunks, by ONNX Runtime when
    `run_onnx` is given, else torch; with torch, also `mc_dropout` samples with dropout on."""
    pad_id = model.tokenizer.pad_token_id or 0
    if run_onnx is not None:
        return run_onnx(_numpy_batch(chunks, pad_id)), []
    batch = collate(chunks, pad_id, model.device)
    args = (batch["input_ids"], batch["attention_mask"], batch["shape_ids"], batch["evidence_ids"])
    out = model(*args).float().softmax(-1).cpu().numpy()
    mc_out = []
    if mc_dropout > 0:
        _dropout_on(model)
        mc_out = [model(*args).float().softmax(-1).cpu().numpy() for _ in range(mc_dropout)]
        model.eval()
    return out, mc_out


def _rule_set(model: Tagger, rules: str | bool | None) -> str | None:
    """The decoding rule set a predict call merges (see predict's `rules`), or None."""
    rule_set = model.info.get("decode_rules") if rules is None else (rules or None)
    if rule_set is not None and rule_set not in RULE_SETS:
        rule_set = None
    return rule_set


def _decoded(
    text: str,
    words: list[Word],
    probs: np.ndarray,
    mc: np.ndarray | None,
    tag_names: Sequence[str],
    rule_set: str | None,
) -> DocPrediction:
    """A document's prediction from its word probabilities: valid BIO, spans, rules merged."""
    tags = decode_bio(probs, tag_names)
    spans = spans_with_confidence(words, tags, probs, tag_names)
    if rule_set is not None:
        spans = apply_rules(rule_set, text, words, spans)
        tags = spans_to_bio(words, spans)
    return DocPrediction(spans=spans, word_probs=probs, tags=tags, mc_probs=mc)
