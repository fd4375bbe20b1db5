"""Truncated SVD for chapter 2's count-based word vectors, several ways.

A truncated SVD keeps the ``k`` largest singular values of a matrix,

$$ X \\approx U_k D_k V_k^\\top, $$

and :func:`truncated_svd` computes it with the backend asked for: our :func:`randomized_svd`
(Halko, Martinsson and Tropp 2011, the algorithm of ``torch.svd_lowrank``) on torch CSR tensors (any
device), ``torch.svd_lowrank`` itself, SciPy's ARPACK ``svds``, scikit-learn's ``TruncatedSVD`` or a
dense SVD, all returning NumPy arrays in the same order and with the same signs (:func:`svd_flip`).
Used by :class:`neuraltext.cooccurrence.counts.CooccurrenceSVD`; its functions stay importable from
:mod:`neuraltext.cooccurrence.counts`.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from neuraltext.utils import cpu_threads as _cpu_threads

__all__ = ["SVD_METHODS", "svd_flip", "randomized_svd", "truncated_svd"]

SVD_METHODS = ("torch", "torch_lowrank", "scipy", "sklearn", "dense")


def svd_flip(U: np.ndarray, Vt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fix the sign of each singular pair: the largest-magnitude entry of each column of ``U`` is
    positive (scikit-learn's convention). An SVD is only defined up to these signs."""
    idx = np.abs(U).argmax(axis=0)
    signs = np.sign(U[idx, np.arange(U.shape[1])])
    signs[signs == 0] = 1.0
    return U * signs, Vt * signs[:, None]


def _to_torch_csr(X: sp.csr_matrix, device, dtype) -> torch.Tensor:
    X = X.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we know
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(X.indptr.astype(np.int64)),
                                       torch.from_numpy(X.indices.astype(np.int64)),
                                       torch.from_numpy(X.data).to(dtype), size=X.shape, device=device)


def _orthonormal_basis(Y: torch.Tensor) -> torch.Tensor:
    """``orth(Y)``: an orthonormal basis of the columns of ``Y`` (``Q`` of its QR decomposition)."""
    return torch.linalg.qr(Y).Q


def _lu_basis(Y: torch.Tensor) -> torch.Tensor:
    """A well-conditioned basis of the columns of ``Y`` (m, q), not orthonormal: ``P L`` of
    ``Y = P L U`` (scikit-learn's ``power_iteration_normalizer="LU"``). It spans what ``Y`` spans,
    which is all a power iteration needs, at a fraction of a QR's cost."""
    m, q = Y.shape
    LU, pivots = torch.linalg.lu_factor(Y)
    L = LU.tril(-1) + torch.eye(m, q, dtype=Y.dtype, device=Y.device)   # unit lower trapezoidal (m, q)
    # LAPACK's pivots are row swaps (row i <-> row pivots[i] - 1, in order): replay them to get the
    # permutation, rather than torch.linalg.lu's dense m x m P (10 GB for a 50k-word vocabulary)
    perm = np.arange(m)
    for i, p in enumerate(pivots.cpu().tolist()):
        perm[i], perm[p - 1] = perm[p - 1], perm[i]
    PL = torch.empty_like(L)
    PL[torch.from_numpy(perm).to(Y.device)] = L                          # (P L)[perm[i]] = L[i]
    return PL


def randomized_svd(A: torch.Tensor, At: torch.Tensor, q: int, n_iter: int,
                   generator: torch.Generator | None = None,
                   normalizer: str = "qr") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Randomised SVD (Halko, Martinsson and Tropp 2011, Algorithm 4.4), in torch.

    The steps of ``torch.svd_lowrank``, given ``A`` *and* its transpose ``At`` (both CSR or dense):
    on the CPU torch's ``A.mT @ X`` on a CSR matrix is about twice as slow as ``At @ X`` with the
    transpose stored as CSR, and ``X.mT @ A`` six times (measured on the course machine), so the
    transpose is stored as a CSR matrix of its own. Returns ``U (m, q), S (q,), V (n, q)``.

    1. sample the range of ``A``: ``Q = orth(A R)`` with a Gaussian ``R`` of ``q`` columns;
    2. power iterations sharpen it: ``Q = orth(A orth(A^T Q))``, ``n_iter`` times;
    3. project and decompose the small matrix: ``B = Q^T A = (A^T Q)^T = U_B S V^T``, ``U = Q U_B``.

    ``normalizer="lu"`` keeps the bases of the power iterations well conditioned with an LU
    decomposition instead of a QR, as scikit-learn's ``TruncatedSVD`` does (the last basis is still
    orthonormalised by QR): same span, same result up to rounding, and on the CPU the 13 QRs were
    most of the time (1407 x 300: QR 59 ms, LU 3 ms, a CSR product 30 ms, one thread).
    """
    if normalizer not in ("qr", "lu"):
        raise ValueError(f"normalizer must be 'qr' (torch.svd_lowrank's) or 'lu' (scikit-learn's), got {normalizer!r}")
    basis = _orthonormal_basis if normalizer == "qr" else _lu_basis
    n = A.shape[1]
    R = torch.randn(n, q, dtype=A.dtype, device=A.device, generator=generator)
    Q = basis(A @ R)                                  # (m, q)
    for i in range(n_iter):
        Q = basis(At @ Q)                             # (n, q)
        Q = (basis if i < n_iter - 1 else _orthonormal_basis)(A @ Q)   # (m, q)
    if n_iter == 0 and normalizer == "lu":
        Q = _orthonormal_basis(Q)
    B = (At @ Q).mT                                   # (q, n) = Q^T A
    U_B, S, Vh = torch.linalg.svd(B, full_matrices=False)
    return Q @ U_B, S, Vh.mT


def truncated_svd(X, k: int, method: str = "torch", n_oversamples: int = 200, n_iter: int = 6,
                  seed: int = 0, device=None, dtype=torch.float32, cpu_threads: int | None = 1,
                  normalizer: str = "lu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` largest singular triplets of ``X`` (sparse or dense), as NumPy ``U, s, Vt``.

    ``s`` is in decreasing order and signs follow :func:`svd_flip`, whatever the method:

    * ``"torch"``: :func:`randomized_svd` (the algorithm of ``torch.svd_lowrank``: ``n_iter`` power
      iterations, ``k + n_oversamples`` random vectors) on torch CSR tensors of ``dtype``, on
      ``device``; its power iterations normalised by ``normalizer`` ("lu", scikit-learn's choice and
      the default, or "qr", torch.svd_lowrank's);
    * ``"torch_lowrank"``: ``torch.svd_lowrank`` itself on a torch CSR tensor (same random matrix
      for the same ``seed``; slower on the CPU, where its transposed sparse products are slow);
    * ``"scipy"``: ``scipy.sparse.linalg.svds`` (ARPACK, iterative, accurate);
    * ``"sklearn"``: ``sklearn.decomposition.TruncatedSVD`` (randomised, ``n_iter`` iterations);
    * ``"dense"``: ``numpy.linalg.svd`` of the full matrix (exact; small matrices only).

    ``cpu_threads`` is the number of torch threads for the two torch methods on the CPU (restored
    afterwards; ``None`` keeps torch's setting). One thread is the default because the products
    are small (a few thousand rows times a few hundred vectors): split over threads they spend more
    time waiting for each other than computing, badly so on a shared machine (measured on the course
    machine under load: 0.4 s with one thread, 1.7 to 27 s with two, for the 1M-token PPMI matrix).

    The randomised methods are approximate: their accuracy on the *last* of the ``k`` values
    depends on ``n_oversamples`` and ``n_iter``. The defaults (200, 6) reproduce the top 100 singular
    values of a 1M-token PPMI matrix to better than 1e-4 relative (benchmarks/cooccurrence.py).
    """
    if method not in SVD_METHODS:
        raise ValueError(f"unknown SVD method {method!r}; choose one of {SVD_METHODS}")
    n_rows, n_cols = X.shape
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"the rank k must be a positive integer, got {k!r}")
    if k > min(n_rows, n_cols) or (method == "scipy" and k >= min(n_rows, n_cols)):
        limit = min(n_rows, n_cols) - (method == "scipy")
        raise ValueError(f"rank k={k} is larger than the matrix allows: X is {n_rows} x {n_cols}, "
                         f"so k <= {limit} with method={method!r} (the vocabulary is too small)")
    if method == "dense":
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        U, s, Vt = np.linalg.svd(dense, full_matrices=False)
        U, s, Vt = U[:, :k], s[:k], Vt[:k]
    elif method == "scipy":
        U, s, Vt = _scipy_svd(X, k, seed)
    elif method == "sklearn":
        U, s, Vt = _sklearn_svd(X, k, n_oversamples, n_iter, seed)
    else:
        device = torch.device(device) if device is not None else torch.device("cpu")
        with _cpu_threads(cpu_threads if device.type == "cpu" else None):
            U, s, Vt = _torch_svd(X, k, method, min(k + n_oversamples, n_rows, n_cols), n_iter, seed,
                                  device, dtype, normalizer)
    U, Vt = svd_flip(np.ascontiguousarray(U), np.ascontiguousarray(Vt))
    return U, s, Vt


def _scipy_svd(X, k: int, seed: int):
    """ARPACK (``scipy.sparse.linalg.svds``), values sorted in decreasing order."""
    from scipy.sparse.linalg import svds

    rng = np.random.default_rng(seed)
    U, s, Vt = svds(sp.csr_matrix(X), k=k, v0=rng.standard_normal(min(X.shape)))
    order = np.argsort(s)[::-1]
    return U[:, order], s[order], Vt[order]


def _sklearn_svd(X, k: int, n_oversamples: int, n_iter: int, seed: int):
    """scikit-learn's randomised ``TruncatedSVD``."""
    from sklearn.decomposition import TruncatedSVD

    # at least one extra vector (TruncatedSVD's minimum), even when k = min(X.shape)
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=n_iter,
                       n_oversamples=max(1, min(n_oversamples, min(X.shape) - k)), random_state=seed)
    US = svd.fit_transform(X)
    return US / svd.singular_values_, svd.singular_values_, svd.components_




def _torch_svd(X, k: int, method: str, q: int, n_iter: int, seed: int, device, dtype, normalizer="lu"):
    """The two torch methods of :func:`truncated_svd`, ``q`` random vectors; NumPy ``U, s, Vt``."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        A = _to_torch_csr(X, device, dtype)
    else:
        A = torch.as_tensor(np.asarray(X), dtype=dtype, device=device)
    U, s, V = _torch_factor(X, A, method, q, n_iter, seed, device, dtype, normalizer)
    return (U[:, :k].cpu().double().numpy(), s[:k].cpu().double().numpy(), V[:, :k].T.cpu().double().numpy())


def _torch_factor(X, A: torch.Tensor, method: str, q: int, n_iter: int, seed: int, device, dtype, normalizer):
    """The two torch methods on the torch matrix ``A`` (made from ``X``)."""
    if method == "torch":
        At = _to_torch_csr(X.T.tocsr(), device, dtype) if sp.issparse(X) else A.mT.contiguous()
        gen = torch.Generator(device=device).manual_seed(seed)
        return randomized_svd(A, At, q, n_iter, generator=gen, normalizer=normalizer)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # svd_lowrank draws its random matrix from the global generator
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.svd_lowrank(A, q=q, niter=n_iter)
    finally:
        torch.random.set_rng_state(state)
