"""Word vectors from counts: co-occurrence matrix, PPMI, truncated SVD (chapter 2).

"You shall know a word by the company it keeps" (Firth): two words that appear among the same
neighbours get similar rows in the **co-occurrence matrix**

$$ C_{ij} = \\#\\{(s, p, q) : w_{s,p} = i,\\ w_{s,q} = j,\\ 0 < |p - q| \\le \\text{window}\\} $$

(in sentence ``s``, word ``i`` at position ``p`` and word ``j`` at position ``q`` within the window;
symmetric, zero diagonal unless a word repeats nearby). Raw counts are dominated by frequent words
(``le``, ``est``, ``.``); **positive pointwise mutual information** measures instead how much more
often two words meet than if they were independent,

$$ \\mathrm{PPMI}_{ij} = \\max\\Big(0,\\ \\log \\frac{C_{ij} \\, \\sum_{kl} C_{kl}}
   {\\sum_k C_{ik} \\, \\sum_k C_{kj}}\\Big). $$

A **truncated SVD** keeps the ``k`` largest singular values,

$$ X \\approx U_k D_k V_k^\\top, \\qquad \\text{word vectors} = U_k D_k \\in \\mathbb{R}^{|V| \\times k}, $$

which compresses a ``|V| x |V|`` matrix into ``k``-dimensional word vectors in which words with
similar contexts are close (cosine similarity).

:class:`CooccurrenceSVD` does it all in the scikit-learn way (``fit`` on sentences, learned
attributes ending in ``_``; ``get_params``/``set_params``/``clone`` work). It is not a scikit-learn
*transformer*: it learns one vector per word, not a feature vector per sample, and it reads text, so
it declares text input, as scikit-learn's own ``TfidfVectorizer`` does, and sklearn's numeric
estimator checks do not apply (the tests run the API checks that do).

The counting is vectorised (one NumPy pass per window offset, no loop over pairs) into a SciPy CSR
matrix; the SVD is the randomised algorithm of ``torch.svd_lowrank``
on torch CSR tensors (GPU-capable), with ``torch.svd_lowrank`` itself, SciPy's ``svds``,
scikit-learn's ``TruncatedSVD`` and a dense SVD as references (:mod:`neuraltext.cooccurrence.svd`).
"""

from __future__ import annotations

from collections import Counter
from itertools import chain, repeat
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from neuraltext.cooccurrence.svd import truncated_svd

__all__ = ["build_vocabulary", "cooccurrence_matrix", "ppmi", "CooccurrenceSVD", "TOY_CORPUS", "TOY_VOCABULARY", "TOY_COURSE_VECTORS"]


# ---------------------------------------------------------------------------- counting
#: Up to this many cells (|V|², 400 MB of int64 counts) the pairs are counted with one bincount
#: over every cell; a larger vocabulary sorts the pairs instead.
DENSE_COUNT_CELLS = 50_000_000

def build_vocabulary(sentences: Sequence[Sequence[str]], min_count: int = 1,
                     max_vocab: int | None = None) -> tuple[list[str], np.ndarray]:
    """Words seen at least ``min_count`` times, most frequent first (ties alphabetical), and their counts.

    The course's one :class:`~neuraltext.tokenize.Vocab` (built without special tokens: a
    co-occurrence matrix has a row per word, none for ``<pad>``). :func:`cooccurrence_matrix` accepts
    any word list: the course's toy example, for instance, orders its vocabulary by first appearance.
    """
    from neuraltext.vocab import Vocab

    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    sentences = list(sentences)
    for s in sentences:
        if isinstance(s, str):
            raise TypeError("sentences must be lists of tokens, e.g. [text.split() for text in texts]")
    counts = Counter(w for s in sentences for w in s)
    if not counts:
        raise ValueError("empty corpus: no sentences with tokens to count")
    _check_token_types(counts)
    vocab = Vocab.build(sentences, min_freq=min_count, max_size=max_vocab, specials=(), unk=None)
    if not len(vocab):
        raise ValueError(f"no word occurs at least min_count={min_count} times "
                         f"(the most frequent: {counts.most_common(1)[0]})")
    return vocab.itos, np.array([vocab.counts[w] for w in vocab.itos], dtype=np.int64)


def _check_token_types(counts: Counter) -> None:
    """Tokens are strings; anything else is a mistake, typically a float array passed as sentences,
    whose numbers would silently be counted as words."""
    for tok in counts:
        if not isinstance(tok, str):
            raise TypeError(f"sentences must be lists of tokens (strings); found the "
                            f"token {tok} of type {type(tok).__name__}. A float array is not a corpus: "
                            "pass e.g. [text.split() for text in texts]")


def _encode(sentences: Sequence[Sequence[str]], stoi: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """All tokens as one id array (-1 = out of vocabulary) and the sentence index of each token."""
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    # map(stoi.get, tokens, -1s) looks the tokens up without a Python-level loop (3x faster than a
    # generator expression at 1M tokens)
    ids = np.fromiter(map(stoi.get, chain.from_iterable(sentences), repeat(-1)), dtype=np.int64,
                      count=int(lengths.sum()))
    sent = np.repeat(np.arange(len(sentences), dtype=np.int64), lengths)
    return ids, sent


def cooccurrence_matrix(sentences: Sequence[Sequence[str]], vocabulary: Sequence[str],
                        window: int = 5) -> sp.csr_matrix:
    """Symmetric co-occurrence counts within ``window`` positions, inside each sentence.

    Vectorised: for each offset ``d = 1 .. window`` the pairs ``(ids[t], ids[t + d])`` of the whole
    corpus are taken at once (dropping pairs that straddle two sentences or touch an
    out-of-vocabulary word), each pair ``(a, b)`` numbered ``a·|V| + b`` and the numbers counted with
    one ``bincount``; the window being symmetric, ``C = U + U^T`` for these one-way counts ``U``.
    Returns a ``|V| x |V|`` float64 CSR.
    """
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    if isinstance(sentences, str) or (len(sentences) and isinstance(sentences[0], str)):
        raise TypeError("sentences must be lists of tokens, e.g. [text.split() for text in texts]")
    stoi = {w: i for i, w in enumerate(vocabulary)}
    if len(stoi) != len(vocabulary):
        raise ValueError("the vocabulary contains duplicate words")
    n_words = len(stoi)
    if n_words == 0:
        raise ValueError("empty vocabulary")
    ids, sent = _encode(sentences, stoi)
    if ids.size == 0:
        raise ValueError("empty corpus: no tokens to count")
    keys = []
    for d in range(1, min(window, ids.size - 1) + 1):
        left, right = ids[:-d], ids[d:]
        ok = (sent[:-d] == sent[d:]) & (left >= 0) & (right >= 0)
        keys.append(left[ok] * n_words + right[ok])  # pair (a, b): a at t, b at t + d
    keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    if n_words * n_words <= DENSE_COUNT_CELLS:  # small vocabulary: one bincount over all cells
        U = np.bincount(keys, minlength=n_words * n_words).reshape(n_words, n_words)
        return sp.csr_matrix((U + U.T).astype(np.float64))   # count (b, a) too
    # large vocabulary: sort the keys of both directions instead
    a, b = np.divmod(keys, n_words)
    uniq, vals = np.unique(np.concatenate([keys, b * n_words + a]), return_counts=True)
    rows, cols = np.divmod(uniq, n_words)
    return sp.csr_matrix((vals.astype(np.float64), (rows, cols)), shape=(n_words, n_words))


def ppmi(C: sp.spmatrix, alpha: float = 1.0) -> sp.csr_matrix:
    """Positive pointwise mutual information of a co-occurrence matrix (sparse in, sparse out).

    ``PPMI_ij = max(0, log(C_ij * N / (r_i * c_j)))`` with row sums ``r``, column sums ``c`` and
    total ``N``. ``alpha < 1`` smooths the context distribution (``c_j ** alpha``, Levy et al. 2015
    use 0.75). Zero counts stay zero (their PMI is ``-inf``, clipped to 0).
    """
    C = sp.csr_matrix(C, dtype=np.float64)
    if C.nnz and not np.isfinite(C.data).all():
        bad = np.flatnonzero(~np.isfinite(C.data))[0]
        row = int(np.searchsorted(C.indptr, bad, side="right") - 1)
        raise ValueError(f"C, the co-occurrence counts, must be finite: C[{row}, {C.indices[bad]}] = "
                         f"{C.data[bad]} (counts are non-negative finite numbers)")
    if C.nnz and C.data.min() < 0:
        raise ValueError("co-occurrence counts must be non-negative")
    total = C.sum()
    if total <= 0:
        raise ValueError("the co-occurrence matrix is all zeros: nothing to weight")
    r = np.asarray(C.sum(axis=1)).ravel()
    c = np.asarray(C.sum(axis=0)).ravel()
    if alpha != 1.0:
        c = c ** alpha
        p_c = c / c.sum()
    else:
        p_c = c / total
    coo = C.tocoo()
    # log( P(i, j) / (P(i) P_alpha(j)) ) on the stored (non-zero) entries only
    pmi = np.log(coo.data / total) - np.log(r[coo.row] / total) - np.log(p_c[coo.col])
    keep = pmi > 0
    return sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=C.shape)


# ---------------------------------------------------------------------------- the estimator
class CooccurrenceSVD(BaseEstimator):
    """Count-based word vectors: co-occurrence counts -> (PPMI) -> truncated SVD.

    Args:
        window: how many positions on each side count as context (``>= 1``; a window as long as the
            sentence counts every pair of words in the same sentence).
        n_components: the rank ``k`` of the SVD, the size of the word vectors.
        weighting: ``"ppmi"`` or ``"count"`` (the raw matrix, as in the course's toy example).
        min_count, max_vocab: which words get a row (see :func:`build_vocabulary`).
        vocabulary: use this word list (in this order) instead of building one.
        svd: ``"torch"`` (default), ``"torch_lowrank"``, ``"scipy"``, ``"sklearn"`` or ``"dense"``
            (see :func:`truncated_svd`).
        alpha: context-distribution smoothing for PPMI (1.0 = none).
        device: where ``torch.svd_lowrank`` runs (``None``: the CPU).

    Learned attributes: ``vocabulary_`` (list of words), ``word_counts_``, ``cooccurrence_`` (CSR
    counts), ``matrix_`` (the matrix factorised: PPMI or counts), ``singular_values_``,
    ``components_`` (``V_k^T``), ``vectors_`` (``U_k D_k``, one row per word).

    A scikit-learn *estimator* in the API sense (parameters only in ``__init__``, never changed by
    ``fit``; ``clone`` and ``set_params`` work), not a transformer of numeric samples: see the module
    docstring.
    """

    def __init__(self, window: int = 5, n_components: int = 100, weighting: str = "ppmi",
                 min_count: int = 1, max_vocab: int | None = None,
                 vocabulary: Sequence[str] | None = None, svd: str = "torch", alpha: float = 1.0,
                 n_iter: int = 6, n_oversamples: int = 200, seed: int = 0, device=None):
        self.window = window
        self.n_components = n_components
        self.weighting = weighting
        self.min_count = min_count
        self.max_vocab = max_vocab
        self.vocabulary = vocabulary
        self.svd = svd
        self.alpha = alpha
        self.n_iter = n_iter
        self.n_oversamples = n_oversamples
        self.seed = seed
        self.device = device

    def __sklearn_tags__(self):
        # The input is a list of token lists (text), not a 2-D numeric array: sklearn's common
        # checks, which feed numbers, skip such estimators (as they skip TfidfVectorizer).
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def fit(self, sentences: Iterable[Sequence[str]], y=None) -> "CooccurrenceSVD":
        """Count, weight and factorise; ``sentences`` is a list of token lists."""
        if self.weighting not in ("ppmi", "count"):
            raise ValueError(f"weighting must be 'ppmi' or 'count', got {self.weighting!r}")
        if not isinstance(self.window, (int, np.integer)) or self.window < 1:
            raise ValueError(f"window must be an integer >= 1, got {self.window!r}")
        sentences = list(sentences)
        if self.vocabulary is None:
            vocab, counts = build_vocabulary(sentences, self.min_count, self.max_vocab)
        else:
            vocab = list(self.vocabulary)
            if not any(sentences):
                raise ValueError("empty corpus: no sentences with tokens to count")
            c = Counter(w for s in sentences for w in s)
            _check_token_types(c)
            counts = np.array([c[w] for w in vocab], dtype=np.int64)
        if self.n_components > len(vocab):
            raise ValueError(f"n_components={self.n_components} is larger than the vocabulary "
                             f"({len(vocab)} words): the SVD cannot have more components than rows")
        self.vocabulary_ = vocab
        self.word_counts_ = counts
        self._stoi = {w: i for i, w in enumerate(vocab)}
        self.cooccurrence_ = cooccurrence_matrix(sentences, vocab, self.window)
        self.matrix_ = ppmi(self.cooccurrence_, self.alpha) if self.weighting == "ppmi" else self.cooccurrence_
        U, s, Vt = truncated_svd(self.matrix_, self.n_components, method=self.svd, n_iter=self.n_iter,
                                 n_oversamples=self.n_oversamples, seed=self.seed, device=self.device)
        self.singular_values_ = s
        self.components_ = Vt
        self.vectors_ = U * s
        self._unit = self.vectors_ / np.maximum(np.linalg.norm(self.vectors_, axis=1, keepdims=True), 1e-12)
        return self

    # ------------------------------------------------------------------ using the vectors
    def _check(self):
        if not hasattr(self, "vectors_"):
            raise RuntimeError("this CooccurrenceSVD is not fitted yet: call fit(sentences) first")

    def index(self, word: str) -> int:
        self._check()
        if word not in self._stoi:
            raise KeyError(f"{word!r} is not in the vocabulary ({len(self.vocabulary_)} words)")
        return self._stoi[word]

    def __getitem__(self, word: str) -> np.ndarray:
        """The vector of ``word`` (a row of ``U_k D_k``)."""
        return self.vectors_[self.index(word)]

    def transform(self, words: Sequence[str]) -> np.ndarray:
        """Vectors of several words, one row each."""
        return self.vectors_[[self.index(w) for w in words]]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity ``u_a . u_b / (|u_a| |u_b|)``."""
        return float(self._unit[self.index(a)] @ self._unit[self.index(b)])

    def most_similar(self, word: str | np.ndarray, topn: int = 10) -> list[tuple[str, float]]:
        """The ``topn`` words with the highest cosine similarity to ``word`` (itself excluded)."""
        self._check()
        if isinstance(word, str):
            query, exclude = self._unit[self.index(word)], {self.index(word)}
        else:
            query = np.asarray(word, dtype=float)
            query, exclude = query / max(np.linalg.norm(query), 1e-12), set()
        sims = self._unit @ query
        order = np.argsort(-sims, kind="stable")
        return [(self.vocabulary_[i], float(sims[i])) for i in order if i not in exclude][:topn]

    def analogy(self, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
        """*a is to b as c is to ?*: the words closest to ``b - a + c`` (3CosAdd), inputs excluded."""
        self._check()
        ia, ib, ic = self.index(a), self.index(b), self.index(c)
        query = self._unit[ib] - self._unit[ia] + self._unit[ic]
        sims = self._unit @ (query / max(np.linalg.norm(query), 1e-12))
        sims[[ia, ib, ic]] = -np.inf
        order = np.argsort(-sims, kind="stable")[:topn]
        return [(self.vocabulary_[i], float(sims[i])) for i in order]

    def analogy_accuracy(self, quads: Iterable[tuple[str, str, str, str]]) -> tuple[int, int]:
        """How many ``(a, b, c, d)`` quadruples have ``d`` as the top answer; (correct, evaluated).
        Quadruples with a word outside the vocabulary are skipped."""
        correct = total = 0
        for a, b, c, d in quads:
            if not all(w in self._stoi for w in (a, b, c, d)):
                continue
            total += 1
            correct += self.analogy(a, b, c)[0][0] == d
        return correct, total

    def plot_map(self, words: Sequence[str], groups: Sequence[str] | None = None, ax=None,
                 dims: tuple[int, int] | None = (0, 1), **kwargs):
        """2-D map of chosen words, labelled.

        ``dims=(i, j)`` plots SVD components ``i`` and ``j`` of their vectors (the course's picture
        when the SVD has rank 2); ``dims=None`` projects the chosen words' vectors on their own two
        principal directions (PCA of those rows), which spreads a small set of words better.
        """
        from neuraltext.plot import embedding_map

        X = self.transform(words)
        if dims is None:
            Xc = X - X.mean(axis=0)
            _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
            points, labels = Xc @ Vt[:2].T, ("principal direction 1", "principal direction 2")
        else:
            points, labels = X[:, list(dims)], (f"component {dims[0] + 1}", f"component {dims[1] + 1}")
        # words with identical vectors share one point and one label ("do/appear/the")
        keys = [tuple(np.round(p, 9)) for p in points]
        first: dict[tuple, int] = {}
        merged: list[list[str]] = []
        for i, key in enumerate(keys):
            if key not in first:
                first[key] = len(merged)
                merged.append([])
            merged[first[key]].append(words[i])
        idx = sorted(first.values())
        rows = [keys.index(k) for k in first]
        ax = embedding_map(points[rows], ["/".join(merged[j]) for j in idx],
                           groups=None if groups is None else [groups[r] for r in rows], ax=ax, **kwargs)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        return ax


# ---------------------------------------------------------------------------- the course's toy example
#: The course's toy corpus (lecture notes 003): five sentences and the question asked about them,
#: lower-cased, punctuation removed. The slide writes the question "Do cnn, svm and
#: linear_regression appear in the same context?", but its co-occurrence matrix and its 2-D SVD
#: coordinates count no "and" in it: we follow the numbers (chapter 2 shows they match to 1e-8).
TOY_CORPUS: list[list[str]] = [s.split() for s in (
    "cnn in crop analysis",
    "cnn and svm are widely used",
    "linear_regression performed along with svm",
    "linear_regression for crop and farm",
    "svm being used for farm monitoring",
    "do cnn svm linear_regression appear in the same context",
)]
#: Its 22-word vocabulary, in order of first appearance (the order of the slide's rows).
TOY_VOCABULARY: list[str] = list(dict.fromkeys(w for s in TOY_CORPUS for w in s))
#: The 2-D word vectors ``U_2 D_2`` printed on the slide, in vocabulary order (the row of
#: "analysis" is elided there: NaN).
TOY_COURSE_VECTORS: np.ndarray = np.array(
    [[3.72113518, -0.73233585], [2.7940387, -1.40864784], [1.61178082, 0.44786021], [np.nan, np.nan],
     [2.12245048, 1.29571556], [4.49293777, 0.58090417], [1.33312748, 0.66758743],
     [1.33312748, 0.66758743], [2.25882809, 1.80738544], [3.56593605, -0.31006976],
     [0.95394179, 0.079159], [0.95394179, 0.079159], [0.95394179, 0.079159],
     [1.92921553, 1.94783497], [1.92921553, 1.94783497], [1.12301312, 1.42126096],
     [1.12301312, 1.42126096]] + [[2.26025282, -1.31571175]] * 5)
