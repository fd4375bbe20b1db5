"""Use case 2 at the study's scale: the batch run on an existing distributed engine, Dask distributed.

The study's ~10^8 reports are spread over a cluster by an engine with its own scheduling, retries and
monitoring, not by a launcher of our own. :func:`run_engine` cuts the reports not yet recorded into
batches, submits one Dask task per batch and writes the records as the tasks finish:

* **each worker process holds one backend** (a model, or a client of the served model), built once by
  the ``make_extractor`` callable the first time that process runs a batch, as an actor pool does;
* **a killed worker's batches are retried by the engine**: the scheduler sees the worker die and
  gives its tasks to another one (the nanny restarts the dead one). A batch that kills
  ``allowed_failures`` workers raises ``KilledWorker``; its reports are then run one per task, and
  a report that still kills a worker gets a ``failed`` record naming ``KilledWorker``;
* **one writer, atomic lines**: only this (the client's) process writes, to one JSONL file, each
  finished batch in one write, flushed and fsynced; a line cut by a kill is dropped when the file is
  read again (:func:`~neuraltext.clinical.pipeline.done_ids`) and its report redone, once. A lock
  file refuses a second run on the same file;
* **a re-run after the whole job is killed redoes only the missing reports**: the ids already in the
  file are skipped, so no report is recorded twice; every report ends in exactly one state;
* **no report text in logs**: tasks are named by a hash of their ids, a task never raises (an
  exception becomes a ``failed`` record naming its type), so Dask never logs a task's arguments;
  our log names ids and states only.

Locally ``LocalCluster(n_workers, threads_per_worker=1)`` on 127.0.0.1; on a cluster, one argument:
``address="tcp://scheduler:8786"`` (a running ``dask scheduler``), or a cluster object such as
``dask_jobqueue.SLURMCluster(...)`` whose workers are SLURM jobs. Against a served model, give each
worker several threads (``threads_per_worker``): the requests in flight are what the server batches.

**Why Dask and not Ray** (both are used for batch inference; Ray Data's ``map_batches`` over an actor
pool is the common pattern for LLMs): ``distributed`` is pure Python on top of the scientific
stack's own dependencies (it installs in seconds, and a two-process ``LocalCluster`` starts in
seconds on 2 cores), it runs on SLURM through ``dask-jobqueue``, which is how hospital and
university clusters are scheduled, and its plain tasks are retried when a worker dies (a Ray actor
that dies takes its state with it unless restarts are configured). Ray 2.60 is an ~80 MB wheel with
its own object store and a slower start: a heavy dependency for a course's 30-minute test budget on
2 cores.

The study's two passes are the :class:`~neuraltext.clinical.extract.Extractor`'s: a report whose
keys fail at 3,072 tokens is asked again with 4x the context; :class:`EngineSummary` counts both.

From a shell (the same workers as :mod:`neuraltext.clinical.pipeline`'s backends)::

    python -m neuraltext.clinical.engine --reports synthetic:100 --out results/ --workers 2
    python -m neuraltext.clinical.engine --reports reports.csv --out results/ --address tcp://sched:8786 \\
        --backend served --url http://127.0.0.1:8080/v1 --constraint json_schema
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from neuraltext.clinical.pipeline import extract_report, load_reports, make_backend, pass_counts
from neuraltext.clinical.results import (RecordError, ResultsFileBusy, appending, done_ids, effective_records, encode_record,
                                         is_retryable_failure, read_results)

__all__ = ["EngineSummary", "run_engine", "extract_batch", "backend_extractor", "pass_counts", "connect", "main"]

log = logging.getLogger("neuraltext.clinical")

_EXTRACTORS: dict[str, object] = {}  # in each worker process: factory hash -> its Extractor


def backend_extractor(backend: str = "rules", retry: bool = True, **backend_args):
    """An :class:`~neuraltext.clinical.extract.Extractor` over :func:`~neuraltext.clinical.pipeline.make_backend`
    (``backend_args``: ``model``, ``mode``, ``url``, ``constraint``, ``inside_hospital``). Give ``partial(backend_extractor, ...)``
    to :func:`run_engine`: each worker calls it once."""
    from neuraltext.clinical.extract import ExtractConfig, Extractor

    return Extractor(make_backend(backend, **backend_args), ExtractConfig(retry=retry))


def _failed(report, reason: str, **extra) -> dict:
    return {"id": report.id, "type": report.type, "state": "failed", "reason": reason, "values": {}, "flags": {},
            "passes": 0, **extra}


def extract_batch(factory_key: str, make_extractor, items, max_attempts: int = 3, backoff: float = 1.0) -> list:
    """The Dask task: ``(id, state, passes, JSON line)`` per ``(report, earlier attempts)`` of ``items``.

    The extractor is built once per worker process (``factory_key`` names ``make_extractor``). Each
    report goes through the pipeline's own attempt loop (a retryable backend error is tried again with
    back-off, then recorded as a retryable failure) and its record is checked before it travels
    (:func:`~neuraltext.clinical.results.encode_record`): a record that cannot be written becomes a
    recorded failure. Never raises, never logs text.
    """
    extractor = _EXTRACTORS.get(factory_key)
    if extractor is None:
        extractor = _EXTRACTORS[factory_key] = make_extractor()
    out = []
    for report, tried in items:
        record = extract_report(extractor, report, tried, max_attempts, backoff, time.sleep)
        try:
            line = encode_record(record)
        except RecordError as err:
            record = _failed(report, f"record not writable ({err})", attempts=record.get("attempts"))
            line = encode_record(record)
        state = record["state"] + (" (retryable)" if is_retryable_failure(record) else "")
        out.append((record["id"], state, int(record.get("passes", 0)), line))
    return out


@dataclass
class EngineSummary:
    """What one :func:`run_engine` call did: reports processed and skipped, counts by state and by pass
    (:func:`pass_counts`), batches rerun one report per task after ``KilledWorker``, and timing."""

    processed: int
    skipped: int
    states: dict
    passes: dict
    isolated: int
    seconds: float
    workers: int = 0
    batches: int = 0

    @property
    def reports_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else float("nan")


def connect(address=None, n_workers: int = 2, threads_per_worker: int = 1):
    """``(client, cluster)``: a ``distributed.Client`` of ``address`` (a scheduler address or a cluster
    object, e.g. ``SLURMCluster``), or of a new ``LocalCluster`` on 127.0.0.1 (``cluster`` is then
    that cluster, for the caller to close; else ``None``)."""
    import dask
    from distributed import Client, LocalCluster

    if address is not None:
        return Client(address), None
    if n_workers < 1 or threads_per_worker < 1:
        raise ValueError(f"n_workers and threads_per_worker must be >= 1, got {n_workers}, {threads_per_worker}")
    # worker-saturation 1.0: a worker holds only the tasks it runs, none queued, so that a worker that dies
    # takes no bystander with it (each task it held counts one failure towards KilledWorker)
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                               host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR,
                               env={"OMP_NUM_THREADS": "1", "NEURALTEXT_PROGRESS": "0"})
    return Client(cluster), cluster


def _batches(reports, batch_size: int) -> list[list]:
    return [reports[i:i + batch_size] for i in range(0, len(reports), batch_size)]


def _task_key(batch) -> str:
    """A task name from the batch's ids (hashed: ids may be nominative too)."""
    digest = hashlib.sha1("\n".join(r.id for r, _ in batch).encode("utf-8")).hexdigest()[:16]
    return f"extract-batch-{digest}-{len(batch)}"


def _drain(client, pending, window: int, write, task) -> int:
    """Run the batches of the iterator ``pending``, at most ``window`` tasks at a time; write each finished
    batch. A batch lost to ``KilledWorker`` is resubmitted one report per task; a single report lost
    that way is recorded as failed. Returns how many batches were split."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    queue, batches, isolated = as_completed(with_results=False), {}, 0

    def submit(batch):
        future = client.submit(task, batch, key=_task_key(batch), pure=False)
        batches[future.key] = batch
        queue.add(future)

    for batch in itertools.islice(pending, window):
        submit(batch)
    for future in queue:
        batch = batches.pop(future.key)
        try:
            results = future.result()
        except KilledWorker:
            results = None
        future.release()
        if results is None and len(batch) > 1:
            isolated += 1
            log.warning("a batch of %d reports killed its workers: running them one per task", len(batch))
            for report in batch:
                submit([report])
            continue
        if results is None:
            report, tried = batch[0]
            record = _failed(report, "the worker died each time it ran this report (KilledWorker)", attempts=tried + 1)
            results = [(record["id"], "failed", 0, encode_record(record))]
        write(results)
        following = next(pending, None)
        if following is not None:
            submit(following)
    return isolated


def _factory_key(make_extractor) -> str:
    import cloudpickle

    return hashlib.sha1(cloudpickle.dumps(make_extractor)).hexdigest()[:16]


def run_engine(reports, make_extractor, out: str | Path, address=None, n_workers: int = 2,
               threads_per_worker: int = 1, batch_size: int = 8, window: int | None = None, max_attempts: int = 3,
               backoff: float = 1.0, retry_failed: bool = False) -> EngineSummary:
    """Extract every report not yet done in the JSONL file ``out`` on a Dask cluster; append the records there.

    ``make_extractor``: a picklable callable returning an Extractor (e.g. ``partial(backend_extractor,
    "served", url=...)``), called once in each worker process; ``address``: ``None`` (a new local
    cluster of ``n_workers`` processes x ``threads_per_worker`` threads -- more than one thread only for
    a backend that threads may share, such as the served one, not an in-process model), a scheduler
    address, a cluster object or a ``distributed.Client``; ``batch_size``: reports per task; ``window``: tasks
    in flight at most (default: 4 per worker thread), so the client never holds every task at once;
    ``max_attempts``, ``backoff``, ``retry_failed``: as in :func:`~neuraltext.clinical.pipeline.run_pipeline`
    (a retryable failure is redone by the next run). Another writer of ``out`` raises ``ResultsFileBusy``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_attempts < 1 or backoff < 0:
        raise ValueError(f"max_attempts must be >= 1 and backoff >= 0, got {max_attempts}, {backoff}")
    ids = Counter(r.id for r in reports)
    dupes = [rid for rid, c in ids.items() if c > 1]
    if dupes:
        raise ValueError(f"report ids must be unique; repeated: {dupes[:5]}")
    states, done_now, start = Counter(), [], time.perf_counter()
    with appending(out) as f:
        earlier = effective_records([Path(out)], duplicates="warn")
        done = done_ids(out, retry_failed=retry_failed)
        pending = [(r, _tried(earlier.get(r.id))) for r in reports if r.id not in done]

        def write(results):  # one batch: one write, flushed and fsynced
            f.write("".join(line for *_, line in results))
            f.flush()
            os.fsync(f.fileno())
            for rid, state, passes, _ in results:
                states[state] += 1
                done_now.append({"state": state, "passes": passes})
                log.info("report %s: %s", rid, state)

        client, cluster = _client(address, n_workers, threads_per_worker)
        try:
            threads = sum(client.nthreads().values()) or 1
            batches = _batches(pending, batch_size)
            task = partial(extract_batch, _factory_key(make_extractor), make_extractor, max_attempts=max_attempts,
                           backoff=backoff)
            isolated = _drain(client, iter(batches), window or 4 * threads, write, task)
        finally:
            if cluster is not False:
                client.close()
            if cluster:
                cluster.close()
    return EngineSummary(processed=len(done_now), skipped=len(reports) - len(pending), states=dict(states),
                         passes=pass_counts(done_now), isolated=isolated, seconds=time.perf_counter() - start,
                         workers=threads, batches=len(batches))


def _tried(record: dict | None) -> int:
    """Attempts already spent on a report by earlier runs (counted only while it is a retryable failure)."""
    return (record.get("attempts") or 0) if record and is_retryable_failure(record) else 0


def _client(address, n_workers, threads_per_worker):
    """``(client, cluster)``; ``cluster`` is ``False`` for the caller's own Client (left open)."""
    from distributed import Client

    if isinstance(address, Client):
        return address, False
    return connect(address, n_workers, threads_per_worker)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neuraltext.clinical.engine",
                                     description="Extract reports on a Dask cluster into one JSONL file; "
                                                 "write the patient table.")
    parser.add_argument("--reports", required=True, help="synthetic:N[:SEED], a .csv file or a folder of .txt files")
    parser.add_argument("--out", required=True, help="folder of records.jsonl and the patient table")
    parser.add_argument("--address", default=None, help="a Dask scheduler (tcp://host:8786); default: a local cluster")
    parser.add_argument("--workers", type=int, default=2, help="local cluster: worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="local cluster: threads per worker (default 1)")
    parser.add_argument("--batch-size", type=int, default=8, help="reports per task (default 8)")
    parser.add_argument("--backend", default="rules", help="rules, local, served or package.module:callable")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="local: name or path; served: model id")
    parser.add_argument("--mode", default="constrained", choices=("free", "constrained"), help="local backend mode")
    parser.add_argument("--url", default=None, help="served backend: base URL, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--constraint", default="json_schema", help="served backend: see ServedBackend")
    parser.add_argument("--inside-hospital", action="store_true",
                        help="served backend: allow a server on another host (the hospital's network)")
    parser.add_argument("--max-attempts", type=int, default=3, help="tries of a report after a retryable error")
    parser.add_argument("--backoff", type=float, default=1.0, help="seconds before the 2nd try, doubling")
    parser.add_argument("--retry-failed", action="store_true", help="also redo the reports recorded as failed")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each report's id and state")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line: run, then merge into ``OUT/patients.csv``; prints one summary line."""
    from neuraltext.clinical.table import export_table, patient_table

    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    backend_args = {"model": args.model, "mode": args.mode, "constraint": args.constraint,
                    "inside_hospital": args.inside_hospital}
    if args.url:
        backend_args["url"] = args.url
    records_file = Path(args.out) / "records.jsonl"
    try:
        summary = run_engine(load_reports(args.reports), partial(backend_extractor, args.backend, **backend_args),
                             records_file, args.address, args.workers, args.threads, args.batch_size,
                             max_attempts=args.max_attempts, backoff=args.backoff, retry_failed=args.retry_failed)
    except ResultsFileBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    written = export_table(patient_table(read_results(records_file)), Path(args.out) / "patients")
    print(json.dumps({"processed": summary.processed, "skipped": summary.skipped, "states": summary.states,
                      "passes": summary.passes, "isolated": summary.isolated,
                      "reports_per_second": round(summary.reports_per_second, 2),
                      "table": [str(w) for w in written]}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
