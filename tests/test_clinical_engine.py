"""The batch run on Dask distributed keeps the pipeline's promises, on a local cluster of 2 processes.

Same records and patient table as one process; a worker killed mid-run (SIGKILL) has its batches
retried by the engine; the whole job killed (driver, scheduler and workers) and re-run redoes only
the missing reports, none twice; a report that kills every worker it runs on is isolated and
recorded as failed; no report text in any log; each pass of the study counted.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from functools import partial

import cloudpickle
import dask
import pytest

from neuraltext.clinical import ContextTooLong, Extractor, RulesBackend, load_reports, patient_table, read_results
from neuraltext.clinical import run_pipeline
from neuraltext.clinical.engine import backend_extractor, connect, pass_counts, run_engine
from neuraltext.clinical.results import ResultsFileBusy
from neuraltext.clinical.served import ServerUnavailable

pytest.importorskip("distributed")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's backends travel to the workers

SOURCE = "synthetic:6:8"
VOLATILE = ("seconds",)  # the only field of a record that differs from run to run


def _comparable(records):
    return sorted(({k: v for k, v in r.items() if k not in VOLATILE} for r in records), key=lambda r: r["id"])


class SlowRules(RulesBackend):
    """The rules, 25 ms a key: slow enough to kill a worker mid-run."""

    def answer(self, report, key, context=None):
        time.sleep(0.025)
        return super().answer(report, key, context)


class ShortContext(RulesBackend):
    """The rules with a small model's limit: ``LONG`` reports fit only the 4x pass, ``HUGE`` ones neither."""

    LONG, HUGE = set(), set()

    def answer(self, report, key, context=None):
        if report.id in self.HUGE or (report.id in self.LONG and context < 4 * 3072):
            raise ContextTooLong(5000 if report.id in self.LONG else 50000, context)
        return super().answer(report, key, context)


class Leaky(RulesBackend):
    """Raises with the report's text in the message (as a library error might)."""

    def answer(self, report, key, context=None):
        if report.id.endswith("0"):
            raise ValueError(report.text)
        return super().answer(report, key, context)


class Killer(RulesBackend):
    """Kills its worker process on one report."""

    victim = ""

    def answer(self, report, key, context=None):
        if report.id == self.victim:
            os._exit(1)
        return super().answer(report, key, context)


class Outage(RulesBackend):
    """The served model is down for the reports of ``DOWN``."""

    DOWN = set()

    def answer(self, report, key, context=None):
        if report.id in self.DOWN:
            raise ServerUnavailable("server answered HTTP 503")
        return super().answer(report, key, context)


def _extractor(cls, **attrs):
    for name, value in attrs.items():
        setattr(cls, name, value)
    return Extractor(cls())


@pytest.fixture(scope="module")
def reports():
    return load_reports(SOURCE)


@pytest.fixture(scope="module")
def single_process(reports, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "all.jsonl"
    run_pipeline(reports, Extractor(RulesBackend()), out)
    return read_results(out)


@pytest.fixture(scope="module")
def client():
    client, cluster = connect(n_workers=2)
    yield client
    client.close()
    cluster.close()


def test_the_engine_gives_the_records_and_table_of_one_process(client, reports, single_process, tmp_path):
    out = tmp_path / "records.jsonl"
    summary = run_engine(reports, partial(backend_extractor, "rules"), out, address=client, batch_size=3)
    merged = read_results(out)
    assert summary.processed == len(reports) == len(merged) and summary.skipped == 0
    assert summary.batches == -(-len(reports) // 3) and summary.workers == 2
    assert _comparable(merged) == _comparable(single_process)
    assert patient_table(merged).equals(patient_table(single_process))
    assert summary.states == dict(Counter(r["state"] for r in single_process))
    again = run_engine(reports, partial(backend_extractor, "rules"), out, address=client)
    assert again.processed == 0 and again.skipped == len(reports) and len(read_results(out)) == len(reports)


def test_a_killed_worker_is_retried_by_the_engine(client, reports, single_process, tmp_path):
    out = tmp_path / "records.jsonl"
    before = client.run(os.getpid)
    killed = []

    def kill_one_worker_mid_run():
        deadline = time.time() + 60
        while time.time() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 2):
            time.sleep(0.01)
        busy = [w for w, tasks in client.processing().items() if tasks]
        if busy:
            killed.append(before[busy[0]])
            os.kill(before[busy[0]], signal.SIGKILL)

    killer = threading.Thread(target=kill_one_worker_mid_run)
    killer.start()
    summary = run_engine(reports, partial(_extractor, SlowRules), out, address=client, batch_size=2)
    killer.join()
    assert killed, "the kill must land while a worker holds a batch"
    assert summary.processed == len(reports)
    merged = read_results(out)  # raises on an id recorded twice
    assert _comparable(merged) == _comparable(single_process)
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker
    assert killed[0] not in client.run(os.getpid).values()


JOB = textwrap.dedent('''
    import sys, time
    from neuraltext.clinical.extract import Extractor
    from neuraltext.clinical.rules import RulesBackend

    class SlowRules(RulesBackend):
        def answer(self, report, key, context=None):
            time.sleep(0.03)
            return super().answer(report, key, context)

    def backend():
        return SlowRules()
''')


@pytest.mark.slow
def test_a_killed_job_reruns_only_the_missing_reports(client, reports, single_process, tmp_path):
    (tmp_path / "slow_job.py").write_text(JOB, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out_dir = tmp_path / "out"
    command = [sys.executable, "-m", "neuraltext.clinical.engine", "--reports", SOURCE, "--out", str(out_dir),
               "--backend", "slow_job:backend", "--batch-size", "1"]
    job = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = out_dir / "records.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and (not out.exists() or out.read_bytes().count(b"\n") < 2):
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)  # the driver, the scheduler and the workers: the whole job
    job.communicate()
    written = out.read_bytes().count(b"\n")
    assert 2 <= written < len(reports), "the kill must land mid-run"
    summary = run_engine(reports, partial(backend_extractor, "rules"), out, address=client)
    assert summary.skipped == written and summary.processed == len(reports) - written
    merged = read_results(out)  # raises on an id recorded twice
    assert _comparable(merged) == _comparable(single_process)
    assert all(json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())


@pytest.mark.slow
def test_a_report_that_kills_every_worker_is_isolated_and_recorded(reports, single_process, tmp_path):
    reports = reports[:6]  # two batches of 3: each worker restart costs seconds
    victim = reports[2].id
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        client, cluster = connect(n_workers=2)
    try:
        out = tmp_path / "records.jsonl"
        summary = run_engine(reports, partial(_extractor, Killer, victim=victim), out, address=client, batch_size=3)
    finally:
        client.close()
        cluster.close()
    merged = {r["id"]: r for r in read_results(out)}
    assert sorted(merged) == sorted(r.id for r in reports) and summary.isolated >= 1  # and its neighbours
    assert merged[victim]["state"] == "failed" and "KilledWorker" in merged[victim]["reason"]
    others = [r for r in single_process if r["id"] in merged and r["id"] != victim]
    assert _comparable([merged[r["id"]] for r in others]) == _comparable(others)


def test_no_report_text_in_any_log(reports, tmp_path, capfd, caplog):
    client, cluster = connect(n_workers=1)
    try:
        with caplog.at_level(logging.DEBUG):
            run_engine(reports, partial(_extractor, Leaky), tmp_path / "r.jsonl", address=client, batch_size=2)
    finally:
        client.close()
        cluster.close()
    captured = capfd.readouterr()
    logs = captured.out + captured.err + caplog.text + (tmp_path / "r.jsonl").read_text(encoding="utf-8")
    failed = [r for r in read_results(tmp_path / "r.jsonl") if r["id"].endswith("0")]
    assert failed and all("ValueError" in json.dumps(r) for r in failed)
    for report in reports:
        for line in report.text.splitlines():
            if len(line) > 25:
                assert line not in logs
    assert reports[0].id in caplog.text  # the log names ids and states


def test_each_pass_is_counted(client, reports, tmp_path):
    ids = [r.id for r in reports]
    make = partial(_extractor, ShortContext, LONG={ids[0], ids[1]}, HUGE={ids[2]})
    summary = run_engine(reports, make, tmp_path / "r.jsonl", address=client)
    assert summary.passes == {"first pass": len(reports), "second pass (4x context)": 3,
                              "failed after the second pass": 1}
    assert summary.passes == pass_counts(read_results(tmp_path / "r.jsonl"))
    records = {r["id"]: r for r in read_results(tmp_path / "r.jsonl")}
    assert records[ids[2]]["reason"] == "report of 50000 tokens does not fit the 12288-token context"
    assert records[ids[0]]["state"] != "failed" and records[ids[0]]["passes"] == 2


def test_a_second_run_on_the_same_file_is_refused_and_arguments_are_checked(client, reports, tmp_path):
    from filelock import FileLock

    out = tmp_path / "r.jsonl"
    with FileLock(str(out) + ".lock"):
        with pytest.raises(ResultsFileBusy, match="being written by another process"):
            run_engine(reports, partial(backend_extractor, "rules"), out, address=client)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        run_engine(reports, partial(backend_extractor, "rules"), out, address=client, batch_size=0)
    with pytest.raises(ValueError, match="unique"):
        run_engine(reports + reports[:1], partial(backend_extractor, "rules"), out, address=client)
    assert not out.exists()


def test_an_outage_is_a_retryable_failure_that_the_next_run_redoes(client, reports, single_process, tmp_path):
    out, down = tmp_path / "r.jsonl", {reports[0].id, reports[5].id}
    first = run_engine(reports, partial(_extractor, Outage, DOWN=down), out, address=client, max_attempts=2,
                       backoff=0.0)
    assert first.states["failed (retryable)"] == 2 and first.processed == len(reports)
    failed = {r["id"]: r for r in read_results(out) if r["state"] == "failed" and r.get("retryable")}
    assert set(failed) == down and all(r["attempts"] == 2 and "ServerUnavailable" in r["reason"]
                                       for r in failed.values())
    second = run_engine(reports, partial(backend_extractor, "rules"), out, address=client)
    assert second.processed == 2 and second.skipped == len(reports) - 2
    merged = read_results(out)  # one effective record per report
    assert _comparable([{k: v for k, v in r.items() if k != "attempts"} for r in merged]) == _comparable(
        [{k: v for k, v in r.items() if k != "attempts"} for r in single_process])
    assert {r["id"]: r["attempts"] for r in merged if r["id"] in down} == {i: 3 for i in down}


def test_the_command_line_runs_the_engine_and_writes_the_table(tmp_path, capsys):
    from neuraltext.clinical.engine import main

    assert main(["--reports", "synthetic:2:4", "--out", str(tmp_path), "--workers", "1", "--batch-size", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    records = read_results(tmp_path / "records.jsonl")
    assert summary["processed"] == len(records) == len(load_reports("synthetic:2:4"))
    assert summary["passes"]["first pass"] == len(records) and (tmp_path / "patients.csv").exists()
    assert patient_table(records).shape[0] == 2
