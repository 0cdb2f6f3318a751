"""The format registry, and each format's round trip: written rows read back as the same texts
and spans, and a realistic sample of what the tool the format comes from writes.

Offsets are Python code points; every sample has a character outside the BMP (an emoji) ahead
of a span, where UTF-16 and code-point offsets part.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

from core.errors import FewlabelError, ImportFormatError
from core.io import formats
from core.io.corpus import export, export_bytes
from core.io.formats import ReadOptions, Row, WriteOptions
from core.io.formats.labelstudio import utf16_to_code_points
from core.io.imports import import_bytes, import_file
from core.labeling.projects import create_project, get_project
from core.store.db import session_scope

EMOJI_TEXT = "Great talk 🎉 on natural language processing (NLP) today."
SVM_TEXT = "Support vector machines (SVM) work."


def _span(text: str, words: str, label: str) -> dict:
    start = text.index(words)
    return {"start": start, "end": start + len(words), "label": label}


ROWS = [
    Row(
        id="d1",
        text=EMOJI_TEXT,
        spans=[
            _span(EMOJI_TEXT, "natural language processing", "LONG"),
            _span(EMOJI_TEXT, "NLP", "SHORT"),
        ],
        status="done",
        annotator="alice",
    ),
    Row(id="d2", text=SVM_TEXT, spans=[_span(SVM_TEXT, "SVM", "SHORT")], status="done"),
    Row(id="d3", text="Nothing to see here.", spans=[], status="done"),
]


def _write(name: str, rows: list[Row]) -> bytes:
    fmt = formats.get(name)
    buf = io.BytesIO() if fmt.binary else io.StringIO(newline="")
    fmt.write(rows, buf, WriteOptions())
    data = buf.getvalue()
    return data if fmt.binary else data.encode("utf-8")


def _read(name: str, data: bytes) -> list[formats.Record]:
    fmt = formats.get(name)
    stream = io.BytesIO(data) if fmt.binary else io.StringIO(data.decode("utf-8"), newline="")
    return list(fmt.read(stream, f"x{fmt.suffixes[0]}", ReadOptions()))


def _texts_and_spans(records) -> list[tuple[str, list[tuple[int, int, str]]]]:
    return [
        (r.text, sorted((s["start"], s["end"], s["label"]) for s in r.spans or [])) for r in records
    ]


# ---------------------------------------------------------------------------- the registry


def test_every_writable_format_reads_back_what_it_wrote():
    expected = _texts_and_spans(ROWS)
    for name in formats.writable():
        if name == "txt":  # tagged text is for reading by people; it reads back as texts
            continue
        got = _texts_and_spans(_read(name, _write(name, ROWS)))
        if name in ("conll", "sciad"):  # token formats: the text is the tokens joined
            assert [len(s) for _, s in got] == [len(s) for _, s in expected], name
        else:
            assert got == expected, name


def test_the_registry_names_suffixes_and_mime_types():
    assert formats.readable()[:5] == ["csv", "txt", "jsonl", "conll", "sciad"]
    assert {"labelstudio", "prodigy"} <= set(formats.readable())
    assert {"csv", "jsonl", "conll", "labelstudio", "prodigy"} <= set(formats.writable())
    assert formats.for_path("a/b.CSV").name == "csv"
    assert formats.for_path("x.json").name == "sciad"  # the first of the formats that claim it
    assert formats.for_path("x.unknown") is None
    assert formats.get("jsonl").mime == "application/x-ndjson"
    assert all(formats.get(n).description for n in formats.readable())


def test_an_unknown_format_is_one_line_naming_the_known_ones():
    with pytest.raises(FewlabelError) as err:
        formats.get("xml")
    message = str(err.value)
    assert "\n" not in message and "'xml'" in message and "csv, txt, jsonl" in message


def test_content_tells_formats_that_share_a_suffix_apart():
    ls_head = json.dumps([{"id": 1, "annotations": [], "data": {"text": "a"}}])
    assert formats.detect("export.json", ls_head).name == "labelstudio"
    assert formats.detect("train.json", '[{"id": "a", "tokens": ["data"]}]').name == "sciad"
    prodigy_head = json.dumps({"text": "a", "_input_hash": 1, "answer": "accept"})
    assert formats.detect("db.jsonl", prodigy_head).name == "prodigy"
    assert formats.detect("mine.jsonl", json.dumps({"text": "a", "tokens": ["a"]})).name == "jsonl"
    assert formats.detect("out.data", prodigy_head).name == "prodigy"


def test_a_format_whose_package_is_missing_is_one_clear_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "spacy" else real(n, *a)
    )
    assert "spacy" not in formats.readable() and "spacy" not in formats.writable()
    with pytest.raises(FewlabelError, match=r"^format 'spacy' needs the spacy package"):
        formats.get("spacy")


def test_predicted_rows_are_written_without_review_fields():
    pred = [
        Row(id=None, text=SVM_TEXT, spans=[_span(SVM_TEXT, "SVM", "SHORT") | {"confidence": 0.9}])
    ]
    header = _write("csv", pred).decode().splitlines()[0]
    assert header == "id,text,spans,tagged_text"
    line = json.loads(_write("jsonl", pred))
    assert "status" not in line and line["spans"][0]["confidence"] == 0.9
    (task,) = json.loads(_write("labelstudio", pred))
    assert task["annotations"] == [] and task["predictions"][0]["result"][0]["score"] == 0.9


# ---------------------------------------------------------------------------- Label Studio

# What Label Studio 1.x's "Export > JSON" writes for a named-entity project (trimmed of a few
# bookkeeping fields): its offsets count code points, as Python's do.
LABEL_STUDIO_EXPORT = [
    {
        "id": 41,
        "annotations": [
            {
                "id": 17,
                "completed_by": 1,
                "result": [
                    {
                        "value": {
                            "start": 16,
                            "end": 43,
                            "text": "natural language processing",
                            "labels": ["LONG"],
                        },
                        "id": "Xb3kL9_pQa",
                        "from_name": "label",
                        "to_name": "text",
                        "type": "labels",
                        "origin": "manual",
                    },
                    {
                        "value": {"start": 45, "end": 48, "text": "NLP", "labels": ["SHORT"]},
                        "id": "7nYq2w0sRt",
                        "from_name": "label",
                        "to_name": "text",
                        "type": "labels",
                        "origin": "manual",
                    },
                    {
                        "value": {"choices": ["Relevant"]},
                        "id": "c1",
                        "from_name": "relevance",
                        "to_name": "text",
                        "type": "choices",
                    },
                ],
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": "2024-05-02T09:14:07.512231Z",
                "updated_at": "2024-05-02T09:14:07.512252Z",
                "lead_time": 11.48,
                "prediction": {},
                "result_count": 0,
                "task": 41,
                "project": 3,
                "parent_prediction": None,
                "parent_annotation": None,
            }
        ],
        "file_upload": "5e1f0c2a-tweets.json",
        "drafts": [],
        "predictions": [],
        "data": {"text": EMOJI_TEXT, "source": "tweets"},
        "meta": {},
        "created_at": "2024-05-02T09:10:55.101230Z",
        "updated_at": "2024-05-02T09:14:07.553711Z",
        "inner_id": 1,
        "total_annotations": 1,
        "cancelled_annotations": 0,
        "total_predictions": 0,
        "project": 3,
        "updated_by": 1,
    },
    {
        "id": 42,
        "annotations": [{"id": 18, "result": [], "was_cancelled": True}],
        "predictions": [],
        "data": {"text": "A text the annotator skipped."},
    },
]


def test_label_studio_export_reads_with_code_point_offsets():
    data = json.dumps(LABEL_STUDIO_EXPORT, indent=2).encode()
    first, skipped = _read("labelstudio", data)
    assert [first.text[s["start"] : s["end"]] for s in first.spans] == [
        "natural language processing",
        "NLP",
    ]
    assert first.external_id == "41" and first.meta == {"source": "tweets"}
    assert skipped.spans is None  # a cancelled annotation labels nothing


def test_label_studio_offsets_from_before_2021_count_utf16_units():
    # HumanSignal/label-studio#1347: "💩This is an annotation." exported start 13, end 23
    text = "💩This is an annotation."
    assert utf16_to_code_points(text, 13) == 12 and utf16_to_code_points(text, 3) == 2
    task = {
        "data": {"text": text},
        "annotations": [
            {
                "result": [
                    {
                        "type": "labels",
                        "from_name": "label",
                        "to_name": "text",
                        "value": {"start": 13, "end": 23, "text": "annotation", "labels": ["X"]},
                    }
                ]
            }
        ],
    }
    (rec,) = _read("labelstudio", json.dumps([task]).encode())
    assert text[rec.spans[0]["start"] : rec.spans[0]["end"]] == "annotation"
    task["annotations"][0]["result"][0]["value"]["text"] = "something else"
    with pytest.raises(ImportFormatError, match=r"task 1: span 13-23 is .* not 'something else'"):
        _read("labelstudio", json.dumps([task]).encode())


# ---------------------------------------------------------------------------- Prodigy


def _tokens(text: str, pieces: list[str]) -> list[dict]:
    out, pos = [], 0
    for k, piece in enumerate(pieces):
        start = text.index(piece, pos)
        pos = start + len(piece)
        out.append(
            {"text": piece, "start": start, "end": pos, "id": k, "ws": text[pos : pos + 1] == " "}
        )
    return out


# `prodigy db-out` of a ner.manual dataset: accepted, rejected and ignored examples.
PRODIGY_DB_OUT = [
    {
        "text": SVM_TEXT,
        "_input_hash": -1190823471,
        "_task_hash": 1731049382,
        "tokens": _tokens(
            SVM_TEXT, ["Support", "vector", "machines", "(", "SVM", ")", "work", "."]
        ),
        "_view_id": "ner_manual",
        "spans": [
            {"start": 0, "end": 23, "token_start": 0, "token_end": 2, "label": "LONG"},
            {"start": 25, "end": 28, "token_start": 4, "token_end": 4, "label": "SHORT"},
        ],
        "answer": "accept",
        "_timestamp": 1714641247,
        "_annotator_id": "acro-alice",
        "_session_id": "acro-alice",
    },
    {
        "text": EMOJI_TEXT,
        "_input_hash": 523469184,
        "_task_hash": -88134512,
        "tokens": _tokens(
            EMOJI_TEXT, EMOJI_TEXT.replace("(", "( ").replace(")", " )").replace(".", " .").split()
        ),
        "spans": [{"start": 45, "end": 48, "token_start": 9, "token_end": 9, "label": "SHORT"}],
        "answer": "reject",
        "_timestamp": 1714641300,
    },
    {"text": "An ignored one.", "_input_hash": 1, "_task_hash": 2, "spans": [], "answer": "ignore"},
]


def test_prodigy_db_out_reads_only_accepted_answers_as_labels():
    data = "".join(json.dumps(obj) + "\n" for obj in PRODIGY_DB_OUT).encode()
    assert formats.detect("annotations.jsonl", data.decode()[:8192]).name == "prodigy"
    accepted, rejected, ignored = _read("prodigy", data)
    assert [accepted.text[s["start"] : s["end"]] for s in accepted.spans] == [
        "Support vector machines",
        "SVM",
    ]
    assert rejected.spans is None and ignored.spans is None


def test_prodigy_written_spans_carry_inclusive_token_indices():
    (task, *_) = [json.loads(line) for line in _write("prodigy", ROWS).decode().splitlines()]
    tokens = task["tokens"]
    for span in task["spans"]:
        assert tokens[span["token_start"]]["start"] == span["start"]
        assert tokens[span["token_end"]]["end"] == span["end"]  # token_end is inclusive
    assert task["answer"] == "accept" and task["meta"]["id"] == "d1"


# ---------------------------------------------------------------------------- spaCy DocBin


def test_spacy_docbin_from_spacy_reads_its_entities(tmp_path):
    spacy = pytest.importorskip("spacy")
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")  # a tokenizer only; nothing is downloaded
    docs = []
    for text, spans in [(EMOJI_TEXT, ROWS[0].spans), (SVM_TEXT, ROWS[1].spans)]:
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(s["start"], s["end"], label=s["label"]) for s in spans]
        docs.append(doc)
    path = tmp_path / "train.spacy"
    DocBin(docs=docs).to_disk(path)
    got = _read("spacy", path.read_bytes())
    assert _texts_and_spans(got) == _texts_and_spans(ROWS[:2])


# ---------------------------------------------------------------------------- through a project


@pytest.fixture
def project(db_url):
    with session_scope(db_url) as s:
        create_project(s, "p", "acronym")
    return "p"


def test_label_studio_and_prodigy_import_into_a_project(db_url, project):
    with session_scope(db_url) as s:
        p = get_project(s, project)
        ls = import_bytes(s, p, "export.json", json.dumps(LABEL_STUDIO_EXPORT).encode())
        prodigy = "".join(json.dumps(obj) + "\n" for obj in PRODIGY_DB_OUT).encode()
        pr = import_bytes(s, p, "db.jsonl", prodigy)
    assert (ls.format, ls.imported, ls.annotations) == ("labelstudio", 2, 1)
    # the rejected example's text is already there: its span comes in as a reject decision
    assert (pr.format, pr.imported, pr.duplicates, pr.annotations) == ("prodigy", 2, 0, 1)
    assert pr.decisions == 1
    with session_scope(db_url) as s:
        out = json.loads(export_bytes(s, get_project(s, project), "labelstudio"))
    labeled = {t["data"]["text"]: t["annotations"][0]["result"] for t in out}
    assert [r["value"]["text"] for r in labeled[EMOJI_TEXT]] == [
        "natural language processing",
        "NLP",
    ]


def test_spacy_export_and_import_through_a_project(db_url, project, tmp_path):
    pytest.importorskip("spacy")
    with session_scope(db_url) as s:
        p = get_project(s, project)
        import_bytes(s, p, "x.jsonl", _write("jsonl", ROWS))
    path = tmp_path / "p.spacy"
    with session_scope(db_url) as s, path.open("w", encoding="utf-8") as fh:
        assert export(s, get_project(s, project), fh, "spacy") == 3  # a text file's buffer
    with session_scope(db_url) as s:
        assert path.read_bytes() == export_bytes(s, get_project(s, project), "spacy")
        create_project(s, "q", "acronym")
    with session_scope(db_url) as s:
        report = import_file(s, get_project(s, "q"), path, annotator="gold")
    assert (report.format, report.imported, report.annotations) == ("spacy", 3, 3)
    with session_scope(db_url) as s:
        back = [json.loads(x) for x in export_bytes(s, get_project(s, "q"), "jsonl").splitlines()]
    assert [(r["id"], r["text"], r["spans"]) for r in back] == [
        (r.id, r.text, [s | {"text": r.text[s["start"] : s["end"]]} for s in r.spans]) for r in ROWS
    ]


def test_the_formats_doc_lists_every_format_of_the_registry():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "formats.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Import formats") :].split("\n\n| format |")[1].split("\n\n")[0]
    for name, fmt in formats.registry().items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert all(suffix in row for suffix in fmt.suffixes), name


def test_the_command_line_reads_and_writes_registry_formats(tmp_path, capsys, monkeypatch):
    from core.cli import main

    db = str(tmp_path / "cli.db")
    main(["--db", db, "project", "create", "p", "--task", "acronym"])
    src = tmp_path / "export.json"
    src.write_text(json.dumps(LABEL_STUDIO_EXPORT))
    assert main(["--db", db, "import", "p", str(src)]) == 0
    assert "(labelstudio)" in capsys.readouterr().out
    out = tmp_path / "p.jsonl"
    assert main(["--db", db, "export", "p", "-o", str(out), "--format", "prodigy"]) == 0
    assert [json.loads(x)["answer"] for x in out.read_text().splitlines()] == ["accept"]

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "spacy" else real(n, *a)
    )
    capsys.readouterr()
    code = main(["--db", db, "export", "p", "-o", str(tmp_path / "p.spacy"), "--format", "spacy"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err and "pip install spacy" in err
    assert not (tmp_path / "p.spacy").exists()


# ---------------------------------------------------------------------------- bad input (issue 12)


def _read_text(name: str, data: str, **options) -> list:
    fmt = formats.get(name)
    return list(
        fmt.read(io.StringIO(data, newline=""), f"x{fmt.suffixes[0]}", ReadOptions(**options))
    )


@pytest.mark.parametrize(
    "data, line",
    [
        ('text\nok\n"abc\nmore\nlines\n', 3),  # a quote never closed: not one text of the rest
        ('text,spans\nhello,"', 2),  # cut right after the opening quote of the spans cell
        ('text,spans\nok,[]\nhello,"[{""start"": 0', 3),
    ],
)
def test_a_csv_cell_whose_quote_never_closes_is_refused_at_its_line(data, line):
    with pytest.raises(ImportFormatError, match=rf"^x\.csv:{line}: a quoted cell .* never closed"):
        _read_text("csv", data)


def test_txt_auto_mode_reads_a_long_line_in_linear_time():
    """A 4 MB line: `auto` used to scan its first 64 KiB with a backtracking regex and re-split
    the growing rest chunk by chunk (a 50 MB line took 18 s, `lines` 0.2 s)."""
    import time

    line = "word " * 800_000
    t0 = time.perf_counter()
    records = _read_text("txt", line + "\nsecond\n")
    assert time.perf_counter() - t0 < 1.5
    assert [len(r.text) for r in records] == [len(line.strip()), 6]


@pytest.mark.parametrize("mode", ["auto", "lines", "paragraphs"])
def test_txt_lines_end_at_cr_crlf_and_lf_alike(mode):
    want = ["one", "two", "three"]
    if mode == "paragraphs":
        data = ["one\r\rtwo\r\rthree\r", "one\r\n\r\ntwo\r\n\r\nthree", "one\n\ntwo\n\nthree\n"]
    else:
        data = ["one\rtwo\rthree\r", "one\r\ntwo\r\nthree", "one\ntwo\nthree\n"]
    for text in data:
        assert [r.text for r in _read_text("txt", text, txt_mode=mode)] == want
        # a stream that splits at LF only (io.StringIO's default) reads the same
        fmt = formats.get("txt")
        got = fmt.read(io.StringIO(text), "x.txt", ReadOptions(txt_mode=mode))
        assert [r.text for r in got] == want
    assert [(r.line, r.text) for r in _read_text("txt", "a\rb\r\rc\r")] == [(1, "a b"), (4, "c")]


def test_a_sciad_null_token_is_refused_not_the_word_none():
    data = json.dumps([{"id": "1", "tokens": ["The", None, "works"], "labels": ["O", "O", "O"]}])
    with pytest.raises(ImportFormatError, match=r"record 1: token 2 is null, not a string"):
        _read_text("sciad", data)
    with pytest.raises(ImportFormatError, match=r"token 1 is 3\.5, not a string"):
        _read_text("sciad", json.dumps([{"tokens": [3.5]}]))


def test_json_too_deep_or_with_huge_integers_is_one_line():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(ImportFormatError, match=r"^x\.jsonl:2: not readable JSON: nested too deep"):
        _read_text("jsonl", '{"text": "a"}\n{"text": "b", "meta": ' + deep + "}\n")
    with pytest.raises(ImportFormatError, match=r"^x\.json: not readable JSON: nested too deep"):
        _read_text("sciad", deep)
    with pytest.raises(ImportFormatError, match=r"^x\.csv:2: spans are not readable JSON: nes"):
        _read_text("csv", "text,spans\na," + '"' + deep + '"\n')
    with pytest.raises(ImportFormatError, match=r"^x\.jsonl:1: not readable JSON \(Exceeds"):
        _read_text("jsonl", '{"text": "a", "id": ' + "7" * 5000 + "}\n")
    assert formats.detect("x.jsonl", deep[:8192]).name == "jsonl"  # sniffing does not crash


def test_label_studio_offsets_must_be_integers():
    for start in ("34.9", "true", "Infinity", '"3"'):
        task = '[{"data": {"text": "The NASA team"}, "annotations": [{"result": [{"type": '
        task += f'"labels", "value": {{"start": {start}, "end": 8, "labels": ["SHORT"]}}}}]}}]}}]'
        with pytest.raises(ImportFormatError, match="needs integer start and end"):
            _read_text("labelstudio", task)


def test_writing_refuses_a_fifo_or_a_device_and_writes_through_a_symlink(tmp_path):
    import os
    import stat

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, kind in ((fifo, "a FIFO"), (Path("/dev/null"), "a device"), (tmp_path, "a folder")):
        with pytest.raises(FewlabelError, match=f"is {kind}"), formats.write_atomically(target):
            pass
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    real = tmp_path / "real.csv"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with formats.write_atomically(link) as out:
        out.write("new")
    assert link.is_symlink() and link.read_text() == "new" and real.read_text() == "new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the file keeps its permissions
    with pytest.raises(FewlabelError, match="the link leads to"):
        (tmp_path / "to-null").symlink_to("/dev/null")
        with formats.write_atomically(tmp_path / "to-null"):
            pass
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
