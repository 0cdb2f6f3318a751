"""Training from partial answers: accepted and rejected spans of a text, beside full annotations.

A partially answered text (`Partial`: text, words, accepted spans, rejected spans; teach
mode's decisions, core.jobs.training.answered_texts) says something about a few of its words
only. Its loss, per word position w with the model's tag distribution p_w(.) (softmax of the
tag logits, in fp32), is made of three kinds of term:

  accepted span s..e-1 labeled L (words s to e-1):
      CE_w = -log p_w(B-L) for w = s, and -log p_w(I-L) for s < w < e    (one term a word)
      and, when the word e after it exists and no accepted span covers it,
      R = -log(1 - p_e(I-L) + eps)   (the span ends at e-1: e does not continue it)
  rejected span s..e-1 labeled L:
      P = p_s(B-L) * p_{s+1}(I-L) * ... * p_{e-1}(I-L) * (1 - p_e(I-L))
          (the probability of exactly that labeling of those words; the last factor only
          when word e exists and lies in the same chunk)
      R = -log(1 - P + eps)
  every other word of the text: no term of its own (it is not assumed O, nor anything else).

A full annotation gives CE_w for every word, O included, exactly as before. A batch's loss is
the mean over its terms, CE and R alike, plus one bound on the batch's unanswered words U
(the words of its partially answered texts that no answer covers):

      share = (1 / |U|) * sum over w in U of (1 - p_w(O))    (their expected entity share)
      loss  = (sum of CE_w + sum of R) / (number of CE_w + number of R)
              + weight * max(0, share - (ratio + margin))

The bound is the expected entity ratio loss (Effland & Collins, "Partially supervised named
entity recognition via the expected entity ratio loss", TACL 2021), one-sided: accepts alone
only ever push entity tags up, and without it a tagger trained on them learns to tag every
word (a tiny model did: 168 of 168 held-out words). It says nothing about any one word; it
only keeps the share of entity words among the unanswered ones at most `margin` above
`ratio`, the entity share of the fully labeled texts trained on (finetune passes it), else
DEFAULT_RATIO; margin = 0.05, weight = 10 (a violated bound outweighs the mean term).
In a batch without partially answered texts there is no U, no R, and the
loss is the plain cross-entropy mean of core.model.trainer's `gold_tag_loss`, computed by
that very function: full annotations train bit for bit as they did.

P is computed in log space (log P = sum of log-softmax terms, log(1 - p) as
log(-expm1(log p))), so a product of many word probabilities does not underflow.

Why -log(1 - P + eps): it is the unlikelihood loss (Welleck et al., "Neural text generation
with unlikelihood training", ICLR 2020) applied to one labeling: it is ~P (no push) while the
model already finds the labeling unlikely and grows to -log(eps) as P -> 1. Its gradient on
a word's logits is at most about 1 whatever P (d/dlog P is P / (1 - P + eps), and d log P /
d logit is at most 1 - p_w <= 1 - P), so no clamp is needed for the gradient; eps = 1e-4
only keeps the log finite where P rounds to 1 in fp32, capping a reject's term at
-log(eps) ~ 9.2, the cross-entropy of a confident mistake. The rejected labeling's own words
get no cross-entropy: a reject says the labeling is wrong, not which one is right.

A rejected span whose words a chunk boundary splits (a text longer than the model's window)
is left out; accepted words train wherever they fall.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from core.errors import ValidationError
from core.model.backbone import Tagger
from core.model.encoding import IGNORE, Chunk
from core.model.trainer import Batch, gold_tag_loss
from core.text import Span, Word, spans_to_bio

EPS = 1e-4  # see the module docstring: caps a reject's term at -log(EPS)
# The expected share of entity words where no fully labeled text tells it: about one word in
# ten is inside a mention in the NER sets we bench (BC5CDR ~0.1, CoNLL-2003 ~0.17 of tokens).
DEFAULT_RATIO = 0.1


class Partial(NamedTuple):
    """A partially answered text: its words, the spans accepted and the spans rejected."""

    text: str
    words: list[Word]
    accepted: list[Span]
    rejected: list[Span]


# A labeling a rejection pushes down: (document word index, tag id, +1 the tag / -1 not it)
Labeling = list[tuple[int, int, int]]


def _span(s: Span | dict) -> Span:
    return s if isinstance(s, Span) else Span(int(s["start"]), int(s["end"]), s["label"])


def _covered(words: Sequence[Word], span: Span) -> list[int]:
    """The indices of the words inside `span` (spans_to_bio's rule)."""
    return [i for i, w in enumerate(words) if w.start >= span.start and w.end <= span.end]


def _check_labels(spans: Iterable[Span], labels: Sequence[str]) -> None:
    for s in spans:
        if s.label not in labels:
            raise ValidationError(
                f"unknown label {s.label!r}; training labels are {', '.join(labels)}"
            )


def answer_targets(example: Partial, label2id: dict[str, int]) -> tuple[list[int], list[Labeling]]:
    """(tag id or IGNORE per word, the labelings to push down) of a partially answered text:
    the accepted spans' words their B-/I- tags and every other word IGNORE; the rejected
    spans' labelings and each accepted span's "the next word does not continue it"."""
    words = example.words
    accepted = [_span(s) for s in example.accepted]
    tags = spans_to_bio(words, accepted)
    targets = [label2id[t] if t != "O" else IGNORE for t in tags]
    pushed: list[Labeling] = []
    for i, tag in enumerate(tags[:-1]):
        if tag != "O" and tags[i + 1] == "O":  # an accepted span ends at word i
            pushed.append([(i + 1, label2id["I-" + tag[2:]], 1)])
    for span in (_span(s) for s in example.rejected):
        inside = _covered(words, span)
        if not inside:
            continue
        labeling = [(inside[0], label2id["B-" + span.label], 1)]
        labeling += [(w, label2id["I-" + span.label], 1) for w in inside[1:]]
        if inside[-1] + 1 < len(words):
            labeling.append((inside[-1] + 1, label2id["I-" + span.label], -1))
        pushed.append(labeling)
    return targets, pushed


def _place(labeling: Labeling, position: dict[int, int]) -> list[tuple[int, int, int]] | None:
    """A labeling in chunk positions; None when one of its own words is not in the chunk (a
    trailing "not this tag" word outside the chunk is dropped)."""
    placed = []
    for w, tag, sign in labeling:
        if w in position:
            placed.append((position[w], tag, sign))
        elif sign > 0:
            return None
    return placed


def partial_chunks(model: Tagger, partials: Sequence[Partial]) -> list[Chunk]:
    """Training chunks of partially answered texts: each accepted word's tag id on its first
    sub-token, IGNORE elsewhere, and the labelings to push down in `rejects` (in chunk
    positions). A chunk with nothing to learn from is left out."""
    partials = [Partial(*p) for p in partials if len(p[1]) > 0]
    for p in partials:
        _check_labels([_span(s) for s in (*p.accepted, *p.rejected)], model.labels)
    targets = [answer_targets(p, model.label2id) for p in partials]
    chunks = model.encode([(p.text, p.words) for p in partials], model.max_length)
    out = []
    for c in chunks:
        tags, pushed = targets[c.doc]
        c.labels = [tags[w] if w >= 0 else IGNORE for w in c.first]
        position = {w: i for i, w in enumerate(c.first) if w >= 0}
        c.rejects = [r for r in (_place(lab, position) for lab in pushed) if r]
        c.unanswered = [i for i, w in enumerate(c.first) if w >= 0 and tags[w] == IGNORE]
        if c.rejects or any(t != IGNORE for t in c.labels):
            out.append(c)
    return out


def _log_not(logp: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(logp)), finite where exp(logp) rounds to 1."""
    return torch.log((-torch.expm1(logp)).clamp_min(1e-12))


def reject_terms(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """R = -log(1 - P + EPS) of every labeling to push down in the batch (module docstring)."""
    logp = torch.log_softmax(logits.float(), dim=-1).view(-1, logits.shape[-1])
    index, tag, sign = batch["reject_index"], batch["reject_tag"], batch["reject_sign"]
    word = logp[index, tag]  # (rejects, words): log p_w(tag)
    term = torch.where(sign > 0, word, _log_not(word))
    log_p = (term * (sign != 0)).sum(dim=1)
    return -torch.log(-torch.expm1(log_p) + EPS)


def entity_ratio(examples: Sequence[tuple]) -> float:
    """The share of words inside a span in fully labeled (text, words, spans) examples;
    DEFAULT_RATIO without any."""
    words = sum(len(ex[1]) for ex in examples)
    if not words:
        return DEFAULT_RATIO
    inside = sum(t != "O" for _, w, spans in examples for t in spans_to_bio(w, spans))
    return inside / words


@dataclass
class AnswerLoss:
    """The WordLoss of full and partial texts together (module docstring): the mean over the
    batch's word cross-entropies and reject terms, plus `weight` x the expected entity share
    of the unanswered words beyond `ratio` + `margin`. A batch without partially answered
    texts is `gold_tag_loss`, unchanged."""

    ratio: float = DEFAULT_RATIO
    margin: float = 0.05
    weight: float = 10.0
    o_id: int = 0  # the O tag's index (core.model.backbone.bio_tags puts it first)

    def __call__(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        if "unanswered" not in batch:
            return gold_tag_loss(logits, batch)
        labels = batch["labels"].view(-1)
        flat = logits.float().view(-1, logits.shape[-1])
        total = nn.functional.cross_entropy(flat, labels, ignore_index=IGNORE, reduction="sum")
        count = (labels != IGNORE).sum()
        if "reject_index" in batch:
            rejects = reject_terms(logits, batch)
            total, count = total + rejects.sum(), count + rejects.shape[0]
        loss = total / count.clamp_min(1)
        unanswered = batch["unanswered"].view(-1)
        if bool(unanswered.any()):
            p_o = torch.softmax(flat[unanswered], dim=-1)[:, self.o_id]
            excess = (1 - p_o).mean() - (self.ratio + self.margin)
            loss = loss + self.weight * torch.relu(excess)
        return loss
