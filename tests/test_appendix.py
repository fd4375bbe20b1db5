"""The performance appendix quotes its measurements, it does not type them.

Every number the appendix states about speed comes from `benchmarks/results/*.json` (written by
`make bench`) or from the tables recorded in the benchmark scripts' docstrings, through the cells'
printed tables and MyST-NB `glue`. These tests read the saved notebook and run its benchmark cells
against a results folder that is missing or holds made-up files, so that they need no benchmark run.
"""

import ast
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
APPENDIX = ROOT / "book" / "A_performance.ipynb"
NOT_MEASURED = "not measured"


def cells(path: Path = APPENDIX) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for c in nb["cells"]:
        c["text"] = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    return nb["cells"]


# ----------------------------------------------------------------------------- the prose
MEASUREMENT = re.compile(
    r"\d+\.\d+"                                                     # 0.68, 3.0
    r"|\b\d[\d,.]*\s?(?:x|×)(?![\w(])"                              # 15x, 1.5 x
    r"|\b\d[\d,.]*\s?(?:ms|s|MB|MiB|GB|GiB|seconds|minutes|%)(?!\w)"  # 454 ms, 2 minutes, 10%
    r"|^\|.*\d.*\|\s*$",                                            # a markdown table row with a number
    re.M)


def typed_measurements(markdown: str) -> list[str]:
    """Measurement-like numbers in `markdown` outside math, code, roles and directive labels."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", markdown, flags=re.S)   # math
    text = re.sub(r"\{[\w:.-]+\}`[^`]*`", " ", text)                         # {glue:text}`x`, {cite}`y`
    text = re.sub(r"`[^`\n]*`", " ", text)                                   # code spans
    return [m.group(0) for m in MEASUREMENT.finditer(text)]


def prose(path: Path = APPENDIX) -> list[str]:
    """The appendix's markdown cells up to its exercises (whose solutions work numbers out by hand)."""
    out = []
    for c in cells(path):
        if c["cell_type"] == "markdown" and c["text"].lstrip().startswith("## Exercises"):
            break
        if c["cell_type"] == "markdown":
            out.append(c["text"])
    return out


def test_the_detector_sees_typed_measurements():
    assert typed_measurements("Chapter 6 measured 3.0x between the two") == ["3.0"]
    assert typed_measurements("about two minutes, then 454 ms and 15x") == ["454 ms", "15x"]
    assert typed_measurements("| ours | 0.47 | 1.0 |")
    assert typed_measurements("within 10% of the fused kernel") == ["10%"]
    assert not typed_measurements("float16 stops at 65,504; $6 \\times 10^{-5}$; `alpha=0.05`; "
                                  "{glue:text}`w2v_ratio:.2f`; rank-100 SVD; bfloat16; 32 SGD steps")


def test_appendix_prose_types_no_measurement():
    found = {m for text in prose() for m in typed_measurements(text)}
    assert not found, (f"the appendix's prose types measured numbers {sorted(found)}: glue them from "
                       "benchmarks/results or print them from the scripts' docstrings")


def test_every_glued_name_the_prose_quotes_is_glued_by_a_saved_output():
    quoted = {m.group(1) for c in cells() if c["cell_type"] == "markdown"
              for m in re.finditer(r"\{glue(?::\w+)?\}`([\w-]+)", c["text"])}
    saved = {o.get("metadata", {}).get("scrapbook", {}).get("name") for c in cells() if c["cell_type"] == "code"
             for o in c.get("outputs", [])}
    assert quoted, "the appendix quotes no glued value"
    assert not quoted - saved, f"quoted but never glued (re-execute the notebook?): {sorted(quoted - saved)}"


# ------------------------------------------------------------------- the cells, without results
def benchmark_cells() -> list[str]:
    """The code cells that read benchmarks/: from the helper cell to the mixed-precision section, and
    the closing table."""
    cs = cells()
    start = next(i for i, c in enumerate(cs) if c["cell_type"] == "code" and "BENCH = next(" in c["text"])
    stop = next(i for i, c in enumerate(cs) if c["text"].lstrip().startswith("## Mixed precision"))
    closing = [c["text"] for c in cs if c["cell_type"] == "code" and c["text"].startswith('print("source:"')]
    assert len(closing) == 1, "the closing table's cell is missing"
    return [c["text"] for c in cs[start:stop] if c["cell_type"] == "code"] + closing


def run_benchmark_cells(root: Path, monkeypatch, results: dict | None) -> dict:
    """Run the benchmark cells in `root`/book beside a copy of the scripts; return what they glue."""
    (root / "book").mkdir()
    shutil.copytree(ROOT / "benchmarks", root / "benchmarks", ignore=shutil.ignore_patterns("results", "out"))
    if results is not None:
        (root / "benchmarks" / "results").mkdir()
        for name, data in results.items():
            (root / "benchmarks" / "results" / f"{name}.json").write_text(json.dumps(data))
    glued = {}
    namespace = {"ast": ast, "json": json, "re": re, "pd": pd, "Path": Path,
                 "glue": lambda name, value, display=True: glued.__setitem__(name, value)}
    monkeypatch.chdir(root / "book")
    for source in benchmark_cells():
        exec(compile(source, "<appendix cell>", "exec"), namespace)  # noqa: S102
    return glued


# values that do not come from benchmarks/results: the package's defaults and the scripts' docstrings
NOT_FROM_RESULTS = {"w2v_batch", "w2v_batch_mb", "w2v_full_seeds", "w2v_full_analogy", "w2v_full_quality",
                    "w2v_full_ratio", "w2v_kernel_corpus", "w2v_kernel_ratio", "w2v_kernel_analogy",
                    "gpt_cache_kept", "gpt_cache_needed"}  # read from the scripts' docstrings


def test_without_results_every_measured_value_reads_not_measured(tmp_path, monkeypatch, capsys):
    glued = run_benchmark_cells(tmp_path, monkeypatch, results=None)
    from_results = {k: v for k, v in glued.items() if k not in NOT_FROM_RESULTS and k != "missed"}
    assert from_results and all(v == NOT_MEASURED for v in from_results.values()), from_results
    assert glued["missed"].lower().startswith(NOT_MEASURED)
    assert NOT_MEASURED in capsys.readouterr().out


def test_the_docstring_tables_the_appendix_prints_parse(tmp_path, monkeypatch, capsys):
    glued = run_benchmark_cells(tmp_path, monkeypatch, results=None)
    # benchmarks/word2vec.py's full run: gensim's and our analogy accuracy, mean ± sd over seeds
    assert re.fullmatch(r"0\.\d\d ± 0\.\d\d for ours against 0\.\d\d ± 0\.\d\d for gensim", glued["w2v_full_analogy"])
    assert glued["w2v_full_ratio"] != NOT_MEASURED
    # and the compiled loop's: "1.68 [1.49-2.30]", the median of the per-round ratios [lowest-highest]
    assert re.fullmatch(r"\d\.\d\d \[\d\.\d\d-\d\.\d\d\]", glued["w2v_kernel_ratio"]), glued["w2v_kernel_ratio"]
    assert glued["w2v_kernel_corpus"] != NOT_MEASURED and "gensim's" in glued["w2v_kernel_analogy"]
    out = capsys.readouterr().out
    assert "refinement of LSTMLayerBPTT" in out and "LSTM refinements: not measured" not in out


SUMMARY_ROWS = [  # made-up ratios, with the per-round range ("spread") a script may report
    {"component": "LSTM fwd+bwd (2 threads)", "anchor": "torch.nn.LSTM", "measure": "time ours / anchor",
     "ratio": 1.15, "target": "<= 1.25", "met": True, "spread": [1.05, 1.30]},
    {"component": "word2vec skip-gram, 300k tokens", "anchor": "gensim (workers=2)", "measure": "words/s ours / anchor",
     "ratio": 0.45, "target": ">= 0.5", "met": False, "spread": [0.41, 0.48]},
]


def test_the_closing_note_is_computed_from_the_table(tmp_path, monkeypatch):
    summary = {"date": "2026-12-01 00:00 UTC", "machine": {"cpu": "test CPU"}, "threads": 2, "minutes": 1.0,
               "rows": SUMMARY_ROWS}
    glued = run_benchmark_cells(tmp_path, monkeypatch, results={"summary": summary})
    assert glued["missed"] == "One component missed its target in this run: word2vec skip-gram, 300k tokens " \
                              "against gensim (workers=2)."
    assert (glued["lstm2_ratio"], glued["lstm2_target"], glued["lstm2_margin"]) == ("1.15", "<= 1.25", "8% inside")
    assert glued["lstm2_spread"].endswith("the target inside that range: not a clear pass or miss")
    assert (glued["w2v_ratio"], glued["w2v_margin"]) == ("0.45", "10% outside")
    assert glued["w2v_spread"] == "0.41 to 0.48, every round on the same side of the target"
    assert glued["w2v_component"] == "word2vec skip-gram, 300k tokens"


def test_a_results_file_without_the_expected_fields_reads_not_measured(tmp_path, monkeypatch):
    # e.g. a script whose output format changed: its values say so instead of failing the page
    stub = {"stdout": "a format this page does not know\n", "rows": [], "steps": {}}
    summary = {"date": "d", "machine": {"cpu": "c"}, "threads": 2, "minutes": 1.0,
               "rows": [{k: v for k, v in SUMMARY_ROWS[0].items() if k != "spread"}]}
    glued = run_benchmark_cells(tmp_path, monkeypatch, results={
        "summary": summary, "cooccurrence": stub, "attention": stub, "rnn": stub, "word2vec": stub})
    assert glued["co_svd_x"] == glued["att_readable_x"] == glued["w2v_split_x"] == NOT_MEASURED
    assert glued["lstm2_ratio"] == "1.15" and glued["lstm2_spread"] == NOT_MEASURED
    assert glued["w2v_ratio"] == NOT_MEASURED and glued["missed"] == "No component missed its target in this run."


@pytest.mark.parametrize("script", ["rnn", "word2vec"])
def test_the_scripts_keep_their_recorded_tables_in_markdown(script):
    doc = ast.get_docstring(ast.parse((ROOT / "benchmarks" / f"{script}.py").read_text(encoding="utf-8")))
    header = {"rnn": "| refinement of LSTMLayerBPTT |", "word2vec": "| model | seeds |"}[script]
    assert header in doc, f"benchmarks/{script}.py's docstring lost the table the appendix prints ({header})"


def test_without_a_spread_in_the_row_the_scripts_rounds_line_gives_it(tmp_path, monkeypatch):
    summary = {"date": "d", "machine": {"cpu": "c"}, "threads": 2, "minutes": 1.0,
               "rows": [{k: v for k, v in row.items() if k != "spread"} for row in SUMMARY_ROWS]}
    rnn = {"stdout": "ROUNDS rnn ours/torch.nn.LSTM (1 thread): 0.900 0.950\n"
                     "ROUNDS rnn ours/torch.nn.LSTM (2 threads): 1.180 1.120 1.210\n", "steps": {}}
    word2vec = {"stdout": "ROUNDS word2vec ours/gensim: 0.480 0.410\n", "steps": {}}
    glued = run_benchmark_cells(tmp_path, monkeypatch, results={"summary": summary, "rnn": rnn, "word2vec": word2vec})
    assert glued["lstm2_spread"] == "1.12 to 1.21, every round on the same side of the target"
    assert glued["w2v_spread"] == "0.41 to 0.48, every round on the same side of the target"


def test_the_compiled_loop_is_compared_with_the_batched_path_from_the_step_table(tmp_path, monkeypatch):
    names = ["5. + batch 1,024: the gathered rows stay in cache (ours, 1 thread)",
             "6. + a second core: 2 Hogwild workers of 1 thread each (ours, workers=2)",
             "(6'. the second core used the default way instead: 1 worker, 2 threads per operation)",
             "7. + one example at a time in a compiled loop, sigma from a table (numba, 1 thread)",
             "8. + 2 Hogwild threads running the compiled loop without the GIL (numba, workers=2)"]
    words = [500_000.0, 600_000.0, 400_000.0, 1_500_000.0, 2_400_000.0]  # made up
    table = [{"step": n, "words/s": w, "x previous": "", "ratio to gensim": 0.5} for n, w in zip(names, words)]
    glued = run_benchmark_cells(tmp_path, monkeypatch, results={"word2vec": {"stdout": "", "steps": {"word2vec": table}}})
    assert (glued["w2v_split_x"], glued["w2v_hogwild_x"]) == ("0.80", "1.20")
    assert (glued["w2v_kernel_x"], glued["w2v_kernel2_x"]) == ("3.00", "4.00")
