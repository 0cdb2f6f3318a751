"""The file formats fewlabel reads and writes, in one registry.

Each module of this package declares one `FORMAT` (see base.Format); import, export,
predict, the CLI's choices and the app's uploader and download button all read this
registry. Adding a format is one new module here (plus its test): it is found by name.

    get("conll").read(stream, name, ReadOptions())
    readable()  # names import and predict can read
    writable()  # names export and predict can write
    for_path("x.spacy")  # by suffix
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO

from core.errors import FewlabelError
from core.io.formats.base import Format, ReadOptions, Record, Row, WriteOptions

__all__ = [
    "Format",
    "ReadOptions",
    "Record",
    "Row",
    "WriteOptions",
    "check_output",
    "detect",
    "for_path",
    "get",
    "readable",
    "registry",
    "writable",
    "write_atomically",
]


@cache
def registry() -> dict[str, Format]:
    """Every format module's FORMAT by name, in listing order (rank, then name)."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        fmt = getattr(module, "FORMAT", None)
        if isinstance(fmt, Format):
            found.append(fmt)
    return {f.name: f for f in sorted(found, key=lambda f: (f.rank, f.name))}


def _available(fmt: Format) -> bool:
    return fmt.requires is None or importlib.util.find_spec(fmt.requires) is not None


def get(name: str) -> Format:
    """The format called `name`; an unknown or unavailable one is a one-line FewlabelError."""
    fmt = registry().get(name)
    if fmt is None:
        known = ", ".join(f.name for f in registry().values() if _available(f))
        raise FewlabelError(f"unknown format {name!r}; use one of {known}")
    if not _available(fmt):
        raise FewlabelError(
            f"format {name!r} needs the {fmt.requires} package: pip install {fmt.requires}"
        )
    return fmt


def readable(*, installed: bool = True) -> list[str]:
    """Names of the formats import and predict can read (with `installed=False`, also those
    whose package is missing: a command line lists them, and `get` then says what to install)."""
    return [f.name for f in registry().values() if f.read and (_available(f) or not installed)]


def writable(*, installed: bool = True) -> list[str]:
    """Names of the formats export and predict can write; `installed` as for readable."""
    return [f.name for f in registry().values() if f.write and (_available(f) or not installed)]


def suffixes(names: list[str] | None = None) -> list[str]:
    """The file suffixes of the named formats (default: all readable), without dots."""
    names = readable() if names is None else names
    return list(dict.fromkeys(s.lstrip(".") for n in names for s in registry()[n].suffixes))


def for_path(path: str | Path) -> Format | None:
    """The format a file's suffix names (the first listed where several share it), or None."""
    suffix = Path(path).suffix.lower()
    return next((f for f in registry().values() if suffix in f.suffixes), None)


def detect(name: str, head: str) -> Format:
    """Guess a readable file's format from its name, then from its first 8 KiB.

    A suffix picks the formats that claim it and the content picks among them (a .json file
    is SciAD or Label Studio); a suffix nobody claims, or plain text's own (CoNLL is often
    saved as .txt), leaves the choice to the content, and plain text when nothing matches.
    """
    suffix = Path(name).suffix.lower()
    formats = [f for f in registry().values() if f.read]
    claimed = [f for f in formats if suffix in f.suffixes and not f.fallback]

    def score(f: Format) -> int:
        return f.sniff(head) if f.sniff else 0

    best = max(claimed or formats, key=score)  # the first best in listing order
    if claimed or score(best) > 0:
        return best
    return next(f for f in formats if f.fallback)


def _target(path: str | os.PathLike) -> Path:
    """Where writing `path` puts the bytes: through a symlink to the file it names (the link
    stays a link); a device, FIFO, socket or folder there is refused, never replaced."""
    given = Path(path)
    dst = Path(os.path.realpath(given)) if given.is_symlink() else given
    try:
        mode = dst.stat().st_mode
    except FileNotFoundError:
        return dst
    except OSError as exc:
        raise FewlabelError(f"{given}: cannot write there ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(mode)
            else "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        via = f" (the link leads to {dst})" if dst != given else ""
        raise FewlabelError(
            f"{given} is {kind}{via}; write to a regular file, or to '-' for stdout"
        )
    return dst


def check_output(path: str | os.PathLike) -> Path:
    """Where writing `path` puts the bytes (see _target), once its folder is known to exist:
    a folder that does not is refused with one line, never created (`-o /no/such/dir/x.csv`
    is a typo more often than a wish). Commands that work long before they write (predict)
    call it first."""
    dst = _target(path)
    folder = dst.parent
    if not folder.is_dir():
        raise FewlabelError(
            f"{folder} is not a directory" if folder.exists() else f"no such directory: {folder}"
        )
    return dst


@contextmanager
def write_atomically(path: str | os.PathLike, *, binary: bool = False) -> Iterator[IO]:
    """A file to write that appears at `path` whole, or not at all (written beside, renamed).

    A symlink is written through: the file it points to is replaced and the link stays. A
    device, FIFO or folder at `path` is refused with one line (renaming a regular file over
    /dev/null or a pipe would replace it), and so is a folder that does not exist
    (check_output). A new file gets the permissions the umask allows; an existing one keeps
    its own."""
    dst = check_output(path)
    tmp = dst.parent.resolve() / f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp"
    # Created as open() creates a file (0o666 less the umask), not mkstemp's 0o600.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if dst.exists():
            os.chmod(tmp, stat.S_IMODE(dst.stat().st_mode))
        if binary:
            with os.fdopen(fd, "wb") as out:
                yield out
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                yield out
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
