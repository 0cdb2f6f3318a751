"""Helpers shared by the tests: seeded projects, the sentences they hold, a tiny model.

Fixtures live in conftest.py; plain functions and data live here, imported by name
(`from helpers import seed_project`).
"""

from __future__ import annotations

import json
import os
import string
from collections.abc import Sequence
from pathlib import Path

from core.io.imports import import_bytes
from core.labeling.annotations import set_ranks
from core.labeling.progress import browse
from core.labeling.projects import create_project
from core.store.db import session_scope

ACRONYM_SENTENCES = [
    "The WHO and NASA agreed .",
    "We trained a CNN on GPU machines .",
    "Results on MNIST were good .",
    "The IBM team used SVM models .",
    "An RNN beats an HMM here .",
    "See the API of the LSTM .",
]
POOL_SENTENCES = [
    f"sentence number {i} mentions {w} today ."
    for i, w in enumerate(["BERT", "nothing", "XYZ", "cats", "ACL", "dogs", "EMNLP", "trees"] * 3)
]
# A custom project's texts: (text, [(words, label)]) marks the first occurrence of the words.
CUSTOM_LABELS = ["Chemical", "Disease"]
CUSTOM_LABELED = [
    ("Aspirin reduced the fever in mice .", [("Aspirin", "Chemical"), ("fever", "Disease")]),
    ("Patients took aspirin for a headache .", [("aspirin", "Chemical"), ("headache", "Disease")]),
    ("Cocaine caused seizures in rats .", [("Cocaine", "Chemical"), ("seizures", "Disease")]),
    ("Lithium treats mania well .", [("Lithium", "Chemical"), ("mania", "Disease")]),
    ("No fever after cocaine was stopped .", [("fever", "Disease"), ("cocaine", "Chemical")]),
    ("The mice had no seizures .", [("seizures", "Disease")]),
]
CUSTOM_POOL = [
    "Lithium caused a headache in two patients .",
    "Aspirin and cocaine were compared .",
    "Seizures followed the fever .",
    "The rats were fine .",
]
# A patterns file for it: a phrase, a token pattern and a regex.
CUSTOM_PATTERNS = "\n".join(
    [
        '{"label": "Chemical", "pattern": "lithium"}',
        '{"label": "chemical", "pattern": [{"lower": "cocaine"}]}',
        "# a comment line",
        r'{"label": "Disease", "regex": "\\w+ache\\b"}',
    ]
)


def seed_custom_project(url: str, name: str = "bio") -> None:
    """A custom project (CUSTOM_LABELS): CUSTOM_LABELED labeled by `gold`, CUSTOM_POOL not."""
    records = []
    for text, marked in CUSTOM_LABELED:
        spans = [[text.index(w), text.index(w) + len(w), label] for w, label in marked]
        records.append(json.dumps({"text": text, "spans": spans}))
    with session_scope(url) as s:
        p = create_project(s, name, "custom", CUSTOM_LABELS)
        import_bytes(s, p, "gold.jsonl", "\n".join(records).encode(), annotator="gold")
        import_bytes(s, p, "pool.txt", "\n".join(CUSTOM_POOL).encode())


def seed_project(
    url: str,
    name: str,
    texts: Sequence[str],
    *,
    task: str = "acronym",
    labels: Sequence[str] | None = None,
) -> list[int]:
    """Create a project holding `texts`, queued in the given order; returns their ids."""
    data = "\n".join(json.dumps({"text": t}) for t in texts).encode()
    with session_scope(url) as s:
        project = create_project(s, name, task, list(labels) if labels else None)
        import_bytes(s, project, f"{name}.jsonl", data)
        rows, _ = browse(s, project, limit=len(texts))
        by_text = {r.text: r.document_id for r in rows}
        ids = [by_text[t] for t in texts]
        set_ranks(s, project, {doc_id: float(i) for i, doc_id in enumerate(ids)})
    return ids


def seed_labeled_project(
    url: str, name: str = "p", *, strategy: str = "entropy", task: str = "acronym"
) -> None:
    """An acronym project: ACRONYM_SENTENCES labeled by `gold` (all-caps words are SHORT)
    and POOL_SENTENCES unlabeled; `task="custom"`: the same with its own labels SHORT,LONG."""
    conll = "\n\n".join(
        "\n".join(f"{w}\t{'B-SHORT' if w.isupper() and len(w) > 1 else 'O'}" for w in s.split())
        for s in ACRONYM_SENTENCES
    )
    with session_scope(url) as s:
        p = create_project(s, name, task, ["SHORT", "LONG"] if task == "custom" else None)
        p.strategy = strategy
        import_bytes(s, p, "gold.conll", (conll + "\n").encode(), annotator="gold")
        import_bytes(s, p, "pool.txt", "\n".join(POOL_SENTENCES).encode())


def tiny_backbone(
    path: str | os.PathLike,
    words: Sequence[str] = (),
    *,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 2,
    seed: int = 0,
) -> str:
    """Write a tiny random uncased BERT and its WordPiece tokenizer to a directory.

    The vocabulary is the lower-cased `words` plus single characters (as word starts and as
    ## continuations), so any ASCII text tokenizes without [UNK] floods. No downloads.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from core.model.encoders import quiet_loading

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    seen = set(vocab_list)
    lowered = sorted({w.lower() for w in words if w.strip()})
    for tok in [*lowered, *chars, *("##" + c for c in chars)]:
        if tok not in seen:
            seen.add(tok)
            vocab_list.append(tok)
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(vocab_list)}, do_lower_case=True)
    tokenizer.model_max_length = 128
    config = BertConfig(
        vocab_size=len(vocab_list),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 4,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    with quiet_loading():
        BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)
