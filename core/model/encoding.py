"""Words -> sub-token chunks with word shapes, and padded batches; shared by training and inference.

A document longer than the model's window is split at word boundaries into several chunks, so
no word is silently dropped (truncation would lose labels in training and predictions in
scoring). Only the first sub-token of a word carries its tag (the run_ner.py convention).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Word-shape classes. Index 0 is for special tokens and padding; it is also what a word gets
# when shape features are off. An uncased backbone lower-cases "QA" to "qa", so the shape is the
# only place where the case of an acronym survives.
SHAPES: tuple[str, ...] = (
    "none",
    "allcaps",  # QA, BERT, GPT2
    "upper1",  # A, I, X
    "capitalised",  # The, Transformer
    "lower",  # model, bert2
    "mixed_caps",  # BiLSTM, CNNs, LaTeX: more upper than lower case letters
    "mixed",  # ConvNet, iPhone, word2Vec
    "digits",  # 2019, 3.5, 1,000
    "punct",  # ( ) - , .
    "other",  # anything else (scripts without case, symbols mixed with letters)
)
SHAPE_ID = {name: i for i, name in enumerate(SHAPES)}
IGNORE = -100  # the label of sub-tokens that are not first in their word (CrossEntropy ignore)


@functools.lru_cache(maxsize=1 << 16)
def word_shape(word: str) -> int:
    """The shape class id of a word's surface form (see SHAPES). Cached: the same few
    thousand words make up most of a pool, and this was a fifth of encoding's time."""
    upper = sum(c.isupper() for c in word)
    lower = sum(c.islower() for c in word)
    if upper == 0 and lower == 0:
        if any(c.isalpha() for c in word):
            return SHAPE_ID["other"]
        if any(c.isdigit() for c in word):
            return SHAPE_ID["digits"]
        if word and not any(c.isalnum() for c in word):
            return SHAPE_ID["punct"]
        return SHAPE_ID["other"]
    if lower == 0:
        return SHAPE_ID["allcaps"] if upper >= 2 else SHAPE_ID["upper1"]
    if upper == 0:
        return SHAPE_ID["lower"]
    if upper == 1 and word[0].isupper():
        return SHAPE_ID["capitalised"]
    return SHAPE_ID["mixed_caps"] if upper >= lower else SHAPE_ID["mixed"]


@dataclass(slots=True)
class Chunk:
    """One model input: sub-token ids with specials, their shapes, and where each word starts.

    `first[i]` is the index (in the document) of the word whose first sub-token is at position
    i, or -1. `evidence_ids` holds, per sub-token, 1 + the weak labeler's tag id of its word
    (0 for specials, or when the model takes no evidence). `labels` is filled for training only;
    `rejects`, for a partially answered text only, holds the labelings its loss pushes down,
    each a list of (position, tag id, +1 the tag / -1 not the tag), and `unanswered` the
    positions of its words no answer covers (core.model.partial).
    """

    doc: int
    input_ids: list[int]
    shape_ids: list[int]
    first: list[int]
    evidence_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    rejects: list[list[tuple[int, int, int]]] = field(default_factory=list)
    unanswered: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)


def _specials(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids put before and after a chunk: [CLS] ... [SEP] for BERT, <s> ... </s> for RoBERTa."""
    head = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    tail = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ([head] if head is not None else []), ([tail] if tail is not None else [])


def _windows(pieces: Sequence[Sequence[int]], budget: int) -> list[list[int]]:
    """Greedy split of word indices into runs whose sub-tokens fit in `budget`."""
    out: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for w, p in enumerate(pieces):
        if not p:
            continue
        k = min(len(p), budget)
        if cur and used + k > budget:
            out.append(cur)
            cur, used = [], 0
        cur.append(w)
        used += k
    if cur:
        out.append(cur)
    return out


def encode_docs(
    tokenizer: Any,
    docs: Sequence[Sequence[str]],
    *,
    max_length: int,
    shape_features: bool,
    evidence: Sequence[Sequence[int]] | None = None,
) -> list[Chunk]:
    """Chunks for documents given as lists of word strings; one tokenizer call for all of them.

    `evidence` (optional) gives a weak tag id per word of every document (see Chunk).
    A word with more sub-tokens than fit in a window keeps only its first ones; a word the
    tokenizer maps to nothing (a zero-width character) gets no position at all.
    """
    head, tail = _specials(tokenizer)
    budget = max(1, max_length - len(head) - len(tail))
    chunks: list[Chunk] = []
    nonempty = [i for i, d in enumerate(docs) if len(d) > 0]
    if not nonempty:
        return chunks
    enc = tokenizer(
        [list(docs[i]) for i in nonempty],
        is_split_into_words=True,
        add_special_tokens=False,
        truncation=False,
        verbose=False,  # long documents are windowed below; the "longer than 512" warning misleads
    )
    for row, doc_idx in enumerate(nonempty):
        words = docs[doc_idx]
        pieces: list[list[int]] = [[] for _ in words]
        for tok_id, w in zip(enc["input_ids"][row], enc.word_ids(row), strict=True):
            if w is not None:
                pieces[w].append(tok_id)
        for window in _windows(pieces, budget):
            ids: list[int] = list(head)
            shapes: list[int] = [0] * len(head)
            first: list[int] = [-1] * len(head)
            hints: list[int] = [0] * len(head)
            for w in window:
                word_pieces = pieces[w][:budget]
                shape = word_shape(words[w]) if shape_features else 0
                hint = evidence[doc_idx][w] + 1 if evidence is not None else 0
                ids.extend(word_pieces)
                shapes.extend([shape] * len(word_pieces))
                hints.extend([hint] * len(word_pieces))
                first.extend([w] + [-1] * (len(word_pieces) - 1))
            ids.extend(tail)
            shapes.extend([0] * len(tail))
            hints.extend([0] * len(tail))
            first.extend([-1] * len(tail))
            chunks.append(
                Chunk(doc=doc_idx, input_ids=ids, shape_ids=shapes, first=first, evidence_ids=hints)
            )
    return chunks


def length_batches(
    lengths: Sequence[int], batch_size: int, *, rng: random.Random | None = None, pool: int = 8
) -> list[list[int]]:
    """Index batches of similar length, so padding to the batch's longest wastes little.

    With an rng (training), indices are shuffled, sorted by length within pools of
    `pool * batch_size`, cut into batches, and the batches shuffled: similar lengths, yet a
    different composition every epoch. Without one (inference), a plain sort by length.
    """
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    batches: list[list[int]] = []
    step = max(1, pool * batch_size)
    for p in range(0, len(order), step):
        block = sorted(order[p : p + step], key=lambda i: lengths[i])
        batches.extend(block[i : i + batch_size] for i in range(0, len(block), batch_size))
    rng.shuffle(batches)
    return batches


def collate(chunks: Sequence[Chunk], pad_id: int, device: Any = None) -> dict[str, Any]:
    """Pad a batch to its longest chunk: input_ids, attention_mask, shape_ids, evidence_ids and
    labels tensors; where a chunk is a partially answered text's, also `unanswered` (a bool
    mask of the words no answer covers) and, where one has rejects, reject_index (into the
    flattened batch x width positions), reject_tag and reject_sign (0: padding), one row per
    rejected labeling."""
    import torch

    width = max(len(c) for c in chunks)
    n = len(chunks)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    shape_ids = torch.zeros((n, width), dtype=torch.long)
    evidence_ids = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), IGNORE, dtype=torch.long)
    for i, c in enumerate(chunks):
        k = len(c)
        input_ids[i, :k] = torch.tensor(c.input_ids)
        attention[i, :k] = 1
        shape_ids[i, :k] = torch.tensor(c.shape_ids)
        if c.evidence_ids:
            evidence_ids[i, :k] = torch.tensor(c.evidence_ids)
        if c.labels:
            labels[i, :k] = torch.tensor(c.labels)
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention,
        "shape_ids": shape_ids,
        "evidence_ids": evidence_ids,
        "labels": labels,
    }
    if any(c.unanswered or c.rejects for c in chunks):
        unanswered = torch.zeros((n, width), dtype=torch.bool)
        for i, c in enumerate(chunks):
            unanswered[i, c.unanswered] = True
        batch["unanswered"] = unanswered
    if any(c.rejects for c in chunks):
        batch.update(_reject_tensors(chunks, width))
    if device is not None:
        batch = {k: v.to(device) for k, v in batch.items()}
    return batch


def _reject_tensors(chunks: Sequence[Chunk], width: int) -> dict[str, Any]:
    """The chunks' rejected labelings as (rejects, longest) index, tag and sign tensors."""
    import torch

    rows = [(i, lab) for i, c in enumerate(chunks) for lab in c.rejects]
    longest = max(len(lab) for _, lab in rows)
    index = torch.zeros((len(rows), longest), dtype=torch.long)
    tag = torch.zeros((len(rows), longest), dtype=torch.long)
    sign = torch.zeros((len(rows), longest), dtype=torch.long)
    for r, (i, lab) in enumerate(rows):
        for k, (pos, t, s) in enumerate(lab):
            index[r, k], tag[r, k], sign[r, k] = i * width + pos, t, s
    return {"reject_index": index, "reject_tag": tag, "reject_sign": sign}
