"""Use case 2, the results file: append-only JSONL, one record per line, read without being touched.

A results file is a *log*: a report may have several lines (a retryable failure, then its success on a
later run; a final failure, then a ``--retry-failed`` success). What counts for a report is its
**effective record**, the one of highest rank, the latest of that rank:

    extracted / extracted_with_flags  >  failed (final)  >  failed (retryable)

* **written whole or not at all**: :func:`encode_record` checks a record *before* it is written (an
  id, a state in :data:`~neuraltext.clinical.extract.STATES`, JSON-encodable values: numpy scalars
  become Python numbers, NaN and other objects are refused) so that one bad record can never make
  the file unreadable for every later restart and merge;
* **one writer per file**: :func:`appending` takes the file's lock (``<file>.lock``, the ``filelock``
  package; the engine of :mod:`neuraltext.clinical.engine` uses the same) before repairing and
  appending: a second process fails at once with :class:`ResultsFileBusy` (or waits ``timeout`` s);
* **readers never write**: :func:`read_results` and :func:`done_ids` open the file read-only (a
  read-only file can be read) and skip a last line cut by a kill; only the writer truncates it;
* **two records of one report** (two writers before the lock, copied shard files) are an error, or
  with ``duplicates="warn"`` (what :func:`~neuraltext.clinical.pipeline.merge_shards` uses) a
  warning, keeping the effective record;
* :func:`atomic_write` writes a file (the patient table) through a unique temporary file in the same
  folder, then ``os.replace``: a reader sees the old file or the new one, never half of one, and two
  writers never share a temporary file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from neuraltext.clinical.extract import STATES

__all__ = ["ResultsFileError", "ResultsFileBusy", "RecordError", "is_retryable_failure", "encode_record",
           "effective_records", "done_ids", "read_results", "appending", "atomic_write"]

log = logging.getLogger("neuraltext.clinical")


class ResultsFileError(ValueError):
    """A results file that cannot be trusted (a duplicate id, a corrupt line that is not the last)."""


class ResultsFileBusy(ResultsFileError):
    """Another process holds the results file's lock."""


class RecordError(ValueError):
    """A record that must not be written (no id, an unknown state, a value JSON cannot encode)."""


def is_retryable_failure(record: dict) -> bool:
    """A failure the next run must try again (a backend outage), as opposed to a final state."""
    return record.get("state") == "failed" and bool(record.get("retryable"))


def _rank(record: dict) -> int:
    return 0 if is_retryable_failure(record) else 1 if record["state"] == "failed" else 2


def _plain(value, where: str):
    """``value`` with numpy scalars and arrays made Python objects; RecordError for anything else."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecordError(f"{where}: {value!r} is not a finite number (JSON has no NaN or infinity)")
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # numpy scalar or array
        return _plain(value.tolist(), where)
    raise RecordError(f"{where}: a value of type {type(value).__name__} cannot be written as JSON "
                      "(allowed: str, int, float, bool, None, lists and dicts of them, numpy scalars)")


def encode_record(record: dict) -> str:
    """The JSON line of ``record`` (with its newline), checked: raises :class:`RecordError`."""
    if not isinstance(record, dict):
        raise RecordError(f"a record must be a dict, got {type(record).__name__}")
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise RecordError(f"a record needs a non-empty string id, got {record.get('id')!r}")
    if record.get("state") not in STATES:
        raise RecordError(f"record {record['id']}: state {record.get('state')!r} is not one of {STATES}")
    return json.dumps(_plain(record, "record"), ensure_ascii=False, allow_nan=False) + "\n"


def _records(path: Path) -> Iterator[dict]:
    """The records of ``path``, read-only; a last line cut by a kill (no newline) is skipped."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith("\n"):
                log.warning("%s: skipped an incomplete last line (an interrupted write)", path.name)
                return
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ResultsFileError(f"{path}, line {number}: not JSON ({err.msg})") from None
            if not isinstance(record, dict) or "id" not in record or record.get("state") not in STATES:
                raise ResultsFileError(f"{path}, line {number}: not a record (needs an id and a state in {STATES})")
            yield record


def effective_records(paths: Iterable[Path], duplicates: str = "error") -> dict[str, dict]:
    """id -> effective record over ``paths`` (in order); see the module doc for ``duplicates``."""
    if duplicates not in ("error", "warn"):
        raise ValueError(f"duplicates must be 'error' or 'warn', got {duplicates!r}")
    best: dict[str, dict] = {}
    where: dict[str, Path] = {}
    repeated: list[str] = []
    for path in paths:
        if not path.exists():
            continue
        for record in _records(path):
            rid, old = record["id"], best.get(record["id"])
            if old is not None and _rank(old) == 2:  # a report extracted twice: two writers
                if duplicates == "error":
                    raise ResultsFileError(f"{path}: report id {rid!r} already in {where[rid]}")
                repeated.append(rid)
            if old is None or _rank(record) >= _rank(old):
                best[rid], where[rid] = record, path
    if repeated:
        warnings.warn(f"{len(set(repeated))} report(s) recorded more than once (e.g. {repeated[0]!r}): "
                      "kept the latest record of the best state of each", stacklevel=3)
    return best


def done_ids(path: str | Path, retry_failed: bool = False) -> set[str]:
    """Ids of ``path`` whose effective record is final (not a retryable failure; with
    ``retry_failed``, not a failure at all): what a resumed run skips."""
    records = effective_records([Path(path)], duplicates="warn")
    return {rid for rid, r in records.items() if _rank(r) == 2 or (_rank(r) == 1 and not retry_failed)}


def read_results(paths: str | Path | Iterable[str | Path], duplicates: str = "error") -> list[dict]:
    """The effective record of every report in one or several JSONL files (shards), in file order."""
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    return list(effective_records(paths, duplicates).values())


def _repair(path: Path) -> None:
    """Drop a last line cut by a kill (no final newline), so that appends start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.truncate(data.rfind(b"\n") + 1)
        log.warning("%s: dropped an incomplete last line (an interrupted write)", path.name)


@contextlib.contextmanager
def appending(path: str | Path, timeout: float = 0.0):
    """Lock ``path`` (``<path>.lock``), repair its last line, and yield it open for appending.

    ``timeout``: seconds to wait for another writer (0: fail at once, -1: wait for ever)."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise ResultsFileBusy(f"{path} is being written by another process (lock {path}.lock); run one writer "
                              "per results file (one --worker per shard), or wait for the other to finish") from None
    try:
        _repair(path)
        with path.open("a", encoding="utf-8") as f:
            yield f
    finally:
        lock.release()


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a unique temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:  # mkstemp makes the file private (0600): give it the mode a plain open would have
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
