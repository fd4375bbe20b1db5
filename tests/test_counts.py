"""Co-occurrence counts, PPMI and truncated SVD (chapter 2), against naive loops, SciPy and the
course's toy example."""

from __future__ import annotations


import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

import torch

from neuraltext.cooccurrence import (TOY_CORPUS, TOY_COURSE_VECTORS, TOY_VOCABULARY, CooccurrenceSVD,
                                     build_vocabulary, cooccurrence_matrix, ppmi, truncated_svd)
from neuraltext.data import synthetic_corpus
from sklearn_text_checks import API_CHECKS  # noqa: E402 (tests/ helper)

# The course's toy example as printed on the slide (lecture notes 003): the co-occurrence matrix
# (22 rows, printed with 23 columns) and the 2-D word vectors U_2 D_2 (the row of "analysis" is
# elided on the slide).
COURSE_MATRIX = """
0 2 1 1 1 2 1 1 1 1 1 0 0 0 0 0 0 1 1 1 1 1 1
2 0 1 1 0 1 0 0 0 1 0 0 0 0 0 0 0 1 1 1 1 1 1
1 1 0 1 1 0 0 0 0 1 0 0 0 1 1 0 0 0 0 0 0 0 0
1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
1 0 1 0 0 1 1 1 1 1 0 0 1 1 0 0 0 0 0 0 0 0 0
2 1 0 0 1 0 1 1 2 2 1 1 1 1 1 1 1 1 1 1 1 1 1
1 0 0 0 1 1 0 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0
1 0 0 0 1 1 1 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0
1 0 0 0 1 2 1 1 0 0 0 0 0 1 1 1 1 0 0 0 0 0 0
1 1 1 0 1 2 0 0 0 0 1 1 1 1 1 0 0 1 1 1 1 1 1
0 0 0 0 0 1 0 0 0 1 0 1 1 0 0 0 0 0 0 0 0 0 0
0 0 0 0 0 1 0 0 0 1 1 0 1 0 0 0 0 0 0 0 0 0 0
0 0 0 0 0 1 0 0 0 1 1 1 0 0 0 0 0 0 0 0 0 0 0
0 0 1 0 1 1 0 0 1 1 0 0 0 0 2 1 1 0 0 0 0 0 0
0 0 1 0 1 1 0 0 1 1 0 0 0 2 0 1 1 0 0 0 0 0 0
0 0 0 0 0 1 0 0 1 0 0 0 0 1 1 0 1 0 0 0 0 0 0
0 0 0 0 0 1 0 0 1 0 0 0 0 1 1 1 0 0 0 0 0 0 0
1 1 0 0 0 1 0 0 0 1 0 0 0 0 0 0 0 1 1 1 1 1 1
1 1 0 0 0 1 0 0 0 1 0 0 0 0 0 0 0 1 0 1 1 1 1
1 1 0 0 0 1 0 0 0 1 0 0 0 0 0 0 0 1 1 0 1 1 1
1 1 0 0 0 1 0 0 0 1 0 0 0 0 0 0 0 1 1 1 0 1 1
1 1 0 0 0 1 0 0 0 1 0 0 0 0 0 0 0 1 1 1 1 1 0
"""
COURSE_VECTORS = [
    [3.72113518, -0.73233585], [2.7940387, -1.40864784], [1.61178082, 0.44786021], [np.nan, np.nan],
    [2.12245048, 1.29571556], [4.49293777, 0.58090417], [1.33312748, 0.66758743],
    [1.33312748, 0.66758743], [2.25882809, 1.80738544], [3.56593605, -0.31006976],
    [0.95394179, 0.079159], [0.95394179, 0.079159], [0.95394179, 0.079159],
    [1.92921553, 1.94783497], [1.92921553, 1.94783497], [1.12301312, 1.42126096],
    [1.12301312, 1.42126096]] + [[2.26025282, -1.31571175]] * 5


def _naive_cooccurrence(sentences, vocab, window):
    """The definition, one pair at a time."""
    stoi = {w: i for i, w in enumerate(vocab)}
    C = np.zeros((len(vocab), len(vocab)))
    for s in sentences:
        for p, a in enumerate(s):
            for q, b in enumerate(s):
                if p != q and abs(p - q) <= window and a in stoi and b in stoi:
                    C[stoi[a], stoi[b]] += 1
    return C


@pytest.fixture(scope="module")
def corpus():
    return synthetic_corpus(100_000, seed=2)


# ---------------------------------------------------------------------------- the toy example
def test_toy_vocabulary_is_the_courses():
    assert len(TOY_VOCABULARY) == 22
    assert TOY_VOCABULARY[:6] == ["cnn", "in", "crop", "analysis", "and", "svm"]
    assert TOY_VOCABULARY[-5:] == ["do", "appear", "the", "same", "context"]


def test_toy_matrix_equals_the_courses():
    """Every cell of the slide's matrix equals ours, except one stray printed column and four
    cells where the slide contradicts its own symmetry (C[i, j] != C[j, i]): typos."""
    ours = cooccurrence_matrix(TOY_CORPUS, TOY_VOCABULARY, window=10).toarray()
    assert (ours == ours.T).all()
    printed = np.array([[int(x) for x in row.split()] for row in COURSE_MATRIX.strip().splitlines()])
    assert printed.shape == (22, 23)
    slide = np.delete(printed, 21, axis=1)
    differ = {tuple(ij) for ij in np.argwhere(slide != ours)}
    assert differ == {(0, 10), (4, 12), (4, 14), (17, 17)}
    for i, j in differ:  # each one breaks the slide's own symmetry (or its zero diagonal)
        assert slide[i, j] != slide[j, i] or i == j
    assert (slide == ours).sum() == 22 * 22 - 4


@pytest.mark.parametrize("method", ["dense", "torch", "torch_lowrank", "scipy", "sklearn"])
def test_toy_svd_reproduces_the_courses_2d_vectors(method):
    est = CooccurrenceSVD(window=10, n_components=2, weighting="count", vocabulary=TOY_VOCABULARY,
                          svd=method).fit(TOY_CORPUS)
    expected = np.array(COURSE_VECTORS)
    known = ~np.isnan(expected[:, 0])
    tol = 1e-7 if method in ("dense", "scipy", "sklearn") else 1e-5  # torch: float32 by default
    assert (TOY_COURSE_VECTORS[known] == expected[known]).all()
    np.testing.assert_allclose(est.vectors_[known], expected[known], rtol=0, atol=tol)


# ---------------------------------------------------------------------------- counting and PPMI
@pytest.mark.parametrize("window", [1, 2, 5])
def test_vectorised_counts_equal_the_definition(window):
    rng = np.random.default_rng(window)
    words = [f"w{i}" for i in range(12)]
    sentences = [list(rng.choice(words, size=rng.integers(1, 15))) for _ in range(40)]
    vocab = words[:9]  # w9..w11 are out of vocabulary: they take a position but count for nothing
    C = cooccurrence_matrix(sentences, vocab, window)
    assert sp.isspmatrix_csr(C)
    np.testing.assert_array_equal(C.toarray(), _naive_cooccurrence(sentences, vocab, window))


@pytest.mark.parametrize("dense_cells", [0, 10**8])
def test_both_counting_branches_equal_the_definition(dense_cells, monkeypatch):
    """Small vocabularies are counted by one bincount over all |V|² cells and C = U + U^T; large
    ones by sorting the pairs of both directions: both give the definition's counts."""
    from neuraltext.cooccurrence import counts

    monkeypatch.setattr(counts, "DENSE_COUNT_CELLS", dense_cells)
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(15)]
    sentences = [list(rng.choice(words, size=rng.integers(1, 20))) for _ in range(60)]
    vocab = words[:12]
    C = cooccurrence_matrix(sentences, vocab, 3)
    assert sp.isspmatrix_csr(C) and C.dtype == np.float64
    np.testing.assert_array_equal(C.toarray(), _naive_cooccurrence(sentences, vocab, 3))


def test_counts_do_not_cross_sentences():
    C = cooccurrence_matrix([["a", "b"], ["c"]], ["a", "b", "c"], window=3).toarray()
    np.testing.assert_array_equal(C, [[0, 1, 0], [1, 0, 0], [0, 0, 0]])


def test_ppmi_equals_the_dense_formula(corpus):
    vocab, _ = build_vocabulary(corpus.sentences, min_count=20)
    C = cooccurrence_matrix(corpus.sentences, vocab, 3)
    D = C.toarray()
    with np.errstate(divide="ignore"):
        pmi = np.log(D * D.sum() / (D.sum(1, keepdims=True) * D.sum(0, keepdims=True)))
    np.testing.assert_allclose(ppmi(C).toarray(), np.maximum(pmi, 0), rtol=1e-12, atol=1e-12)
    c = D.sum(0) ** 0.75
    with np.errstate(divide="ignore"):
        smoothed = np.log(D / D.sum() / (D.sum(1, keepdims=True) / D.sum()) / (c / c.sum()))
    np.testing.assert_allclose(ppmi(C, alpha=0.75).toarray(), np.maximum(smoothed, 0), atol=1e-12)


# ---------------------------------------------------------------------------- SVD
def test_torch_svd_lowrank_agrees_with_scipy_on_leading_components(corpus):
    vocab, _ = build_vocabulary(corpus.sentences, min_count=5)
    P = ppmi(cooccurrence_matrix(corpus.sentences, vocab, 5))
    k = 30
    U_ref, s_ref, Vt_ref = truncated_svd(P, k, method="scipy")
    for method, kwargs in [("torch", {}), ("sklearn", {})]:
        U, s, Vt = truncated_svd(P, k, method=method, **kwargs)
        np.testing.assert_allclose(s, s_ref, rtol=1e-4)
        # leading singular vectors: the same up to sign (fixed by svd_flip), well separated values
        top = 10
        assert np.abs(np.abs(np.sum(U[:, :top] * U_ref[:, :top], axis=0)) - 1).max() < 1e-3
        np.testing.assert_allclose(U[:, :top], U_ref[:, :top], atol=5e-3)


def test_our_randomized_svd_is_torch_svd_lowrank(corpus):
    """Same algorithm, same random matrix: ours (A and A^T both CSR) equals torch.svd_lowrank."""
    vocab, _ = build_vocabulary(corpus.sentences, min_count=5)
    P = ppmi(cooccurrence_matrix(corpus.sentences, vocab, 5))
    U1, s1, Vt1 = truncated_svd(P, 20, method="torch", n_oversamples=30, n_iter=3, dtype=torch.float64,
                                normalizer="qr")
    U2, s2, Vt2 = truncated_svd(P, 20, method="torch_lowrank", n_oversamples=30, n_iter=3, dtype=torch.float64)
    np.testing.assert_allclose(s1, s2, rtol=1e-10)
    np.testing.assert_allclose(U1, U2, atol=1e-8)
    np.testing.assert_allclose(Vt1, Vt2, atol=1e-8)


def test_lu_normaliser_spans_the_same_columns_and_gives_the_same_svd(corpus):
    """The LU basis (scikit-learn's power-iteration normaliser, our default) is P @ L of Y = P L U
    and spans Y's columns; the SVD it gives equals the QR-normalised one (torch.svd_lowrank's)."""
    from neuraltext.cooccurrence.svd import _lu_basis

    for shape in [(12, 12), (50, 8)]:          # square and tall: the pivots replayed as a permutation
        Y_ = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        P, L, _ = torch.linalg.lu(Y_)
        torch.testing.assert_close(_lu_basis(Y_), P @ L)
    Y = torch.randn(50, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    B = _lu_basis(Y)
    Q = torch.linalg.qr(B).Q
    torch.testing.assert_close(Q @ (Q.T @ Y), Y)                 # Y lies in span(B)
    vocab, _ = build_vocabulary(corpus.sentences, min_count=5)
    X = ppmi(cooccurrence_matrix(corpus.sentences, vocab, 5))
    U1, s1, Vt1 = truncated_svd(X, 20, method="torch", n_oversamples=30, n_iter=3, dtype=torch.float64)
    U2, s2, Vt2 = truncated_svd(X, 20, method="torch", n_oversamples=30, n_iter=3, dtype=torch.float64,
                                normalizer="qr")
    np.testing.assert_allclose(s1, s2, rtol=1e-8)
    np.testing.assert_allclose(np.abs(U1[:, :10]), np.abs(U2[:, :10]), atol=1e-6)
    with pytest.raises(ValueError, match="normalizer must be 'qr'.*or 'lu'.*got 'svd'"):
        truncated_svd(X, 5, method="torch", normalizer="svd")


def test_dense_svd_of_a_known_matrix():
    rng = np.random.default_rng(0)
    Q1, _ = np.linalg.qr(rng.standard_normal((40, 40)))
    Q2, _ = np.linalg.qr(rng.standard_normal((30, 30)))
    s = np.linspace(10, 1, 30)
    X = Q1[:, :30] * s @ Q2.T
    for method in ("dense", "scipy", "torch", "torch_lowrank"):
        _, s_hat, _ = truncated_svd(sp.csr_matrix(X), 5, method=method)
        np.testing.assert_allclose(s_hat, s[:5], rtol=1e-5)
        _, s_hat, _ = truncated_svd(X, 5, method=method)  # dense input too
        np.testing.assert_allclose(s_hat, s[:5], rtol=1e-5)


# ---------------------------------------------------------------------------- the estimator
def test_estimator_contract_and_neighbours(corpus):
    est = CooccurrenceSVD(window=5, n_components=50, min_count=5)
    assert not hasattr(est, "vectors_")
    assert est.fit(corpus.sentences) is est
    n = len(est.vocabulary_)
    assert est.vectors_.shape == (n, 50) and est.components_.shape == (50, n)
    assert est.cooccurrence_.shape == est.matrix_.shape == (n, n)
    assert (np.diff(est.singular_values_) <= 0).all()
    assert clone(est).get_params()["window"] == 5
    # cosine similarity, checked by hand
    a, b = est["père"], est["mère"]
    assert est.similarity("père", "mère") == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    neighbours = est.most_similar("père", topn=5)
    assert len(neighbours) == 5 and "père" not in dict(neighbours)
    sims = [s for _, s in neighbours]
    assert sims == sorted(sims, reverse=True)
    # the planted structure shows: organs are nearest to organs
    organs = set(corpus.groups["organ"])
    assert len(organs & {w for w, _ in est.most_similar("poumon", topn=5)}) >= 3


def test_plot_map():
    import matplotlib
    matplotlib.use("Agg")
    est = CooccurrenceSVD(window=10, n_components=2, weighting="count", vocabulary=TOY_VOCABULARY,
                          svd="dense").fit(TOY_CORPUS)
    ax = est.plot_map(["cnn", "svm", "farm"])
    assert sorted(t.get_text() for t in ax.texts) == ["cnn", "farm", "svm"]


def test_bad_input(corpus):
    with pytest.raises(ValueError, match="empty corpus"):
        CooccurrenceSVD().fit([])
    with pytest.raises(ValueError, match="empty corpus"):
        CooccurrenceSVD().fit([[], []])
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        CooccurrenceSVD(window=0).fit(TOY_CORPUS)
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        cooccurrence_matrix(TOY_CORPUS, TOY_VOCABULARY, window=-2)
    with pytest.raises(ValueError, match=r"n_components=50 is larger than the vocabulary \(22 words\)"):
        CooccurrenceSVD(n_components=50).fit(TOY_CORPUS)
    with pytest.raises(ValueError, match=r"rank k=30 is larger .* 22 x 22"):
        truncated_svd(sp.identity(22, format="csr"), 30)
    with pytest.raises(ValueError, match="unknown SVD method"):
        truncated_svd(sp.identity(5, format="csr"), 2, method="magic")
    with pytest.raises(TypeError, match="lists of tokens"):
        cooccurrence_matrix(["cnn in crop"], TOY_VOCABULARY)
    with pytest.raises(KeyError, match="not in the vocabulary"):
        CooccurrenceSVD(window=10, n_components=2, weighting="count").fit(TOY_CORPUS).most_similar("zorglub")
    with pytest.raises(RuntimeError, match="not fitted"):
        CooccurrenceSVD().most_similar("cnn")


def test_default_corpus_is_rich_enough_for_rank_100():
    """The default synthetic corpus: 1M tokens, 1,000-3,000 word types, Zipf-like frequencies,
    every word of the plotting groups present."""
    big = synthetic_corpus()
    vocab, counts = build_vocabulary(big.sentences)
    assert 1_000 <= len(vocab) <= 3_000
    ranks = np.arange(1, len(counts) + 1)
    slope = np.polyfit(np.log(ranks[10:1000]), np.log(counts[10:1000]), 1)[0]
    assert -2.0 < slope < -0.8, slope  # roughly Zipf: frequency ~ rank^slope
    words = set(vocab)
    for name, group in big.groups.items():
        assert set(group) <= words, name


# --------------------------------------------------------------------------- bad input, clearly
def test_a_float_array_is_not_taken_as_a_corpus():
    """Before: the floats were counted as words and fit() returned vectors for them."""
    X = np.random.default_rng(0).random((10, 5))
    with pytest.raises(TypeError, match=r"token 0\.\d+ of type float64.*not a corpus"):
        CooccurrenceSVD(n_components=2).fit(X)
    with pytest.raises(TypeError, match="of type float"):
        CooccurrenceSVD(n_components=2, vocabulary=[0.5, 1.5]).fit([[0.5, 1.5]])
    with pytest.raises(TypeError, match="of type float"):
        build_vocabulary([[0.5, 1.5]])


def test_ppmi_refuses_a_nan_count():
    """Before: one NaN count made every comparison false and ppmi returned an empty matrix."""
    C = sp.csr_matrix(np.array([[0, 2, 1], [2, 0, np.nan], [1, np.nan, 0]]))
    with pytest.raises(ValueError, match=r"must be finite: C\[1, 2\] = nan"):
        ppmi(C)
    with pytest.raises(ValueError, match="finite"):
        ppmi(sp.csr_matrix(np.array([[0.0, np.inf], [np.inf, 0.0]])))


def test_sklearn_svd_at_full_rank_equals_the_dense_svd():
    """Before: rank = vocabulary size asked TruncatedSVD for 0 oversamples and failed with its
    parameter error; now the rank is allowed and the values are right."""
    X = sp.csr_matrix(cooccurrence_matrix(TOY_CORPUS, TOY_VOCABULARY, window=10))
    _, s, _ = truncated_svd(X, 22, method="sklearn")
    _, s_dense, _ = truncated_svd(X, 22, method="dense")
    np.testing.assert_allclose(s, s_dense, atol=1e-8)
    est = CooccurrenceSVD(window=10, n_components=22, svd="sklearn", weighting="count").fit(TOY_CORPUS)
    np.testing.assert_allclose(est.singular_values_, s_dense, atol=1e-8)


# ------------------------------------------------------------------------- scikit-learn's contracts
@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_api_checks(check):
    check("CooccurrenceSVD", CooccurrenceSVD())


def test_text_input_is_declared_and_fit_keeps_parameters_and_is_idempotent():
    """Before: check_estimator refused to start (no tags for a text estimator). The checks it would
    run on numbers, done here on sentences: fit returns self, leaves the parameters as they were, and
    a refit after other data equals a fresh fit."""
    from sklearn.utils import get_tags

    from sklearn.utils.estimator_checks import check_estimator

    tags = get_tags(CooccurrenceSVD())
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    with pytest.warns(Warning, match="Can't test estimator CooccurrenceSVD which requires input"):
        check_estimator(CooccurrenceSVD())  # starts, and skips its numeric checks (as for TfidfVectorizer)
    vocab = list(TOY_VOCABULARY)
    est = CooccurrenceSVD(window=10, n_components=2, weighting="count", vocabulary=vocab, svd="dense")
    before = clone(est).get_params()
    assert est.fit(TOY_CORPUS) is est
    assert est.get_params() == before and est.vocabulary is vocab and vocab == TOY_VOCABULARY
    fresh = clone(est).fit(TOY_CORPUS)
    est.set_params(vocabulary=None).fit([["autre", "chose"], ["autre", "mot"]])
    est.set_params(vocabulary=vocab).fit(TOY_CORPUS)
    np.testing.assert_array_equal(est.vectors_, fresh.vectors_)
    assert est.vocabulary_ == fresh.vocabulary_


def test_torch_svd_runs_on_the_threads_asked_and_restores_them(monkeypatch):
    """cpu_threads=1 (the default) while the SVD runs, the settings as they were after."""
    import neuraltext.cooccurrence.svd as svd
    from threadpoolctl import threadpool_info

    seen = []
    real = svd._torch_factor

    def spy(*args, **kwargs):
        seen.append((torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()]))
        return real(*args, **kwargs)

    monkeypatch.setattr(svd, "_torch_factor", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    pools_before = [p["num_threads"] for p in threadpool_info()]
    try:
        truncated_svd(sp.identity(30, format="csr"), 3)
        assert seen == [(1, [1] * len(pools_before))]
        assert torch.get_num_threads() == 3 and [p["num_threads"] for p in threadpool_info()] == pools_before
    finally:
        torch.set_num_threads(before)
