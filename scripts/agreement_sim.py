"""Agreement on simulated annotators with known disagreement rates (issue 13's target).

Two simulated annotators label held-out-style data (SciAD dev by default: gold acronym spans)
through the product itself: a real SQLite file, a project with overlap 2 on every text, each
annotator asking the queue for the next text (core.labeling.annotations.next_document) and saving
(core.labeling.annotations.save), interleaved as two browsers would. Each annotator corrupts
the gold spans at known rates, independently per span: drop it, shift it by one word (extend or
shrink at either end, never into or next to another gold span, so no two spans ever collide), or
swap its label (SHORT <-> LONG). Then `fewlabel agreement`'s figure (core.labeling.agreement on the
stored annotations) is compared with two truths computed here without the product:

- independent: span F1 between the two corrupted span sets as the script made them;
- expected: from the rates alone, E[matched] over E[spans] (each gold span's outcome
  probabilities for each annotator: exact given its shift options).

    .venv/bin/python scripts/agreement_sim.py [--data ../shared/benchmarks/sciad/dev.json]
        [--limit N] [--seed 0] [--a 0.10,0.10,0.05] [--b 0.15,0.05,0.10] [--json out.json]

Rates are drop,shift,relabel. Runs in a temporary folder. Exit status 1 when the product's
figure is more than 1 point away from the independent truth.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.io.corpus import read_texts  # noqa: E402
from core.io.imports import import_bytes  # noqa: E402
from core.labeling.agreement import project_agreement  # noqa: E402
from core.labeling.annotations import next_document, save  # noqa: E402
from core.labeling.overlap import set_overlap  # noqa: E402
from core.labeling.projects import create_project, get_project  # noqa: E402
from core.store.db import session_scope, upgrade  # noqa: E402
from core.text import words_of  # noqa: E402

SWAP = {"SHORT": "LONG", "LONG": "SHORT"}
Extent = tuple[int, int]  # word indices [first, last]


def rates(value: str) -> tuple[float, float, float]:
    drop, shift, relabel = (float(x) for x in value.split(","))
    return drop, shift, relabel


def gold_in_words(text: str, spans: list[dict]) -> tuple[list, list[tuple[Extent, str]]]:
    """The text's words (as the product splits them) and its gold spans as word extents."""
    words = words_of(text, None)
    out = []
    for s in spans:
        inside = [i for i, w in enumerate(words) if s["start"] <= w.start and w.end <= s["end"]]
        if inside:
            out.append(((inside[0], inside[-1]), str(s["label"]).upper()))
    return words, out


def shift_options(extent: Extent, taken: set[int], n_words: int) -> list[Extent]:
    """One word more or less at either end, never into or beside another gold span's words."""
    first, last = extent
    out = []
    if first > 0 and first - 1 not in taken and first - 2 not in taken:
        out.append((first - 1, last))
    if last < n_words - 1 and last + 1 not in taken and last + 2 not in taken:
        out.append((first, last + 1))
    if last > first:
        out += [(first + 1, last), (first, last - 1)]
    return out


def corrupt(
    gold: list[tuple[Extent, str]], n_words: int, r: tuple[float, float, float], rng: random.Random
) -> set[tuple[Extent, str]]:
    drop, shift, relabel = r
    out = set()
    for extent, label in gold:
        if rng.random() < drop:
            continue
        if rng.random() < shift:
            taken = {i for (f, t), _ in gold if (f, t) != extent for i in range(f, t + 1)}
            options = shift_options(extent, taken, n_words)
            if options:
                extent = rng.choice(options)
        if rng.random() < relabel:
            label = SWAP[label]
        out.add((extent, label))
    return out


def outcome_probs(extent: Extent, options: list[Extent], r) -> dict[tuple[Extent, bool], float]:
    """P(the annotator keeps it with this extent, label swapped or not), for one gold span."""
    drop, shift, relabel = r
    extents = {extent: (1 - shift) + (shift if not options else 0.0)}
    for o in options:
        extents[o] = extents.get(o, 0.0) + shift / len(options)
    return {
        (e, swapped): (1 - drop) * p * (relabel if swapped else 1 - relabel)
        for e, p in extents.items()
        for swapped in (False, True)
    }


def f1(matched: float, a: float, b: float) -> float:
    return 2 * matched / (a + b) if a + b else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/benchmarks/sciad/dev.json"))
    parser.add_argument("--limit", type=int, default=0, help="first N texts only (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--a", type=rates, default=(0.10, 0.10, 0.05), help="drop,shift,relabel")
    parser.add_argument("--b", type=rates, default=(0.15, 0.05, 0.10), help="drop,shift,relabel")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    records = list(read_texts(args.data, "sciad"))
    if args.limit:
        records = records[: args.limit]
    rate = {"ann_a": args.a, "ann_b": args.b}

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'sim.db'}"
        upgrade(url)
        with session_scope(url) as s:
            p = create_project(s, "sim", "acronym")
            lines = [json.dumps({"id": r.external_id, "text": r.text}) for r in records]
            # a text found twice is one document (unique per text), as in any import
            n_docs = import_bytes(s, p, "texts.jsonl", "\n".join(lines).encode()).imported
            set_overlap(s, p, 2, 1.0)
        gold = {r.external_id: gold_in_words(r.text, r.spans or []) for r in records}

        made: dict[str, dict[str, set]] = {"ann_a": {}, "ann_b": {}}
        served = {who: 0 for who in made}
        started = time.perf_counter()
        active = list(made)
        while active:  # two browsers, turn about: ask for the next text, label it, save
            for who in list(active):
                with session_scope(url) as s:
                    p = get_project(s, "sim")
                    task = next_document(s, p, who)
                    if task is None:
                        active.remove(who)
                        continue
                    words, spans = gold[task.external_id]
                    assert [w.start for w in words] == [w.start for w in task.words]
                    assert task.external_id not in made[who], "served twice"
                    # seeded per text, not per turn: the queue's (random) order changes nothing
                    rng = random.Random(f"{args.seed}:{who}:{task.external_id}")
                    ours = corrupt(spans, len(words), rate[who], rng)
                    made[who][task.external_id] = ours
                    save(
                        s,
                        p,
                        task.document_id,
                        who,
                        [
                            {"start": words[f].start, "end": words[t].end, "label": label}
                            for (f, t), label in ours
                        ],
                    )
                    served[who] += 1
        seconds = time.perf_counter() - started
        with session_scope(url) as s:
            report = project_agreement(s, get_project(s, "sim"))

    # the truths, without the product
    a, b = made["ann_a"], made["ann_b"]
    matched = sum(len(a[d] & b[d]) for d in a.keys() & b.keys())
    independent = f1(matched, sum(map(len, a.values())), sum(map(len, b.values())))
    e_matched = e_a = e_b = 0.0
    for doc in a.keys() & b.keys():
        words, spans = gold[doc]
        for extent, _ in spans:
            taken = {i for (f, t), _ in spans if (f, t) != extent for i in range(f, t + 1)}
            options = shift_options(extent, taken, len(words))
            pa = outcome_probs(extent, options, args.a)
            pb = outcome_probs(extent, options, args.b)
            e_matched += sum(pa[k] * pb[k] for k in pa)
            e_a += 1 - args.a[0]
            e_b += 1 - args.b[0]
    expected = f1(e_matched, e_a, e_b)
    computed = report.agreement.micro
    n_gold = sum(len(gold[doc][1]) for doc in a.keys() & b.keys())
    result = {
        "data": str(args.data),
        "texts": len(records),
        "documents": n_docs,
        "gold_spans": n_gold,
        "rates": {
            "ann_a": dict(zip(("drop", "shift", "relabel"), args.a, strict=True)),
            "ann_b": dict(zip(("drop", "shift", "relabel"), args.b, strict=True)),
        },
        "served": served,
        "texts_compared": report.agreement.texts,
        "seconds": round(seconds, 1),
        "computed_f1": computed,
        "independent_f1": independent,
        "expected_f1": expected,
        "computed_minus_independent_points": 100 * (computed - independent),
        "computed_minus_expected_points": 100 * (computed - expected),
        "labels": report.agreement.labels,
    }
    print(
        f"{len(records)} texts ({n_docs} distinct), {n_gold} gold spans; served {served}; "
        f"{report.agreement.texts} texts compared; {seconds:.1f} s through queue and save"
    )
    print(f"computed by fewlabel (core.labeling.agreement): span F1 {100 * computed:.2f}")
    print(f"independent (the two corrupted sets):  span F1 {100 * independent:.2f}")
    print(f"expected from the corruption rates:    span F1 {100 * expected:.2f}")
    labels = ", ".join(f"{k} {100 * v:.2f}" for k, v in report.agreement.labels.items() if v)
    print(f"per label (computed): {labels}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    ok = (
        abs(computed - independent) <= 0.01
        and served == {"ann_a": n_docs, "ann_b": n_docs}
        and report.agreement.texts == n_docs
    )
    print("within 1 point of the truth" if ok else "FAILED: more than 1 point from the truth")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
