"""Chapter 2's exercises: the co-occurrence matrix of a small corpus and its PPMI weighting.

The references are the package's :func:`~neuraltext.cooccurrence.counts.cooccurrence_matrix` (which reproduces the
lecture's toy matrix) and :func:`~neuraltext.cooccurrence.counts.ppmi`, densified.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from neuraltext.cooccurrence import TOY_CORPUS, TOY_VOCABULARY, cooccurrence_matrix, ppmi
from neuraltext.labs.check import Case, Exercise


def _cooccurrence_reference(sentences, vocabulary, window):
    return cooccurrence_matrix(sentences, vocabulary, window=window).toarray()


def _random_corpus(seed: int, n: int = 15):
    rng = np.random.default_rng(seed)
    words = "le la chat chien dort mange lait poisson souris".split()
    return [[str(w) for w in rng.choice(words, size=int(rng.integers(1, 9)))] for _ in range(n)]


def _cooccurrence_cases() -> list[Case]:
    small = [s.split() for s in ["le chat dort", "le chien dort", "le chat mange le poisson"]]
    small_vocab = ["le", "chat", "dort", "chien", "mange", "poisson"]
    rand = _random_corpus(0)
    return [
        Case("the lecture's toy corpus, window 10", ([list(s) for s in TOY_CORPUS], list(TOY_VOCABULARY), 10)),
        Case("three sentences, window 1", (small, small_vocab, 1)),
        Case("a word repeated two positions apart (the diagonal), window 2",
             ([["le", "chat", "le", "chien"]], ["chat", "chien", "le"], 2)),
        Case("a word outside the vocabulary still takes its place",
             ([["le", "gros", "chat", "dort"]], ["chat", "dort", "le"], 1)),
        Case("one-word sentences and a window longer than the sentences",
             ([["dort"], ["le", "chat"], ["chat"]], ["le", "chat", "dort"], 5)),
        Case("15 random sentences, window 3", (rand, sorted({w for s in rand for w in s}), 3)),
    ]


def _ppmi_reference(C, alpha=1.0):
    return ppmi(sp.csr_matrix(C), alpha=alpha).toarray()


def _ppmi_cases() -> list[Case]:
    toy = cooccurrence_matrix(TOY_CORPUS, TOY_VOCABULARY, window=10).toarray()
    rng = np.random.default_rng(0)
    rect = rng.poisson(2.0, size=(4, 6)).astype(np.float64)
    lonely = np.array([[0, 3, 1, 0], [3, 0, 2, 0], [1, 2, 4, 0], [0, 0, 0, 0]], dtype=np.float64)
    return [
        Case("the toy co-occurrence matrix", (toy,)),
        Case("a 3 x 3 symmetric matrix", (np.array([[0.0, 4.0, 1.0], [4.0, 0.0, 2.0], [1.0, 2.0, 6.0]]),)),
        Case("a 4 x 6 matrix: rows and columns are not the same", (rect,)),
        Case("a word that never co-occurs (zero row and column)", (lonely,)),
        Case("the toy matrix, alpha = 0.75", (toy,), {"alpha": 0.75}),
        Case("the 4 x 6 matrix, alpha = 0.75", (rect,), {"alpha": 0.75}),
    ]


EXERCISES = [
    Exercise(
        id="02.cooccurrence",
        title="the co-occurrence matrix of a small corpus",
        reference=_cooccurrence_reference,
        cases=_cooccurrence_cases,
        rtol=0.0, atol=1e-12,
        hint="for each pair of positions p != q of a sentence with |p - q| <= window, add 1 to "
             "C[word p, word q]; a word not in the vocabulary adds nothing but keeps its position.",
    ),
    Exercise(
        id="02.ppmi",
        title="positive pointwise mutual information",
        reference=_ppmi_reference,
        cases=_ppmi_cases,
        rtol=1e-9, atol=1e-12,
        hint="N = C.sum(), r = row sums, P(j) = c_j^alpha / sum_k c_k^alpha with c the column sums; "
             "compute the log only where C > 0 (the other entries are 0, never NaN).",
    ),
]
