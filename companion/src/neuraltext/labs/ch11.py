"""Chapter 11's exercises: the patient table's date rule, and the token F1 of an extracted value.

References: :func:`neuraltext.clinical.table.reconcile_dates` and the F1 of
:func:`neuraltext.clinical.evaluate.field_scores` (SQuAD's token overlap).
"""

from __future__ import annotations

from neuraltext.labs.check import Case, Exercise
from neuraltext.clinical import field_scores
from neuraltext.clinical import reconcile_dates


def _reconcile_cases() -> list[Case]:
    return [
        Case("one report", ([("2016-12-01", "P1_CC_01")],)),
        Case("two reports that disagree", ([("2017-01-05", "P1_CC_02"), ("2016-12-01", "P1_CC_01")],)),
        Case("a month-only date and a full date of that month", ([("2015-11", "P2_CC_01"), ("2015-11-26", "P2_CC_02")],)),
        Case("a month-only date earlier than the full dates", ([("2015-10", "P3_CC_03"), ("2015-11-26", "P3_CC_01")],)),
        Case("the same date in two reports", ([("2016-03-02", "P4_CC_07"), ("2016-03-02", "P4_CC_02"), ("2016-04-01", "P4_CC_01")],)),
        Case("no date at all", ([],)),
    ]


def _token_f1(pred: str, truth: str) -> float:
    return field_scores(pred, truth)[1]


def _f1_cases() -> list[Case]:
    return [
        Case("the same value", ("carcinome canalaire infiltrant", "carcinome canalaire infiltrant")),
        Case("a shorter answer", ("carcinome canalaire", "carcinome canalaire infiltrant")),
        Case("no word in common", ("adénocarcinome", "carcinome épidermoïde")),
        Case("case and spaces differ", ("Carcinome   Canalaire", "carcinome canalaire")),
        Case("a repeated word counts once per occurrence", ("lobe lobe supérieur", "lobe supérieur droit")),
        Case("surrounding punctuation", ("sein gauche.", "sein gauche")),
    ]


EXERCISES = [
    Exercise(
        id="11.reconcile_dates",
        title="the diagnosis date of a patient whose reports disagree",
        reference=reconcile_dates,
        cases=_reconcile_cases,
        hint="keep the earliest date; '2015-11' gives way to a full date of November 2015; the source of a "
             "date given by several reports is the smallest report id; conflict = more than one fact left.",
    ),
    Exercise(
        id="11.token_f1",
        title="the token F1 of an extracted value against the truth",
        reference=_token_f1,
        cases=_f1_cases,
        rtol=1e-12, atol=1e-12,
        hint="tokens = normalize_text(value).split(); overlap = sum of min counts (collections.Counter &).",
    ),
]
