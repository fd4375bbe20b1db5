"""Chapter 10's exercises: per-label F1 from predictions, and the canonical code of a label set.

References: scikit-learn's ``f1_score(average=None, zero_division=0)`` (what ``per_label_report``
uses) and :func:`neuraltext.family.data.labels_to_code`.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from neuraltext.labs.check import Case, Exercise
from neuraltext.family import LABELS, labels_to_code


def _f1_reference(y_true, y_pred):
    return f1_score(y_true, y_pred, average=None, zero_division=0).astype(np.float64)


def _f1_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    y = (rng.random((40, len(LABELS))) < 0.3).astype(int)
    noisy = np.where(rng.random(y.shape) < 0.2, 1 - y, y)
    never = noisy.copy()
    never[:, 3] = 0                                   # a label never predicted...
    y_never = y.copy()
    y_never[:, 3] = 0                                 # ...and never true: F1 0 by convention
    one = y[:1]
    return [
        Case("40 sentences, 20% of the decisions flipped", (y, noisy)),
        Case("a label never predicted", (y, never)),
        Case("a label never predicted and never true", (y_never, never)),
        Case("perfect predictions", (y, y.copy())),
        Case("every decision wrong", (y, 1 - y)),
        Case("one sentence", (one, one.copy())),
    ]


def _code_cases() -> list[Case]:
    return [
        Case("the lecture's {+, j, f, s}", ({"+", "j", "f", "s"},)),
        Case("{i, s}", ({"i", "s"},)),
        Case("two valences", ({"-", "0", "j", "m", "p"},)),
        Case("every label", (set(LABELS),)),
        Case("labels given as a list in another order", (["m", "+", "a", "-"],)),
    ]


EXERCISES = [
    Exercise(
        id="10.f1_per_label",
        title="per-label F1 from 0/1 predictions",
        reference=_f1_reference,
        cases=_f1_cases,
        rtol=1e-12, atol=1e-12,
        hint="F1 = 2 TP / (2 TP + FP + FN) per column; 0 when that denominator is 0; return float64.",
    ),
    Exercise(
        id="10.canonical_code",
        title="the canonical code of a label set",
        reference=labels_to_code,
        cases=_code_cases,
        hint="subjects in the order j f s p m a t, one group per valence in the order + - 0 i, joined by commas.",
    ),
]
