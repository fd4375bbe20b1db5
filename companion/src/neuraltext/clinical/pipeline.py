"""Use case 2, running it: append-only JSONL keyed by report id, resume after a crash, shards.

At the study's scale (about 500,000 records x 50-500 reports, ~10^8 reports, ~40 s a report on one
node) a run takes months and *will* be interrupted. The guarantees:

* **nothing lost, nothing done twice**: each finished report's record is checked, then appended to a
  JSONL file as one line, flushed and fsynced, under the file's lock (one writer per file); a
  restarted run skips the ids whose record is final (:mod:`~neuraltext.clinical.results`). A line
  cut by a kill (no final newline) is skipped by readers and dropped by the next writer -- that
  report is redone, once.
* **one state per report**: every record is ``extracted``, ``extracted_with_flags`` or ``failed``
  (with a reason) -- see :mod:`neuraltext.clinical.extract`. A report whose extraction
  raises anyway (a bug) is recorded as failed, and the run goes on.
* **an outage is not a verdict**: when the backend cannot answer (server down, timeout, HTTP 5xx,
  CUDA out of memory: :func:`~neuraltext.clinical.extract.is_retryable`) the report is tried again
  ``max_attempts`` times with exponential back-off, then recorded as a *retryable* failure with its
  attempt count, which the next run tries again; ``--retry-failed`` also redoes the final failures.
* **nothing leaked**: the log names report ids and states only, never text.
* **shards**: worker ``i`` of ``n`` takes the reports whose id hashes to ``i`` (:func:`shard_of`,
  stable across machines and runs) and appends to its own file; :func:`read_results` merges the
  files (one record per report) for :func:`~neuraltext.clinical.table.patient_table`.
  Processes or hosts: the same code, one ``(i, n)`` each -- the cluster is the hospital's scheduler.
* **several workers**: this module launches no processes of its own. On one machine or a cluster,
  the batch run is :mod:`neuraltext.clinical.engine` (Dask distributed: its scheduler retries a killed
  worker's tasks); ``--shards n`` without ``--worker`` says so. For a scheduler's array jobs (SLURM
  ``--array=0-3``), each job runs :func:`worker_command`, one shard, and :func:`merge_shards` reads
  the files back; run a job again after a crash and it resumes its own file. From a shell::

      python -m neuraltext.clinical.pipeline --reports reports.csv --shards 4 --worker $SLURM_ARRAY_TASK_ID --out results/
      python -m neuraltext.clinical.pipeline --reports synthetic:100 --out r/      # one process, with the table
      python -m neuraltext.clinical.engine --reports reports.csv --workers 4 --out results/

  The first writes ``results/shard-<i>-of-4.jsonl``; the second ``r/shard-0-of-1.jsonl`` and the
  patient table ``r/patients.csv``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from neuraltext.utils import progress
from neuraltext.clinical.extract import BackendUnavailable
from neuraltext.clinical.results import (RecordError, ResultsFileBusy, ResultsFileError, appending, done_ids,
                                         effective_records, encode_record, is_retryable_failure, read_results)

__all__ = ["shard_of", "done_ids", "read_results", "run_pipeline", "RunSummary", "ResultsFileError", "ResultsFileBusy",
           "extract_report", "pass_counts", "shard_file", "load_reports", "make_backend", "worker_command",
           "merge_shards", "main"]

log = logging.getLogger("neuraltext.clinical")


def shard_of(report_id: str, n_shards: int) -> int:
    """The shard of a report id in ``range(n_shards)``: a hash, stable across processes and hosts."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    return int(hashlib.sha1(report_id.encode("utf-8")).hexdigest()[:12], 16) % n_shards


@dataclass
class RunSummary:
    """What one call of :func:`run_pipeline` did: counts by state and by pass (:func:`pass_counts` of the
    records written), skipped (already done), timing."""

    processed: int
    skipped: int
    states: dict
    seconds: float
    passes: dict

    @property
    def reports_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


def _failure(report, reason: str, **extra) -> dict:
    return {"id": report.id, "type": report.type, "state": "failed", "reason": reason, "values": {}, "flags": {},
            **extra}


def pass_counts(records) -> dict:
    """The study's two passes over ``records``: how many reports the first pass ran, how many needed the
    4x-context second pass (``passes >= 2``: the Extractor retried a failed key at
    :data:`~neuraltext.clinical.extract.RETRY_FACTOR` x the context), and how many of those still failed."""
    records = list(records)
    second = [r for r in records if r.get("passes", 1) >= 2]
    return {"first pass": sum(r.get("passes", 1) >= 1 for r in records), "second pass (4x context)": len(second),
            "failed after the second pass": sum(r["state"].startswith("failed") for r in second)}


def extract_report(extractor, report, attempts: int, max_attempts: int, backoff: float, sleep=time.sleep) -> dict:
    """One report's record, trying again after a retryable error (``backoff * 2**k`` seconds between
    attempts); ``attempts`` counts this report's earlier tries (recorded by earlier runs). Never raises
    for the report's sake: any other error becomes a ``failed`` record naming only its type. Shared
    by :func:`run_pipeline` and the engine's tasks (:mod:`neuraltext.clinical.engine`)."""
    for k in range(max_attempts):
        attempts += 1
        try:
            return extractor.extract(report) | {"attempts": attempts}
        except BackendUnavailable as err:
            if k + 1 < max_attempts:
                sleep(backoff * 2 ** k)
                continue
            return _failure(report, f"{err} after {attempts} attempt(s)", retryable=True, attempts=attempts)
        except Exception as err:  # noqa: BLE001 -- record, never lose the report; no message (may hold text)
            return _failure(report, f"extraction error ({type(err).__name__})", attempts=attempts)
    raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")


def _write(f, record: dict, report) -> dict:
    """Append ``record`` (checked first); a record that cannot be written becomes a recorded failure."""
    try:
        line = encode_record(record)
    except RecordError as err:
        record = _failure(report, f"record not writable ({err})", attempts=record.get("attempts"))
        line = encode_record(record)
    f.write(line)
    f.flush()
    os.fsync(f.fileno())
    return record


def run_pipeline(reports, extractor, out: str | Path, shard: tuple[int, int] | None = None, max_attempts: int = 3,
                 backoff: float = 1.0, retry_failed: bool = False, lock_timeout: float = 0.0,
                 sleep=time.sleep) -> RunSummary:
    """Extract every report (of ``shard = (i, n)`` if given) not yet done in ``out``; append records there.

    ``reports``: a sequence of :class:`~neuraltext.clinical.reports.Report` with unique ids. A report is
    done when its record is final (see :mod:`~neuraltext.clinical.results`); a retryable failure is
    tried again, up to ``max_attempts`` times in this run with ``backoff * 2**k`` seconds between, and
    again by the next run; ``retry_failed`` also redoes the final failures. ``lock_timeout``: seconds
    to wait for another process writing ``out`` (0: fail at once with ``ResultsFileBusy``).
    Returns a :class:`RunSummary`; the records are in ``out`` (read them with :func:`read_results`).
    """
    out = Path(out)
    if shard is not None:
        i, n = shard
        if not 0 <= i < n:
            raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if backoff < 0:
        raise ValueError(f"backoff must be >= 0 seconds, got {backoff}")
    ids = Counter(r.id for r in reports)
    dupes = [rid for rid, c in ids.items() if c > 1]
    if dupes:
        raise ValueError(f"report ids must be unique; repeated: {dupes[:5]}")
    todo = [r for r in reports if shard is None or shard_of(r.id, shard[1]) == shard[0]]
    states: Counter = Counter()
    written: list[dict] = []
    start = time.perf_counter()
    with appending(out, timeout=lock_timeout) as f:
        earlier = effective_records([out], duplicates="warn")
        done = done_ids(out, retry_failed=retry_failed)
        pending = [r for r in todo if r.id not in done]
        for report in progress(pending, desc="reports", unit="report"):
            previous = earlier.get(report.id, {})
            tried = (previous.get("attempts") or 0) if is_retryable_failure(previous) else 0
            record = _write(f, extract_report(extractor, report, tried, max_attempts, backoff, sleep), report)
            written.append({"state": record["state"], "passes": record.get("passes", 0)})
            states[record["state"] + (" (retryable)" if is_retryable_failure(record) else "")] += 1
            log.info("report %s: %s", report.id, record["state"])
    return RunSummary(processed=len(pending), skipped=len(todo) - len(pending), states=dict(states),
                      seconds=time.perf_counter() - start, passes=pass_counts(written))


# ------------------------------------------------------------------------ several worker processes
def shard_file(out_dir: str | Path, i: int, n: int) -> Path:
    """The results file of worker ``i`` of ``n`` in ``out_dir``."""
    return Path(out_dir) / f"shard-{i}-of-{n}.jsonl"


def load_reports(source: str):
    """Reports from ``source``: ``synthetic:N[:SEED]`` (N synthetic patients), a ``.csv`` file (id, type,
    text columns) or a folder of ``.txt`` files. Every worker loads the same list, then keeps its shard."""
    from neuraltext.clinical.reports import read_report_csv, read_report_folder, synthetic_reports

    if source.startswith("synthetic:"):
        parts = source.split(":")
        if len(parts) not in (2, 3) or not all(x.isdigit() for x in parts[1:]):
            raise ValueError(f"expected synthetic:N or synthetic:N:SEED, got {source!r}")
        return synthetic_reports(int(parts[1]), seed=int(parts[2]) if len(parts) == 3 else 0)
    path = Path(source)
    return read_report_csv(path) if path.suffix.lower() == ".csv" else read_report_folder(path)


def make_backend(backend: str = "rules", model: str = "smollm2-135m-instruct", mode: str = "constrained",
                 url: str | None = None, constraint: str = "choice", inside_hospital: bool = False):
    """A backend by name: ``rules``, ``local`` (a causal LM, ``model`` and ``mode``), ``served`` (an
    OpenAI-compatible server at ``url`` serving ``model``, enforcing ``constraint``; a host other than
    this machine only with ``inside_hospital=True``: :func:`~neuraltext.clinical.served.check_url`), or
    ``package.module:callable`` (your own: called with no argument, it returns a backend)."""
    if backend == "rules":
        from neuraltext.clinical.rules import RulesBackend
        return RulesBackend()
    if backend == "local":
        from neuraltext.clinical.llm import TransformersBackend
        return TransformersBackend(model, mode=mode)
    if backend == "served":
        from neuraltext.clinical.served import ServedBackend
        if not url:
            raise ValueError("the served backend needs --url (e.g. http://127.0.0.1:8000/v1)")
        return ServedBackend(url, model, constraint=constraint, inside_hospital=inside_hospital)
    if ":" in backend:
        module, name = backend.split(":", 1)
        return getattr(importlib.import_module(module), name)()
    raise ValueError(f"backend must be 'rules', 'local', 'served' or 'module:callable', got {backend!r}")


def _parser() -> argparse.ArgumentParser:
    from neuraltext.clinical.served import CONSTRAINTS

    parser = argparse.ArgumentParser(prog="python -m neuraltext.clinical.pipeline",
                                     description="Extract reports into JSONL shards, resumably; merge into a patient table.")
    parser.add_argument("--reports", required=True, help="synthetic:N[:SEED], a .csv file or a folder of .txt files")
    parser.add_argument("--out", required=True, help="folder of the shard files and the patient table")
    parser.add_argument("--shards", type=int, default=1, help="number of shards (default 1); > 1 needs --worker")
    parser.add_argument("--worker", type=int, default=None,
                        help="run only shard WORKER of SHARDS in this process (a scheduler's array job)")
    parser.add_argument("--backend", default="rules", help="rules, local, served or package.module:callable")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="local: name or path; served: model id")
    parser.add_argument("--mode", default="constrained", choices=("free", "constrained"), help="local backend mode")
    parser.add_argument("--url", default=None, help="served backend: base URL, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--constraint", default="choice",
                        help="served backend: what the server enforces, one of " + ", ".join(CONSTRAINTS))
    parser.add_argument("--inside-hospital", action="store_true",
                        help="served backend: allow a server on another host (the hospital's network)")
    parser.add_argument("--max-attempts", type=int, default=3,
                        help="tries of a report after a retryable backend error, in one run (default 3)")
    parser.add_argument("--backoff", type=float, default=1.0,
                        help="seconds before the 2nd try, doubled before each next one (default 1)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also redo the reports recorded as failed for good (retryable failures always are)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each report's id and state")
    return parser


def worker_command(reports: str, out_dir: str | Path, i: int, n: int, backend_args: Iterable[str] = ()) -> list[str]:
    """The command line of worker ``i`` of ``n`` (run it anywhere the reports and ``out_dir`` are visible)."""
    return [sys.executable, "-m", "neuraltext.clinical.pipeline", "--reports", reports,
            "--out", str(out_dir), "--shards", str(n), "--worker", str(i), *backend_args]


def merge_shards(out_dir: str | Path, n_shards: int) -> list[dict]:
    """The effective record of every report in the ``n_shards`` shard files of ``out_dir``. A report
    recorded twice (two writers on one file before the lock, copied files) keeps its effective record
    (:mod:`~neuraltext.clinical.results`) with a warning; a missing shard file, or a file of another
    shard count (which would partition the ids differently), is an error."""
    out_dir = Path(out_dir)
    files = [shard_file(out_dir, i, n_shards) for i in range(n_shards)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise ResultsFileError(f"{out_dir}: missing shard file(s) {missing}; run the workers (again)")
    others = sorted(f.name for f in out_dir.glob("shard-*-of-*.jsonl") if f not in files)
    if others:
        raise ResultsFileError(f"{out_dir}: shard files of another shard count {others}; keep one count per folder")
    return read_results(files, duplicates="warn")


def main(argv: list[str] | None = None) -> int:
    """The command line: one worker (``--worker i`` of ``--shards n``: prints its summary as one JSON line),
    or, with one shard, the whole run then the patient table. Several workers without ``--worker``
    exit 2 pointing to :mod:`neuraltext.clinical.engine`."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if args.worker is None and args.shards > 1:
        print(f"error: --shards {args.shards} without --worker: this module runs one worker per process "
              f"(a scheduler's array job: --worker i); to run {args.shards} workers at once, use the engine: "
              f"python -m neuraltext.clinical.engine --workers {args.shards} --reports ... --out ...",
              file=sys.stderr)
        return 2
    from neuraltext.clinical.extract import Extractor

    worker = 0 if args.worker is None else args.worker
    backend = make_backend(args.backend, args.model, args.mode, args.url, args.constraint, args.inside_hospital)
    try:
        summary = run_pipeline(load_reports(args.reports), Extractor(backend),
                               shard_file(args.out, worker, args.shards), shard=(worker, args.shards),
                               max_attempts=args.max_attempts, backoff=args.backoff, retry_failed=args.retry_failed)
    except ResultsFileBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"shard": worker, "processed": summary.processed, "skipped": summary.skipped,
                      "states": summary.states, "passes": summary.passes, "seconds": round(summary.seconds, 3)}),
          flush=True)
    if args.worker is None:  # the whole run in this process: the patient table too
        from neuraltext.clinical.table import export_table, patient_table

        written = export_table(patient_table(merge_shards(args.out, 1)), Path(args.out) / "patients")
        print(f"table: {', '.join(str(w) for w in written)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
