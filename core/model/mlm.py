"""The masked-LM objective and its pieces: BERT's masking, a prediction head, bucketed rows.

The shipped MiniLM has no MLM head, so one is initialised: a dense + GELU + LayerNorm transform
whose decoder is tied to the word embeddings. `MaskedObjective` is pretraining's step loss
(core.model.pretrain runs it in core.model.trainer's loop): masked LM on the masked positions
only, padded to a few shapes (`bucketed`), plus for aligned pretraining the weak tags through
the finetuning head, on the same forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import FewlabelError
from core.model.backbone import Tagger
from core.model.encoding import IGNORE
from core.model.trainer import Batch, Losses, WordLoss, gold_tag_loss, hide_evidence

# Masked-LM rows are padded to a multiple of this: the (rows x vocabulary) logits then take
# a few shapes, and the CPU allocator and oneDNN's primitive cache stop growing with every
# new one (peak RSS of a 10-minute run was 5.6-6.5 GB before; see docs/benchmarks.md).
MLM_BUCKET = 256


class MLMHead(nn.Module):
    """BERT's prediction head with its decoder tied to the (possibly frozen) word embeddings."""

    def __init__(self, embeddings: nn.Embedding, eps: float = 1e-12):
        super().__init__()
        hidden = embeddings.embedding_dim
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.embeddings = [embeddings]  # a list: not a submodule, so not saved twice
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        h = self.norm(nn.functional.gelu(self.dense(hidden)))
        return h @ self.embeddings[0].weight.T + self.bias


def mask_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    special_ids: Sequence[int],
    mask_id: int,
    vocab_size: int,
    probability: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: of the chosen tokens 80% [MASK], 10% random, 10% kept; other labels -100."""
    labels = input_ids.clone()
    maskable = attention_mask.bool()
    for sid in special_ids:
        maskable &= input_ids != sid
    rand = torch.rand(input_ids.shape, generator=generator, device="cpu").to(input_ids.device)
    chosen = maskable & (rand < probability)
    labels[~chosen] = IGNORE
    masked = input_ids.clone()
    action = torch.rand(input_ids.shape, generator=generator, device="cpu").to(input_ids.device)
    masked[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device="cpu").to(
        input_ids.device
    )
    masked[swap] = random_ids[swap]
    return masked, labels


def bucketed(
    hidden: torch.Tensor, mlm_labels: torch.Tensor, bucket: int = MLM_BUCKET
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden states of the masked positions and their targets, padded with ignored rows
    to a multiple of `bucket`, so the vocabulary-wide logits take a few shapes, not hundreds."""
    chosen = mlm_labels != IGNORE
    picked, targets = hidden[chosen], mlm_labels[chosen]
    pad = -picked.shape[0] % bucket
    if pad:
        picked = torch.cat([picked, picked.new_zeros(pad, picked.shape[1])])
        targets = torch.cat([targets, targets.new_full((pad,), IGNORE)])
    return picked, targets


@dataclass
class MaskedObjective:
    """Pretraining's step loss on one forward pass over the masked input: `mlm_weight` x the
    masked-LM loss, plus `tag_weight` x `word_loss` on the weak tags when `tag_weight` is
    not None (aligned pretraining). The evidence of an `evidence_dropout` share of the chunks
    is hidden; masks and hiding draw from `generator`. Returns the parts as "mlm" and "tag"."""

    head: MLMHead
    special_ids: Sequence[int]
    mask_id: int
    vocab_size: int
    probability: float
    evidence_dropout: float
    generator: torch.Generator
    mlm_weight: float = 1.0
    tag_weight: float | None = 1.0
    word_loss: WordLoss = gold_tag_loss

    @classmethod
    def for_model(cls, model: Tagger, head: MLMHead, **options) -> MaskedObjective:
        """The objective with the model tokenizer's [MASK], special tokens and vocabulary."""
        tok = model.tokenizer
        if tok.mask_token_id is None:
            raise FewlabelError("the backbone's tokenizer has no [MASK] token; MLM needs one")
        special = [
            i for i in (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) if i is not None
        ]
        vocab = model.word_embeddings().num_embeddings
        return cls(head, special, tok.mask_token_id, vocab, **options)

    def __call__(self, model: Tagger, batch: Batch) -> Losses:
        masked, mlm_labels = mask_tokens(
            batch["input_ids"],
            batch["attention_mask"],
            special_ids=self.special_ids,
            mask_id=self.mask_id,
            vocab_size=self.vocab_size,
            probability=self.probability,
            generator=self.generator,
        )
        evidence = hide_evidence(batch["evidence_ids"], self.evidence_dropout, self.generator)
        embeds = model.input_embeddings(masked, batch["shape_ids"], evidence)
        hidden = model.hidden_states(embeds, batch["attention_mask"])
        picked, targets = bucketed(hidden, mlm_labels)
        loss_mlm = nn.functional.cross_entropy(
            self.head(picked).float(), targets, ignore_index=IGNORE
        )
        losses = {"loss": self.mlm_weight * loss_mlm, "mlm": loss_mlm}
        if self.tag_weight is not None:
            losses["tag"] = self.word_loss(model.tag_logits(hidden), batch)
            losses["loss"] = losses["loss"] + self.tag_weight * losses["tag"]
        return losses
