"""`fewlabel predict`: tag a file with a saved model version, writing the input's own format.

Token-list formats (SciAD JSON, CoNLL) are written back token for token with predicted
labels; JSONL gets predicted spans with confidences; TXT gives tagged text lines, or JSONL
when the output file ends in .jsonl.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from core.corpus import Record, neutralise, read_texts, resolve_format
from core.errors import FewlabelError
from core.text import tagged_text, words_of


def _spelling(model_info: dict, records: Iterable[Record], labels: list[str]) -> dict[str, str]:
    """How labels are written: as in the input file when it has labels, else as at training."""
    spelling = dict(model_info.get("label_spelling") or {})
    by_lower = {lbl.lower(): lbl for lbl in labels}
    for rec in records:
        for sp in rec.spans or []:
            canon = by_lower.get(str(sp["label"]).lower())
            if canon and sp["label"] != canon:
                spelling[canon] = sp["label"]
    return spelling


def _respell(tag: str, spelling: dict[str, str]) -> str:
    if tag == "O":
        return tag
    prefix, label = tag.split("-", 1)
    return f"{prefix}-{spelling.get(label, label)}"


# Output formats by file suffix: every input can be written as any of them.
OUTPUT_SUFFIXES = {
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".conll": "conll",
    ".json": "sciad",
    ".txt": "tagged",
}


def predict_file(
    model_dir: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    fmt: str = "auto",
    batch_size: int = 32,
) -> int:
    """Tag every record of `input_path` and write `output_path`; returns the record count."""
    from core.model.predict import load_tagger, predict

    src, dst = Path(input_path), Path(output_path)
    if not Path(model_dir).is_dir():
        raise FewlabelError(f"{model_dir}: no such model directory")
    fmt = resolve_format(src, fmt)
    records = [r for r in read_texts(src, fmt) if r.text.strip() or r.tokens]
    model = load_tagger(model_dir)
    spelling = _spelling(model.info, records, list(model.labels))
    docs = [(r.text, words_of(r.text, r.tokens)) for r in records]
    preds = predict(model, docs, batch_size=batch_size)
    # the output's suffix names its format; any other suffix gets the input's format back
    out_fmt = OUTPUT_SUFFIXES.get(dst.suffix.lower(), "tagged" if fmt == "txt" else fmt)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent.resolve(), prefix=f".{dst.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            _write(out, out_fmt, records, docs, preds, spelling)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(records)


def _write(out: IO[str], fmt: str, records, docs, preds, spelling: dict[str, str]) -> None:
    if fmt == "sciad":
        data = [
            {
                **({"id": r.external_id} if r.external_id is not None else {}),
                "tokens": [w.text for w in words],
                "labels": [_respell(t, spelling) for t in p.tags],
            }
            for r, (_, words), p in zip(records, docs, preds, strict=True)
        ]
        json.dump(data, out, ensure_ascii=False)
        out.write("\n")
    elif fmt == "conll":
        for (_, words), p in zip(docs, preds, strict=True):
            for w, t in zip(words, p.tags, strict=True):
                out.write(f"{w.text}\t{_respell(t, spelling)}\n")
            out.write("\n")
    elif fmt == "jsonl":
        for r, (text, _), p in zip(records, docs, preds, strict=True):
            obj = {
                **({"id": r.external_id} if r.external_id is not None else {}),
                "text": text,
                "spans": [{**s, "text": text[s["start"] : s["end"]]} for s in p.spans],
            }
            if r.tokens:
                obj["tokens"] = r.tokens
            if r.meta:
                obj["meta"] = r.meta
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["id", "text", "spans", "tagged_text"])
        for i, (r, (text, _), p) in enumerate(zip(records, docs, preds, strict=True), 1):
            writer.writerow(
                [
                    r.external_id or str(i),
                    text,
                    json.dumps(p.spans, ensure_ascii=False),
                    neutralise(tagged_text(text, p.spans)),
                ]
            )
    else:  # tagged text, one document a line
        for (text, _), p in zip(docs, preds, strict=True):
            out.write(tagged_text(text, p.spans).replace("\n", " ") + "\n")
