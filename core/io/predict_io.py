"""`fewlabel predict`: tag a file with a saved model version and write it in a registry format.

The output file's suffix picks the format (core.io.formats.for_path); any other suffix gets the
input's format back. Predictions become the same rows export writes (with no review state),
so token-list formats (SciAD JSON, CoNLL) come back token for token with predicted labels,
JSONL and CSV get spans with their confidence, and TXT tagged text, one document a line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from core.errors import FewlabelError
from core.io import formats
from core.io.corpus import read_texts, resolve_format
from core.io.formats import Record, Row
from core.text import words_of


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


def output_format(output_path: str | os.PathLike, input_format: str) -> formats.Format:
    """The format the output's suffix names, when it can be written; else the input's."""
    named = formats.for_path(output_path)
    if named is not None and named.write is not None:
        return formats.get(named.name)
    return formats.get(input_format)


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

    if not Path(model_dir).is_dir():
        raise FewlabelError(f"{model_dir}: no such model directory")
    fmt = resolve_format(input_path, fmt)
    out_fmt = output_format(output_path, fmt)
    formats.check_output(output_path)  # a missing folder before the model runs, not after
    records = [r for r in read_texts(input_path, fmt) if r.text.strip() or r.tokens]
    model = load_tagger(model_dir)
    spelling = _spelling(model.info, records, list(model.labels))
    preds = predict(
        model, [(r.text, words_of(r.text, r.tokens)) for r in records], batch_size=batch_size
    )
    rows = [
        Row(id=r.external_id, text=r.text, spans=p.spans, tokens=r.tokens, meta=r.meta)
        for r, p in zip(records, preds, strict=True)
    ]
    with formats.write_atomically(output_path, binary=out_fmt.binary) as out:
        out_fmt.write(rows, out, formats.WriteOptions(spelling=spelling))
    return len(records)
