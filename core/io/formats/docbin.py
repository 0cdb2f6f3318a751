"""spaCy DocBin (.spacy), the training data of `spacy train`: docs with entities.

Only where spaCy is installed; nothing is downloaded (a blank multi-language vocabulary is
enough to read and build docs). Entities are the labels (`doc.ents`, Python code points);
our ids travel in `doc.user_data`. A doc's tokens are kept when joined by single spaces
they are its text. Written docs use fewlabel's words as tokens, so spans stay on word
boundaries; skipped documents are left out (a doc without entities says "none here").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

from core.errors import ImportFormatError
from core.io.formats.base import Format, ReadOptions, Record, Row, WriteOptions, str_id
from core.text import words_of


def _blank():
    import spacy  # lazy: spaCy is optional, and heavy

    return spacy.blank("xx")


def read(stream: IO[bytes], name: str, options: ReadOptions) -> Iterator[Record]:
    from spacy.tokens import DocBin

    nlp = _blank()
    try:
        docs = list(DocBin().from_bytes(stream.read()).get_docs(nlp.vocab))
    except Exception as exc:  # msgpack, zlib and spaCy raise many kinds for a bad file
        raise ImportFormatError(name, None, f"not a spaCy DocBin ({type(exc).__name__})") from None
    for n, doc in enumerate(docs, 1):
        tokens = [t.text for t in doc]
        user = doc.user_data if isinstance(doc.user_data, dict) else {}
        yield Record(
            line=n,
            text=doc.text,
            tokens=tokens if " ".join(tokens) == doc.text else None,
            spans=[{"start": e.start_char, "end": e.end_char, "label": e.label_} for e in doc.ents],
            external_id=str_id(user.get("id")),
        )


def _doc(nlp, r: Row):
    """A Doc of the row's words, the whitespace between them kept exactly."""
    from spacy.tokens import Doc

    words, spaces = [], []
    pos = 0
    for w in words_of(r.text, r.tokens, r.spans):
        gap = r.text[pos : w.start]
        if words and gap.startswith(" "):
            spaces[-1], gap = True, gap[1:]
        if gap:  # other whitespace is a token of its own, as spaCy's tokenizer makes it
            words.append(gap)
            spaces.append(False)
        words.append(w.text)
        spaces.append(False)
        pos = w.end
    if r.text[pos:]:
        if words and r.text[pos] == " ":
            spaces[-1] = True
            pos += 1
        if r.text[pos:]:
            words.append(r.text[pos:])
            spaces.append(False)
    doc = Doc(nlp.vocab, words=words, spaces=spaces)
    ents = [
        doc.char_span(s["start"], s["end"], label=s["label"], alignment_mode="expand")
        for s in r.spans
    ]
    doc.ents = [e for e in ents if e is not None]
    doc.user_data["id"] = r.id
    return doc


def write(rows: Iterable[Row], out: IO[bytes], options: WriteOptions) -> int:
    from spacy.tokens import DocBin

    nlp = _blank()
    bin_ = DocBin(store_user_data=True)
    n = 0
    for r in rows:
        if r.status == "skipped":
            continue
        bin_.add(_doc(nlp, r))
        n += 1
    out.write(bin_.to_bytes())
    return n


FORMAT = Format(
    name="spacy",
    suffixes=(".spacy",),
    mime="application/octet-stream",
    description="spaCy's DocBin (training data), entities as labels; needs spaCy installed",
    read=read,
    write=write,
    rank=80,
    binary=True,
    requires="spacy",
    unit="doc",
)
