"""TF-IDF exactly as the course defines it.

For a term ``t`` and a document ``d`` of a corpus ``D``:

$$ \\mathrm{tf}_{t,d} = \\text{number of times } t \\text{ occurs in } d $$

$$ \\mathrm{idf}_t = \\log \\frac{|D|}{|\\{d \\in D : t \\in d\\}|} $$

$$ \\mathrm{tfidf}_{t,d} = \\mathrm{tf}_{t,d} \\cdot \\mathrm{idf}_t $$

(natural logarithm). A term found in every document gets ``idf = 0``: it says nothing about which
document you are reading. Since a document is reduced to counts, its vector does not change when
its words are shuffled (the course's remark: TF-IDF ignores word order).

scikit-learn's ``TfidfVectorizer`` computes a variant. With ``smooth_idf=False, norm=None,
sublinear_tf=False`` it returns ``tf * (idf + 1)``: its ``idf_`` is the course's ``idf`` plus one, so

    course = sklearn(smooth_idf=False, norm=None) - CountVectorizer counts

on the same tokens (pass the same ``analyzer``). Its defaults add more: ``smooth_idf=True``
uses ``log((1 + |D|) / (1 + df)) + 1`` and ``norm="l2"`` scales each row to unit length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["TfIdf"]


class TfIdf(TransformerMixin, BaseEstimator):
    """The course's TF-IDF as a scikit-learn transformer of documents (``fit`` / ``transform``):
    ``get_params``/``set_params``/``clone`` work and ``fit`` never changes a parameter. Like
    scikit-learn's ``TfidfVectorizer`` it reads text, so it declares text input and sklearn's numeric
    estimator checks do not apply to it (the tests run the API checks that do).

    Args:
        tokenizer: a callable ``str -> list[str]``; default: :class:`WordTokenizer`'s ``tokenize``
            (French-aware words, lower-cased).
        min_df: ignore terms found in fewer documents than this.

    Learned attributes: ``vocabulary_`` (term -> column, terms sorted), ``idf_`` (one value per
    column), ``df_`` (document frequencies), ``n_documents_``.
    """

    def __init__(self, tokenizer: Callable[[str], list[str]] | None = None, min_df: int = 1):
        self.tokenizer = tokenizer
        self.min_df = min_df

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False  # documents (strings or token lists), not numbers
        tags.input_tags.string = True
        return tags


    def _counts(self, docs: Iterable, vocabulary: dict[str, int] | None):
        """tf as a sparse (documents x terms) matrix; grows the vocabulary when it is None."""
        if isinstance(docs, str):
            raise TypeError("expected an iterable of documents (strings or token lists), not one string")
        grow = vocabulary is None
        vocab: dict[str, int] = {} if grow else vocabulary
        rows, cols = [], []
        n_docs = 0
        # the default tokenizer is made here, not stored: fit must not change the `tokenizer` parameter
        tokenize = self.tokenizer if self.tokenizer is not None else _default_tokenizer()
        for i, doc in enumerate(docs):
            n_docs += 1
            for tok in (tokenize(doc) if isinstance(doc, str) else list(doc)):  # text, or tokens
                j = vocab.setdefault(tok, len(vocab)) if grow else vocab.get(tok)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        if n_docs == 0:
            raise ValueError("empty corpus: TF-IDF needs at least one document")
        data = np.ones(len(rows), dtype=np.float64)
        tf = sp.csr_matrix((data, (rows, cols)), shape=(n_docs, len(vocab)))
        tf.sum_duplicates()  # repeated (doc, term) entries add up: raw counts
        return tf, vocab

    def fit(self, docs: Iterable, y=None) -> "TfIdf":
        self.fit_transform(docs)
        return self

    def fit_transform(self, docs: Iterable, y=None) -> sp.csr_matrix:
        if self.min_df < 1:
            raise ValueError(f"min_df must be >= 1, got {self.min_df}")
        tf, vocab = self._counts(docs, None)
        if not vocab:
            raise ValueError("empty corpus: the documents contain no tokens")
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        # columns in alphabetical order of the terms (as scikit-learn), rare terms dropped
        terms = sorted(t for t, j in vocab.items() if df[j] >= self.min_df)
        if not terms:
            raise ValueError(f"no term occurs in at least min_df={self.min_df} documents")
        order = np.array([vocab[t] for t in terms])
        tf = tf[:, order].tocsr()
        self.vocabulary_ = {t: j for j, t in enumerate(terms)}
        self.df_ = df[order]
        self.n_documents_ = tf.shape[0]
        self.idf_ = np.log(self.n_documents_ / self.df_)
        return self._weight(tf)

    def transform(self, docs: Iterable) -> sp.csr_matrix:
        """TF-IDF of new documents with the fitted ``idf_`` (unknown terms are ignored)."""
        if not hasattr(self, "idf_"):
            raise RuntimeError("this TfIdf is not fitted yet: call fit(documents) first")
        tf, _ = self._counts(docs, self.vocabulary_)
        return self._weight(tf)

    def _weight(self, tf: sp.csr_matrix) -> sp.csr_matrix:
        # tfidf_{t,d} = tf_{t,d} * idf_t: scale each column (the CSR stores column indices)
        out = tf.copy()
        out.data = out.data * self.idf_[out.indices]
        return out

    def get_feature_names_out(self) -> np.ndarray:
        return np.array(sorted(self.vocabulary_, key=self.vocabulary_.get), dtype=object)


def _default_tokenizer() -> Callable[[str], list[str]]:
    from neuraltext.tokenize.simple import WordTokenizer

    return WordTokenizer().tokenize
