"""Shards for a scheduler's array jobs (``--worker i`` of ``--shards n``): the same records as one process,
a killed worker resumes, and several workers at once are the engine's job, not this module's."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import textwrap
import time

import pytest

from neuraltext.clinical import ContextTooLong, Extractor
from neuraltext.clinical import (ResultsFileError, done_ids, load_reports, main, merge_shards, pass_counts,
                                 read_results, run_pipeline, shard_file, shard_of, worker_command)
from neuraltext.clinical import RulesBackend
from neuraltext.clinical import patient_table

SOURCE = "synthetic:6:8"
VOLATILE = ("seconds",)  # the only field of a record that differs from run to run


def _comparable(records):
    return sorted(({k: v for k, v in r.items() if k not in VOLATILE} for r in records), key=lambda r: r["id"])


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "all.jsonl"
    run_pipeline(load_reports(SOURCE), Extractor(RulesBackend()), out)
    return read_results(out)


def _worker_summary(capsys, argv) -> dict:
    """Run one worker in this process (what an array job runs); its JSON summary line."""
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Both array jobs, one after the other in this process (a module fixture cannot take ``capsys``)."""
    out, summaries = tmp_path_factory.mktemp("two"), []
    for i in range(2):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["--reports", SOURCE, "--shards", "2", "--worker", str(i), "--out", str(out)]) == 0
        summaries.append(json.loads(printed.getvalue().strip().splitlines()[-1]))
    return out, summaries


def test_two_workers_give_the_records_of_one_process(sharded, single_process):
    tmp_path, summaries = sharded
    assert [s["shard"] for s in summaries] == [0, 1] and all(s["skipped"] == 0 for s in summaries)
    assert all(s["processed"] > 0 for s in summaries)
    merged = merge_shards(tmp_path, 2)
    assert sum(s["processed"] for s in summaries) == len(merged) == len(single_process)
    assert _comparable(merged) == _comparable(single_process)
    for i in range(2):  # each worker wrote only its own shard
        assert {shard_of(r["id"], 2) for r in read_results(shard_file(tmp_path, i, 2))} == {i}
    assert patient_table(merged).equals(patient_table(single_process))


def test_the_command_line_runs_each_worker_then_the_merge_gives_the_table(tmp_path, single_process, capsys):
    summaries = [_worker_summary(capsys, ["--reports", SOURCE, "--shards", "2", "--worker", str(i),
                                          "--out", str(tmp_path)]) for i in range(2)]
    assert sum(s["processed"] for s in summaries) == len(single_process)
    assert sum(s["passes"]["first pass"] for s in summaries) == len(single_process)
    assert patient_table(merge_shards(tmp_path, 2)).equals(patient_table(single_process))


def test_one_process_without_shards_writes_the_table(tmp_path, single_process, capsys):
    assert main(["--reports", SOURCE, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[0])["processed"] == len(single_process) and "patients.csv" in out
    assert _comparable(read_results(shard_file(tmp_path, 0, 1))) == _comparable(single_process)


def test_several_shards_without_a_worker_point_to_the_engine(tmp_path, capsys):
    """No launcher of our own: ``--shards 2`` alone is refused (exit 2) with the engine's command, and
    nothing is written."""
    assert main(["--reports", SOURCE, "--shards", "2", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--worker" in err and "python -m neuraltext.clinical.engine --workers 2" in err
    assert not (tmp_path / "out").exists()


class ShortContext(RulesBackend):
    """The rules with a small model's limit: ``LONG`` reports fit only the 4x pass, ``HUGE`` ones neither."""

    def __init__(self, long, huge):
        self.long, self.huge = long, huge

    def answer(self, report, key, context=None):
        if report.id in self.huge or (report.id in self.long and context < 4 * 3072):
            raise ContextTooLong(5000 if report.id in self.long else 50000, context)
        return super().answer(report, key, context)


def test_the_summary_counts_the_second_pass(tmp_path):
    """The study's second pass: reports that do not fit 3,072 tokens are asked again at 4x; the summary
    counts them, and how many still failed, as the records say."""
    reports = load_reports(SOURCE)
    ids = [r.id for r in reports]
    summary = run_pipeline(reports, Extractor(ShortContext(long={ids[0], ids[1]}, huge={ids[2]})),
                           tmp_path / "r.jsonl")
    assert summary.passes == {"first pass": len(reports), "second pass (4x context)": 3,
                              "failed after the second pass": 1}
    assert summary.passes == pass_counts(read_results(tmp_path / "r.jsonl"))
    again = run_pipeline(reports, Extractor(RulesBackend()), tmp_path / "r.jsonl")
    assert again.processed == 0 and again.passes == {"first pass": 0, "second pass (4x context)": 0,
                                                     "failed after the second pass": 0}


def test_merge_refuses_missing_or_mixed_shard_files(tmp_path, sharded):
    for i in range(2):
        shard_file(tmp_path, i, 2).write_bytes(shard_file(sharded[0], i, 2).read_bytes())
    with pytest.raises(ResultsFileError, match="missing shard"):
        merge_shards(tmp_path, 3)
    shard_file(tmp_path, 0, 3).write_text("")
    with pytest.raises(ResultsFileError, match="another shard count"):
        merge_shards(tmp_path, 2)


SLOW_BACKEND = textwrap.dedent('''
    import time
    from neuraltext.clinical.rules import RulesBackend

    class SlowRules(RulesBackend):
        """The rules, 20 ms a key: slow enough to kill a worker mid-run."""
        def answer(self, report, key, context=None):
            time.sleep(0.02)
            return super().answer(report, key, context)
''')


def test_a_killed_worker_resumes_without_duplicates_or_loss(tmp_path, single_process):
    (tmp_path / "slow_backend.py").write_text(SLOW_BACKEND, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NEURALTEXT_PROGRESS="0", OMP_NUM_THREADS="1")
    out, backend = tmp_path / "out", ["--backend", "slow_backend:SlowRules"]
    n_shard0 = sum(shard_of(r["id"], 2) == 0 for r in single_process)
    workers = [subprocess.Popen(worker_command(SOURCE, out, i, 2, backend), env=env, stdout=subprocess.PIPE)
               for i in range(2)]
    file0 = shard_file(out, 0, 2)
    deadline = time.time() + 60
    while time.time() < deadline and (not file0.exists() or file0.read_bytes().count(b"\n") < 3):
        time.sleep(0.02)
    workers[0].send_signal(signal.SIGKILL)
    workers[0].communicate()
    workers[1].communicate()
    assert workers[1].returncode == 0
    before = done_ids(file0)
    assert 3 <= len(before) < n_shard0, "the kill must land mid-run"
    assert len(merge_shards(out, 2)) < len(single_process)  # a merge now is short: run the workers again
    summaries = [json.loads(subprocess.run(worker_command(SOURCE, out, i, 2, backend), env=env, capture_output=True,
                                           text=True, timeout=300, check=True).stdout.strip().splitlines()[-1])
                 for i in range(2)]  # the scheduler runs the array jobs again
    assert summaries[0]["processed"] == n_shard0 - len(before) and summaries[0]["skipped"] == len(before)
    assert summaries[1]["processed"] == 0  # the finished worker redoes nothing
    merged = merge_shards(out, 2)  # raises on an id recorded twice
    assert _comparable(merged) == _comparable(single_process)


GATED_BACKEND = textwrap.dedent('''
    import os, pathlib, time
    from neuraltext.clinical.rules import RulesBackend

    class GatedRules(RulesBackend):
        """The rules, once the file $RELEASE exists; says it has started (holding the lock) in $STARTED."""
        def answer(self, report, key, context=None):
            pathlib.Path(os.environ["STARTED"]).touch()
            while not os.path.exists(os.environ["RELEASE"]):
                time.sleep(0.02)
            return super().answer(report, key, context)
''')


def test_a_second_process_on_the_same_results_file_fails_clearly(tmp_path, single_process):
    """Two real processes given the same shard: the lock lets one write; the other stops with a message."""
    (tmp_path / "gated_backend.py").write_text(GATED_BACKEND, encoding="utf-8")
    started, release = tmp_path / "started", tmp_path / "release"
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NEURALTEXT_PROGRESS="0", OMP_NUM_THREADS="1", STARTED=str(started), RELEASE=str(release))
    out, backend = tmp_path / "out", ["--backend", "gated_backend:GatedRules"]
    first = subprocess.Popen(worker_command(SOURCE, out, 0, 1, backend), env=env, stdout=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not started.exists():  # the first is extracting: it holds the lock
        time.sleep(0.02)
    second = subprocess.run(worker_command(SOURCE, out, 0, 1, backend), env=env, capture_output=True, text=True,
                            timeout=300)
    release.touch()
    first.communicate(timeout=300)
    assert first.returncode == 0, "the first writer finished"
    assert second.returncode == 2 and "is being written by another process" in second.stderr
    assert "Traceback" not in second.stderr
    file = shard_file(out, 0, 1)
    records = read_results(file)  # duplicates="error": each report written once
    assert len(records) == len(single_process) == len(file.read_text(encoding="utf-8").splitlines())


def test_merge_keeps_one_record_per_report_with_a_warning(tmp_path, sharded):
    """A shard written twice (two writers before the lock existed): the merge keeps the latest record of
    the best state of each report, and says so, instead of refusing the folder."""
    for i in range(2):
        shard_file(tmp_path, i, 2).write_bytes(shard_file(sharded[0], i, 2).read_bytes())
    lines = shard_file(tmp_path, 0, 2).read_text(encoding="utf-8").splitlines(keepends=True)
    failed = json.loads(lines[0]) | {"state": "failed", "reason": "extraction error (RuntimeError)", "values": {}}
    shard_file(tmp_path, 0, 2).write_text("".join(lines + lines) + json.dumps(failed) + "\n", encoding="utf-8")
    with pytest.raises(ResultsFileError, match="already in"):
        read_results(shard_file(tmp_path, 0, 2))  # strict reading still refuses it
    with pytest.warns(UserWarning, match="recorded more than once"):
        merged = merge_shards(tmp_path, 2)
    assert _comparable(merged) == _comparable(merge_shards(sharded[0], 2))  # the later failure lost to success
