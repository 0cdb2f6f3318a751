"""The tagger: a Hugging Face encoder + word-shape and evidence embeddings + dropout + BIO head.

One directory holds a whole model version: the encoder and tokenizer (`save_pretrained`), the
head and the input-feature embeddings (`head.safetensors`), `tagger.json` (label map,
feature settings, training arguments, metrics) and, for evidence that learned corpus
statistics, `evidence.json` (core.weak.evidence). Aligned pretraining and finetuning build the
same `Tagger`, so a pretrained checkpoint whose label map matches is finetuned with its head,
not a fresh one.
Where an encoder comes from (the shipped MiniLM, a directory, a cached Hub id) is
core.model.encoders; the device and precision policy is core.model.device.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import FewlabelError, NotFoundError
from core.model.device import resolve_device
from core.model.encoders import DEFAULT, load_encoder, quiet_loading, resolve_backbone
from core.model.encoding import SHAPES, Chunk, encode_docs
from core.text import Word
from core.weak.evidence import Evidence

TAGGER_FILE = "tagger.json"
HEAD_FILE = "head.safetensors"
FORMAT = "fewlabel-tagger"
FORMAT_VERSION = 1


def is_tagger_checkpoint(path: str | os.PathLike) -> bool:
    """Whether a directory is a fewlabel checkpoint (has tagger.json), not a plain encoder."""
    return (Path(path) / TAGGER_FILE).is_file()


def weights_stamp(path: str | os.PathLike) -> str:
    """Size and mtime of every weight file in a model folder: changes when the weights do, and
    survives renaming the folder (a version is saved under a temporary name, then renamed)."""
    root = Path(path)
    files = sorted(root.glob("*.safetensors")) + sorted(root.glob("*.bin"))
    return ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def bio_tags(labels: Sequence[str]) -> list[str]:
    """The tag list of a label set: O, then B-/I- for each label in the given order."""
    tags = ["O"]
    for label in labels:
        tags += [f"B-{label}", f"I-{label}"]
    return tags


class Tagger(nn.Module):
    """Encoder + word-shape and evidence embeddings + dropout + linear head over BIO tags.

    The shape embedding is added to the encoder's input embeddings and starts at zero, so a
    fresh tagger computes exactly what the plain encoder does; training moves it (give it a
    larger learning rate: at the encoder's rate a zero-initialised table barely moves).
    The evidence embedding works the same way for the BIO tag that a weak labeler (its
    `evidence`, core.weak.evidence: the labeler and what it learned from a corpus) gives each
    word: the model sees the rule's opinion and learns from gold labels when to follow it,
    instead of relearning the rule from a few hundred sentences.
    `tokenizer`, `labels`, `tags` and `info` travel with the module so a loaded model explains
    itself; `info` is written to tagger.json (backbone, train_args, metrics, ...).
    """

    def __init__(
        self,
        encoder: nn.Module,
        tokenizer: Any,
        labels: Sequence[str],
        *,
        shape_features: bool = True,
        evidence: Evidence | None = None,
        dropout: float | None = None,
        max_length: int | None = None,
        info: dict | None = None,
    ):
        super().__init__()
        cfg = encoder.config
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.tags = bio_tags(self.labels)
        hidden = int(cfg.hidden_size)
        p = dropout if dropout is not None else float(getattr(cfg, "hidden_dropout_prob", 0.1))
        self.dropout_p = p
        self.dropout = nn.Dropout(p)
        self.head = nn.Linear(hidden, len(self.tags))
        nn.init.normal_(self.head.weight, std=float(getattr(cfg, "initializer_range", 0.02)))
        nn.init.zeros_(self.head.bias)
        self.shape_features = bool(shape_features)
        self.shape_embedding: nn.Embedding | None = None
        if self.shape_features:
            self.shape_embedding = nn.Embedding(len(SHAPES), hidden)
            nn.init.zeros_(self.shape_embedding.weight)
        self.evidence = evidence
        self.evidence_embedding: nn.Embedding | None = None
        if self.evidence:
            self.evidence_embedding = nn.Embedding(len(self.tags) + 1, hidden)
            nn.init.zeros_(self.evidence_embedding.weight)
        limits = [512, getattr(cfg, "max_position_embeddings", 512)]
        tok_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and tok_max < 100_000:
            limits.append(tok_max)
        self.max_length = int(max_length or min(limits))
        self.info: dict = dict(info or {})
        # the folder this module was loaded from or saved to, and weights_stamp(folder) then:
        # where core.model.engines caches its ONNX exports, while the folder still holds it
        self.source: tuple[Path, str] | None = None

    @property
    def label2id(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tags)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.tags))

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def word_embeddings(self) -> nn.Embedding:
        """The encoder's vocabulary matrix (the one `freeze_embeddings` freezes)."""
        return self.encoder.get_input_embeddings()

    def input_embeddings(
        self,
        input_ids: torch.Tensor,
        shape_ids: torch.Tensor | None = None,
        evidence_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Word embeddings plus the shape and evidence embeddings; pass to any HF model as
        inputs_embeds.

        Aligned pretraining feeds the same inputs_embeds to its masked-LM head, so both
        objectives see the shape (and the weak tag) of every word.
        """
        embeds = self.word_embeddings()(input_ids)
        if self.shape_embedding is not None and shape_ids is not None:
            embeds = embeds + self.shape_embedding(shape_ids)
        if self.evidence_embedding is not None and evidence_ids is not None:
            embeds = embeds + self.evidence_embedding(evidence_ids)
        return embeds

    def hidden_states(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden states (batch, length, hidden) of `input_embeddings(...)`."""
        out = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    def tag_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Tag logits of hidden states: dropout, then the head."""
        return self.head(self.dropout(hidden))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        shape_ids: torch.Tensor | None = None,
        evidence_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tag logits (batch, length, n_tags) for every sub-token."""
        embeds = self.input_embeddings(input_ids, shape_ids, evidence_ids)
        return self.tag_logits(self.hidden_states(embeds, attention_mask))

    def encode(
        self, docs: Sequence[tuple[str, Sequence[Word]]], max_length: int | None = None
    ) -> list[Chunk]:
        """Model inputs for (text, words) documents: sub-tokens, shapes and, for a model that
        takes evidence, the weak labeler's tag of every word."""
        return encode_docs(
            self.tokenizer,
            [[w.text for w in words] for _, words in docs],
            max_length=max_length or self.max_length,
            shape_features=self.shape_features,
            evidence=self.evidence.tags(self.tags, docs) if self.evidence else None,
        )

    def settings(self) -> dict:
        """What tagger.json records besides `info`: enough to rebuild the module."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "label2id": self.label2id,
            "id2label": {str(i): t for i, t in self.id2label.items()},
            "shape_features": self.shape_features,
            "shape_classes": list(SHAPES),
            "evidence": self.evidence.name if self.evidence else None,
            "dropout": self.dropout_p,
            "max_length": self.max_length,
            "hidden_size": int(self.encoder.config.hidden_size),
        }

    def save(self, path: str | os.PathLike, **info: Any) -> Path:
        """Write the model to a directory; keyword arguments are merged into `info` first."""
        from safetensors.torch import save_file

        self.info.update(info)
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        cfg = self.encoder.config
        cfg.label2id, cfg.id2label = self.label2id, self.id2label
        with quiet_loading():
            self.encoder.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        extras = {
            "head.weight": self.head.weight,
            "head.bias": self.head.bias,
        }
        if self.shape_embedding is not None:
            extras["shape_embedding.weight"] = self.shape_embedding.weight
        if self.evidence_embedding is not None:
            extras["evidence_embedding.weight"] = self.evidence_embedding.weight
        save_file({k: v.detach().cpu().contiguous() for k, v in extras.items()}, out / HEAD_FILE)
        if self.evidence is not None:
            self.evidence.save(out)
        else:
            Evidence.remove(out)
        meta = self.settings()
        meta["saved_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        meta["info"] = _jsonable(self.info)
        (out / TAGGER_FILE).write_text(json.dumps(meta, indent=2, sort_keys=False))
        self.source = (out, weights_stamp(out))
        return out

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | torch.device | None = "cpu") -> Tagger:
        """A tagger saved by `save`, in eval mode on `device`."""
        from safetensors.torch import load_file

        root = Path(path)
        if not is_tagger_checkpoint(root):
            raise NotFoundError(f"{root} is not a fewlabel model (no {TAGGER_FILE})")
        meta = json.loads((root / TAGGER_FILE).read_text())
        if meta.get("format") != FORMAT or int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise FewlabelError(f"{root}/{TAGGER_FILE} is not a tagger this version can read")
        encoder, tokenizer = load_encoder(root)
        shape_ok = meta.get("shape_classes") == list(SHAPES)
        model = cls(
            encoder,
            tokenizer,
            meta["labels"],
            shape_features=bool(meta.get("shape_features")),
            evidence=Evidence.load(root, meta["evidence"]) if meta.get("evidence") else None,
            dropout=meta.get("dropout"),
            max_length=meta.get("max_length"),
            info=meta.get("info") or {},
        )
        state = load_file(str(root / HEAD_FILE))
        with torch.no_grad():
            model.head.weight.copy_(state["head.weight"])
            model.head.bias.copy_(state["head.bias"])
            if model.shape_embedding is not None and shape_ok:
                if "shape_embedding.weight" in state:
                    model.shape_embedding.weight.copy_(state["shape_embedding.weight"])
            if model.evidence_embedding is not None:
                model.evidence_embedding.weight.copy_(state["evidence_embedding.weight"])
        model.to(resolve_device(device))
        model.eval()
        model.source = (root, weights_stamp(root))
        return model

    @classmethod
    def from_base(
        cls,
        base: str | os.PathLike | None,
        labels: Sequence[str],
        *,
        shape_features: bool = True,
        evidence: Evidence | None = None,
        dropout: float | None = None,
        max_length: int | None = None,
        allow_download: bool = False,
    ) -> Tagger:
        """A tagger to train, starting from a plain encoder or from a fewlabel checkpoint.

        A plain encoder gets a fresh head. A checkpoint (aligned pretraining or an earlier
        model version) keeps its encoder and shape embedding, and its head rows for every tag
        it shares with `labels`: the whole head when the label maps match (a warm start).
        `info["head_reused"]` says which: "none", "partial" or "full". `evidence` is what the
        model takes as input (its task's choice, core.tasks.Task.evidence_for; None for
        none); a checkpoint's evidence embedding and fitted state carry over when it took the
        same evidence over the same tags.
        """
        location = DEFAULT if base is None else str(base)
        if location != DEFAULT and is_tagger_checkpoint(os.path.expanduser(location)):
            old = cls.load(os.path.expanduser(location), device="cpu")
            model = cls(
                old.encoder,
                old.tokenizer,
                labels,
                shape_features=shape_features,
                evidence=evidence,
                dropout=dropout if dropout is not None else old.dropout_p,
                max_length=max_length or old.max_length,
            )
            shared = [t for t in model.tags if t in old.tags]
            with torch.no_grad():
                for t in shared:
                    model.head.weight[model.label2id[t]] = old.head.weight[old.label2id[t]]
                    model.head.bias[model.label2id[t]] = old.head.bias[old.label2id[t]]
                if model.shape_embedding is not None and old.shape_embedding is not None:
                    model.shape_embedding.weight.copy_(old.shape_embedding.weight)
                same_evidence = (
                    model.evidence is not None
                    and old.evidence is not None
                    and model.evidence.name == old.evidence.name
                    and model.tags == old.tags
                )
                if model.evidence_embedding is not None and same_evidence:
                    model.evidence_embedding.weight.copy_(old.evidence_embedding.weight)
                    model.evidence = old.evidence
            reused = "full" if len(shared) == len(model.tags) else "partial" if shared else "none"
            # Lineage (backbone, objective of a pretraining run) carries over; results do not.
            inherited = {
                k: v
                for k, v in old.info.items()
                if k not in ("train_args", "metrics", "head_reused", "parent")
            }
            model.info = {
                **inherited,
                "backbone": old.info.get("backbone", location),
                "parent": os.path.abspath(os.path.expanduser(location)),
                "head_reused": reused,
            }
            return model
        encoder, tokenizer = load_encoder(base, allow_download=allow_download)
        resolved, _ = resolve_backbone(base)
        return cls(
            encoder,
            tokenizer,
            labels,
            shape_features=shape_features,
            evidence=evidence,
            dropout=dropout,
            max_length=max_length,
            info={"backbone": location if location != DEFAULT else resolved, "head_reused": "none"},
        )


def _jsonable(value: Any) -> Any:
    """Plain JSON types for tagger.json: numpy/torch scalars to floats, paths to strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)
