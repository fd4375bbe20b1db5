"""A compiled skip-gram kernel: one example at a time, as gensim and the original word2vec code train.

:mod:`neuraltext.word2vec.model` states the model; :mod:`neuraltext.fast.word2vec` trains it in
batches of PyTorch operations (any device). This module trains the same skip-gram objective on the
CPU with a loop compiled by numba, in the order of the original code: for each centre position
``t`` of the corpus, a window ``b`` drawn in ``1..window``, and for each context word ``w_O`` within
``b`` positions (same sentence), one SGD step on

    L = log σ(v_O·h) + Σ_{i=1..k} log σ(-v_i·h),    h = W_in[w_t],  w_i ~ P_n

with the gradient of the chapter (``g_j = y_j - σ(v_j·h)``; ``W_out[w_j] += lr·g_j·h`` for the true
word and each noise word, then ``W_in[w_t] += lr·Σ_j g_j v_j``), σ read from a table as in the
original code. A noise word equal to ``w_O`` is skipped, as gensim does. Noise words come from the
alias table of :mod:`neuraltext.fast.word2vec`.

Why it is fast: one example touches 1+k rows of ``D`` floats, a few hundred flops; a batch of torch
operations pays a dispatch and a gather/scatter per step, whereas the compiled loop keeps ``h`` and
the rows in cache and calls nothing. The loop releases the GIL (``nogil``), so ``workers`` Python
threads run it at once on disjoint jobs of ``JOB_TOKENS`` centre positions, updating the shared
tables without locks (Hogwild, like gensim's workers). The learning rate decays linearly over the
words, one value per job (as gensim does).

numba is optional: :func:`available` says whether it is installed; without it the chapter's
:class:`~neuraltext.word2vec.Word2Vec` trains with the PyTorch path.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from neuraltext.fast.word2vec import _loss_history, alias_table
from neuraltext.utils import progress

__all__ = ["available", "compile_kernels", "train"]

JOB_TOKENS = 10_000          # centre positions per job (gensim's batch_words)


def available() -> bool:
    """True when numba is installed, so that the compiled kernel can run. (numba is optional,
    preinstalled on Colab; it is imported only when the kernel is first used, not with the package.)"""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


# σ and -log σ read from tables, as the original code and gensim do (``EXP_TABLE``): ``exp`` and
# ``log1p`` for each of the 1+k words cost more than the two dot products of D floats. The table has
# TABLE_SIZE bins over [-MAX_Z, MAX_Z], each holding the value at its centre, so σ is off by at most
# σ'·bin/2 = 0.25·12/1024/2 < 0.0015; beyond ±MAX_Z, σ is 0 or 1 and -log σ(z) is 0 or -z.
MAX_Z, TABLE_SIZE = 6.0, 1024
_centres = (np.arange(TABLE_SIZE) + 0.5) * (2 * MAX_Z / TABLE_SIZE) - MAX_Z
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_centres))).astype(np.float32)
NEG_LOG_SIGMOID_TABLE = np.log1p(np.exp(-_centres)).astype(np.float32)

# The random numbers of the original C code: a 64-bit linear congruential generator, cheap and
# reproducible in any thread (each job starts from its own seed).
_A, _C = 25214903917, 11


def _sigmoid(z, table):
    """σ(z) from the table (the bin of ``z`` in [-MAX_Z, MAX_Z))."""
    if z <= -MAX_Z:
        return np.float32(0.0)
    if z >= MAX_Z:
        return np.float32(1.0)
    return table[int((z + MAX_Z) * (TABLE_SIZE / (2 * MAX_Z)))]


def _neg_log_sigmoid(z, table):
    """-log σ(z) = log(1 + e^{-z}) from the table."""
    if z <= -MAX_Z:
        return -z
    if z >= MAX_Z:
        return np.float32(0.0)
    return table[int((z + MAX_Z) * (TABLE_SIZE / (2 * MAX_Z)))]


def _sgns_job(W_in, W_out, ids, sent, lo, hi, window, negative, prob, alias, lr, seed, block,
              losses, counts, sigmoid_table, loss_table):
    """Skip-gram SGD over the centre positions ``lo..hi-1`` of the token stream ``ids`` (word rows;
    ``sent``: each token's sentence). Writes the summed loss and the number of examples of each run
    of ``block`` examples into ``losses`` and ``counts``; returns how many runs it wrote."""
    V, D = W_out.shape
    n = ids.shape[0]
    state = np.uint64(seed)
    a, c, mask = np.uint64(_A), np.uint64(_C), np.uint64((1 << 48) - 1)
    h = np.empty(D, np.float32)                    # W_in[w_t], copied: it stays in registers/cache
    dh = np.empty(D, np.float32)                   # lr·∂L/∂h, accumulated over the 1+k words
    run, run_loss, run_n = 0, 0.0, 0
    for t in range(lo, hi):
        state = (state * a + c) & mask
        b = 1 + np.int64((state >> np.uint64(16)) % np.uint64(window))   # the dynamic window
        centre = ids[t]
        for j in range(max(0, t - b), min(n, t + b + 1)):
            if j == t or sent[j] != sent[t]:
                continue
            true_word = ids[j]
            for i in range(D):
                h[i] = W_in[centre, i]
                dh[i] = 0.0
            for d in range(negative + 1):
                if d == 0:
                    word, label = true_word, np.float32(1.0)
                else:                              # a noise word from the alias table
                    state = (state * a + c) & mask
                    col = np.int64((state >> np.uint64(16)) % np.uint64(V))
                    state = (state * a + c) & mask
                    u = np.float32(state >> np.uint64(24)) / np.float32(16777216.0)
                    word = col if u < prob[col] else alias[col]
                    if word == true_word:
                        continue
                    label = np.float32(0.0)
                v = W_out[word]                    # v_j, a view: updated in place
                z = np.float32(0.0)
                for i in range(D):
                    z += h[i] * v[i]
                # loss: -log σ(v_O·h) for the true word, -log σ(-v_i·h) for a noise word
                run_loss += neg_log_sigmoid(z if label else -z, loss_table)
                g = (label - sigmoid(z, sigmoid_table)) * np.float32(lr)   # lr·(y_j - σ(v_j·h))
                for i in range(D):
                    dh[i] += g * v[i]
                    v[i] += g * h[i]
            for i in range(D):
                W_in[centre, i] += dh[i]
            run_n += 1
            if run_n == block:
                losses[run], counts[run] = run_loss, run_n
                run, run_loss, run_n = run + 1, 0.0, 0
    if run_n:
        losses[run], counts[run] = run_loss, run_n
        run += 1
    return run


# The compiled functions, set by compile_kernels() on first use (_sgns_job calls the two σ ones).
sigmoid = neg_log_sigmoid = sgns_job = None


def compile_kernels() -> None:
    """Compile the kernel and its σ functions with numba (once per machine: ``cache=True`` keeps the
    machine code beside this file; later processes load it). ``nogil``: threads run it at once."""
    global sigmoid, neg_log_sigmoid, sgns_job
    if sgns_job is None:
        import numba

        jit = numba.njit(nogil=True, fastmath=True, cache=True)
        sigmoid, neg_log_sigmoid = jit(_sigmoid), jit(_neg_log_sigmoid)
        sgns_job = jit(_sgns_job)


def train(W_in: torch.Tensor, W_out: torch.Tensor, ids: np.ndarray, sentence_ids: np.ndarray,
          noise: np.ndarray, keep: np.ndarray, cfg, log_every: int = 50,
          show_progress: bool = True) -> list[float]:
    """Train skip-gram's ``W_in`` and ``W_out`` (CPU float32 tensors) in place for ``cfg.epochs``
    passes over ``ids``, with the compiled kernel; same arguments and loss history as
    :func:`neuraltext.fast.word2vec.train` (an "update" here is ``cfg.batch_size`` examples)."""
    if not available():
        raise ImportError("the compiled word2vec kernel needs numba (pip install numba); "
                          "or use engine='torch'")
    compile_kernels()
    if W_in.device.type != "cpu" or W_in.dtype != torch.float32:
        raise ValueError(f"the compiled kernel trains float32 CPU tables, got {W_in.dtype} on {W_in.device}")
    if not cfg.sg:
        raise ValueError("the compiled kernel trains skip-gram (sg=True) only; CBOW uses engine='torch'")
    w_in, w_out = W_in.numpy(), W_out.numpy()               # shared memory: updated in place
    prob, alias = (t.numpy() for t in alias_table(noise))
    rng = np.random.default_rng(cfg.seed)
    total_words, n_raw = cfg.epochs * len(ids), len(ids)
    sizes, losses, done = [], [], 0
    bar = progress(total=total_words, desc="word2vec skip-gram (compiled)", unit="word", unit_scale=True,
                   **({} if show_progress else {"disable": True}))
    pool = ThreadPoolExecutor(cfg.workers) if cfg.workers > 1 else None
    try:
        for epoch in range(cfg.epochs):
            kept = rng.random(n_raw) < keep[ids]            # sub-sampling, fresh per epoch
            stream = np.ascontiguousarray(ids[kept], dtype=np.int64)
            sent = np.ascontiguousarray(sentence_ids[kept], dtype=np.int64)
            n, l = _train_epoch(w_in, w_out, stream, sent, (prob, alias), cfg, pool,
                                lambda f, e=epoch: _lr(cfg, (e + f) / cfg.epochs),
                                seed=int(rng.integers(1 << 40)))
            sizes.append(n)
            losses.append(l)
            done += n_raw
            bar.update(n_raw)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return _loss_history(np.concatenate(sizes), np.concatenate(losses), log_every)


def _lr(cfg, fraction: float) -> float:
    """Linear decay from ``start_alpha`` to ``min_alpha`` over the whole training."""
    return cfg.start_alpha - (cfg.start_alpha - cfg.min_alpha) * fraction


def _train_epoch(w_in, w_out, stream, sent, noise_table, cfg, pool, lr_at, seed):
    """One pass over the kept tokens, in jobs of JOB_TOKENS centre positions taken by the workers
    as they become free; returns the examples and summed loss of each run, in corpus order."""
    n = len(stream)
    starts = list(range(0, n, JOB_TOKENS))
    next_job = iter(range(len(starts)))
    lock = threading.Lock()
    out = {}

    def run(_worker):
        while True:
            with lock:
                job = next(next_job, None)
            if job is None:
                return
            lo, hi = starts[job], min(n, starts[job] + JOB_TOKENS)
            cap = (hi - lo) * 2 * cfg.window // cfg.batch_size + 2   # <= 2·window examples per position
            losses, counts = np.zeros(cap), np.zeros(cap, np.int64)
            k = sgns_job(w_in, w_out, stream, sent, lo, hi, cfg.window, cfg.negative, *noise_table,
                         lr_at(lo / max(n, 1)), seed + job, cfg.batch_size, losses, counts,
                         SIGMOID_TABLE, NEG_LOG_SIGMOID_TABLE)
            out[job] = (counts[:k], losses[:k])

    if pool is None:
        run(0)
    else:
        list(pool.map(run, range(cfg.workers)))
    jobs = [out[j] for j in sorted(out)]
    if not jobs:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate([c for c, _ in jobs]), np.concatenate([l for _, l in jobs])
