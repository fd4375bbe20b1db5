"""Use case 1's label pictures: the co-occurrence counts and the multilabel confusion, against
hand-counted examples and a plain loop."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from neuraltext.family import LABELS, cooccurrence, label_confusion, label_map, synthetic_family_sentences


def test_cooccurrence_counts_pairs_by_hand():
    y = np.zeros((3, len(LABELS)), dtype=int)
    y[0, [LABELS.index("+"), LABELS.index("j"), LABELS.index("m")]] = 1
    y[1, [LABELS.index("+"), LABELS.index("m")]] = 1
    y[2, [LABELS.index("-"), LABELS.index("p")]] = 1
    c = cooccurrence(y)
    assert c.loc["+", "m"] == c.loc["m", "+"] == 2
    assert c.loc["+", "j"] == 1 and c.loc["-", "m"] == 0
    assert [c.loc[l, l] for l in LABELS] == y.sum(axis=0).tolist()  # the diagonal is the support


def test_label_confusion_against_a_loop():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 2, (50, len(LABELS))), rng.integers(0, 2, (50, len(LABELS)))
    m = label_confusion(t, p)
    for i in range(len(LABELS)):
        rows = [n for n in range(50) if t[n, i]]
        for j in range(len(LABELS)):
            assert m.iloc[i, j] == pytest.approx(sum(p[n, j] for n in rows) / len(rows))
    recall = (t * p).sum(0) / t.sum(0)  # the diagonal is each label's recall
    assert np.allclose(np.diag(m.to_numpy()), recall)


def test_label_confusion_names_a_neutral_read_as_positive():
    y = np.zeros((2, len(LABELS)), dtype=int)
    y[:, LABELS.index("0")] = 1
    pred = np.zeros_like(y)
    pred[0, LABELS.index("+")] = 1
    pred[1, LABELS.index("0")] = 1
    m = label_confusion(y, pred)
    assert m.loc["0", "+"] == 0.5 and m.loc["0", "0"] == 0.5
    assert np.isnan(m.loc["t", "t"])  # no sentence labelled t: no share, not 0


@pytest.mark.parametrize("bad, message", [(np.zeros((3, 4)), "shape"), (np.full((3, len(LABELS)), 2), "0/1")])
def test_bad_label_matrices_are_refused_by_name(bad, message):
    with pytest.raises(ValueError, match=f"y .*{message}|{message}"):
        cooccurrence(bad)
    with pytest.raises(ValueError, match="y_pred"):
        label_confusion(np.zeros((3, len(LABELS)), dtype=int), bad)


def test_label_map_draws_every_cell():
    data = synthetic_family_sentences(n=100, seed=0)
    ax = label_map(cooccurrence(data.y), fmt="{:.0f}")
    assert len(ax.texts) == len(LABELS) ** 2
    assert [t.get_text() for t in ax.get_xticklabels()] == list(LABELS)
