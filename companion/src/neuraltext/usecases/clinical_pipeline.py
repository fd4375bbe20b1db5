"""Use case 2, running it: append-only JSONL keyed by report id, resume after a crash, shards.

At the study's scale (about 500,000 records x 50-500 reports, ~10^8 reports, ~40 s a report on one
node) a run takes months and *will* be interrupted. The guarantees:

* **nothing lost, nothing done twice**: each finished report's record is appended to a JSONL file as
  one line, flushed and fsynced; a restarted run reads the ids already there and skips them. A line
  cut by a kill (no final newline) is dropped on restart -- that report is redone, once.
* **one state per report**: every record is ``extracted``, ``extracted_with_flags`` or ``failed``
  (with a reason) -- see :mod:`neuraltext.usecases.clinical_extract`. A report whose extraction
  raises anyway (a bug) is recorded as failed, and the run goes on.
* **nothing leaked**: the log names report ids and states only, never text.
* **shards**: worker ``i`` of ``n`` takes the reports whose id hashes to ``i`` (:func:`shard_of`,
  stable across machines and runs) and appends to its own file; :func:`read_results` merges the
  files (an id found twice is an error) for :func:`~neuraltext.usecases.clinical_table.patient_table`.
  Processes or hosts: the same code, one ``(i, n)`` each -- the cluster is the hospital's scheduler.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from neuraltext.utils import progress

__all__ = ["shard_of", "done_ids", "read_results", "run_pipeline", "RunSummary", "ResultsFileError"]

log = logging.getLogger("neuraltext.clinical")


class ResultsFileError(ValueError):
    """A results file that cannot be trusted (a duplicate id, a corrupt line that is not the last)."""


def shard_of(report_id: str, n_shards: int) -> int:
    """The shard of a report id in ``range(n_shards)``: a hash, stable across processes and hosts."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return int(hashlib.sha1(report_id.encode("utf-8")).hexdigest()[:12], 16) % n_shards


def _repair(path: Path) -> None:
    """Drop a last line cut by a kill (no final newline), so that appends start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        f.truncate(cut)
        log.warning("%s: dropped an incomplete last line (an interrupted write)", path.name)


def _records(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ResultsFileError(f"{path}, line {number}: not JSON ({err.msg})") from None
            if "id" not in record or record.get("state") not in ("extracted", "extracted_with_flags", "failed"):
                raise ResultsFileError(f"{path}, line {number}: not a record (needs an id and a known state)")
            yield record


def done_ids(path: str | Path) -> set[str]:
    """Ids already recorded in ``path`` (repairing an interrupted last line first)."""
    path = Path(path)
    if not path.exists():
        return set()
    _repair(path)
    return {r["id"] for r in _records(path)}


def read_results(paths: str | Path | Iterable[str | Path]) -> list[dict]:
    """All records of one or several JSONL files (shards); an id present twice is an error."""
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    seen: dict[str, Path] = {}
    records = []
    for path in paths:
        _repair(path)
        for record in _records(path):
            if record["id"] in seen:
                raise ResultsFileError(f"{path}: report id {record['id']!r} already in {seen[record['id']]}")
            seen[record["id"]] = path
            records.append(record)
    return records


@dataclass
class RunSummary:
    """What one call of :func:`run_pipeline` did: counts by state, skipped (already done), timing."""

    processed: int
    skipped: int
    states: dict
    seconds: float

    @property
    def reports_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


def run_pipeline(reports, extractor, out: str | Path, shard: tuple[int, int] | None = None) -> RunSummary:
    """Extract every report (of ``shard = (i, n)`` if given) not yet in ``out``; append records there.

    ``reports``: a sequence of :class:`~neuraltext.usecases.clinical_data.Report` with unique ids.
    Returns a :class:`RunSummary`; the records are in ``out`` (read them with :func:`read_results`).
    """
    out = Path(out)
    if shard is not None:
        i, n = shard
        if not 0 <= i < n:
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
    ids = Counter(r.id for r in reports)
    dupes = [rid for rid, c in ids.items() if c > 1]
    if dupes:
        raise ValueError(f"report ids must be unique; repeated: {dupes[:5]}")
    todo = [r for r in reports if shard is None or shard_of(r.id, shard[1]) == shard[0]]
    done = done_ids(out)
    pending = [r for r in todo if r.id not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    states: Counter = Counter()
    start = time.perf_counter()
    with out.open("a", encoding="utf-8") as f:
        for report in progress(pending, desc="reports", unit="report"):
            try:
                record = extractor.extract(report)
            except Exception as err:  # noqa: BLE001 -- record, never lose the report; no message (may hold text)
                record = {"id": report.id, "type": report.type, "state": "failed",
                          "reason": f"extraction error ({type(err).__name__})", "values": {}, "flags": {}}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
            states[record["state"]] += 1
            log.info("report %s: %s", report.id, record["state"])
    return RunSummary(processed=len(pending), skipped=len(todo) - len(pending), states=dict(states),
                      seconds=time.perf_counter() - start)
