"""A corpus of malformed files, generated from a seed: every one imports or fails cleanly.

Issue 12's target: each file either imports correctly or exits non-zero with one line (a
FewlabelError, exit code 2), never a traceback, with the document count unchanged. Files of
the five main formats (csv, txt, jsonl, conll, sciad) are mutated deterministically: cut
short, quotes and brackets added or lost, offsets made fractional, boolean, infinite or huge,
values of the wrong type, nesting past the parser, lone surrogates, NUL bytes, invalid UTF-8,
binary garbage, empty files. Each goes through the command line (`core.cli.main`, in-process)
and through the upload path (`import_bytes`, what the Projects page calls).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sqlite3

import pytest

from core.cli import main
from core.errors import FewlabelError
from core.io.imports import import_bytes
from core.labeling.projects import create_project, get_project
from core.store.db import session_scope
from core.text import unstorable

SEED = 20261204
PER_FORMAT = 48  # x 5 formats = 240 files

TEXTS = [
    "The NASA team met the ESA team .",
    "We trained a CNN on GPU machines .",
    "Support vector machines ( SVM ) work .",
    "Results on MNIST were good .",
]


def _word_span(text: str, word: str) -> list:
    start = text.index(word)
    return [start, start + len(word), "SHORT"]


def _valid(fmt: str) -> str:
    """A small, correct file of the format, with labels where the format has them."""
    if fmt == "txt":
        return "\n".join(TEXTS) + "\n"
    if fmt == "jsonl":
        rows = [
            {"id": str(i), "text": t, "spans": [_word_span(t, t.split()[1])], "meta": {"k": i}}
            for i, t in enumerate(TEXTS)
        ]
        return "".join(json.dumps(r) + "\n" for r in rows)
    if fmt == "csv":
        lines = ["id,text,spans,note"]
        for i, t in enumerate(TEXTS):
            spans = json.dumps([{"start": a, "end": b, "label": c} for a, b, c in [_span(t)]])
            lines.append(f'{i},"{t}","{spans.replace(chr(34), chr(34) * 2)}",n{i}')
        return "\n".join(lines) + "\n"
    tokens = [t.split() for t in TEXTS]
    tags = [["B-SHORT" if w.isupper() and len(w) > 1 else "O" for w in ws] for ws in tokens]
    if fmt == "conll":
        return (
            "\n\n".join(
                "\n".join(f"{w}\t{g}" for w, g in zip(ws, gs, strict=True))
                for ws, gs in zip(tokens, tags, strict=True)
            )
            + "\n"
        )
    return json.dumps(
        [
            {"id": f"d{i}", "tokens": ws, "labels": gs}
            for i, (ws, gs) in enumerate(zip(tokens, tags, strict=True))
        ]
    )


def _span(text: str) -> list:
    return _word_span(text, text.split()[1])


# Values a mutation puts where a number, a string or an offset was.
ODD_VALUES = [
    "Infinity",
    "-Infinity",
    "NaN",
    "1e999",
    "34.9",
    "-1",
    "true",
    "false",
    "null",
    '"3"',
    "9" * 5000,
    "99999999999999999999999",
    "[]",
    "{}",
    '"\\ud800"',
    '"\\u0000"',
    '"a\\udfff"',
    "[" * 3000 + "]" * 3000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "[[[[[[[[]]]]]]]]",
]
JSON_ESCAPES = ["\\ud800", "\\udfff x", "\\ud83d", "\\u0000", "\\u0000\\u0000", "\\x00", "\\"]
ODD_TEXT = ["\x00", "\ud800", "\udc00x", '"', "'", "\\", "\t", "\r", "\n\n", "\ufeff", "\u2028"]


def _mutate(rng: random.Random, fmt: str, data: str) -> bytes:
    """One seeded mutation of a valid file."""
    kind = rng.randrange(15)
    if kind == 14:  # an odd character inside a text (a token, a cell), where it is stored
        at = {"jsonl": '"text": "', "sciad": '"tokens": ["', "csv": '0,"'}.get(fmt, "The ")
        odd = rng.choice(JSON_ESCAPES if fmt in ("jsonl", "sciad") else ODD_TEXT)
        return data.replace(at, at + odd, rng.randrange(1, 3)).encode("utf-8", "surrogatepass")
    if kind == 0:  # truncated anywhere
        return data[: rng.randrange(len(data))].encode()
    if kind == 1:  # a number or a string replaced by an odd JSON value
        spots = [i for i, c in enumerate(data) if c.isdigit() or c == '"']
        i = rng.choice(spots or range(len(data)))
        return (data[:i] + rng.choice(ODD_VALUES) + data[i + 1 :]).encode()
    if kind == 2:  # a quote or a bracket added or lost
        i = rng.randrange(len(data))
        if rng.random() < 0.5:
            return (data[:i] + rng.choice('"[]{},\t') + data[i:]).encode()
        return (data[:i] + data[i + 1 :]).encode()
    if kind == 3:  # odd characters: a lone surrogate or NUL as a JSON escape, or raw
        quotes = [i + 1 for i, c in enumerate(data) if c == '"']
        if fmt in ("jsonl", "sciad") and rng.random() < 0.6:
            i = rng.choice(quotes)
            return (data[:i] + rng.choice(JSON_ESCAPES) + data[i:]).encode()
        i = rng.randrange(len(data))
        return (data[:i] + rng.choice(ODD_TEXT) + data[i:]).encode("utf-8", "surrogatepass")
    if kind == 4:  # invalid UTF-8
        i = rng.randrange(len(data))
        return (
            data[:i].encode() + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + data[i:].encode()
        )
    if kind == 5:  # binary garbage, sometimes after a valid start
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        return (data[: rng.randrange(len(data))].encode() if rng.random() < 0.5 else b"") + garbage
    if kind == 6:  # empty, blank or only a header
        return rng.choice([b"", b"\n", b"   \n\n", data.split("\n")[0].encode(), b"\xef\xbb\xbf"])
    if kind == 7:  # line endings changed
        return data.replace("\n", rng.choice(["\r", "\r\n", "\n\r", "\x85"])).encode()
    if kind == 8:  # a line or a record duplicated or dropped
        lines = data.split("\n")
        i = rng.randrange(len(lines))
        lines[i : i + 1] = [lines[i]] * rng.choice([0, 2, 3])
        return "\n".join(lines).encode()
    if kind == 9:  # deep nesting where a value was
        depth = rng.choice([70, 900, 5000, 100_000])
        i = data.find(rng.choice(['"k"', '"tokens"', '"spans"', '"id"', "[", ","]))
        i = max(i, 0)
        return (data[:i] + "[" * depth + "]" * depth + data[i:]).encode()
    if kind == 10:  # an overlong text or id
        return (data[:5] + "x" * rng.choice([100_001, 250]) + data[5:]).encode()
    if kind == 11:  # labels and tags the project does not have, or no BIO
        return data.replace(
            "SHORT", rng.choice(["ORG", "short", "", "SHORT SHORT", "S-HORT"])
        ).encode()
    if kind == 12:  # offsets moved out of the text, reversed or onto no word
        numbers = [i for i, c in enumerate(data) if c.isdigit()]
        i = rng.choice(numbers) if numbers else 0
        return (data[:i] + rng.choice(["-5", "500", "0", "1000000"]) + data[i + 1 :]).encode()
    # a structure of the wrong type
    swap = {"[": "{", "{": "[", '"': "", ":": ",", "\t": " "}
    chars = [c for c in swap if c in data]
    if not chars:
        return data[::-1].encode()
    old = rng.choice(chars)
    return data.replace(old, swap[old], rng.randrange(1, 3)).encode()


def _corpus() -> list[tuple[str, str, bytes]]:
    rng = random.Random(SEED)
    files = []
    for fmt, suffix in (
        ("csv", "csv"),
        ("txt", "txt"),
        ("jsonl", "jsonl"),
        ("conll", "conll"),
        ("sciad", "json"),
    ):
        data = _valid(fmt)
        files.append((fmt, f"valid.{suffix}", data.encode()))
        for n in range(PER_FORMAT - 1):
            files.append((fmt, f"{fmt}-{n}.{suffix}", _mutate(rng, fmt, data)))
    return files


def test_the_corpus_is_big_deterministic_and_starts_from_valid_files():
    files = _corpus()
    assert len(files) >= 200 and files == _corpus()
    assert len({data for _, _, data in files}) > 180  # the mutations differ


def _count(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM documents").fetchone()[0]


def _stored_texts_are_clean(db: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.text_factory = lambda b: b.decode("utf-8", "surrogatepass")
        rows = conn.execute("SELECT text, state FROM documents").fetchall()
    for text, state in rows:
        assert state in ("open", "done") and unstorable(text) is None and len(text) <= 100_000


def test_every_malformed_file_imports_or_fails_with_one_line(tmp_path):
    db = str(tmp_path / "fuzz.db")
    url = f"sqlite:///{db}"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--db", db, "project", "create", "p", "--task", "acronym"]) == 0
    outcomes = {"imported": 0, "refused": 0}
    for fmt, name, data in _corpus():
        path = tmp_path / name
        path.write_bytes(data)
        for choice in (fmt, "auto"):
            before = _count(db)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(["--db", db, "import", "p", str(path), "--format", choice])
            message = err.getvalue()
            where = f"{name} ({choice}): {message!r}"
            if code == 0:
                outcomes["imported"] += 1
                assert _count(db) >= before, where
            else:
                outcomes["refused"] += 1
                # exit code 2 is a FewlabelError; 1 would be an error nobody foresaw
                assert code == 2, where
                assert message.startswith("fewlabel: error: ") and message.count("\n") == 1, where
                assert "Traceback" not in message, where
                assert _count(db) == before, where
        # the upload path: the Projects page shows a FewlabelError's one line
        before = _count(db)
        with session_scope(url) as s:
            project = get_project(s, "p")
            try:
                import_bytes(s, project, name, data, fmt=fmt)
            except FewlabelError as exc:
                assert "\n" not in str(exc), name
                s.rollback()
        if _count(db) != before:
            assert _count(db) > before, name
    _stored_texts_are_clean(db)
    assert outcomes["imported"] > 20 and outcomes["refused"] > 200


@pytest.mark.parametrize("fmt", ["csv", "txt", "jsonl", "conll", "sciad"])
def test_the_valid_files_import_with_their_labels(tmp_path, fmt):
    url = f"sqlite:///{tmp_path / 'valid.db'}"
    from core.store.db import upgrade

    upgrade(url)
    with session_scope(url) as s:
        project = create_project(s, "p", "acronym")
        report = import_bytes(s, project, f"valid.{fmt}", _valid(fmt).encode(), fmt=fmt)
    assert report.imported == len(TEXTS)
    assert report.annotations == (0 if fmt == "txt" else len(TEXTS))
