"""Import and export on real databases (SQLite; PostgreSQL too where marked both_backends):
every format, malformed files, round trips."""

import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.errors import ImportFormatError
from core.io.corpus import detect_format, export, export_bytes
from core.io.imports import import_bytes, import_file, import_stream
from core.labeling.projects import create_project, get_project
from core.store.db import session_scope
from core.store.schema import Annotation, Document

SCIAD = [
    {
        "id": "a1",
        "tokens": ["Support", "vector", "machines", "(", "SVM", ")", "work", "."],
        "labels": ["B-long", "I-long", "I-long", "O", "B-short", "O", "O", "O"],
    },
    {
        "id": "a2",
        "tokens": ["We", "use", "U.S.", "data", "from", "NASA", "'s", "archive"],
        "labels": ["O", "O", "O", "O", "O", "B-short", "O", "O"],
    },
]


def _counts(url):
    with session_scope(url) as s:
        return (
            s.scalar(select(func.count(Document.id))),
            s.scalar(select(func.count(Annotation.id))),
        )


@pytest.fixture
def project(db_url):
    with session_scope(db_url) as s:
        create_project(s, "p", "acronym")
    return "p"


def _import(url, name, data, **kw):
    with session_scope(url) as s:
        return import_bytes(s, get_project(s, "p"), name, data.encode(), **kw)


def _export(url, fmt, **kw):
    with session_scope(url) as s:
        buf = io.StringIO()
        export(s, get_project(s, "p"), buf, fmt, **kw)
        return buf.getvalue()


@pytest.mark.both_backends
def test_sciad_round_trips_through_conll_token_for_token(db_url, project, tmp_path):
    path = tmp_path / "sciad.json"
    path.write_text(json.dumps(SCIAD))
    with session_scope(db_url) as s:
        report = import_file(s, get_project(s, "p"), path, annotator="gold")
    assert (report.imported, report.annotations, report.format) == (2, 2, "sciad")
    out = _export(db_url, "conll")
    docs = [d.split("\n") for d in out.strip("\n").split("\n\n")]
    assert [[ln.split("\t")[0] for ln in d] for d in docs] == [r["tokens"] for r in SCIAD]
    assert [[ln.split("\t")[1] for ln in d] for d in docs] == [r["labels"] for r in SCIAD]


@pytest.mark.both_backends
def test_conll_round_trip_and_external_ids(db_url, project):
    conll = "-DOCSTART-\tO\n\nThe\tO\nWHO\tB-SHORT\nsaid\tO\n\nWorld\tB-LONG\nBank\tI-LONG\n"
    report = _import(db_url, "x.conll", conll, annotator="gold")
    assert (report.imported, report.annotations) == (2, 2)
    assert _export(db_url, "conll") == conll.replace("-DOCSTART-\tO\n\n", "") + "\n"


def test_txt_lines_and_paragraphs(db_url, project):
    assert _import(db_url, "a.txt", "one text\n\n\n").imported == 1
    r = _import(db_url, "b.txt", "first para\ncontinues here\n\nsecond para\n")
    assert r.imported == 2
    with session_scope(db_url) as s:
        texts = s.scalars(select(Document.text).order_by(Document.id)).all()
    assert texts == ["one text", "first para continues here", "second para"]
    r = _import(db_url, "c.txt", "alpha\nbeta\nalpha\n")
    assert (r.imported, r.duplicates) == (2, 1)


def test_csv_text_column_metadata_and_labels(db_url, project):
    data = 'id,body,topic\n7,"The WHO met, again",health\n8,Nothing here,misc\n'
    with pytest.raises(ImportFormatError, match="which column"):
        _import(db_url, "d.csv", data)
    r = _import(db_url, "d.csv", data, text_column="body")
    assert r.imported == 2
    with session_scope(db_url) as s:
        doc = s.scalar(select(Document).where(Document.external_id == "7"))
        assert doc.meta == {"topic": "health"} and doc.text == "The WHO met, again"


@pytest.mark.both_backends
def test_jsonl_with_spans_imports_annotations_and_csv_export_round_trips(db_url, project):
    lines = [
        {
            "text": "=SUM(A1) is not an acronym, but IBM is",
            "id": "x",
            "spans": [{"start": 32, "end": 35, "label": "SHORT"}],
            "meta": {"src": "t"},
        },
        {"text": "No labels here"},
    ]
    r = _import(db_url, "e.jsonl", "\n".join(json.dumps(x) for x in lines), annotator="gold")
    assert (r.imported, r.annotations) == (2, 1)
    out = _export(db_url, "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1
    row = rows[0]
    assert row["text"] == lines[0]["text"]  # data is written exactly
    assert json.loads(row["spans"]) == [{"start": 32, "end": 35, "label": "SHORT", "text": "IBM"}]
    assert row["tagged_text"].startswith("'=SUM")  # human-readable cells are guarded
    assert row["tagged_text"].endswith("but [IBM]{SHORT} is")
    assert row["annotator"] == "gold" and row["status"] == "done"
    # our own CSV imports back exactly, labels included
    with session_scope(db_url) as s:
        create_project(s, "q", "acronym")
    with session_scope(db_url) as s:
        q = get_project(s, "q")
        assert import_bytes(s, q, "back.csv", out.encode()).annotations == 1
        doc = s.scalar(select(Document).where(Document.project_id == q.id))
        assert doc.text == lines[0]["text"] and doc.external_id == "x"
        assert doc.meta == {"src": "t"}


def test_jsonl_export_includes_unlabeled_on_request(db_url, project):
    _import(db_url, "f.jsonl", '{"text": "a b"}\n{"text": "c d"}\n')
    assert _export(db_url, "jsonl") == ""
    rows = [json.loads(x) for x in _export(db_url, "jsonl", include_unlabeled=True).splitlines()]
    assert [r["status"] for r in rows] == ["open", "open"]


@pytest.mark.parametrize(
    "name, data, where",
    [
        ("bad.jsonl", '{"text": "ok"}\n{"text": "ok2"\n', "bad.jsonl:2"),
        ("bad.jsonl", '{"text": "ok"}\n{"body": "x"}\n', "bad.jsonl:2"),
        (
            "bad.jsonl",
            '{"text": "abc", "spans": [{"start": 0, "end": 9, "label": "SHORT"}]}\n',
            "bad.jsonl:1",
        ),
        (
            "bad.jsonl",
            '{"text": "abc", "spans": [{"start": 0, "end": 3, "label": "ORG"}]}\n',
            "bad.jsonl:1",
        ),
        ("bad.conll", "a\tO\nb\tB-SHORT\n\nc\tX-SHORT\n", "bad.conll:4"),
        ("bad.conll", "a\tO\nb\tB-ORG\n", "bad.conll:2"),  # the label's own line
        ("bad.csv", 'text,spans\nok,[]\n"x","[{bad json"\n', "bad.csv:3"),
        ("bad.csv", "text\nok\nthis,has,extra\n", "bad.csv:3"),
        ("bad.json", '[{"tokens": ["a"], "labels": ["O", "O"]}]', "record 1"),
        ("bad.json", '[{"tokens": ["a"]', "bad.json:1"),
    ],
)
def test_malformed_files_abort_with_one_line_and_write_nothing(db_url, project, name, data, where):
    _import(db_url, "good.txt", "kept\n")
    before = _counts(db_url)
    with pytest.raises(ImportFormatError) as err:
        _import(db_url, name, data)
    assert where in str(err.value) and "\n" not in str(err.value)
    assert _counts(db_url) == before


def test_skip_invalid_reports_bad_records_by_line(db_url, project):
    data = (
        '{"text": "good IBM", "spans": [[5, 8, "SHORT"]]}\n'
        '{"text": "bad overlap", "spans": [[0, 3, "SHORT"], [1, 5, "LONG"]]}\n'
    )
    r = _import(db_url, "s.jsonl", data, skip_invalid=True)
    assert r.imported == 1 and len(r.skipped_invalid) == 1
    assert r.skipped_invalid[0].startswith("line 2:")


def test_not_utf8_is_a_clear_error(db_url, project):
    with session_scope(db_url) as s, pytest.raises(ImportFormatError, match="not UTF-8"):
        import_bytes(s, get_project(s, "p"), "latin.txt", "caf\xe9\n".encode("latin-1"))


def test_detect_format():
    assert detect_format("x.txt", "The\tO\nWHO\tB-SHORT\n") == "conll"
    assert detect_format("x.txt", "A plain sentence.\nAnother one.\n") == "txt"
    assert detect_format("x.data", '{"text": "a"}\n') == "jsonl"
    assert detect_format("x.json", "[]") == "sciad"


def test_export_bytes_matches_stream_export(db_url, project):
    _import(db_url, "g.conll", "The\tO\nWHO\tB-SHORT\n", annotator="gold")
    with session_scope(db_url) as s:
        assert export_bytes(s, get_project(s, "p"), "conll").decode() == _export(db_url, "conll")


def test_a_plain_csv_keeps_columns_named_like_export_fields_as_metadata(db_url, project):
    _import(db_url, "h.csv", "text,status,annotator\nSome text,draft,kim\n")
    with session_scope(db_url) as s:
        doc = s.scalar(select(Document).where(Document.text == "Some text"))
        assert doc.meta == {"status": "draft", "annotator": "kim"}


HOSTILE = [
    "@nasa says the ISS is up",
    '=HYPERLINK("x") and the ESA',
    "+1 for NASA",
    "-5 degrees at the ISS",
    "\t tabbed start, NASA",
    "🚀 the ESA 👍🏽 launch by NASA",
]


def _label_caps(text: str) -> list[dict]:
    from core.text import tokenize

    return [
        {"start": w.start, "end": w.end, "label": "SHORT"}
        for w in tokenize(text)
        if w.text.isupper() and len(w.text) > 1
    ]


def test_csv_export_spans_slice_the_text_as_pandas_and_csv_read_it(db_url, project):
    import pandas as pd

    data = "\n".join(
        json.dumps({"text": t, "id": f"-{i}", "spans": _label_caps(t)})
        for i, t in enumerate(HOSTILE)
    )
    assert _import(db_url, "h.jsonl", data, annotator="=cmd").annotations == len(HOSTILE)
    out = _export(db_url, "csv")
    frame = pd.read_csv(io.StringIO(out), keep_default_na=False, dtype=str)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(frame["text"]) == sorted(rows_text := [r["text"] for r in rows])
    assert sorted(rows_text) == sorted(HOSTILE)
    assert sorted(frame["id"]) == sorted(f"-{i}" for i in range(len(HOSTILE)))
    for table in (frame.to_dict("records"), rows):
        for row in table:
            text = row["text"]
            spans = json.loads(row["spans"])
            assert [{k: sp[k] for k in ("start", "end", "label")} for sp in spans] == _label_caps(
                text
            )
            assert all(text[sp["start"] : sp["end"]] == sp["text"] for sp in spans)
            assert row["annotator"] == "'=cmd"  # guarded: derived, for people
            assert row["tagged_text"][0] not in "=+-@\t"


def test_our_older_guarded_csv_exports_import_back_exactly(db_url, project):
    """Exports before 2026-12 prefixed ' to formula-leading texts; their spans tell."""
    old = (
        "id,text,spans,tagged_text,annotator,status,updated_at,meta\n"
        '1,\'@nasa says the ISS is up,"[{""start"": 15, ""end"": 18, ""label"": ""SHORT"", '
        '""text"": ""ISS""}]",\'@nasa says the [ISS]{SHORT} is up,gold,done,,\n'
        "2,'=is kept as written,[],'=is kept as written,gold,done,,\n"
    )
    assert _import(db_url, "old.csv", old).annotations == 2
    with session_scope(db_url) as s:
        texts = s.scalars(select(Document.text).order_by(Document.id)).all()
    assert texts == ["@nasa says the ISS is up", "'=is kept as written"]


def test_a_foreign_csv_is_read_exactly_quotes_included(db_url, project):
    _import(db_url, "f.csv", "id,text,note\n'-7,'=A1 text,'+x\n")
    with session_scope(db_url) as s:
        doc = s.scalar(select(Document))
    assert (doc.external_id, doc.text, doc.meta) == ("'-7", "'=A1 text", {"note": "'+x"})


def test_csv_export_names_each_rows_source_and_a_csv_without_it_still_imports(db_url, project):
    """Issue 11, item 5: `source` says which annotation a row comes from; it is derived, so an
    import drops it, and our exports from before it existed read as they always did."""
    from core.labeling.review import finalize

    data = '{"text": "The NASA team", "spans": [[4, 8, "SHORT"]]}\n{"text": "The ESA team"}\n'
    _import(db_url, "a.jsonl", data, annotator="gold")
    with session_scope(db_url) as s:
        doc = s.scalar(select(Document).where(Document.text == "The ESA team"))
        finalize(s, get_project(s, "p"), doc.id, "rev", [{"start": 4, "end": 7, "label": "SHORT"}])
    rows = list(csv.DictReader(io.StringIO(_export(db_url, "csv"))))
    assert [r["source"][:26] for r in rows] == ["annotation by gold", "final (reviewed by rev at "]
    assert rows[1]["annotator"] == "rev"

    older = (
        "id,text,spans,tagged_text,annotator,status,updated_at,meta\n"
        "7,Old NASA text,[],x,kim,done,,\n"
    )
    _import(db_url, "older.csv", older)
    with session_scope(db_url) as s:
        assert s.scalar(select(Document.meta).where(Document.text == "Old NASA text")) == {}


@pytest.mark.both_backends
def test_hostile_texts_round_trip_through_every_export_with_the_same_words(db_url, project):
    """Emoji, combining marks, right-to-left, markup, formula-leading cells and a 20,000
    character text: exported as CSV, JSONL and CoNLL and imported back, every span slices
    the same words."""
    from core.text import tokenize

    long_text = " ".join(["filler"] * 2_900) + " the NASA probe ends it"
    texts = [
        *HOSTILE,
        "Le cafe\u0301 de Noe\u0308l (CDN) ouvre",
        "قالت منظمة الصحة العالمية (WHO) إن الوضع مستقر",
        "<script>alert(1)</script> the ESA <b>probe</b>",
        long_text,
    ]
    assert len(long_text) > 20_000

    def marked(text):
        return sorted(
            (w.text, "SHORT") for w in tokenize(text) if w.text.isupper() and len(w.text) > 1
        )

    data = "\n".join(json.dumps({"text": t, "spans": _label_caps(t)}) for t in texts)
    assert _import(db_url, "hostile.jsonl", data, annotator="gold").annotations == len(texts)
    expected = {t: marked(t) for t in texts}
    for fmt in ("csv", "jsonl", "conll"):
        out = _export(db_url, fmt)
        with session_scope(db_url) as s:
            back = create_project(s, f"back-{fmt}", "acronym")
            import_bytes(s, back, f"back.{fmt}", out.encode(), annotator="back")
            docs = s.scalars(select(Document).where(Document.project_id == back.id)).all()
            got = {}
            for d in docs:
                ann = s.scalar(select(Annotation).where(Annotation.document_id == d.id))
                got[d.text] = sorted((d.text[x["start"] : x["end"]], x["label"]) for x in ann.spans)
        if fmt == "conll":  # tokens joined by single spaces: the words are what must match
            assert sorted(got.values()) == sorted(expected.values())
        else:
            assert got == expected


# ---------------------------------------------------------------------------- bad input (issue 12)


def _cli(url, *argv) -> tuple[int, str]:
    """Run `fewlabel` in-process; (exit code, stderr)."""
    import contextlib

    from core.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--db", url, *argv])
    return code, err.getvalue()


@pytest.mark.parametrize(
    "name, data, where",
    [
        ("q.csv", 'text\nkept\n"never closed\nmore\nlines\n', "q.csv:3: a quoted cell"),
        ("q.csv", 'text,spans\nThe NASA team,"', "q.csv:2: a quoted cell"),
        ("o.jsonl", '{"text": "The NASA team", "spans": [[4, Infinity, "SHORT"]]}\n', "o.jsonl:1"),
        ("o.jsonl", '{"text": "The NASA team", "spans": [[34.9, 37.2, "SHORT"]]}\n', "whole num"),
        ("o.jsonl", '{"text": "The NASA team", "spans": [[true, 8, "SHORT"]]}\n', "not true, 8"),
        ("n.jsonl", '{"text": "a", "meta": {"x": ' + "[" * 5000 + "]" * 5000 + "}}\n", "deep"),
        ("n.jsonl", '{"text": "a", "meta": {"x": ' + "[" * 80 + "]" * 80 + "}}\n", "over 64"),
        ("s.jsonl", '{"text": "ok"}\n{"text": "bad \\ud800 half"}\n', "s.jsonl:2: the text holds"),
        ("s.jsonl", '{"text": "nul \\u0000 byte"}\n', "s.jsonl:1: the text holds a NUL"),
        ("s.jsonl", '{"text": "a", "meta": {"k\\u0000": 1}}\n', "the metadata holds a NUL"),
        ("s.jsonl", '{"text": "a", "meta": {"k": NaN}}\n', "the metadata holds nan"),
        ("i.jsonl", '{"text": "a", "id": "' + "x" * 201 + '"}\n', "i.jsonl:1: the id is 201"),
        ("t.json", '[{"tokens": ["a", null], "labels": ["O", "O"]}]', "record 1: token 2 is null"),
        ("t.json", '[{"tokens": ["a"], "labels": ["B-NOPE"]}]', "t.json: record 1: unknown label"),
    ],
)
@pytest.mark.both_backends
def test_bad_values_are_refused_with_one_line_and_write_nothing(db_url, project, name, data, where):
    """Issue 12: offsets that are no integers (Infinity overflowed int(), 34.9 and true were
    coerced), nesting past the parser, a lone surrogate (UnicodeEncodeError at the insert),
    and what PostgreSQL refuses but SQLite took (NUL, NaN, an id wider than its column)."""
    _import(db_url, "good.txt", "kept\n")
    before = _counts(db_url)
    with pytest.raises(ImportFormatError) as err:
        _import(db_url, name, data)
    assert where in str(err.value) and "\n" not in str(err.value)
    assert _counts(db_url) == before


def test_the_command_line_and_skip_invalid_handle_infinite_and_fractional_offsets(
    db_url, project, tmp_path
):
    path = tmp_path / "o.jsonl"
    path.write_text(
        '{"text": "The NASA team", "spans": [[4, 8, "SHORT"]]}\n'
        '{"text": "The ESA team", "spans": [[4, Infinity, "SHORT"]]}\n'
        '{"text": "The IBM team", "spans": [[4.0, 7, "SHORT"]]}\n'
        '{"text": "The CNN team", "spans": [[4, 1e999, "SHORT"]]}\n'
    )
    code, err = _cli(db_url, "import", "p", str(path))
    assert code == 2 and err.count("\n") == 1 and f"{path}:2: span offsets must be" in err
    assert _counts(db_url) == (0, 0)
    code, err = _cli(db_url, "import", "p", str(path), "--skip-invalid")
    assert code == 0 and [ln.split(": ")[0] for ln in err.splitlines()] == [
        f"skipped {path} line 2",
        f"skipped {path} line 3",
        f"skipped {path} line 4",
    ]
    assert _counts(db_url) == (1, 1)


@pytest.mark.parametrize(
    "data",
    [
        '{"text": "x", "spans": [[0, 1, "SHORT"]], "meta": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"text": "a lone \\udc00 surrogate"}',
        '[{"tokens": ["a"], "labels": ["O"], "id": ' + "[" * 100_000 + "]" * 100_000 + "}]",
    ],
)
def test_the_command_line_and_the_upload_say_one_line_never_a_traceback(
    db_url, project, tmp_path, data
):
    path = tmp_path / ("f.json" if data.startswith("[") else "f.jsonl")
    path.write_text(data + "\n")
    code, err = _cli(db_url, "import", "p", str(path))
    assert code == 2 and err.startswith(f"fewlabel: error: {path}") and err.count("\n") == 1
    with pytest.raises(ImportFormatError) as upload:  # what the Projects page shows
        _import(db_url, path.name, data)
    assert "\n" not in str(upload.value) and "Error" not in str(upload.value)
    assert _counts(db_url) == (0, 0)


def test_a_text_over_the_maximum_length_is_refused_with_its_line(db_url, project, tmp_path):
    from core.defaults import MAX_TEXT_CHARS

    path = tmp_path / "long.txt"
    path.write_text("short\n" + "x" * (MAX_TEXT_CHARS + 1) + "\n")
    code, err = _cli(db_url, "import", "p", str(path))
    assert code == 2 and f"{path}:2: the text is 100,001 characters, over the limit" in err
    assert (
        _cli(db_url, "import", "p", str(path), "--max-chars", "4")[1].count(":1: the text is 5")
        == 1
    )
    assert _counts(db_url) == (0, 0)
    assert _cli(db_url, "import", "p", str(path), "--max-chars", "0")[0] == 0  # no limit
    assert _counts(db_url) == (2, 0)


@pytest.mark.both_backends
def test_names_follow_one_rule_set_on_every_backend(db_url, project):
    """NUL and control characters and over-long names are refused by fewlabel, as PostgreSQL
    would refuse them with a DataError, and not stored by SQLite."""
    from core.errors import ValidationError

    with session_scope(db_url) as s:
        for name, why in (("a\x00b", "control"), ("x" * 201, "at most 200"), ("  ", "empty")):
            with pytest.raises(ValidationError, match=why):
                create_project(s, name, "acronym")
    for annotator, why in (("x" * 101, "at most 100"), ("gold\x00", "control")):
        with pytest.raises(ValidationError, match=why):
            _import(db_url, "a.txt", "one text\n", annotator=annotator)
    assert _counts(db_url) == (0, 0)


def test_txt_with_cr_line_endings_gives_a_text_a_line(db_url, project, tmp_path):
    path = tmp_path / "mac.txt"
    path.write_bytes(b"first text\rsecond text\rthird text\r")
    with session_scope(db_url) as s:
        assert import_file(s, get_project(s, "p"), path).imported == 3
    assert _import(db_url, "mac2.txt", "fourth\rfifth\r").imported == 2


# ---------------------------------------------------------------------------- long imports


def _lines(n: int) -> list[str]:
    return [json.dumps({"text": f"text number {i} of a long import"}) + "\n" for i in range(n)]


def _staged_rows(url) -> int:
    from core.store.schema import STAGED

    with session_scope(url) as s:
        return s.scalar(select(func.count(Document.id)).where(Document.state == STAGED))


@pytest.mark.both_backends
def test_a_long_import_failing_late_leaves_the_project_as_it_was(db_url, project):
    """Issue 12: batches are committed (2,000 a transaction), yet a bad line after two of
    them leaves nothing of the file: no documents, no annotations, no staged rows."""
    from core.defaults import IMPORT_BATCH

    _import(db_url, "kept.jsonl", '{"text": "The NASA team", "spans": [[4, 8, "SHORT"]]}\n')
    before = _counts(db_url)
    labeled = json.dumps({"text": "The ESA team", "spans": [[4, 7, "SHORT"]]}) + "\n"
    data = [labeled, *_lines(2 * IMPORT_BATCH + 500), '{"text": broken\n']
    with pytest.raises(ImportFormatError, match=rf"big\.jsonl:{len(data)}: not valid JSON"):
        _import(db_url, "big.jsonl", "".join(data))
    assert _counts(db_url) == before and _staged_rows(db_url) == 0
    report = _import(db_url, "big.jsonl", "".join(data[:-1]))  # the same file, fixed
    assert (report.imported, report.annotations) == (len(data) - 1, 1)
    assert _counts(db_url) == (before[0] + len(data) - 1, before[1] + 1)
    with session_scope(db_url) as s:
        from core.labeling.projects import list_projects

        (summary,) = list_projects(s)
        assert (summary.total, summary.done, summary.open) == (len(data), 2, len(data) - 2)


class _PausingLines(io.TextIOBase):
    """A JSONL stream that stops at line `at` until `resume` is set: an import in progress."""

    def __init__(self, lines, at, reached, resume):
        self.lines, self.at, self.reached, self.resume, self.i = lines, at, reached, resume, 0

    def readable(self):
        return True

    def readline(self, size=-1):
        if self.i == self.at:
            self.reached.set()
            self.resume.wait(30)
        if self.i >= len(self.lines):
            return ""
        self.i += 1
        return self.lines[self.i - 1]


def test_annotators_save_while_a_long_import_runs(db_url, project):
    """Issue 12: SQLite's write lock was held from the import's first batch to its end, so
    a save waiting longer than the busy timeout failed with `database is locked`. A save
    made with a 2 s timeout while the import is past its first batch now goes through."""
    import threading

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from core.defaults import IMPORT_BATCH

    _import(db_url, "one.jsonl", '{"text": "The NASA team"}\n')
    reached, resume, outcome = threading.Event(), threading.Event(), []

    def annotator():
        reached.wait(30)
        engine = create_engine(db_url, connect_args={"timeout": 2})
        try:
            with Session(engine) as s, s.begin():  # what a save writes
                doc = s.scalar(select(Document).where(Document.text == "The NASA team"))
                s.add(Annotation(document_id=doc.id, annotator="ann", status="done", spans=[]))
                doc.state = "done"
            outcome.append("saved")
        except Exception as exc:  # noqa: BLE001 - the test reports it
            outcome.append(repr(exc))
        finally:
            engine.dispose()
            resume.set()

    thread = threading.Thread(target=annotator)
    thread.start()
    lines = _lines(IMPORT_BATCH + 500)
    stream = _PausingLines(lines, IMPORT_BATCH + 100, reached, resume)
    with session_scope(db_url) as s:
        report = import_stream(s, get_project(s, "p"), stream, "long.jsonl", fmt="jsonl")
    thread.join()
    assert outcome == ["saved"]
    assert report.imported == len(lines) and _counts(db_url) == (len(lines) + 1, 1)


_KILLED_IMPORT = """
import os, signal, sys
from core.io import imports, staging
from core.store.db import session_scope
from core.labeling.projects import get_project

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[3] == "publishing":
    real_executemany = staging.executemany
    calls = []
    def executemany(*args, **kwargs):
        real_executemany(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # two batches published, in the one transaction that publishes
            die()
    staging.executemany = executemany
else:
    real_commit = imports.Session.commit
    calls = []
    def commit(self):
        real_commit(self)
        calls.append(1)
        if len(calls) == 3:  # two batches in
            die()
    imports.Session.commit = commit
with session_scope(sys.argv[1]) as s:
    imports.import_file(s, get_project(s, "p"), sys.argv[2])
"""


@pytest.mark.parametrize("moment", ["staging", "publishing"])
@pytest.mark.both_backends
def test_an_import_killed_midway_is_invisible_and_settled_by_the_next(
    db_url, project, tmp_path, moment
):
    """kill -9 leaves staged rows: in no count or export, deleted by the next import into the
    project, also when the import was killed halfway through publishing (one transaction: a
    reader saw none of it then, and the file can be imported again whole)."""
    import subprocess
    import sys

    from core.defaults import IMPORT_BATCH
    from core.labeling.projects import list_projects

    _import(db_url, "kept.txt", "kept\n")
    path = tmp_path / "big.jsonl"
    lines = _lines(3 * IMPORT_BATCH)
    path.write_text("".join(lines))
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, "-c", _KILLED_IMPORT, db_url, str(path), moment],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == -9, run.stderr
    assert _staged_rows(db_url) >= 2 * IMPORT_BATCH
    with session_scope(db_url) as s:
        assert [p.total for p in list_projects(s)] == [1]
    assert _export(db_url, "jsonl", include_unlabeled=True).count("\n") == 1

    report = _import(db_url, "next.txt", "another text\n")
    assert _staged_rows(db_url) == 0 and report.imported == 1
    assert _counts(db_url) == (2, 0)
    # nothing of the file is left to count it as duplicates
    assert _import(db_url, "big.jsonl", "".join(lines)).imported == len(lines)
    with session_scope(db_url) as s:  # published with random ranks
        assert s.scalar(select(func.max(Document.rank))) < 1


def _ranks(url, project) -> dict[str, float]:
    with session_scope(url) as s:
        p = get_project(s, project)
        rows = s.execute(select(Document.text, Document.rank).where(Document.project_id == p.id))
        return dict(rows.all())


@pytest.mark.both_backends
def test_a_staged_import_is_the_same_as_one_of_a_single_batch(db_url, project):
    """A long import stages its batches and draws each text's random rank when it publishes
    it; labels, states and the ranks a seed gives are those of the same file imported in
    one batch (issue 14's faster import changed how, not what)."""
    with session_scope(db_url) as s:
        create_project(s, "q", "acronym")
    data = (
        "".join(
            json.dumps(
                {"text": f"The NASA team {i}", "spans": [[4, 8, "SHORT"]]}
                if i % 4 == 0
                else {"text": f"text {i}", "id": f"x{i}", "meta": {"i": i}}
            )
            + "\n"
            for i in range(23)
        )
        + '{"text": "text 5"}\n'
    )  # a duplicate
    reports = []
    for name, batch in (("p", 5), ("q", 1000)):
        with session_scope(db_url) as s:
            r = import_bytes(
                s, get_project(s, name), "f.jsonl", data.encode(), seed=3, batch_size=batch
            )
            reports.append((r.imported, r.duplicates, r.annotations))
    assert reports[0] == reports[1] == (23, 1, 6)
    assert _ranks(db_url, "p") == _ranks(db_url, "q")
    assert max(_ranks(db_url, "p").values()) < 1
    assert _staged_rows(db_url) == 0
    with session_scope(db_url) as s:
        rows = s.execute(
            select(Document.project_id, Document.text, Document.state, Annotation.spans)
            .outerjoin(Annotation, Annotation.document_id == Document.id)
            .order_by(Document.id)
        ).all()
    by_project = {}
    for pid, text, state, spans in rows:
        by_project.setdefault(pid, []).append((text, state, spans))
    staged, single = by_project.values()
    assert staged == single
    for text, state, spans in staged:  # each label on its own text, across batches
        assert (state == "done") == text.startswith("The NASA")
        if spans is not None:
            assert [text[sp["start"] : sp["end"]] for sp in spans] == ["NASA"]


def test_a_batch_is_one_insert_statement(db_url, project):
    """Issue 14: a batch of documents goes to the database as one executemany (the ORM's
    INSERT ... RETURNING in order had run one statement per row)."""
    from sqlalchemy import event

    from core.store.db import get_engine

    inserts = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO DOCUMENTS"):
            inserts.append(len(parameters) if executemany else 1)

    engine = get_engine(db_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        _import(db_url, "many.txt", "".join(f"line {i}\n" for i in range(25)), batch_size=10)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert inserts == [10, 10, 5]  # three batches, published together


@pytest.mark.both_backends
def test_an_import_leaves_the_planner_statistics_current(db_url, project):
    """Issue 13: on PostgreSQL an import ends with ANALYZE, so the queue's claim plans for the
    rows it just got. Without it a fresh project's planner saw an empty table, and one
    annotator's next+save took 217 ms instead of 9 ms until autovacuum came round."""
    from sqlalchemy import text

    _import(db_url, "many.txt", "".join(f"line {i}\n" for i in range(25)), batch_size=10)
    with session_scope(db_url) as s:
        if s.get_bind().dialect.name != "postgresql":
            assert s.scalar(select(func.count(Document.id))) == 25  # nothing to plan on SQLite
            return
        rows = s.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'documents'"))
        analyzed = s.scalar(
            text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'documents'")
        )
    assert rows == 25 and analyzed is not None
