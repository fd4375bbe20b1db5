"""Use case 2 benchmark: per-field quality and throughput of the extraction backends.

    OMP_NUM_THREADS=1 python benchmarks/clinical.py --per-cell 1 --out /tmp/clinical.json
    OMP_NUM_THREADS=1 python benchmarks/clinical.py --no-llm --compare-llama 2 --compare-free
    OMP_NUM_THREADS=1 python benchmarks/clinical.py --compare 30      # -> results/clinical_compare.json

``--compare N`` (chapter 11's comparison): rules, the constrained and the free LLM on the **same** N
held-out reports (seed 2026, balanced over types and layouts, the first of each cell, not the
shortest), through the resumable pipeline (one results file per backend, in ``--workdir``); free
decoding gets a budget of the longest true answer's tokens plus the end of turn. The JSON holds, per
backend, field and style group, the exact match with 95% intervals (Wilson per field, a bootstrap over
reports for the means) and the seconds per report. Backends and shards can run as separate processes
(``--backends llm-free --shard 0/3``); ``--partial`` writes the table on the reports every backend
has finished so far (``"complete": false``).

Held-out synthetic reports (a seed never used in development), ``--per-cell`` reports for every
(type, style) cell, so the held-out style ``C`` is measured beside the development styles. For each
backend -- ``rules``, ``llm-free``, ``llm-constrained`` (SmolLM2-135M-Instruct, packaged) -- it
prints exact match and F1 per field and group, reports/s and model tokens/s; then times the retry
pass (4x context) on one long report. A 135M model on a shared CPU is a teaching stand-in: the
study ran 70B+ models on 8 H100s at ~40 s a report.

Measured here (2026-11-30, shared 2-core machine, load 13-21, one thread, ``--per-cell 1``: 9 reports,
6 in dev styles and 3 in the held-out style; numbers move with the machine's load):

    backend          reports/s   model tokens/s   exact (dev A,B)   exact (held-out C)
    rules              ~300            -              1.00              0.05
    llm-free           0.009          31              0.09              0.05
    llm-constrained    0.028          22              0.66              0.64

i.e. ~115 s a report free (8 keys x up to 24 generated tokens) and ~35 s constrained (candidate
scoring over the shared report prefix). Rules on 1,207 reports: 294 reports/s. Retry pass
(``--retry``'s measurement, constrained): a 4,252-token RC report skips pass 1 (2,048 tokens, too
long: no model call) and takes 262 s in pass 2 (8,192 tokens), 22 model tokens/s, against 11 s and
44 tokens/s for a 180-token RC report.

Our Llama code (``neuraltext.gpt.llama``, chapter 8) against transformers' ``LlamaForCausalLM`` (SDPA),
same SmolLM2 weights, tokenizer, prompts and backend code (``--compare-llama 2 --compare-free``,
alternating per report; 2026-11-30, load 5-7, one thread):

    mode (2 CA reports)   ours: reports/s, tokens/s   transformers: reports/s, tokens/s   time ours/theirs
    constrained               0.078       46               0.084       50                  1.08
    free                      0.025       69               0.022       60                  0.88

with identical extracted values on 2/2 reports in each mode: candidate scoring (many short
forwards over a copied cache) is a wash, greedy generation ~12% faster with ours. Two reports on a
loaded machine: +-10% is noise. The gemma-3-270m GGUF model: benchmarks/clinical_gemma.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import torch

from neuraltext.clinical import STYLES, DEV_STYLES, HELD_OUT_STYLES, KEYS, synthetic_reports
from neuraltext.clinical import field_scores, score_records
from neuraltext.clinical import Extractor
from neuraltext.clinical import RulesBackend


def sample(per_cell: int, seed: int = 2026):
    pool = synthetic_reports(200, seed=seed, p_long=0.0)
    picked = []
    for kind in ("CA", "CC", "RC"):
        for style in STYLES:
            picked += [r for r in pool if r.type == kind and r.style == style][:per_cell]
    return picked


def run(backend, reports) -> tuple[list[dict], float]:
    ex = Extractor(backend)
    start = time.perf_counter()
    records = [ex.extract(r) for r in reports]
    return records, time.perf_counter() - start


class OurLlama(torch.nn.Module):
    """neuraltext.gpt.llama (chapter 8's code) behind the two calls TransformersBackend makes of a
    transformers model: ``model(input_ids=, past_key_values=, use_cache=)`` -> ``.logits``,
    ``.past_key_values`` (our cache is a list of (k, v), deep-copied like transformers' cache), and a
    greedy ``generate`` that continues from a cache covering a prefix of ``input_ids``."""

    def __init__(self, llama, config, eos_token_id: int):
        super().__init__()
        self.llama, self.config, self.eos = llama, config, eos_token_id

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        logits, present = self.llama(input_ids, past=past_key_values)
        return SimpleNamespace(logits=logits, past_key_values=present)

    @torch.no_grad()
    def generate(self, input_ids, past_key_values=None, max_new_tokens=24, **_):
        done = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        logits, cache = self.llama(input_ids[:, done:], past=past_key_values, logits_to_keep=1)
        out = input_ids
        for _ in range(max_new_tokens):
            token = logits[:, -1].argmax(-1, keepdim=True)
            out = torch.cat([out, token], dim=1)
            if int(token) == self.eos:
                break
            logits, cache = self.llama(token, past=cache)
        return out


def compare_llama(n_reports: int, free: bool) -> dict:
    """Our Llama code against transformers' LlamaForCausalLM, same weights (the packaged SmolLM2),
    same tokenizer, prompts and backend code: constrained mode on CA reports (all 8 keys by candidate
    scoring: forward passes over a shared report prefix), alternating the two per report; with
    ``free``, greedy generation too. Records must be identical (printed)."""
    from transformers import AutoConfig, LlamaForCausalLM

    from neuraltext.weights import registry as pretrained
    from neuraltext.gpt import from_pretrained
    from neuraltext.clinical import TransformersBackend

    folder = pretrained._converted(pretrained.resolve("smollm2-135m-instruct")).path
    llama, tok = from_pretrained(folder)
    ours = OurLlama(llama, AutoConfig.from_pretrained(folder), tok.eos_token_id).eval()
    theirs = LlamaForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()
    reports = [r for r in synthetic_reports(50, seed=2029, p_long=0.0) if r.type == "CA"][:n_reports]
    modes = ["constrained"] + (["free"] if free else [])
    out = {}
    for mode in modes:
        backends = {"ours": TransformersBackend((ours, tok), mode=mode),
                    "transformers": TransformersBackend((theirs, tok), mode=mode)}
        seconds, records = {k: 0.0 for k in backends}, {k: [] for k in backends}
        for i, report in enumerate(reports):
            order = list(backends) if i % 2 == 0 else list(backends)[::-1]  # alternate who goes first
            for name in order:
                record, t = run(backends[name], [report])
                seconds[name] += t
                records[name] += record
        same = [a["values"] == b["values"] for a, b in zip(records["ours"], records["transformers"])]
        out[mode] = {name: {"reports": len(reports), "seconds": seconds[name],
                            "reports_per_s": len(reports) / seconds[name],
                            "tokens_per_s": backends[name].tokens_processed / seconds[name]} for name in backends}
        out[mode]["same_values"] = sum(same)
        for name in backends:
            r = out[mode][name]
            print(f"{mode:11s} {name:12s} {len(reports)} CA reports in {r['seconds']:6.1f} s: "
                  f"{r['reports_per_s']:.3f} reports/s, {r['tokens_per_s']:.0f} model tokens/s", flush=True)
        print(f"{mode:11s} ours / transformers time: {seconds['ours'] / seconds['transformers']:.2f}; "
              f"identical values on {sum(same)}/{len(same)} reports", flush=True)
    return out


# ------------------------------------------------------------------ every backend on the same reports
COMPARE_OUT = "benchmarks/results/clinical_compare.json"
COMPARE_SEED = 2026  # a seed never used in development, as in sample()


def compare_sample(n: int, seed: int = COMPARE_SEED) -> list:
    """``n`` held-out synthetic reports (no long follow-up log), balanced over the 9 (type, style)
    cells: round after round, one report per cell in the order styles A, B, C x types CA, CC, RC, so
    30 reports are 10 per type (12 in style A, 9 in B, 9 in C). The first reports of each cell, not
    the shortest: the sample is not chosen for speed."""
    if n < 1:
        raise ValueError(f"n must be >= 1 report, got {n}")
    pool = synthetic_reports(max(200, 8 * n), seed=seed, p_long=0.0)
    cells = {(s, t): [r for r in pool if r.type == t and r.style == s] for s in STYLES for t in ("CA", "CC", "RC")}
    picked = []
    for j in range(n):
        for cell in cells.values():
            if len(picked) < n and j < len(cell):
                picked.append(cell[j])
    if len(picked) < n:
        raise ValueError(f"the pool of seed {seed} has only {len(picked)} reports, asked for n={n}")
    return picked


def answer_text(value) -> str:
    """A gold value as the model would write it: a list joined by ', ', anything else as text."""
    return ", ".join(value) if isinstance(value, list) else str(value)


def longest_answer(reports, tokenizer) -> tuple[int, str]:
    """``(tokens, key)`` of the longest gold answer in ``reports`` (tokens of the tokenizer, without the
    end-of-turn token): free decoding needs at least this many new tokens to write every answer."""
    best = (0, "")
    for r in reports:
        for key, value in r.truth.items():
            if key in ("CR", "document_type") or value is None:
                continue
            best = max(best, (len(tokenizer(answer_text(value), add_special_tokens=False)["input_ids"]), key))
    return best


def wilson(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a proportion p = k/n:
    (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n); (nan, nan) when n = 0."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) / (1 + z * z / n)), min(1.0, (centre + half) / (1 + z * z / n))


def bootstrap_mean(per_report: list[float], rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``per_report`` (each report's mean exact match over its
    keys) by resampling reports with replacement: the keys of one report are not independent, the
    reports are."""
    rng = random.Random(seed)
    n = len(per_report)
    means = sorted(sum(rng.choices(per_report, k=n)) / n for _ in range(rounds))
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def compare_backends(names: list[str], n: int, workdir: Path, threads: int, shard: tuple[int, int] | None = None) -> None:
    """Run each backend of ``names`` over :func:`compare_sample` (``n`` reports) through the resumable
    pipeline, one results file per backend (and shard) in ``workdir`` (a killed run resumes; backends
    and shards may run as separate processes)."""
    from neuraltext.clinical import run_pipeline

    reports = compare_sample(n)
    workdir.mkdir(parents=True, exist_ok=True)
    pair = None
    for name in names:
        if name == "rules":
            backend = RulesBackend()
        else:
            from neuraltext.weights import load_causal_lm
            from neuraltext.clinical import TransformersBackend

            pair = pair or load_causal_lm("smollm2-135m-instruct")
            budget = longest_answer(reports, pair[1])[0] + 1  # + 1: the end-of-turn token
            backend = TransformersBackend(pair, mode=name.removeprefix("llm-"), max_new_tokens=budget)
        file = workdir / (f"{name}.jsonl" if shard is None else f"{name}.shard{shard[0]}of{shard[1]}.jsonl")
        done = run_pipeline(reports, Extractor(backend), file, shard=shard)
        print(f"{name:16s} {done.processed} reports run now ({done.skipped} done before) in {done.seconds:.0f} s "
              f"with {threads} thread(s)", flush=True)


def summarise_compare(names: list[str], n: int, workdir: Path, out: str, partial: bool = False) -> dict:
    """The comparison table from the backends' results files: per backend and field, exact match and F1
    over the same reports with Wilson 95% intervals of the exact match; per backend and style group,
    the mean exact match with a bootstrap 95% interval over reports; seconds per report (the records'
    own timings, wall clock: they move with the machine's load). Written to ``out`` as JSON.

    Every backend is scored on the same reports: all ``n`` of :func:`compare_sample`, or with
    ``partial`` the reports every backend has finished so far (``complete`` false in the JSON, and
    ``done`` says how many each backend has): a table to look at while a run goes on, not to quote."""
    from neuraltext.clinical import read_results
    from neuraltext.weights import load_causal_lm

    planned = compare_sample(n)
    records = {name: {r["id"]: r for file in sorted(workdir.glob(f"{name}*.jsonl")) for r in read_results(file)}
               for name in names}
    done = {name: sum(r.id in records[name] for r in planned) for name in names}
    reports = [r for r in planned if all(r.id in records[name] for name in names)]
    if len(reports) < n and not partial:
        print(f"no table yet: reports done per backend {done} of {n} (resume with --compare {n} --backends NAME, "
              f"or write the common ones with --partial)")
        return {}
    if not reports:
        print(f"no table yet: no report is finished by every backend ({done} of {n})")
        return {}
    tokens, key = longest_answer(planned, load_causal_lm("smollm2-135m-instruct")[1])
    groups = {"dev (A, B)": DEV_STYLES, "held-out (C)": HELD_OUT_STYLES, "all": STYLES}
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seed": COMPARE_SEED, "planned": n,
              "complete": len(reports) == n, "done": done, "n_reports": len(reports),
              "reports": [r.id for r in reports], "types": dict(Counter(r.type for r in reports)),
              "styles": dict(Counter(r.style for r in reports)), "longest_answer_tokens": tokens,
              "longest_answer_key": key, "free_max_new_tokens": tokens + 1, "load_average": list(os.getloadavg()),
              "command": f"OMP_NUM_THREADS=1 python benchmarks/clinical.py --compare {n}",
              "fields": [], "overall": [], "backends": {}}
    for name in names:
        chosen = [records[name][r.id] for r in reports]
        result["backends"][name] = {"seconds_per_report": sum(r.get("seconds", 0.0) for r in chosen) / len(reports),
                                    "states": dict(Counter(r["state"] for r in chosen))}
        _score_backend(result, name, reports, chosen, groups)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for row in result["overall"]:
        print(f"{row['backend']:16s} {row['group']:13s} {row['reports']:3d} reports: exact {row['exact']:.2f} "
              f"[{row['exact_lo']:.2f}, {row['exact_hi']:.2f}]")
    return result


def _score_backend(result: dict, name: str, reports: list, records: list[dict], groups: dict) -> None:
    """Append ``name``'s per-field rows (Wilson intervals) and per-group means (bootstrap) to ``result``."""
    per_report = {}
    for report, record in zip(reports, records):
        per_report[report.id] = [field_scores(record["values"].get(k), report.truth[k])[0] for k in KEYS[report.type]]
    for row in score_records(records, reports).itertuples():
        lo, hi = wilson(row.exact * row.n, row.n)
        result["fields"].append({"backend": name, "type": row.type, "key": row.key, "n": int(row.n),
                                 "exact": row.exact, "f1": row.f1, "exact_lo": lo, "exact_hi": hi})
    for group, styles in groups.items():
        means = [sum(per_report[r.id]) / len(per_report[r.id]) for r in reports if r.style in styles]
        if not means:
            continue
        lo, hi = bootstrap_mean(means)
        result["overall"].append({"backend": name, "group": group, "reports": len(means),
                                  "exact": sum(means) / len(means), "exact_lo": lo, "exact_hi": hi})

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-cell", type=int, default=1, help="reports per (type, style) cell")
    parser.add_argument("--rules-reports", type=int, default=300, help="patients for the rules-only evaluation")
    parser.add_argument("--no-llm", action="store_true")
    parser.add_argument("--out", default=None, help="write the tables as JSON here")
    parser.add_argument("--retry", action="store_true", help="also time the 4x retry pass on one long report")
    parser.add_argument("--compare-llama", type=int, default=0, metavar="N",
                        help="time our Llama code against transformers on N CA reports (constrained)")
    parser.add_argument("--compare-free", action="store_true", help="with --compare-llama: free generation too")
    parser.add_argument("--compare", type=int, default=0, metavar="N",
                        help=f"every backend on the same N held-out reports -> {COMPARE_OUT}")
    parser.add_argument("--backends", default="rules,llm-constrained,llm-free",
                        help="with --compare: the backends to run now (comma-separated; one per process to use "
                             "several cores); the table is written once all three have run")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "neuraltext_clinical_compare"),
                        help="with --compare: the backends' resumable results files")
    parser.add_argument("--shard", default=None, metavar="I/N", help="with --compare: run only shard I of N")
    parser.add_argument("--partial", action="store_true",
                        help="with --compare: write the table now, on the reports every backend has finished")
    args = parser.parse_args()
    if args.compare:
        every = ["rules", "llm-constrained", "llm-free"]
        names = args.backends.split(",")
        unknown = [b for b in names if b not in every]
        if unknown:
            parser.error(f"--backends: unknown {unknown}; allowed: {', '.join(every)}")
        shard = None if args.shard is None else tuple(int(x) for x in args.shard.split("/"))
        if not args.partial:
            compare_backends(names, args.compare, Path(args.workdir), torch.get_num_threads(), shard)
        summarise_compare(every, args.compare, Path(args.workdir), args.out or COMPARE_OUT, args.partial)
        return
    results = {}
    if args.compare_llama:
        results["ours_vs_transformers"] = compare_llama(args.compare_llama, args.compare_free)

    groups = {"dev styles (A, B)": ("A", "B"), "held-out style (C)": ("C",)}
    reports = sample(args.per_cell)
    backends = [("rules", lambda: RulesBackend())]
    if not args.no_llm:
        from neuraltext.weights import load_causal_lm
        from neuraltext.clinical import TransformersBackend

        pair = load_causal_lm("smollm2-135m-instruct")
        backends += [("llm-free", lambda: TransformersBackend(pair, mode="free")),
                     ("llm-constrained", lambda: TransformersBackend(pair, mode="constrained"))]
    tables = []
    for name, make in backends:
        backend = make()
        records, seconds = run(backend, reports)
        tokens = getattr(backend, "tokens_processed", 0)
        results[name] = {"reports": len(reports), "seconds": seconds, "reports_per_s": len(reports) / seconds,
                         "tokens_per_s": tokens / seconds, "states": [r["state"] for r in records]}
        print(f"{name:16s} {len(reports)} reports in {seconds:7.1f} s: {len(reports) / seconds:.3f} reports/s, "
              f"{tokens / seconds:.0f} model tokens/s", flush=True)
        table = score_records(records, reports, groups).assign(backend=name)
        tables.append(table)
    import pandas as pd

    table = pd.concat(tables)
    wide = table.pivot_table(index=["type", "key"], columns=["group", "backend"], values="exact")
    print(wide.round(2).to_string())
    summary = table.groupby(["group", "backend"])[["exact", "f1"]].mean().round(3)
    print(summary.to_string())
    results["per_field"] = table.to_dict(orient="records")

    if args.retry and not args.no_llm:
        long = next(r for r in synthetic_reports(400, seed=2028, p_long=0.05)
                    if len(pair[0](r.text)["input_ids"]) > 2048)
        backend = TransformersBackend(pair, mode="constrained")
        records, seconds = run(backend, [long])
        results["retry_pass"] = {"tokens": len(pair[0](long.text)["input_ids"]), "seconds": seconds,
                                 "passes": records[0]["passes"], "state": records[0]["state"],
                                 "tokens_per_s": backend.tokens_processed / seconds}
        print(f"retry pass: a {results['retry_pass']['tokens']}-token report, passes={records[0]['passes']}, "
              f"{seconds:.1f} s, {backend.tokens_processed / seconds:.0f} model tokens/s", flush=True)

    rules_reports = synthetic_reports(args.rules_reports, seed=2027)
    records, seconds = run(RulesBackend(), rules_reports)
    results["rules_large"] = {"reports": len(rules_reports), "reports_per_s": len(rules_reports) / seconds,
                              "scores": score_records(records, rules_reports, groups).to_dict(orient="records")}
    print(f"rules on {len(rules_reports)} reports: {len(rules_reports) / seconds:.0f} reports/s")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
