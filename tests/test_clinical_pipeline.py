"""The no-loss pipeline: JSONL records, resume after a kill, shards, no text in logs, no network."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from neuraltext.clinical import synthetic_reports
from neuraltext.clinical import Extractor
from neuraltext.clinical import ResultsFileError, done_ids, read_results, run_pipeline, shard_of
from neuraltext.clinical import RulesBackend
from neuraltext.clinical import patient_table


@pytest.fixture(scope="module")
def reports():
    return synthetic_reports(12, seed=8)


def test_run_records_every_report_once_and_resumes(tmp_path, reports):
    out = tmp_path / "r.jsonl"
    ex = Extractor(RulesBackend())
    first = run_pipeline(reports[:10], ex, out)
    assert first.processed == 10 and first.skipped == 0
    again = run_pipeline(reports, ex, out)
    assert again.processed == len(reports) - 10 and again.skipped == 10
    records = read_results(out)
    assert sorted(r["id"] for r in records) == sorted(r.id for r in reports)
    assert {r["state"] for r in records} <= {"extracted", "extracted_with_flags", "failed"}


def test_a_line_cut_by_a_kill_is_dropped_and_redone(tmp_path, reports):
    out = tmp_path / "r.jsonl"
    ex = Extractor(RulesBackend())
    run_pipeline(reports[:3], ex, out)
    with out.open("a", encoding="utf-8") as f:
        f.write('{"id": "' + reports[3].id + '", "state": "extr')  # the kill came mid-write
    assert done_ids(out) == {r.id for r in reports[:3]}
    run_pipeline(reports[:5], ex, out)
    assert [r["id"] for r in read_results(out)] == [r.id for r in reports[:5]]


def test_corrupt_and_duplicate_results_are_errors(tmp_path, reports):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_pipeline(reports[:2], Extractor(RulesBackend()), a)
    b.write_text(a.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ResultsFileError, match="already in"):
        read_results([a, b])
    b.write_text("garbage\n{}\n", encoding="utf-8")
    with pytest.raises(ResultsFileError, match="b.jsonl, line 1: not JSON"):
        read_results(b)


def test_an_extractor_crash_is_a_recorded_failure(tmp_path, reports):
    class Broken:
        def extract(self, report):
            raise RuntimeError("patient text " + report.text)

    summary = run_pipeline(reports[:2], Broken(), tmp_path / "r.jsonl")
    assert summary.states == {"failed": 2}
    records = read_results(tmp_path / "r.jsonl")
    assert records[0]["reason"] == "extraction error (RuntimeError)"


def test_shards_partition_the_reports_and_merge(tmp_path):
    reports = synthetic_reports(30, seed=2)
    n = 3
    assert {shard_of(r.id, n) for r in reports} == {0, 1, 2}
    ex = Extractor(RulesBackend())
    files = [tmp_path / f"shard-{i}-of-{n}.jsonl" for i in range(n)]
    counts = [run_pipeline(reports, ex, files[i], shard=(i, n)).processed for i in range(n)]
    assert sum(counts) == len(reports) and min(counts) > 0
    merged = read_results(files)
    assert sorted(r["id"] for r in merged) == sorted(r.id for r in reports)
    assert len(patient_table(merged)) == 30
    with pytest.raises(ValueError, match="shard"):
        run_pipeline(reports, ex, files[0], shard=(3, 3))


def test_logs_hold_ids_and_states_never_text(tmp_path, reports, caplog):
    with caplog.at_level(logging.DEBUG, logger="neuraltext"):
        run_pipeline(reports[:4], Extractor(RulesBackend()), tmp_path / "r.jsonl")
    assert caplog.records
    for report in reports[:4]:
        assert report.id in caplog.text
        for line in report.text.splitlines():
            if len(line) > 12:
                assert line not in caplog.text


def test_whole_pipeline_runs_with_every_socket_blocked(tmp_path, reports, socket_disabled):
    import socket

    with pytest.raises(Exception), pytest.warns(UserWarning, match="socket"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 9))
    summary = run_pipeline(reports, Extractor(RulesBackend()), tmp_path / "r.jsonl")
    assert summary.processed == len(reports)
    assert len(patient_table(read_results(tmp_path / "r.jsonl"))) > 0


WORKER = textwrap.dedent('''
    import sys, time
    from neuraltext.clinical.reports import synthetic_reports
    from neuraltext.clinical.extract import Extractor
    from neuraltext.clinical.pipeline import run_pipeline
    from neuraltext.clinical.rules import RulesBackend

    out, seen = sys.argv[1], sys.argv[2]

    class Slow(RulesBackend):
        def answer(self, report, key, context=None):
            time.sleep(0.01)
            return super().answer(report, key, context)

    class Logged(Extractor):
        def extract(self, report):
            record = super().extract(report)
            with open(seen, "a") as f:   # extraction finished (before the record is written)
                f.write(report.id + "\\n")
            return record

    run_pipeline(synthetic_reports(12, seed=8), Logged(Slow()), out)
''')


def test_resume_after_a_kill_mid_run(tmp_path, reports):
    script, out = tmp_path / "worker.py", tmp_path / "r.jsonl"
    seen1, seen2 = tmp_path / "seen1.txt", tmp_path / "seen2.txt"
    script.write_text(WORKER, encoding="utf-8")
    env = dict(os.environ, NEURALTEXT_PROGRESS="0", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(seen1)], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text(encoding="utf-8").count("\n") < 5):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = done_ids(out)
    assert 5 <= len(first) < len(reports), "the kill must land mid-run"
    subprocess.run([sys.executable, str(script), str(out), str(seen2)], env=env, check=True)
    records = read_results(out)  # raises on a duplicate id
    assert sorted(r["id"] for r in records) == sorted(r.id for r in reports)  # none lost
    redone = set(seen2.read_text().split())
    assert not redone & first  # none of the recorded reports processed twice
    assert redone == {r.id for r in reports} - first
