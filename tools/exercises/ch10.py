"""Writes chapter 10's exercises section (labs form). Run: .venv/bin/python tools/exercises/ch10.py"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nb import (code, exercise, exercises_intro, replace_exercises, solution, solution_end,  # noqa: E402
                solution_start, tag_solution_cell)

NOTEBOOK = Path(__file__).resolve().parents[2] / "book" / "10_family_valence.ipynb"
HIDDEN = "# The numbers quoted in solution 3"

CELLS = [
    exercises_intro("Exercises 1 and 2 are", "Exercise 3 is an experiment with the chapter's models."),
    code("""import numpy as np
from neuraltext import labs"""),
    exercise("ex-10-f1", "Per-label F1 by hand", r"""
Write `f1_per_label(y_true, y_pred)` for two $n \times 11$ 0/1 arrays: return the eleven F1 scores
$F_1 = \frac{2\,TP}{2\,TP + FP + FN}$ as a float64 array, 0 when a label is never predicted and never
true. No scikit-learn: the check compares you with `sklearn.metrics.f1_score(average=None,
zero_division=0)`, which `per_label_report` uses."""),
    solution_start("ex-10-f1", "Count the three cells of each column's confusion table, then guard the empty case:"),
    code('''def f1_per_label(y_true, y_pred):
    """F1 of each column of two (n, labels) 0/1 arrays; 0 where 2 TP + FP + FN = 0."""
    ### BEGIN SOLUTION
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tp = (y_true * y_pred).sum(0)
    fp = ((1 - y_true) * y_pred).sum(0)
    fn = (y_true * (1 - y_pred)).sum(0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0).astype(np.float64)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("10.f1_per_label", f1_per_label)'),
    exercise("ex-10-code", "The canonical code of a label set", r"""
Write `canonical_code(labels)` returning the canonical code of a set of labels (the reverse of the
parser): every subject present, in the order `j f s p m a t`, followed by one valence; one group per
valence present, in the order `+ - 0 i`; groups joined by commas. For example {+, j, f, s} gives
`jfs+`. Then think about {-, 0, j, m, p}: is its canonical code the one a psychiatrist would write for
"je me dispute avec ma mère mais ça va avec mon père"?"""),
    solution_start("ex-10-code", r"""
Grouping is lost when codes become labels, so the canonical code pairs every subject with every
valence: {-, 0, j, m, p} gives `jmp-,jmp0`. The psychiatrist would write `jm-,jp0` (the dispute is with
the mother, the neutral relation with the father); both have the same eleven labels, which is all the
classifiers of this chapter predict: they cannot say *who* the negative relation is with."""),
    code('''def canonical_code(labels):
    """The canonical code of a label set, e.g. {"+", "j", "f", "s"} -> "jfs+"."""
    ### BEGIN SOLUTION
    labels = set(labels)
    subjects = "".join(s for s in "jfspmat" if s in labels)
    return ",".join(subjects + v for v in "+-0i" if v in labels)
    ### END SOLUTION'''),
    solution_end(),
    code('labs.check("10.canonical_code", canonical_code)'),
    exercise("ex-10-threshold", "The decision threshold", r"""
Predict with a threshold of 0.3 instead of 0.5 for the elastic-net model on TF-IDF. Which labels gain
recall, which lose precision, and why would tuning one threshold per label on the test set be unfair?"""),
    solution("ex-10-threshold", r"""
Lowering the threshold turns more probabilities into a 1: every label predicted at 0.5 is still
predicted at 0.3, so recall cannot fall, and precision usually does. In the run saved here (a hidden
cell before the summary computes it from the chapter's elastic-net model on TF-IDF), recall rises on
{glue:text}`ex_thr_recall_up` of the 11 labels, most on {glue:text}`ex_thr_recall_top`; precision
falls on {glue:text}`ex_thr_prec_down` labels, most on {glue:text}`ex_thr_prec_top`. Averaged over the
labels, precision falls by {glue:text}`ex_thr_prec_drop_val:.3f` on the four valences and by
{glue:text}`ex_thr_prec_drop_people:.3f` on the seven people. What the new threshold moves is the
probabilities between 0.3 and 0.5: {glue:text}`ex_thr_near_val:.1%` of the (sentence, label) pairs
for the valences, {glue:text}`ex_thr_near_people:.1%` for the people.

A threshold tuned per label on the test sentences uses the test labels to choose the model, so its
score is optimistic. Each label's threshold chosen from 0.05, 0.10, ..., 0.95 for the best F1 on the
test sentences gives a macro-F1 of {glue:text}`ex_thr_macro_test:.3f` on those same sentences, against
{glue:text}`ex_thr_macro_05:.3f` at 0.5 and {glue:text}`ex_thr_macro_train:.3f` with the thresholds
chosen the same way on out-of-fold probabilities of the training sentences
({glue:text}`ex_thr_folds` folds, the test sentences unseen). No thresholds from that grid can score a
higher macro-F1 on the test set than the ones tuned on it (each label's F1 is the largest the grid
allows), so that number says how well the thresholds fit these 330 sentences, not how the model will do
on new ones. Tune thresholds on the training data, or keep 0.5 for every method, as this chapter does."""),
]

if __name__ == "__main__":
    replace_exercises(NOTEBOOK, CELLS)
    tag_solution_cell(NOTEBOOK, HIDDEN)
