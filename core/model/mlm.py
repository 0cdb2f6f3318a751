"""The masked-LM objective's pieces: BERT's masking, a prediction head, bucketed rows.

The shipped MiniLM has no MLM head, so one is initialised: a dense + GELU + LayerNorm transform
whose decoder is tied to the word embeddings. Pretraining (core.model.pretrain) computes its
loss on the masked positions only, padded to a few shapes (`bucketed`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from core.model.encoding import IGNORE

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
