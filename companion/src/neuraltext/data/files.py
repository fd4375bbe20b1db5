"""Loading a user's own text files.

The study data behind the course are private, so every chapter runs on synthetic stand-ins; these
loaders let a reader who *has* files in the same format use them instead. Bad bytes are reported
with the file name and line number, because "UnicodeDecodeError at position 18342" does not tell a
student which sentence to fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["TextFileError", "read_text", "read_lines", "iter_corpus_files"]


class TextFileError(ValueError):
    """A text file could not be read; the message names the file and the line."""


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """Read a whole text file, reporting undecodable bytes by file and line number."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"No such text file: {p}")
    if p.is_dir():
        raise TextFileError(f"{p} is a directory, not a text file")
    raw = p.read_bytes()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        bad = raw[err.start : err.end].hex(" ")
        raise TextFileError(
            f"{p}, line {line}, column {column}: bytes {bad} are not valid {encoding}. "
            f"Re-save the file as {encoding} (or pass encoding='latin-1' if it is a Latin-1 file)."
        ) from None
    except LookupError:
        raise TextFileError(f"Unknown encoding {encoding!r} for {p}") from None


def read_lines(path: str | os.PathLike, encoding: str = "utf-8", skip_blank: bool = True) -> list[str]:
    """The lines of a text file, stripped, optionally without the blank ones."""
    lines = [line.strip() for line in read_text(path, encoding).splitlines()]
    return [line for line in lines if line] if skip_blank else lines


def iter_corpus_files(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    pattern: str = "*.txt",
    encoding: str = "utf-8",
) -> Iterator[str]:
    """Yield the non-blank lines of one file, of every file matching ``pattern`` in a folder, or of a
    list of files/folders, in sorted order (so a corpus is read the same way every time)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for entry in paths:
        p = Path(entry)
        if p.is_dir():
            found = sorted(p.rglob(pattern))
            if not found:
                raise FileNotFoundError(f"No files matching {pattern!r} in folder {p}")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"No such file or folder: {p}")
    for f in files:
        yield from read_lines(f, encoding=encoding)
