"""benchmarks/clinical.py --compare: the sample, the intervals and the budget it reports (issue 24 s2)."""

from __future__ import annotations

import importlib.util
import math
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_clinical", ROOT / "benchmarks" / "clinical.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def test_the_sample_is_balanced_over_types_and_layouts():
    reports = bench.compare_sample(30)
    assert len({r.id for r in reports}) == 30
    assert Counter(r.type for r in reports) == {"CA": 10, "CC": 10, "RC": 10}
    assert Counter(r.style for r in reports) == {"A": 12, "B": 9, "C": 9}
    assert [r.id for r in bench.compare_sample(30)] == [r.id for r in reports]  # seeded
    with pytest.raises(ValueError, match="n must be >= 1"):
        bench.compare_sample(0)


def test_wilson_interval_against_its_formula_and_edges():
    lo, hi = bench.wilson(7, 10)
    assert lo == pytest.approx(0.3968, abs=1e-4) and hi == pytest.approx(0.8922, abs=1e-4)  # textbook values
    assert bench.wilson(0, 10)[0] == 0.0 and bench.wilson(10, 10)[1] == 1.0
    assert bench.wilson(0, 10)[1] > 0.0  # never a zero-width interval from 10 observations
    assert all(math.isnan(x) for x in bench.wilson(0, 0))


def test_bootstrap_interval_holds_the_mean():
    values = [0.0, 0.5, 1.0, 1.0, 0.25, 0.75]
    lo, hi = bench.bootstrap_mean(values)
    assert lo <= sum(values) / len(values) <= hi and lo < hi
    assert bench.bootstrap_mean([0.5] * 8) == (0.5, 0.5)


class _WordTokenizer:
    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


def test_the_free_budget_covers_the_longest_answer_lists_included():
    reports = bench.compare_sample(9)
    tokens, key = bench.longest_answer(reports, _WordTokenizer())
    every = [len(bench.answer_text(v).split()) for r in reports for k, v in r.truth.items()
             if k not in ("CR", "document_type") and v is not None]
    assert tokens == max(every) and key in {k for r in reports for k in r.truth}
    assert bench.answer_text(["os", "foie"]) == "os, foie"
