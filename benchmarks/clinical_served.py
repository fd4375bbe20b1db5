"""Use case 2 at scale: a server that enforces the schema (llama.cpp) against in-process constrained decoding.

    python benchmarks/clinical_served.py --per-cell 4                 # 36 reports, everything
    python benchmarks/clinical_served.py --per-cell 4 --only inprocess  # one side (records cached)
    python benchmarks/clinical_served.py --only llama-server --throughput-reports 8 --server-threads 1
                                            # llama.cpp's llama-server (make llama-server), N = 1, 2, 4, 8

Held-out synthetic reports (seed 2026, no long report), ``--per-cell`` per (type, style). The same
SmolLM2-135M-Instruct weights on both sides: the packaged GGUF served by ``python -m
llama_cpp.server`` (Q4_1 kernels), and the same file dequantised in process
(:class:`~neuraltext.clinical.llm.TransformersBackend`, ``mode="constrained"``). The same prompts
and the same candidates per key; the server decodes the candidates greedily under a grammar, the
in-process backend scores each whole candidate. Printed and saved
(``benchmarks/results/clinical_served.json``):

1. per-field exact match of both sides against the synthetic truth, and how often they agree;
2. reports/s with N = 1, 2, 4, 8 requests in flight against one server (N threads, each extracting
   whole reports; per-request latency, and each answer's outcome: valid, cut by ``max_tokens``, or a
   schema violation): ``llama_cpp.server`` (its requests run one at a time behind a lock), and with
   ``--llama-server`` (or ``--only llama-server``), llama.cpp's own server with ``--parallel 8`` slots
   and continuous batching, ``json_schema`` constraint, a fresh server for each N (key
   ``throughput_llama_server``; ``--ns 8 4 2 1`` measures in the other order).

Records are cached in ``--cache`` (keyed by a hash of the reports) so that the sides can be run
separately. Measured 2026-12-05 on the shared 2-core machine at load 13-20
(``benchmarks/results/clinical_served.json``): on the same 18 reports, mean per-field exact match
0.65 in process and 0.64 through llama.cpp (the two agree on 62% of the values); 41 s a report in
process and 26 s served; ``llama_cpp.server`` at N = 1, 2, 4, 8 in flight: 0.021, 0.013, 0.016,
0.015 reports/s -- it saturates at N = 1, its requests wait for one lock.

``llama-server`` (measured 03:26-03:40 the same day, load 6.7 falling to 1.6, 8 slots, one compute
thread: two took 0.039 reports/s at N = 1 on the shared machine), the same 8 CA reports (64
requests each N), twice (N ascending, then descending), and ``llama_cpp.server`` again between them:

====  ===============================  ===============================  ====================
N     llama-server ascending           llama-server descending          llama_cpp.server
      reports/s, request median/p90    reports/s, request median/p90    reports/s, median
====  ===============================  ===============================  ====================
1     0.081, 1.3 / 3.0 s (load 6.7)    0.151, 0.7 / 1.4 s (load 2.3)    0.159, 0.6 s (1.1)
2     0.093, 2.2 / 4.4 s (6.2)         0.157, 1.3 / 2.5 s (3.2)
4     0.105, 3.2 / 8.2 s (4.7)         0.146, 2.5 / 5.6 s (4.4)
8     0.137, 5.0 / 23.1 s (4.8)        0.129, 5.8 / 20.9 s (4.1)        0.042, 22.3 s (1.8)
====  ===============================  ===============================  ====================

On 2 cores llama-server saturates at N = 1: reports/s is flat in N within the load's noise (each
order's trend follows the load, not N). Continuous batching works (``/slots`` showed N slots busy
at once) but on one thread the work, mostly prompt processing, is compute-bound, so a batch costs
what its requests cost one by one; latency grows with N. What the slots do keep is each report's
prompt cache: at N = 8 llama-server holds its N = 1 rate where ``llama_cpp.server`` falls to a
quarter (its one KV cache is overwritten by the other reports' prompts). No answer broke the schema
(0 violations of 512 on llama-server, 0 of 128 on llama_cpp.server). 27-34% of llama-server's
answers were counted "cut by ``max_tokens``": whole objects (``{"value": "sein droit"}``) after which
the model spent the tokens left on the whitespace the grammar allows, so the server said
``finish_reason: length``; :class:`ServedBackend` now takes such an answer as complete and checks it
(measured before that change; the tokens are still spent, a cost on every N).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the servers' launcher of the test suite (tests/llm_servers.py)

from llm_servers import (busy_slots, llama_server_binary, smollm2_gguf, start_llama_cpp_server,  # noqa: E402
                         start_llama_server, stop)
from neuraltext.clinical import STYLES, ExtractConfig, Extractor, score_records, synthetic_reports  # noqa: E402
from neuraltext.clinical.served import SchemaViolation, ServedBackend  # noqa: E402


def sample(per_cell: int, seed: int = 2026):
    pool = synthetic_reports(200, seed=seed, p_long=0.0)
    return [r for kind in ("CA", "CC", "RC") for style in STYLES
            for r in [r for r in pool if r.type == kind and r.style == style][:per_cell]]


def extract_all(extractor, reports, threads: int = 1) -> tuple[list[dict], float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        records = list(pool.map(extractor.extract, reports))
    return records, time.perf_counter() - start


def digest(reports) -> str:
    """A hash of the reports' ids and texts: a cache made from another generator's reports is not reused."""
    return hashlib.sha1("".join(r.id + r.text for r in reports).encode("utf-8")).hexdigest()


def cached(path: Path, name: str, reports, compute):
    store = json.loads(path.read_text()) if path.exists() else {}
    if store.get(name, {}).get("digest") != digest(reports):
        records, seconds = compute()
        store = json.loads(path.read_text()) if path.exists() else {}  # the other side may have written
        store[name] = {"records": records, "seconds": seconds, "digest": digest(reports)}
        path.write_text(json.dumps(store, ensure_ascii=False))
    return store[name]["records"], store[name]["seconds"]


def field_table(reports, sides: dict[str, list[dict]]) -> list[dict]:
    """Per (type, key): n, exact match of each side, and the share of reports where both agree."""
    common = set.intersection(*({r["id"] for r in records} for records in sides.values()))
    reports = [r for r in reports if r.id in common]  # the reports both sides extracted
    scores = {name: score_records(records, reports).set_index(["type", "key"]) for name, records in sides.items()}
    names = list(sides)
    by_id = {name: {r["id"]: r["values"] for r in records} for name, records in sides.items()}
    rows = []
    for (kind, key), row in scores[names[0]].iterrows():
        ids = [r.id for r in reports if r.type == kind]
        agree = sum(by_id[names[0]][i].get(key) == by_id[names[-1]][i].get(key) for i in ids) / len(ids)
        rows.append({"type": kind, "key": key, "n": int(row["n"]),
                     **{name: round(float(scores[name].loc[(kind, key), "exact"]), 3) for name in names},
                     "agree": round(agree, 3)})
    return rows


class Timed(ServedBackend):
    """The served backend, keeping each request's latency and each answer's outcome (appends: thread-safe).

    Outcomes of the answers that needed a request: ``valid`` (the constraint holds), ``truncated`` (cut
    by ``max_tokens``, left to the parser), ``violation`` (:class:`SchemaViolation`), ``error`` (another
    server fault)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.latencies, self.outcomes, self._local = [], [], threading.local()

    def _post(self, body, context, endpoint="/chat/completions"):
        self._local.sent, start = True, time.perf_counter()
        try:
            return super()._post(body, context, endpoint)
        finally:
            self.latencies.append(time.perf_counter() - start)

    def answer(self, report, key, context):
        self._local.sent, outcome = False, "error"
        try:
            text, truncated = super().answer(report, key, context)
            outcome = "truncated" if truncated else "valid"
            return text, truncated
        except SchemaViolation:
            outcome = "violation"
            raise
        finally:
            if self._local.sent:
                self.outcomes.append(outcome)


def saturation(rows: list[dict], gain: float = 1.1) -> int | None:
    """The first N (rows sorted by N) whose next N buys less than ``gain`` x its reports/s; None if none does."""
    for row, after in zip(rows, rows[1:]):
        if after["reports_per_s"] < gain * row["reports_per_s"]:
            return row["in_flight"]
    return None


def throughput_run(url: str, reports, n: int, constraint: str, watch_slots: bool = False) -> dict:
    """N threads, each extracting whole reports (one request per key) from one server: one row."""
    backend = Timed(url, "smollm2", constraint=constraint, max_context=8192)
    most, done = [0], threading.Event()

    def watch():  # the most slots llama-server had decoding at once (polled twice a second)
        while not done.wait(0.5):
            try:
                most[0] = max(most[0], busy_slots(url))
            except OSError:  # a poll lost under load: the next one counts
                pass

    if watch_slots:
        threading.Thread(target=watch, daemon=True).start()
    load = os.getloadavg()[0]
    try:
        records, seconds = extract_all(Extractor(backend, ExtractConfig(retry=False)), reports, threads=n)
    finally:
        done.set()
    lat = sorted(backend.latencies)
    counts = {k: backend.outcomes.count(k) for k in ("valid", "truncated", "violation", "error")}
    row = {"in_flight": n, "reports": len(reports), "seconds": round(seconds, 2),
           "reports_per_s": round(len(reports) / seconds, 4), "requests": len(lat),
           "latency_s": {"median": round(lat[len(lat) // 2], 2), "p90": round(lat[int(0.9 * (len(lat) - 1))], 2),
                         "mean": round(sum(lat) / len(lat), 2)},
           "answers": counts, "schema_valid_share": round(counts["valid"] / max(1, sum(counts.values())), 4),
           "failed_reports": sum(r["state"] == "failed" for r in records),
           "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}
    if watch_slots:
        row["max_busy_slots"] = most[0]
    print(f"  N={n}: {len(reports)} reports in {seconds:.1f} s, {row['reports_per_s']:.3f} reports/s, "
          f"request median {row['latency_s']['median']} s, schema-valid {row['schema_valid_share']:.0%}, "
          f"load {row['load_1min']}", flush=True)
    return row


def throughput(url: str, reports, ns=(1, 2, 4, 8)) -> list[dict]:
    """``llama_cpp.server``: the four runs against one server, ``json_object`` constraint."""
    return [throughput_run(url, reports, n, "json_object") for n in ns]


def throughput_llama_server(binary: str, model: Path, reports, ns, slots: int, threads: int) -> dict:
    """llama.cpp's ``llama-server``, ``json_schema`` constraint, a fresh server for each N (no slot's
    prompt cache carries over from the previous N's same reports): the rows, the saturation point, the load."""
    ctx = 4096
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "cpus": os.cpu_count(),
              "load_before": [round(x, 2) for x in os.getloadavg()], "model": "SmolLM2-135M-Instruct (GGUF Q4_1)",
              "server": {"binary": Path(binary).name, "slots": slots, "ctx_per_slot": ctx, "threads": threads,
                         "cont_batching": True},
              "constraint": "json_schema", "report_ids": [r.id for r in reports], "runs": []}
    log = Path(tempfile.gettempdir()) / "llama_server.log"
    print(f"llama-server --parallel {slots} -t {threads} (continuous batching):")
    for n in ns:
        proc, url = start_llama_server(Path(binary), model, log, slots=slots, ctx_per_slot=ctx, threads=threads)
        try:
            result["runs"].append(throughput_run(url, reports, n, "json_schema", watch_slots=True))
        finally:
            stop(proc)
    result["order"] = list(ns)  # the order the runs were measured in (reversed, it separates N from a load trend)
    result["runs"].sort(key=lambda row: row["in_flight"])
    for row in result["runs"]:
        row["speedup_vs_first"] = round(row["reports_per_s"] / result["runs"][0]["reports_per_s"], 2)
    result["saturates_at"] = saturation(result["runs"])
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def print_llama_server(result: dict, previous: list[dict] | None) -> None:
    """The llama-server table, beside ``llama_cpp.server``'s reports/s at the same N when measured."""
    before = {row["in_flight"]: row["reports_per_s"] for row in previous or []}
    print(f"\n{'N':>2} {'reports/s':>10} {'x N=1':>6} {'request s (median, p90)':>24} {'schema-valid':>12} "
          f"{'busy slots':>10} {'llama_cpp.server':>16}")
    for row in result["runs"]:
        lat = row["latency_s"]
        print(f"{row['in_flight']:>2} {row['reports_per_s']:>10.3f} {row['speedup_vs_first']:>6.2f} "
              f"{lat['median']:>15.2f}, {lat['p90']:>6.2f} {row['schema_valid_share']:>12.1%} "
              f"{row['max_busy_slots']:>10} {before.get(row['in_flight'], float('nan')):>16.3f}")
    print("saturates at N =", result["saturates_at"], "| load before/after:", result["load_before"],
          result["load_after"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-cell", type=int, default=4, help="reports per (type, style): 9 cells")
    parser.add_argument("--inprocess-per-cell", type=int, default=None,
                        help="fewer reports for the slow in-process side (its reports are a subset)")
    parser.add_argument("--throughput-reports", type=int, default=16, help="reports per N of the throughput runs")
    parser.add_argument("--only", choices=("inprocess", "served", "throughput", "llama-server"), default=None)
    parser.add_argument("--llama-server", default=None,
                        help="llama.cpp's llama-server binary (make llama-server; the default of --only llama-server)")
    parser.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8], help="requests in flight, one run each")
    parser.add_argument("--slots", type=int, default=8, help="llama-server's --parallel slots")
    parser.add_argument("--server-threads", type=int, default=2, help="llama-server's compute threads")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "clinical_served_records.json"))
    parser.add_argument("--out", default=str(HERE / "results" / "clinical_served.json"))
    args = parser.parse_args()
    binary = args.llama_server
    if binary is None and args.only == "llama-server":
        binary, why_not = llama_server_binary()
        if binary is None:
            parser.error(why_not)

    reports, cache = sample(args.per_cell), Path(args.cache)
    result = {}  # the top-level keys describe the comparison and llama_cpp.server's runs: kept with llama-server alone
    if args.only != "llama-server":
        result = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "cpus": os.cpu_count(),
                  "load_before": os.getloadavg(), "reports": len(reports), "model": "SmolLM2-135M-Instruct (GGUF Q4_1)"}
    if args.only in (None, "inprocess"):
        from neuraltext.clinical import TransformersBackend

        part = sample(args.inprocess_per_cell or args.per_cell)
        cached(cache, "inprocess", part, lambda: extract_all(Extractor(TransformersBackend(mode="constrained")), part))
    model = smollm2_gguf()
    if args.only in (None, "served", "throughput"):
        proc, url = start_llama_cpp_server(model, Path(tempfile.gettempdir()) / "llama_cpp_server.log")
        try:
            backend = ServedBackend(url, "smollm2", constraint="json_object", max_context=8192)
            if args.only in (None, "served"):
                cached(cache, "served", reports, lambda: extract_all(Extractor(backend), reports))
            if args.only in (None, "throughput"):
                print("llama_cpp.server (one request at a time):")
                result["throughput_llama_cpp_python"] = throughput(url, reports[:args.throughput_reports], args.ns)
        finally:
            stop(proc)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    if binary and args.only in (None, "throughput", "llama-server"):
        result["throughput_llama_server"] = throughput_llama_server(
            binary, model, reports[:args.throughput_reports], args.ns, args.slots, args.server_threads)
        print_llama_server(result["throughput_llama_server"],
                           result.get("throughput_llama_cpp_python", previous.get("throughput_llama_cpp_python")))
    store = json.loads(cache.read_text()) if cache.exists() else {}
    if {"inprocess", "served"} <= set(store) and args.only != "llama-server":
        sides = {"in-process constrained": store["inprocess"]["records"], "llama.cpp json schema": store["served"]["records"]}
        result["fields"] = field_table(reports, sides)
        result["seconds_per_report"] = {name: round(store[key]["seconds"] / len(store[key]["records"]), 1)
                                        for name, key in zip(sides, ("inprocess", "served"))}
        result["compared_reports"] = len(set.intersection(*({r["id"] for r in v} for v in sides.values())))
        print(f"\n{'type':4} {'key':20} {'n':>3} {'in-process':>10} {'llama.cpp':>10} {'agree':>6}")
        for row in result["fields"]:
            print(f"{row['type']:4} {row['key']:20} {row['n']:>3} {row['in-process constrained']:>10.2f} "
                  f"{row['llama.cpp json schema']:>10.2f} {row['agree']:>6.2f}")
        print("seconds a report:", result["seconds_per_report"])
    if args.only != "llama-server":
        result["load_after"] = os.getloadavg()
    out.write_text(json.dumps(previous | result, indent=1, ensure_ascii=False) + "\n")
    print("saved", out)


if __name__ == "__main__":
    main()
