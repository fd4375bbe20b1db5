"""Writes chapter 11's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch11.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import code, exercise, exercises_intro, replace_exercises, solution, solution_end, solution_start  # noqa: E402

CELLS = [
    exercises_intro("Exercises 1 and 2 are", "Exercise 3 is an experiment with the chapter's pipeline."),
    code("""from collections import Counter

from neuraltext import labs
from neuraltext.clinical.schema import normalize_text"""),
    exercise("ex-11-dates", "A patient's diagnosis date", r"""
Write `reconcile(values)` for a list of `(iso_date, report_id)` pairs, the diagnosis dates a patient's
consultations gave. Return `(date, source, distinct, conflict)`: the earliest date, where a month-only
date (`"2015-11"`) counts as the first of its month but gives way to a full date of the same month
(the same fact, more precise); `source` the smallest report id among those giving that date;
`distinct` the sorted list of distinct values; `conflict` True when more than one fact is left after
the month rule. With no value: `(None, None, [], False)`."""),
    solution_start("ex-11-dates", "Drop the month-only values that a full date of their month makes precise, then take the earliest:"),
    code('''def reconcile(values):
    """[(iso, report id)] -> (earliest date, its source, distinct values, conflict)."""
    ### BEGIN SOLUTION
    if not values:
        return None, None, [], False
    distinct = sorted({v for v, _ in values})
    full_months = {v[:7] for v in distinct if len(v) == 10}
    facts = [v for v in distinct if not (len(v) == 7 and v in full_months)]
    best = min(facts, key=lambda v: v if len(v) == 10 else v + "-01")
    source = min(s for v, s in values if v == best)
    return best, source, distinct, len(facts) > 1
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("11.reconcile_dates", reconcile)'),
    exercise("ex-11-f1", "Partial credit for a value", r"""
Write `token_f1(pred, truth)`, the F1 of the words two values share, as the chapter's per-field table
scores free-text fields: the words of a value are `normalize_text(value).split()` (lower case, spaces
collapsed, surrounding punctuation stripped), the overlap counts a repeated word as often as it occurs
in both, precision = overlap / words of `pred`, recall = overlap / words of `truth`; 0 when nothing is
shared."""),
    solution_start("ex-11-f1", "A multiset intersection gives the overlap:"),
    code('''def token_f1(pred, truth):
    """SQuAD's token F1 of two strings, after normalize_text."""
    ### BEGIN SOLUTION
    p, t = normalize_text(pred).split(), normalize_text(truth).split()
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("11.token_f1", token_f1)'),
    exercise("ex-11-retry", "The retry pass", r"""
Run the extraction with a context four times smaller than the chapter's. How many reports go to the
retry pass, and how many fail even there? What would you change for the reports that fail twice?"""),
    solution("ex-11-retry", r"""
More reports exceed the first context, so more go to the retry pass with 4 times the context; the
ones longer than that fail with the reason `context` and stay in the results file, so nothing is lost.
For them: a model with a longer context, or cutting the report into its sections and asking each key of
the section that holds it (a pathology report's conclusion, a consultation's history), which is what
the study's second pass amounts to."""),
]

if __name__ == "__main__":
    replace_exercises(Path(__file__).resolve().parents[2] / "book" / "11_clinical_extraction.ipynb", CELLS)
