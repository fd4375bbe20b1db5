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


class Outage(RulesBackend):
    """The rules behind a server that is down while ``down`` is True (connection refused on every key)."""

    def __init__(self):
        self.down, self.calls = True, 0

    def answer(self, report, key, context=None):
        self.calls += 1
        if self.down:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        return super().answer(report, key, context)


def test_an_outage_is_retried_with_back_off_then_redone_by_the_next_run(tmp_path, reports):
    out, backend, waits = tmp_path / "r.jsonl", Outage(), []
    summary = run_pipeline(reports, Extractor(backend), out, max_attempts=3, backoff=0.5, sleep=waits.append)
    assert summary.processed == len(reports) and summary.states == {"failed (retryable)": len(reports)}
    assert waits == [0.5, 1.0] * len(reports)  # back-off between the attempts inside the run
    records = read_results(out)
    assert all(r["retryable"] and r["attempts"] == 3 and "ConnectionRefusedError" in r["reason"] for r in records)
    assert done_ids(out) == set()  # nothing is done: the next run tries them all
    again = run_pipeline(reports, Extractor(backend), out, max_attempts=2, sleep=waits.append)  # still down
    assert again.processed == len(reports) and {r["attempts"] for r in read_results(out)} == {5}
    backend.down = False  # the server is back
    after = run_pipeline(reports, Extractor(backend), out, sleep=waits.append)
    assert after.processed == len(reports) and after.skipped == 0 and "failed (retryable)" not in after.states
    records = read_results(out)
    run_pipeline(reports, Extractor(RulesBackend()), tmp_path / "clean.jsonl")  # never down
    clean = {r["id"]: r for r in read_results(tmp_path / "clean.jsonl")}
    assert len(records) == len(reports) and not any(r.get("retryable") for r in records)
    assert all(r["values"] == clean[r["id"]]["values"] and r["state"] == clean[r["id"]]["state"] for r in records)
    assert {r["attempts"] for r in records} == {6}  # five tries in the outage, the sixth succeeded
    assert done_ids(out) == {r.id for r in reports}
    assert run_pipeline(reports, Extractor(backend), out).processed == 0


def test_a_final_failure_stays_failed_unless_retry_failed(tmp_path, reports, monkeypatch):
    (tmp_path / "flaky_rules.py").write_text(
        "import os\nfrom neuraltext.clinical.rules import RulesBackend\n"
        "class Broken(RulesBackend):\n"
        "    def answer(self, report, key, context=None):\n"
        "        if os.environ.get('BROKEN'):\n"
        "            raise ValueError('a bug')\n"
        "        return super().answer(report, key, context)\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BROKEN", "1")
    args = ["--reports", "synthetic:2:8", "--out", str(tmp_path / "out"), "--worker", "0", "--shards", "1",
            "--backend", "flaky_rules:Broken"]
    from neuraltext.clinical import load_reports, main, shard_file

    assert main(args) == 0
    file = shard_file(tmp_path / "out", 0, 1)
    first = read_results(file)
    assert {r["state"] for r in first} == {"failed"} and not any(r.get("retryable") for r in first)
    monkeypatch.delenv("BROKEN")
    assert main(args) == 0 and read_results(file) == first  # final: a plain re-run skips them
    assert main(args + ["--retry-failed"]) == 0
    assert [r["id"] for r in read_results(file)] == [r["id"] for r in first]
    redone = read_results(file)
    assert all("backend error" not in (r["reason"] or "") for r in redone)
    assert any(r["state"] != "failed" for r in redone)  # what the rules can read is now extracted
    clean = tmp_path / "clean.jsonl"
    run_pipeline(load_reports("synthetic:2:8"), Extractor(RulesBackend()), clean)
    assert [(r["id"], r["state"], r["values"]) for r in redone] == \
        [(r["id"], r["state"], r["values"]) for r in read_results(clean)]


class Returns:
    """An extractor double whose record is altered by ``change`` (a bug of a custom extractor)."""

    def __init__(self, change):
        self.inner, self.change = Extractor(RulesBackend()), change

    def extract(self, report):
        record = self.inner.extract(report)
        self.change(record)
        return record


def test_a_record_is_checked_before_it_is_written(tmp_path, reports):
    import numpy as np

    out = tmp_path / "r.jsonl"
    run_pipeline(reports[:1], Returns(lambda r: r.update(state="done")), out)  # not a state
    run_pipeline(reports[1:2], Returns(lambda r: r["values"].update(score=np.float64(0.25), n=np.int64(3))), out)
    run_pipeline(reports[2:3], Returns(lambda r: r["values"].update(score=np.float32("nan"))), out)
    run_pipeline(reports[3:4], Returns(lambda r: r["values"].update(when=object())), out)
    records = {r["id"]: r for r in read_results(out)}  # the file stays readable: no poisoned line
    assert len(records) == 4
    bad_state = records[reports[0].id]
    assert bad_state["state"] == "failed" and "state 'done' is not one of" in bad_state["reason"]
    converted = records[reports[1].id]
    assert converted["state"] != "failed" and converted["values"]["score"] == 0.25 and converted["values"]["n"] == 3
    assert type(converted["values"]["score"]) is float
    assert "not a finite number" in records[reports[2].id]["reason"]
    assert "a value of type object cannot be written as JSON" in records[reports[3].id]["reason"]
    assert all(records[reports[i].id]["state"] == "failed" for i in (0, 2, 3))
    again = run_pipeline(reports[:4], Extractor(RulesBackend()), out, retry_failed=True)  # a restart works
    assert again.processed == 3 and len(read_results(out)) == 4


def test_a_read_only_results_file_is_read_without_being_touched(tmp_path, reports):
    out = tmp_path / "r.jsonl"
    run_pipeline(reports[:3], Extractor(RulesBackend()), out)
    with out.open("a", encoding="utf-8") as f:
        f.write('{"id": "' + reports[3].id + '", "state": "extr')  # a kill mid-write
    before = out.read_bytes()
    out.chmod(0o444)
    try:
        assert [r["id"] for r in read_results(out)] == [r.id for r in reports[:3]]  # the cut line skipped
        assert done_ids(out) == {r.id for r in reports[:3]}
        assert out.read_bytes() == before  # a reader never repairs: only a writer does
    finally:
        out.chmod(0o644)
    run_pipeline(reports[:4], Extractor(RulesBackend()), out)  # the writer drops the cut line, then appends
    assert [r["id"] for r in read_results(out)] == [r.id for r in reports[:4]]


def test_the_served_backend_reaches_another_host_only_inside_the_hospital():
    """``make_backend``/``--inside-hospital`` pass the caller's statement to ServedBackend: another host
    is refused without it, accepted (over https) with it; both command lines take the flag."""
    from neuraltext.clinical import NotInsideHospital, make_backend
    from neuraltext.clinical import engine, pipeline

    url = "https://llm.hospital.example:8000/v1"
    with pytest.raises(NotInsideHospital, match="inside_hospital=True"):
        make_backend("served", "m", url=url, constraint="json_schema")
    assert make_backend("served", "m", url=url, constraint="json_schema", inside_hospital=True).base_url == url
    argv = ["--reports", "synthetic:1", "--out", "o", "--inside-hospital"]
    assert pipeline._parser().parse_args(argv).inside_hospital and engine._parser().parse_args(argv).inside_hospital
    assert not pipeline._parser().parse_args(argv[:-1]).inside_hospital
