"""TF-IDF as the course defines it, against scikit-learn's TfidfVectorizer (chapter 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from neuraltext.data import synthetic_corpus
from neuraltext.tokenize import TfIdf, WordTokenizer
from sklearn_text_checks import API_CHECKS  # noqa: E402 (tests/ helper)

DOCS = ["le chat dort", "le chien dort", "le chat mange le poisson"]


def test_hand_computed_values():
    X = TfIdf().fit_transform(DOCS).toarray()
    tfidf = TfIdf().fit(DOCS)
    vocab = tfidf.vocabulary_
    assert list(vocab) == sorted(vocab)
    # "le": in all 3 documents -> idf = log(3/3) = 0 ; "chat": 2 of 3 ; "poisson": 1 of 3
    assert X[2, vocab["le"]] == 0.0
    assert X[2, vocab["chat"]] == pytest.approx(math.log(3 / 2))
    assert X[2, vocab["poisson"]] == pytest.approx(math.log(3))
    assert X[0, vocab["poisson"]] == 0.0
    assert tfidf.df_[vocab["dort"]] == 2
    assert tfidf.n_documents_ == 3


def test_equals_sklearn_with_the_stated_mapping():
    """course = sklearn(smooth_idf=False, norm=None) - counts, on the same tokens."""
    docs = synthetic_corpus(30_000, seed=5).text().split("\n")[:800]
    tokenize = WordTokenizer().tokenize
    ours = TfIdf(tokenizer=tokenize)
    X = ours.fit_transform(docs)
    sk = TfidfVectorizer(analyzer=tokenize, smooth_idf=False, norm=None, sublinear_tf=False)
    S = sk.fit_transform(docs)
    C = CountVectorizer(analyzer=tokenize).fit_transform(docs)
    assert ours.vocabulary_ == sk.vocabulary_
    np.testing.assert_allclose(ours.idf_, sk.idf_ - 1.0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(X.toarray(), (S - C).toarray(), rtol=1e-12, atol=1e-12)
    # transform on new documents agrees too (unknown words ignored by both)
    new = ["mon grand-père est très content .", "un mot inconnu zorglub ."]
    np.testing.assert_allclose(ours.transform(new).toarray(),
                               (sk.transform(new) - CountVectorizer(analyzer=tokenize).fit(docs).transform(new)).toarray(),
                               atol=1e-12)


def test_token_lists_and_min_df():
    docs = [["a", "b", "b"], ["a", "c"], ["a", "b"]]
    t = TfIdf(min_df=2).fit(docs)
    assert list(t.get_feature_names_out()) == ["a", "b"]
    X = t.transform([["b", "b", "c"]]).toarray()
    np.testing.assert_allclose(X, [[0.0, 2 * math.log(3 / 2)]])


@settings(max_examples=40, deadline=None)
@given(st.permutations(list(range(8))))
def test_a_sentence_vector_is_invariant_under_word_permutation(perm):
    words = "je trouve que ma grand-mère est très fière".split()
    t = TfIdf().fit(DOCS + [" ".join(words), "ma sœur est fière"])
    shuffled = " ".join(words[i] for i in perm)
    a = t.transform([" ".join(words)]).toarray()
    b = t.transform([shuffled]).toarray()
    np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(a) > 0


def test_bad_input():
    with pytest.raises(ValueError, match="empty corpus"):
        TfIdf().fit([])
    with pytest.raises(ValueError, match="empty corpus"):
        TfIdf().fit(["", "  "])
    with pytest.raises(TypeError, match="not one string"):
        TfIdf().fit("le chat dort")
    with pytest.raises(RuntimeError, match="not fitted"):
        TfIdf().transform(DOCS)
    with pytest.raises(ValueError, match="min_df"):
        TfIdf(min_df=5).fit(DOCS)


# ------------------------------------------------------------------------- scikit-learn's contracts
def test_fit_does_not_change_the_tokenizer_parameter_and_clone_works():
    """Before: fit() replaced tokenizer=None by a bound method, and clone raised TypeError."""
    from sklearn.base import clone

    est = TfIdf()
    est.fit(DOCS)
    assert est.tokenizer is None and est.get_params() == {"tokenizer": None, "min_df": 1}
    copy = clone(est)
    assert not hasattr(copy, "idf_") and copy.get_params() == est.get_params()
    np.testing.assert_allclose(copy.fit_transform(DOCS).toarray(), est.transform(DOCS).toarray())
    # refitting on other data leaves nothing behind: same result as a fresh fit
    est.fit(["autre chose", "encore autre chose"]).fit(DOCS)
    np.testing.assert_allclose(est.transform(DOCS).toarray(), TfIdf().fit_transform(DOCS).toarray())


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_sklearn_api_checks(check):
    check("TfIdf", TfIdf())


def test_sklearn_skips_its_numeric_checks_because_the_input_is_text():
    """TfIdf declares text input (as TfidfVectorizer does): check_estimator runs no numeric check."""
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import check_estimator

    tags = get_tags(TfIdf())
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    with pytest.warns(Warning, match="Can't test estimator TfIdf which requires input"):
        check_estimator(TfIdf())
