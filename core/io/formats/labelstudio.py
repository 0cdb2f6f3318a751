"""Label Studio JSON export: a list of tasks, spans as `labels` results of their annotations.

Offsets: Label Studio's Text tag counts code points, like Python (its own end-to-end tests,
"NER - Emoji - Text" in web/libs/editor, expect `start: 21` after an emoji in both of its
offset modes; the fix landed as label-studio-frontend#308 in 2021). Exports from before that
counted UTF-16 units, JavaScript's string length (HumanSignal/label-studio#1347: a span after
an emoji is off by one). Each result carries the `text` it covers, so a span whose code-point
offsets do not slice that text is read as UTF-16 offsets when those do, and is an error when
neither does. We write code points, with the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

from core.errors import ImportFormatError
from core.io.formats.base import (
    Format,
    ReadOptions,
    Record,
    Row,
    WriteOptions,
    is_offset,
    json_list,
    str_id,
)

FROM_NAME, TO_NAME = "label", "text"  # Label Studio's named-entity template's control names


def utf16_to_code_points(text: str, offset: int) -> int:
    """The code-point offset of a UTF-16 offset into `text`."""
    units = 0
    for i, ch in enumerate(text):
        if units >= offset:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def _offsets(text: str, value: dict, where: str, name: str) -> tuple[int, int]:
    start, end = value.get("start"), value.get("end")
    if not (is_offset(start) and is_offset(end)):
        raise ImportFormatError(name, None, f"{where}: a span needs integer start and end")
    covered = value.get("text")
    if not isinstance(covered, str) or text[start:end] == covered:
        return start, end
    start16, end16 = utf16_to_code_points(text, start), utf16_to_code_points(text, end)
    if text[start16:end16] == covered:
        return start16, end16
    raise ImportFormatError(
        name, None, f"{where}: span {start}-{end} is {text[start:end]!r}, not {covered!r}"
    )


def _text_key(data: Any, where: str, name: str) -> str:
    """Where the text is: `text`, or the one string field (a config's `$sentence`)."""
    if isinstance(data, dict):
        if isinstance(data.get("text"), str):
            return "text"
        keys = [k for k, v in data.items() if isinstance(v, str) and k != "id"]
        if len(keys) == 1:
            return keys[0]
    raise ImportFormatError(name, None, f'{where}: needs "data" with a "text" string')


def _spans(results: Any, text: str, where: str, name: str) -> list[dict]:
    spans = []
    for item in results if isinstance(results, list) else []:
        if not isinstance(item, dict) or item.get("type") != "labels":
            continue  # choices, ratings, relations: not spans
        value = item.get("value")
        if not isinstance(value, dict) or not isinstance(value.get("labels", []), list):
            raise ImportFormatError(name, None, f'{where}: a result needs a "value" with labels')
        start, end = _offsets(text, value, where, name)
        spans += [{"start": start, "end": end, "label": lbl} for lbl in value.get("labels", [])]
    return spans


def read(stream: IO[str], name: str, options: ReadOptions) -> Iterator[Record]:
    """The first annotation that was not cancelled is the labels; predictions are not read."""
    for n, task in enumerate(json_list(stream, name, "Label Studio tasks"), 1):
        where = f"task {n}"
        if not isinstance(task, dict):
            raise ImportFormatError(name, None, f"{where}: not an object")
        data = task.get("data")
        key = _text_key(data, where, name)
        text = data[key]
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            raise ImportFormatError(name, None, f'{where}: "annotations" must be a list')
        done = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
        spans = _spans(done[0].get("result"), text, where, name) if done else None
        meta = {k: v for k, v in data.items() if k not in (key, "id")}
        ext = data.get("id", task.get("id"))
        yield Record(line=n, text=text, spans=spans, external_id=str_id(ext), meta=meta)


def _results(r: Row) -> list[dict]:
    out = []
    for i, s in enumerate(r.spans):
        value = {"start": s["start"], "end": s["end"], "text": r.text[s["start"] : s["end"]]}
        item = {
            "id": f"s{i}",
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "labels",
            "value": value | {"labels": [s["label"]]},
        }
        if "confidence" in s:
            item["score"] = s["confidence"]
        out.append(item)
    return out


def write(rows: Iterable[Row], out: IO[str], options: WriteOptions) -> int:
    """Tasks for Label Studio's import: labels as annotations, a model's as predictions."""
    tasks = []
    for r in rows:
        data = r.meta | ({"id": r.id} if r.id is not None else {}) | {"text": r.text}
        task: dict = {"data": data, "annotations": []}
        if r.status is None:
            task["predictions"] = [{"model_version": "fewlabel", "result": _results(r)}]
        elif r.status != "open":
            # No completed_by: Label Studio wants its own user ids there.
            task["annotations"].append(
                {"result": _results(r), "was_cancelled": r.status == "skipped"}
            )
        tasks.append(task)
    json.dump(tasks, out, ensure_ascii=False, indent=1)
    out.write("\n")
    return len(tasks)


_TASK_KEY = re.compile(r'"(data"\s*:\s*\{|annotations"\s*:\s*\[)')


def sniff(head: str) -> int:
    """A JSON list whose first task has a `data` object or an `annotations` list."""
    return 2 if head.lstrip().startswith("[") and _TASK_KEY.search(head) else 0


FORMAT = Format(
    name="labelstudio",
    suffixes=(".json",),
    mime="application/json",
    description="Label Studio's JSON export: tasks with data.text and `labels` annotations",
    read=read,
    write=write,
    sniff=sniff,
    rank=60,
    unit="task",
)
