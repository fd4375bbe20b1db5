"""The fast path of :mod:`neuraltext.word2vec.model`: batched SGD with closed-form sparse updates.

:mod:`neuraltext.word2vec.model` states the model (the negative-sampling objective and its gradient,
``sgns_gradients``); this module makes training it fast on a CPU or a GPU:

* **batches**: every step updates the two tables for ``batch_size`` examples at once, with the
  closed-form gradient (no autograd graph) and ``index_add_`` (only the rows seen are touched);
* **repeated rows**: a word met ``n`` times in a batch has its ``n`` updates summed and divided by
  ``sqrt(n)`` (:func:`_repeat_scale`), else frequent words overshoot;
* **noise words** are drawn from Walker's alias table (:func:`alias_table`, :func:`sample_alias`),
  whose cost does not depend on the shape of ``P_n``;
* **Hogwild**: with ``workers > 1`` on a CPU, Python threads each take the next batch when they
  are free and update the shared tables without locks, each torch operation on one thread (as
  gensim's workers do);
* **no host synchronisation** in the loop: the losses stay on the device and are copied once per
  chunk of the corpus.

What each of these bought, measured, is in ``benchmarks/word2vec.py``.

:func:`train` is a loop of its own, not the shared :func:`neuraltext.training.loop.train`: that loop runs
autograd and an optimiser over dense parameters, whereas word2vec applies its hand-derived gradient
as sparse row updates, with a learning rate decaying linearly over the words, from several
Hogwild threads at once -- no graph, no optimiser state, and the speed comes from exactly that.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from neuraltext.utils import progress

__all__ = ["alias_table", "sample_alias", "train"]


# --------------------------------------------------------------------------------------------------
# Noise words from an alias table
# --------------------------------------------------------------------------------------------------

def alias_table(p: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker's alias table of a distribution ``p`` (Vose's construction), for :func:`sample_alias`.

    Cut ``V`` columns of height ``1/V``; column ``i`` holds ``prob[i]·(1/V)`` of word ``i`` and the rest
    of word ``alias[i]``, so that every word's pieces add up to ``p(w)``: a draw is then one uniform
    column and one coin, whatever the shape of ``p``. Returns ``(prob, alias)`` (float32, int64)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"p must be a non-empty 1-D array of non-negative weights, got shape {p.shape}")
    n = len(p)
    q = p / p.sum() * n
    prob, alias = np.ones(n), np.arange(n)
    small, large = [i for i in range(n) if q[i] < 1.0], [i for i in range(n) if q[i] >= 1.0]
    while small and large:
        s, l = small.pop(), large.pop()
        prob[s], alias[s] = q[s], l          # column s: word s with probability q[s], else word l
        q[l] -= 1.0 - q[s]                   # l gave away the rest of column s
        (small if q[l] < 1.0 else large).append(l)
    return torch.tensor(prob, dtype=torch.float32), torch.tensor(alias, dtype=torch.int64)


def sample_alias(prob: torch.Tensor, alias: torch.Tensor, n: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` words from the distribution of an :func:`alias_table`: pick a column ``i`` uniformly,
    keep ``i`` with probability ``prob[i]``, else take ``alias[i]``. Same distribution as
    :func:`~neuraltext.word2vec.model.sample_noise` (up to float32 rounding), but the cost does not depend
    on ``p`` (a binary search mispredicts its branches on a flat ``P_n``)."""
    i = torch.randint(len(prob), (n,), generator=generator, device=prob.device)
    u = torch.rand(n, generator=generator, device=prob.device)
    return torch.where(u < prob.index_select(0, i), i, alias.index_select(0, i))


# --------------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------------



# --------------------------------------------------------------------------------------------------
# One SGD update on a batch (no autograd: the closed-form gradient, sparse row updates)
# --------------------------------------------------------------------------------------------------

def _repeat_scale(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """``sqrt(n)`` for each entry of ``rows``, where ``n`` is how often that row occurs in the batch.

    One-example-at-a-time SGD (gensim) moves a row once per occurrence, each time from fresh values.
    A batch sums all of a row's gradients, computed from the same stale values: a word seen ``n``
    times (a frequent noise word, in a small vocabulary) takes an ``n`` times larger step, and
    training diverges. Averaging (dividing by ``n``) is stable but leaves frequent words under-trained
    with large batches. Dividing by ``sqrt(n)`` sits between the two (the measurements behind this
    choice are in ``benchmarks/word2vec.py``).
    """
    # index_add_, not bincount: bincount on a GPU reads the largest index back to the host
    n = torch.zeros(n_rows, device=rows.device).index_add_(0, rows, torch.ones(rows.shape, device=rows.device))
    return n.sqrt_().index_select(0, rows)


@torch.no_grad()
def _output_side(W_out: torch.Tensor, h: torch.Tensor, true_words: torch.Tensor, neg: torch.Tensor,
                 lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Score the true word and the k noise words against ``h``, update ``W_out`` in place, and return
    (``∂L/∂h`` times ``lr``, summed loss). ``h``: (B, D); ``true_words``: (B,); ``neg``: (B·k,)."""
    B, D = h.shape
    words = torch.cat([true_words[:, None], neg.view(B, -1)], dim=1)      # (B, 1+k): column 0 is true
    v = W_out.index_select(0, words.view(-1)).view(B, -1, D)            # (B, 1+k, D)
    # (B, 1+k) scores v_j·h, as (B, 1, D) @ (B, D, 1+k): on a CPU much faster than v @ h[:, :, None]
    z = torch.bmm(h.unsqueeze(1), v.transpose(1, 2)).squeeze(1)
    z[:, 1:].neg_()                                                      # z = (v_O·h, -v_1·h, ...)
    loss = -F.logsigmoid(z).sum()                    # -L summed over the batch, left on the device
    g = torch.sigmoid(z.neg_())                                          # 1-σ(v_O·h), σ(v_i·h)
    g[:, 1:].neg_()                                                      # g_j = y_j - σ(v_j·h)
    g.mul_(lr)
    dh = torch.bmm(g.unsqueeze(1), v).squeeze(1)                         # (B, D) lr·Σ_j g_j v_j
    flat = words.view(-1)
    g.div_(_repeat_scale(flat, W_out.shape[0]).view(B, -1))           # see _repeat_scale
    W_out.index_add_(0, flat, (g.unsqueeze(2) * h.unsqueeze(1)).view(-1, D))
    return dh, loss


@torch.no_grad()
def _sgns_step(W_in, W_out, centres, contexts, neg, lr) -> torch.Tensor:
    """Skip-gram: ``h = W_in[centre]``, predict ``context``."""
    h = W_in.index_select(0, centres)                                    # (B, D)
    dh, loss = _output_side(W_out, h, contexts, neg, lr)
    dh.div_(_repeat_scale(centres, W_in.shape[0])[:, None])
    W_in.index_add_(0, centres, dh)
    return loss


@torch.no_grad()
def _cbow_step(W_in, W_out, examples, b0, b1, neg, lr) -> torch.Tensor:
    """CBOW: ``h`` = mean of the context vectors, predict the centre word; the mean's gradient is
    shared equally by the context words."""
    targets, slots, contexts, offsets = examples
    p0, p1 = int(offsets[b0]), int(offsets[b1])
    slot = slots[p0:p1] - b0                                             # example of each context word
    ctx = contexts[p0:p1]
    B = b1 - b0
    n_ctx = torch.zeros(B, device=W_in.device, dtype=W_in.dtype).index_add_(
        0, slot, torch.ones(slot.shape, device=W_in.device, dtype=W_in.dtype)).clamp_(min=1)  # (B,)
    h = torch.zeros(B, W_in.shape[1], device=W_in.device, dtype=W_in.dtype)
    h.index_add_(0, slot, W_in.index_select(0, ctx))
    h.div_(n_ctx[:, None])                                               # (B, D) mean of contexts
    dh, loss = _output_side(W_out, h, targets[b0:b1], neg, lr)
    dh.div_(n_ctx[:, None])
    dh = dh.index_select(0, slot)                                        # (n_pairs, D)
    dh.div_(_repeat_scale(ctx, W_in.shape[0])[:, None])
    W_in.index_add_(0, ctx, dh)
    return loss



# --------------------------------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------------------------------

def train(W_in: torch.Tensor, W_out: torch.Tensor, ids: np.ndarray, sentence_ids: np.ndarray,
          noise: np.ndarray, keep: np.ndarray, cfg, make_examples, log_every: int = 50,
          show_progress: bool = True) -> list[float]:
    """Train ``W_in`` and ``W_out`` in place for ``cfg.epochs`` passes over the token stream ``ids``
    (``sentence_ids``: the sentence of each token), with noise distribution ``noise`` (``P_n``) and
    sub-sampling keep probabilities ``keep``; ``make_examples(ids, sentence_ids, cfg, rng, device)``
    turns each chunk's kept tokens into training examples (the chapter module's
    :func:`neuraltext.word2vec.model.make_examples`). The learning rate decays linearly from
    ``cfg.start_alpha`` to ``cfg.min_alpha`` over all the words. Returns the loss history: the mean
    loss per example over each ``log_every`` updates."""
    device = W_in.device
    prob, alias = (t.to(device) for t in alias_table(noise))
    rng = np.random.default_rng(cfg.seed)
    n_workers = cfg.workers if device.type == "cpu" else 1
    gens = [torch.Generator(device=device).manual_seed(cfg.seed + 1 + w) for w in range(n_workers)]
    n_raw, total_words = len(ids), cfg.epochs * len(ids)
    alpha0, alpha1 = cfg.start_alpha, cfg.min_alpha
    sizes, losses = [], []                    # per update: examples (host), summed loss (device)
    done_words = 0
    bar = progress(total=total_words, desc="word2vec " + ("skip-gram" if cfg.sg else "CBOW"), unit="word",
                   unit_scale=True, **({} if show_progress else {"disable": True}))
    pool = ThreadPoolExecutor(n_workers) if n_workers > 1 else None
    try:
        for _ in range(cfg.epochs):
            for lo in range(0, n_raw, cfg.chunk_tokens):
                hi = min(n_raw, lo + cfg.chunk_tokens)
                chunk_ids, chunk_sent = ids[lo:hi], sentence_ids[lo:hi]
                kept = rng.random(len(chunk_ids)) < keep[chunk_ids]   # sub-sampling, fresh per epoch
                examples = make_examples(chunk_ids[kept], chunk_sent[kept], cfg, rng, device)

                def lr_at(fraction_of_chunk: float, done=done_words, words=hi - lo) -> float:
                    return alpha0 - (alpha0 - alpha1) * (done + words * fraction_of_chunk) / total_words

                n, loss = _train_chunk(W_in, W_out, examples, cfg, lr_at, (prob, alias), gens, pool)
                sizes += n
                losses.append(loss)
                done_words += hi - lo
                bar.update(hi - lo)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    return _loss_history(np.array(sizes), torch.cat(losses).cpu().numpy() if losses else np.zeros(0),
                         log_every)


def _train_chunk(W_in, W_out, examples, cfg, lr_at, noise_table, gens, pool) -> tuple[list[int], torch.Tensor]:
    """All the batches of one chunk; returns the examples per batch and the batches' summed losses
    (a device tensor), in batch order. With several workers, each takes the next batch as soon as it
    is free (Hogwild): on a busy machine a worker that is held up does fewer batches instead of
    keeping the others waiting at the end of the chunk."""
    n_examples = len(examples[0])
    starts = iter(range(0, n_examples, cfg.batch_size))
    lock = threading.Lock()

    def next_start() -> int | None:
        with lock:
            return next(starts, None)

    def run(worker: int) -> list[tuple[int, int, torch.Tensor]]:
        done = []
        while (b0 := next_start()) is not None:
            b1 = min(n_examples, b0 + cfg.batch_size)
            neg = sample_alias(*noise_table, (b1 - b0) * cfg.negative, gens[worker])
            lr = lr_at(b0 / n_examples)
            if cfg.sg:
                loss = _sgns_step(W_in, W_out, examples[0][b0:b1], examples[1][b0:b1], neg, lr)
            else:
                loss = _cbow_step(W_in, W_out, examples, b0, b1, neg, lr)
            done.append((b0, b1 - b0, loss))
        return done

    results = run(0) if pool is None else [r for rs in pool.map(run, range(len(gens))) for r in rs]
    results.sort(key=lambda r: r[0])
    if not results:
        return [], torch.zeros(0, device=W_in.device)
    return [n for _, n, _ in results], torch.stack([loss for _, _, loss in results])


def _loss_history(sizes: np.ndarray, losses: np.ndarray, log_every: int) -> list[float]:
    """Mean loss per example over each run of ``log_every`` updates (the last run may be shorter)."""
    if len(sizes) == 0:
        return []
    starts = np.arange(0, len(sizes), log_every)
    return (np.add.reduceat(losses.astype(np.float64), starts) / np.add.reduceat(sizes, starts)).tolist()
