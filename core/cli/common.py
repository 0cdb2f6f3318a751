"""What the subcommands share: the `--db` parent parser, option help, tables and progress."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence

from core.io import formats
from core.tasks import with_labeler

# The formats the CLI reads and writes: the registry's (core.io.formats), uninstalled ones too,
# so that choosing one says what to install.
READ_FORMATS = ["auto", *formats.readable(installed=False)]
WRITE_FORMATS = formats.writable(installed=False)
# Tasks with built-in labels and a weak labeler (core.tasks): what pretraining from a corpus,
# `weak eval FILE` and the benchmarks' built-in tasks know.
WEAK_TASKS = with_labeler()

EVIDENCE = (
    "give the model the weak labeler's tag of every word as input, or not; default: yes for "
    "acronyms (the rule's tags), no for concepts (TF-IDF keyphrases: a point either way)"
)

Handler = Callable[[argparse.Namespace, str], int]


def db_parent() -> argparse.ArgumentParser:
    """A parent parser holding `--db`, so it can be given before or after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="SQLAlchemy URL or SQLite file (default: $FEWLABEL_DB or ./fewlabel.db)",
    )
    return parent


def names(value: str) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [x.strip() for x in value.split(",") if x.strip()]


def positive(value: str) -> int:
    """A whole number over 0 (an argparse type: `--n -5` is refused, not taken as a count)."""
    if not value.strip().isdecimal() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number over 0, not {value!r}")
    return int(value)


def ints(value: str) -> list[int]:
    from core.errors import FewlabelError

    try:
        return [int(x) for x in names(value)]
    except ValueError:
        raise FewlabelError(f"expected comma-separated integers, got {value!r}") from None


def table(rows: Iterable[dict], *, left: Sequence[str] = (), **options) -> str:
    """Rows as a text table (pandas), without the index; `left` columns are left-aligned."""
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    formatters = {}
    for col in left:
        # pandas right-aligns; pad values and header to one width to align them left
        width = max(len(col), int(frame[col].astype(str).str.len().max()))
        formatters[col.ljust(width)] = lambda v, w=width: str(v).ljust(w)
        frame = frame.rename(columns={col: col.ljust(width)})
    text = frame.to_string(index=False, formatters=formatters, **options)
    return "\n".join(line.rstrip() for line in text.splitlines())


class ProgressBar:
    """A tqdm bar on stderr fed by core's `progress(fraction, message)` callbacks."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=100.0,
            file=sys.stderr,
            bar_format="{percentage:5.1f}%|{bar:20}| {elapsed} {desc}",
        )

    def __call__(self, fraction: float, message: str) -> None:
        self._bar.n = round(100 * fraction, 1)
        self._bar.set_description_str(message[:80], refresh=False)
        self._bar.refresh()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()
