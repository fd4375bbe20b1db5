"""Use case 2 at scale: a server that enforces the schema (llama.cpp) against in-process constrained decoding.

    python benchmarks/clinical_served.py --per-cell 4                 # 36 reports, everything
    python benchmarks/clinical_served.py --per-cell 4 --only inprocess  # one side (records cached)
    python benchmarks/clinical_served.py --llama-server /path/to/llama-server   # + native slots

Held-out synthetic reports (seed 2026, no long report), ``--per-cell`` per (type, style). The same
SmolLM2-135M-Instruct weights on both sides: the packaged GGUF served by ``python -m
llama_cpp.server`` (Q4_1 kernels), and the same file dequantised in process
(:class:`~neuraltext.clinical.llm.TransformersBackend`, ``mode="constrained"``). The same prompts
and the same candidates per key; the server decodes the candidates greedily under a grammar, the
in-process backend scores each whole candidate. Printed and saved
(``benchmarks/results/clinical_served.json``):

1. per-field exact match of both sides against the synthetic truth, and how often they agree;
2. reports/s with N = 1, 2, 4, 8 requests in flight against one server (N threads, each extracting
   whole reports): ``llama_cpp.server`` (its requests run one at a time behind a lock), and with
   ``--llama-server``, llama.cpp's native server with ``--parallel 8`` slots and continuous batching.

Records are cached in ``--cache`` (keyed by a hash of the reports) so that the sides can be run
separately. Measured 2026-12-05 on the shared 2-core machine at load 13-20
(``benchmarks/results/clinical_served.json``): on the same 18 reports, mean per-field exact match
0.65 in process and 0.64 through llama.cpp (the two agree on 62% of the values); 41 s a report in
process and 26 s served; ``llama_cpp.server`` at N = 1, 2, 4, 8 in flight: 0.021, 0.013, 0.016,
0.015 reports/s -- it saturates at N = 1, its requests wait for one lock.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the server launcher of the test suite

from neuraltext.clinical import STYLES, ExtractConfig, Extractor, score_records, synthetic_reports  # noqa: E402
from neuraltext.clinical.served import ServedBackend  # noqa: E402


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


def throughput(url: str, reports, ns=(1, 2, 4, 8)) -> list[dict]:
    rows = []
    for n in ns:
        backend = ServedBackend(url, "smollm2", constraint="json_object", max_context=8192)
        _, seconds = extract_all(Extractor(backend, ExtractConfig(retry=False)), reports, threads=n)
        rows.append({"in_flight": n, "reports": len(reports), "seconds": round(seconds, 2),
                     "reports_per_s": round(len(reports) / seconds, 3), "requests": sum(backend.requests.values())})
        print(f"  N={n}: {len(reports)} reports in {seconds:.1f} s, {len(reports) / seconds:.3f} reports/s", flush=True)
    return rows


def native_server(binary: str, model: Path, log: Path, slots: int = 8, ctx_per_slot: int = 2048):
    """llama.cpp's own server with ``slots`` parallel slots (continuous batching is on by default)."""
    import subprocess
    import urllib.request
    from test_clinical_llamacpp import _free_port

    port = _free_port()
    proc = subprocess.Popen([binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", "2",
                             "-tb", "2", "--parallel", str(slots), "-c", str(slots * ctx_per_slot), "-a", "smollm2"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"llama-server not ready: {log.read_text()[-1500:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-cell", type=int, default=4, help="reports per (type, style): 9 cells")
    parser.add_argument("--inprocess-per-cell", type=int, default=None,
                        help="fewer reports for the slow in-process side (its reports are a subset)")
    parser.add_argument("--throughput-reports", type=int, default=16, help="reports per N of the throughput runs")
    parser.add_argument("--only", choices=("inprocess", "served", "throughput"), default=None)
    parser.add_argument("--llama-server", default=None, help="llama.cpp's native llama-server binary (optional)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "clinical_served_records.json"))
    parser.add_argument("--out", default=str(HERE / "results" / "clinical_served.json"))
    args = parser.parse_args()
    from test_clinical_llamacpp import smollm2_gguf, start_llama_cpp_server, stop

    reports, cache = sample(args.per_cell), Path(args.cache)
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
            cached(cache, "served", reports, lambda: extract_all(Extractor(backend), reports))
            if args.only in (None, "throughput"):
                print("llama_cpp.server (one request at a time):")
                result["throughput_llama_cpp_python"] = throughput(url, reports[:args.throughput_reports])
        finally:
            stop(proc)
    if args.llama_server and args.only in (None, "throughput"):
        proc, url = native_server(args.llama_server, model, Path(tempfile.gettempdir()) / "llama_server.log")
        try:
            print("llama-server --parallel 8 (continuous batching):")
            result["throughput_llama_server"] = throughput(url, reports[:args.throughput_reports])
        finally:
            stop(proc)
    store = json.loads(cache.read_text()) if cache.exists() else {}
    if {"inprocess", "served"} <= set(store):
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
    result["load_after"] = os.getloadavg()
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps(previous | result, indent=1, ensure_ascii=False) + "\n")
    print("saved", out)


if __name__ == "__main__":
    main()
