"""word2vec: skip-gram and CBOW with negative sampling (Mikolov et al., 2013), in PyTorch.

The model keeps two tables of vectors: the *input* vectors ``W_in`` (the embeddings we keep) and the
*output* vectors ``W_out``. For a training example the input side gives a vector ``h``:

* skip-gram: ``h = W_in[w_t]``, the centre word, and the word to predict is one context word ``w_O``;
* CBOW: ``h = mean(W_in[w_c] for w_c in C)``, the context words, and the word to predict is ``w_t``.

Negative sampling replaces the softmax over the whole vocabulary by ``k`` binary decisions. The
objective the course writes for one example (maximised) is

    L = log σ(v_O·h) + Σ_{i=1..k} E_{w_i ~ P_n} [log σ(-v_i·h)],       P_n(w) ∝ U(w)^{3/4}

where ``v = W_out[·]`` and ``U(w)`` is the raw count of ``w``. Its gradient, derived by hand with
``σ'(x) = σ(x)σ(-x)`` and ``d/dx log σ(x) = σ(-x) = 1 - σ(x)``, is

    ∂L/∂v_O = (1 - σ(v_O·h)) h
    ∂L/∂v_i = -σ(v_i·h) h
    ∂L/∂h   = (1 - σ(v_O·h)) v_O - Σ_i σ(v_i·h) v_i

or, with labels ``y = 1`` for the true word and ``y = 0`` for the noise words and ``g_j = y_j - σ(v_j·h)``:
``∂L/∂v_j = g_j h`` and ``∂L/∂h = Σ_j g_j v_j``. Training ascends this gradient with plain SGD
(``sgns_gradients`` below, checked against autograd and finite differences in the tests).

Speed comes from doing every step for a whole batch of examples at once: training pairs are cut out
of the token stream with NumPy array operations (no Python loop over words), the gradient is the
closed form above (no autograd graph), and the updates go straight into the two tables with
``index_add_`` (a sparse update: only the rows seen in the batch are touched). One departure from
one-example-at-a-time SGD is needed for that: a word met ``n`` times in a batch has its ``n`` updates
summed and divided by ``sqrt(n)`` (see ``_repeat_scale``), else frequent words overshoot.
On a multi-core CPU, ``workers=2`` trains batches in two Python threads that each run torch on one
core and update the shared tables without locks (Hogwild, as gensim's workers do): on a busy
machine this was much faster than letting torch split every small operation across two threads.
Two CPU details mattered as much: batches of 1,024 examples (their gathered rows fit in cache) ran
~1.5x faster per word than 4,096, and the scores ``v_j·h`` are one ``(B,1,D) @ (B,D,1+k)`` product,
~10x faster than ``(B,1+k,D) @ (B,D,1)``; noise words come from an alias table (``sample_alias``).

The other ingredients follow the original word2vec code (and gensim, the reference we measure
against): frequent words are sub-sampled, the window size is drawn per word (dynamic window), and the
learning rate decays linearly from ``alpha`` to ``min_alpha`` over training.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuraltext.utils import get_device, progress

__all__ = [
    "Word2VecConfig",
    "Word2Vec",
    "build_vocab",
    "noise_distribution",
    "keep_probability",
    "sample_noise",
    "alias_table",
    "sample_alias",
    "skipgram_pairs",
    "cbow_windows",
    "sgns_loss",
    "sgns_gradients",
    "planted_similarity_pairs",
    "evaluate",
    "gensim_test_coverage",
]


# --------------------------------------------------------------------------------------------------
# Counting, noise distribution, sub-sampling
# --------------------------------------------------------------------------------------------------

def build_vocab(sentences: Iterable[Sequence[str]], min_count: int = 5) -> tuple[list[str], np.ndarray]:
    """Words seen at least ``min_count`` times, most frequent first, and their counts ``U(w)``."""
    counts = Counter()
    n_sentences = 0
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str):
            raise TypeError(f"sentence {i} is a string; expected a list of tokens (e.g. text.split())")
        counts.update(sentence)
        n_sentences += 1
    if n_sentences == 0 or not counts:
        raise ValueError("the corpus is empty: no sentences or no tokens to learn from")
    kept = [(w, c) for w, c in counts.items() if c >= min_count]
    if not kept:
        raise ValueError(f"no word occurs min_count={min_count} times or more "
                         f"({len(counts)} distinct words, the most frequent {counts.most_common(1)[0]})")
    kept.sort(key=lambda wc: (-wc[1], wc[0]))
    words = [w for w, _ in kept]
    return words, np.array([c for _, c in kept], dtype=np.int64)


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """``P_n(w) = U(w)^exponent / Σ_w' U(w')^exponent`` (the course's ``U^{3/4}``)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise ValueError(f"counts must be a non-empty 1-D array of non-negative numbers, got shape {counts.shape}")
    p = counts ** exponent
    return p / p.sum()


def keep_probability(counts: np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """Probability of keeping each occurrence of a word when sub-sampling frequent words.

    With ``f(w) = U(w) / Σ U`` the word's frequency and ``t = sample``, the paper discards a word with
    probability ``1 - sqrt(t / f(w))``. The released word2vec code, and gensim, use the slightly
    gentler ``P_keep(w) = (sqrt(f(w) / t) + 1) · t / f(w)``, capped at 1; we use that one so that our
    model and gensim see the same training stream. ``sample = 0`` keeps everything.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / sample) + 1.0) * sample / f)


def sample_noise(noise_cdf: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` noise words from ``P_n``, given its cumulative sum ``noise_cdf`` (last entry 1):
    inverse-CDF sampling, one binary search per draw, exact up to float32 rounding."""
    u = torch.rand(n, generator=generator, device=noise_cdf.device)
    return torch.searchsorted(noise_cdf, u, right=True).clamp_(max=len(noise_cdf) - 1)


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
    :func:`sample_noise` (up to float32 rounding), but the cost does not depend on ``p``: on the course
    corpus 5-10x faster than the binary search, which mispredicts its branches on a flat ``P_n``."""
    i = torch.randint(len(prob), (n,), generator=generator, device=prob.device)
    u = torch.rand(n, generator=generator, device=prob.device)
    return torch.where(u < prob.index_select(0, i), i, alias.index_select(0, i))


# --------------------------------------------------------------------------------------------------
# Training examples, vectorised
# --------------------------------------------------------------------------------------------------

def _reach(n: int, window: int, rng: np.random.Generator, dynamic: bool) -> np.ndarray:
    """Window actually used around each position: uniform in 1..window (dynamic) or window."""
    if dynamic:
        return rng.integers(1, window + 1, size=n)
    return np.full(n, window)


def skipgram_pairs(ids: np.ndarray, sentence_ids: np.ndarray, window: int,
                   rng: np.random.Generator | None = None, dynamic: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All (centre, context) pairs of a token stream, without a Python loop over tokens.

    ``ids[i]`` is the i-th token's word index and ``sentence_ids[i]`` its sentence: pairs never cross a
    sentence boundary. Position ``i`` sees the words up to ``reach[i]`` positions away, with ``reach``
    drawn uniformly in ``1..window`` per position (the dynamic window, which weights near words more).
    The loop runs over the ``window`` distances, each one a handful of array operations.
    Returns ``(centres, contexts)``, two int64 arrays of word indices.
    """
    ids = np.asarray(ids)
    sentence_ids = np.asarray(sentence_ids)
    if ids.shape != sentence_ids.shape or ids.ndim != 1:
        raise ValueError(f"ids and sentence_ids must be 1-D arrays of the same length, got "
                         f"{ids.shape} and {sentence_ids.shape}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    rng = rng if rng is not None else np.random.default_rng(0)
    reach = _reach(len(ids), window, rng, dynamic)
    centres, contexts = [], []
    for d in range(1, window + 1):
        same = sentence_ids[:-d] == sentence_ids[d:]          # positions i and i+d share a sentence
        right = np.flatnonzero(same & (reach[:-d] >= d))       # centre i, context i+d
        left = np.flatnonzero(same & (reach[d:] >= d))         # centre i+d, context i
        centres += [ids[right], ids[left + d]]
        contexts += [ids[right + d], ids[left]]
    if not centres:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(centres).astype(np.int64), np.concatenate(contexts).astype(np.int64)


def cbow_windows(ids: np.ndarray, sentence_ids: np.ndarray, window: int,
                 rng: np.random.Generator | None = None, dynamic: bool = True):
    """CBOW examples: each centre position with the list of its context words, as flat arrays.

    Returns ``(targets, slots, contexts)``: ``targets[j]`` is the word to predict for example ``j``,
    and the context words of example ``j`` are ``contexts[slots == j]`` (``slots`` is sorted).
    Positions with no context (one-word sentences) give no example.
    """
    ids = np.asarray(ids)
    n = len(ids)
    rng = rng if rng is not None else np.random.default_rng(0)
    reach = _reach(n, window, rng, dynamic)
    pos, ctx = [], []
    for d in range(1, window + 1):
        same = sentence_ids[:-d] == sentence_ids[d:]
        right = np.flatnonzero(same & (reach[:-d] >= d))
        left = np.flatnonzero(same & (reach[d:] >= d))
        pos += [right, left + d]
        ctx += [ids[right + d], ids[left]]
    pos = np.concatenate(pos) if pos else np.empty(0, np.int64)
    ctx = np.concatenate(ctx) if ctx else np.empty(0, np.int64)
    order = np.argsort(pos, kind="stable")
    pos, ctx = pos[order], ctx[order]
    centre_pos, slots = np.unique(pos, return_inverse=True)
    return ids[centre_pos].astype(np.int64), slots.astype(np.int64), ctx.astype(np.int64)


# --------------------------------------------------------------------------------------------------
# The loss and its gradient
# --------------------------------------------------------------------------------------------------

def sgns_loss(h: torch.Tensor, v_out: torch.Tensor, v_neg: torch.Tensor) -> torch.Tensor:
    """Negative-sampling objective, negated so it is a loss to minimise, summed over the batch.

    ``h``: (B, D) input-side vectors; ``v_out``: (B, D) vectors of the true words ``v_O``;
    ``v_neg``: (B, k, D) vectors of the noise words. Returns
    ``-Σ_b [log σ(v_O·h) + Σ_i log σ(-v_i·h)]`` (the expectation in the course's formula is estimated
    by the ``k`` samples).
    """
    pos = (v_out * h).sum(-1)                                  # (B,)
    neg = torch.einsum("bkd,bd->bk", v_neg, h)                 # (B, k)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).sum()


def sgns_gradients(h: torch.Tensor, v_out: torch.Tensor, v_neg: torch.Tensor):
    """The hand-derived gradient of :func:`sgns_loss` (module docstring), without autograd.

    Returns ``(loss, d_h, d_v_out, d_v_neg)``, the gradients of the *loss* (so ``-∂L/∂·``), shapes
    (), (B, D), (B, D), (B, k, D).
    """
    pos = (v_out * h).sum(-1)                                  # (B,)
    neg = torch.einsum("bkd,bd->bk", v_neg, h)                 # (B, k)
    g_pos = torch.sigmoid(-pos)                                # 1 - σ(v_O·h)
    g_neg = -torch.sigmoid(neg)                                # -σ(v_i·h)
    loss = -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).sum()
    d_h = -(g_pos[:, None] * v_out + torch.einsum("bk,bkd->bd", g_neg, v_neg))
    d_v_out = -g_pos[:, None] * h
    d_v_neg = -g_neg[:, :, None] * h[:, None, :]
    return loss, d_h, d_v_out, d_v_neg


# --------------------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------------------

@dataclass
class Word2VecConfig:
    """Hyper-parameters; the defaults are gensim's (and the original code's) where they exist."""

    sg: bool = True                 # True: skip-gram, False: CBOW
    dim: int = 100                  # D, size of the vectors
    window: int = 5                 # largest distance between centre and context word
    negative: int = 5               # k, noise words per example
    ns_exponent: float = 0.75       # P_n(w) ∝ U(w)^ns_exponent
    sample: float = 1e-3            # sub-sampling threshold t (0: off)
    min_count: int = 5              # rarer words are dropped from the vocabulary
    alpha: float | None = None      # start learning rate (None: 0.05 skip-gram, 0.2 CBOW)
    min_alpha: float = 1e-4         # learning rate at the end (linear decay)
    epochs: int = 5
    batch_size: int = 1024          # examples per update (1,024: the (B, 1+k, D) gathered rows,
                                    # 2.4 MB, stay in cache; ~1.5x faster per word than 4,096, and
                                    # more updates: on 100k tokens x 5 epochs analogy 0.46 vs 0.36,
                                    # similarity 0.81 vs 0.67 at 4,096 and 0.82 for gensim, 2 seeds)
    dynamic_window: bool = True
    shuffle: bool = True            # shuffle the examples of a chunk (False: sentence order, as gensim
                                    # and the original code train; see Word2Vec._examples)
    chunk_tokens: int = 2_000_000   # tokens turned into examples at a time (bounds memory)
    seed: int = 0
    device: str | None = None       # None: neuraltext.utils.get_device()
    threads: int | None = None      # torch CPU threads per operation (None: leave torch's setting)
    workers: int = 1                # CPU: batches trained in parallel by this many Python threads,
                                    # each torch operation on one thread (Hogwild, like gensim's
                                    # workers; results then vary slightly from run to run)

    def __post_init__(self):
        for name in ("dim", "window", "negative", "min_count", "epochs", "batch_size", "chunk_tokens",
                     "workers"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        # NaN fails every comparison: test "finite and in range", never "not out of range"
        def check(name, ok, allowed):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value) or not ok(value):
                raise ValueError(f"{name} must be {allowed}, got {value!r}")

        check("sample", lambda v: v >= 0, "a finite number >= 0 (0: no sub-sampling)")
        check("ns_exponent", lambda v: True, "a finite number (0.75 in the paper)")
        check("min_alpha", lambda v: v >= 0, "a finite learning rate >= 0")
        if self.alpha is not None:
            check("alpha", lambda v: v > 0, "a finite learning rate > 0, or None for the default")

    @property
    def start_alpha(self) -> float:
        # Twice gensim's 0.025 for skip-gram: the sqrt(n) scaling of repeated rows (see
        # _repeat_scale) makes a batch move frequent words less than one-at-a-time SGD does.
        # CBOW spreads dL/dh over the context words (1/|C| each, the true gradient of the mean),
        # where word2vec's code gives each the full dL/dh: a larger rate makes up for it.
        # Both chosen by a small sweep on the course corpus (benchmarks/word2vec.py measures them);
        # with batches of 1,024, skip-gram's analogy accuracy was the same within the spread between
        # seeds for 0.025, 0.05 and 0.1 (3 epochs, 1M tokens).
        return self.alpha if self.alpha is not None else (0.05 if self.sg else 0.2)


class Word2Vec:
    """Skip-gram or CBOW with negative sampling, trained by batched SGD with sparse updates.

    Scikit-learn style: the constructor only stores hyper-parameters (see :class:`Word2VecConfig`),
    :meth:`fit` learns, and what was learned ends in ``_``:

    * ``vocabulary_`` (list of words, most frequent first), ``index_`` (word -> row), ``counts_``;
    * ``vectors_`` (V, D) float32 NumPy array, the input vectors ``W_in`` (the word embeddings);
    * ``context_vectors_`` (V, D), the output vectors ``W_out``;
    * ``loss_history_`` (mean loss per example, one value per ``log_every`` updates),
      ``words_per_second_`` (corpus tokens processed per second of training).
    """

    def __init__(self, config: Word2VecConfig | None = None, **kwargs):
        if config is not None and kwargs:
            config = Word2VecConfig(**{**asdict(config), **kwargs})
        self.config = config if config is not None else Word2VecConfig(**kwargs)

    # scikit-learn's parameter protocol, so that ``sklearn.base.clone`` and grid searches work: the
    # parameters are the config's fields. (Not a full scikit-learn estimator: it reads sentences,
    # not numeric samples, and validates its parameters when constructed.)
    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self.config, name) for name in self.config.__dataclass_fields__}

    def set_params(self, **params) -> "Word2Vec":
        unknown = set(params) - set(self.config.__dataclass_fields__)
        if unknown:
            raise ValueError(f"invalid parameter(s) {sorted(unknown)} for Word2Vec; valid: "
                             f"{sorted(self.config.__dataclass_fields__)}")
        self.config = Word2VecConfig(**{**asdict(self.config), **params})  # validated again
        return self

    # ---------------------------------------------------------------------------------- training
    def fit(self, corpus, log_every: int = 50, show_progress: bool = True) -> "Word2Vec":
        """Learn vectors from ``corpus``: a list of token lists, or any object with ``.sentences``
        (e.g. :func:`neuraltext.data.synthetic_corpus`). Returns ``self``.

        Raises ``ValueError`` when the corpus gives no training example at all (every sentence has
        fewer than two in-vocabulary words): training would return the random initial vectors."""
        cfg = self.config
        sentences = corpus.sentences if hasattr(corpus, "sentences") else corpus
        if isinstance(sentences, str):
            raise TypeError("fit() expects a list of tokenised sentences, not a string; "
                            "use [line.split() for line in text.splitlines()]")
        sentences = list(sentences)
        self.vocabulary_, self.counts_ = build_vocab(sentences, cfg.min_count)
        self.index_ = {w: i for i, w in enumerate(self.vocabulary_)}
        device = get_device(cfg.device)
        threads_before = torch.get_num_threads()
        if device.type == "cpu" and (cfg.threads is not None or cfg.workers > 1):
            # with several workers each one runs its operations on its own single thread
            torch.set_num_threads(1 if cfg.workers > 1 else cfg.threads)
        try:
            return self._fit(sentences, device, log_every, show_progress)
        finally:
            torch.set_num_threads(threads_before)

    def _fit(self, sentences, device, log_every, show_progress) -> "Word2Vec":
        cfg = self.config

        # The whole corpus as two flat arrays: word index per token (-1: out of vocabulary) and the
        # sentence it belongs to.
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        index = self.index_
        ids = np.fromiter((index.get(w, -1) for s in sentences for w in s), dtype=np.int64,
                          count=int(lengths.sum()))
        sentence_ids = np.repeat(np.arange(len(sentences)), lengths)
        in_vocab = ids >= 0
        ids, sentence_ids = ids[in_vocab], sentence_ids[in_vocab]
        n_raw = len(ids)
        if not (sentence_ids[1:] == sentence_ids[:-1]).any():
            # no word has a neighbour: there is no (centre, context) pair, nothing to learn from
            raise ValueError(
                "no training examples: every sentence has fewer than two words in the vocabulary "
                f"(min_count={cfg.min_count}), so no word has a context. Pass sentences of several "
                "words (a list of token lists, one per sentence, not one word per sentence)")

        V, D = len(self.vocabulary_), cfg.dim
        gen = torch.Generator().manual_seed(cfg.seed)
        # word2vec's initialisation: small uniform input vectors, zero output vectors.
        W_in = ((torch.rand(V, D, generator=gen) - 0.5) / D).to(device)
        W_out = torch.zeros(V, D, device=device)
        noise_prob, noise_alias = (t.to(device) for t in
                                   alias_table(noise_distribution(self.counts_, cfg.ns_exponent)))
        keep = keep_probability(self.counts_, cfg.sample)
        rng = np.random.default_rng(cfg.seed)
        n_workers = cfg.workers if device.type == "cpu" else 1
        noise_gens = [torch.Generator(device=device).manual_seed(cfg.seed + 1 + w) for w in range(n_workers)]
        pool = ThreadPoolExecutor(n_workers) if n_workers > 1 else None

        total_words = cfg.epochs * n_raw
        alpha0, alpha1 = cfg.start_alpha, cfg.min_alpha
        self.loss_history_: list[float] = []
        running, running_n, done_words, step = 0.0, 0, 0, 0
        start = time.perf_counter()
        bar_kwargs = {} if show_progress else {"disable": True}
        bar = progress(total=total_words, desc="word2vec " + ("skip-gram" if cfg.sg else "CBOW"),
                       unit="word", unit_scale=True, **bar_kwargs)
        for _ in range(cfg.epochs):
            for lo in range(0, n_raw, cfg.chunk_tokens):
                hi = min(n_raw, lo + cfg.chunk_tokens)
                chunk_ids, chunk_sent = ids[lo:hi], sentence_ids[lo:hi]
                kept = rng.random(len(chunk_ids)) < keep[chunk_ids]   # sub-sampling, fresh per epoch
                examples = self._examples(chunk_ids[kept], chunk_sent[kept], rng, device)
                n_examples = len(examples[0])
                chunk_words = hi - lo
                starts = range(0, n_examples, cfg.batch_size)

                def run(worker: int) -> list[tuple[int, int, float]]:
                    done = []
                    for b0 in starts[worker::n_workers]:
                        b1 = min(n_examples, b0 + cfg.batch_size)
                        frac = (done_words + chunk_words * b0 / n_examples) / total_words
                        lr = alpha0 - (alpha0 - alpha1) * frac            # linear decay
                        neg = sample_alias(noise_prob, noise_alias, (b1 - b0) * cfg.negative,
                                           noise_gens[worker])
                        if cfg.sg:
                            loss = _sgns_step(W_in, W_out, examples[0][b0:b1], examples[1][b0:b1], neg, lr)
                        else:
                            loss = _cbow_step(W_in, W_out, examples, b0, b1, neg, lr)
                        done.append((b0, b1 - b0, loss))
                    return done

                if n_workers == 1:
                    results = run(0)
                else:  # Hogwild: the workers update the shared tables without locks, like gensim's
                    results = [r for rs in pool.map(run, range(n_workers)) for r in rs]
                for _, n, loss in sorted(results):
                    running += loss
                    running_n += n
                    step += 1
                    if step % log_every == 0:
                        self.loss_history_.append(float(running) / running_n)
                        running, running_n = 0.0, 0
                done_words += chunk_words
                bar.update(chunk_words)
        bar.close()
        if pool is not None:
            pool.shutdown()
        if running_n:
            self.loss_history_.append(float(running) / running_n)
        elapsed = time.perf_counter() - start
        self.train_seconds_ = elapsed
        self.words_per_second_ = total_words / max(elapsed, 1e-9)
        self.vectors_ = W_in.cpu().numpy()
        self.context_vectors_ = W_out.cpu().numpy()
        return self

    def _examples(self, ids, sentence_ids, rng, device):
        """Training examples of one chunk as tensors on ``device``: shuffled, or with
        ``shuffle=False`` in sentence order (skip-gram: by centre position, as gensim trains).

        Measured on the course corpus (1M tokens, 3 epochs, alternating with gensim, workers=2):
        on seeds 0-2, where gensim scored high (analogy 0.45 ± 0.02, *specialist* section 0.48),
        sentence order with small batches and gensim's rate (``shuffle=False, batch_size=128,
        alpha=0.025``) came closer (0.43 ± 0.05, specialist 0.40) than the default (0.38, specialist
        0.32), at 0.26x gensim's speed instead of 0.69x; shuffled, even batches of 64 stayed at ~0.28
        on that section. Over seeds 0-7, though, gensim's own accuracy spread widely (0.39 ± 0.05,
        specialist 0.39 ± 0.08) and the default was on par overall (0.40 ± 0.04, specialist
        0.33 ± 0.04, gender higher), as was ``shuffle=False, alpha=0.025`` at batch 1,024
        (0.41 ± 0.02). The order stays an option, not the default.
        """
        cfg = self.config
        if cfg.sg:
            # pairs of positions, then of words: positions give the sentence order when not shuffling
            centres, contexts = skipgram_pairs(np.arange(len(ids)), sentence_ids, cfg.window, rng,
                                               cfg.dynamic_window)
            order = rng.permutation(len(centres)) if cfg.shuffle else np.lexsort((contexts, centres))
            return (torch.from_numpy(ids[centres[order]]).to(device),
                    torch.from_numpy(ids[contexts[order]]).to(device))
        targets, slots, contexts = cbow_windows(ids, sentence_ids, cfg.window, rng, cfg.dynamic_window)
        # Shuffle the examples, keeping each one's context words together: renumber the slots.
        order = rng.permutation(len(targets)) if cfg.shuffle else np.arange(len(targets))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        new_slots = rank[slots]
        by_slot = np.argsort(new_slots, kind="stable")
        new_slots, contexts = new_slots[by_slot], contexts[by_slot]
        offsets = np.searchsorted(new_slots, np.arange(len(targets) + 1))
        return (torch.from_numpy(targets[order]).to(device), torch.from_numpy(new_slots).to(device),
                torch.from_numpy(contexts).to(device), offsets)

    # --------------------------------------------------------------------------------- using it
    def _check_fitted(self):
        if not hasattr(self, "vectors_"):
            raise RuntimeError("this Word2Vec is not fitted yet: call fit(corpus) first")

    def _row(self, word: str) -> int:
        self._check_fitted()
        try:
            return self.index_[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self.vocabulary_)} words seen "
                           f"at least min_count={self.config.min_count} times)") from None

    def __contains__(self, word: str) -> bool:
        return hasattr(self, "index_") and word in self.index_

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors_[self._row(word)]

    def _unit(self) -> np.ndarray:
        norms = np.linalg.norm(self.vectors_, axis=1, keepdims=True)
        return self.vectors_ / np.maximum(norms, 1e-12)

    def most_similar(self, positive: str | Sequence[str], negative: Sequence[str] = (),
                     topn: int = 10) -> list[tuple[str, float]]:
        """Nearest words by cosine similarity to ``Σ positive - Σ negative`` (unit vectors), the query
        words themselves excluded; like gensim's ``most_similar``."""
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs at least one word")
        rows = [self._row(w) for w in positive + negative]
        unit = self._unit()
        query = unit[rows[:len(positive)]].sum(0) - unit[rows[len(positive):]].sum(0)
        query /= max(np.linalg.norm(query), 1e-12)
        sims = unit @ query
        sims[rows] = -np.inf
        best = np.argsort(-sims)[:topn]
        return [(self.vocabulary_[i], float(sims[i])) for i in best]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        unit = self._unit()
        return float(unit[self._row(a)] @ unit[self._row(b)])

    def analogy(self, a: str, b: str, c: str, topn: int = 1) -> list[tuple[str, float]]:
        """3CosAdd: *a is to b as c is to ?* -> the words closest to ``b - a + c``
        (``analogy("homme", "roi", "femme")`` -> ``reine``)."""
        return self.most_similar(positive=[b, c], negative=[a], topn=topn)

    # ------------------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save config, vocabulary, counts and both vector tables in one ``.npz`` file."""
        self._check_fitted()
        path = Path(path)
        np.savez(path, vectors=self.vectors_, context_vectors=self.context_vectors_,
                 counts=self.counts_, vocabulary=np.array(self.vocabulary_, dtype=np.str_),
                 config=np.array(json.dumps(asdict(self.config))),
                 loss_history=np.array(self.loss_history_, dtype=np.float64))
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> "Word2Vec":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved Word2Vec at {path}")
        # allow_pickle=False: a pickled array in a crafted file would run code when loaded. The
        # vocabulary is a Unicode string array (files saved before this used a pickled object array
        # and are refused with a clear error).
        with np.load(path, allow_pickle=False) as data:
            missing = {"vectors", "context_vectors", "counts", "vocabulary", "config"} - set(data.files)
            if missing:
                raise ValueError(f"{path} is not a saved Word2Vec: missing fields {sorted(missing)}")
            model = cls(Word2VecConfig(**json.loads(str(data["config"]))))
            model.vectors_ = data["vectors"]
            model.context_vectors_ = data["context_vectors"]
            model.counts_ = data["counts"]
            try:
                vocabulary = data["vocabulary"]
            except ValueError:
                raise ValueError(f"{path}: its vocabulary is a pickled object array, which is not loaded "
                                 "(pickles can run code). Re-save the model with this version's "
                                 "Word2Vec.save (vocabulary as a string array)") from None
            model.vocabulary_ = [str(w) for w in vocabulary]
            model.loss_history_ = data["loss_history"].tolist() if "loss_history" in data.files else []
        model.index_ = {w: i for i, w in enumerate(model.vocabulary_)}
        return model

    def to_keyed_vectors(self):
        """The vectors as gensim ``KeyedVectors`` (for its evaluation tools, or to save in the
        word2vec text/binary format)."""
        from gensim.models import KeyedVectors

        self._check_fitted()
        kv = KeyedVectors(self.config.dim)
        kv.add_vectors(self.vocabulary_, self.vectors_)
        for word, count in zip(self.vocabulary_, self.counts_):
            kv.set_vecattr(word, "count", int(count))
        return kv

    def __repr__(self) -> str:
        arch = "skip-gram" if self.config.sg else "CBOW"
        fitted = f", {len(self.vocabulary_):,} words" if hasattr(self, "vocabulary_") else ", not fitted"
        return f"Word2Vec({arch}, dim={self.config.dim}, window={self.config.window}, k={self.config.negative}{fitted})"


# --------------------------------------------------------------------------------------------------
# One SGD update on a batch (no autograd: the closed-form gradient, sparse row updates)
# --------------------------------------------------------------------------------------------------

def _repeat_scale(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """``sqrt(n)`` for each entry of ``rows``, where ``n`` is how often that row occurs in the batch.

    One-example-at-a-time SGD (gensim) moves a row once per occurrence, each time from fresh values.
    A batch sums all of a row's gradients, computed from the same stale values: a word seen ``n``
    times (a frequent noise word, in a small vocabulary) takes an ``n`` times larger step, and
    training diverges. Averaging (dividing by ``n``) is stable but leaves frequent words under-trained
    with large batches. Dividing by ``sqrt(n)`` sits between the two. On the course corpus (1,400
    words) the plain sum diverged already with batches of 1k examples; with ``sqrt(n)`` training was
    stable from 512 to 64k examples, with analogy accuracies that differed by less than the spread
    between seeds (exponents 0.25 and 0.75 did no better), on par with gensim's over eight seeds
    and with the same similarity score (benchmarks/word2vec.py).
    """
    n = torch.bincount(rows, minlength=n_rows).to(torch.float32)
    return n.sqrt_().index_select(0, rows)


@torch.no_grad()
def _output_side(W_out: torch.Tensor, h: torch.Tensor, true_words: torch.Tensor, neg: torch.Tensor,
                 lr: float) -> tuple[torch.Tensor, float]:
    """Score the true word and the k noise words against ``h``, update ``W_out`` in place, and return
    (``∂L/∂h`` times ``lr``, summed loss). ``h``: (B, D); ``true_words``: (B,); ``neg``: (B·k,)."""
    B, D = h.shape
    words = torch.cat([true_words[:, None], neg.view(B, -1)], dim=1)      # (B, 1+k): column 0 is true
    v = W_out.index_select(0, words.view(-1)).view(B, -1, D)            # (B, 1+k, D)
    # (B, 1+k) scores v_j·h, as (B, 1, D) @ (B, D, 1+k): on CPU ~10x faster than v @ h[:, :, None]
    z = torch.bmm(h.unsqueeze(1), v.transpose(1, 2)).squeeze(1)
    z[:, 1:].neg_()                                                      # z = (v_O·h, -v_1·h, ...)
    loss = -F.logsigmoid(z).sum().item()                                 # -L summed over the batch
    g = torch.sigmoid(z.neg_())                                          # 1-σ(v_O·h), σ(v_i·h)
    g[:, 1:].neg_()                                                      # g_j = y_j - σ(v_j·h)
    g.mul_(lr)
    dh = torch.bmm(g.unsqueeze(1), v).squeeze(1)                         # (B, D) lr·Σ_j g_j v_j
    flat = words.view(-1)
    g.div_(_repeat_scale(flat, W_out.shape[0]).view(B, -1))           # see _repeat_scale
    W_out.index_add_(0, flat, (g.unsqueeze(2) * h.unsqueeze(1)).view(-1, D))
    return dh, loss


@torch.no_grad()
def _sgns_step(W_in, W_out, centres, contexts, neg, lr) -> float:
    """Skip-gram: ``h = W_in[centre]``, predict ``context``."""
    h = W_in.index_select(0, centres)                                    # (B, D)
    dh, loss = _output_side(W_out, h, contexts, neg, lr)
    dh.div_(_repeat_scale(centres, W_in.shape[0])[:, None])
    W_in.index_add_(0, centres, dh)
    return loss


@torch.no_grad()
def _cbow_step(W_in, W_out, examples, b0, b1, neg, lr) -> float:
    """CBOW: ``h`` = mean of the context vectors, predict the centre word; the mean's gradient is
    shared equally by the context words."""
    targets, slots, contexts, offsets = examples
    p0, p1 = int(offsets[b0]), int(offsets[b1])
    slot = slots[p0:p1] - b0                                             # example of each context word
    ctx = contexts[p0:p1]
    B = b1 - b0
    n_ctx = torch.bincount(slot, minlength=B).clamp_(min=1).to(W_in.dtype)  # (B,)
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
# Evaluation, identical for our vectors and gensim's (both as KeyedVectors)
# --------------------------------------------------------------------------------------------------

def planted_similarity_pairs(groups: dict[str, list[str]], pairs_per_group: int = 20,
                             seed: int = 0) -> str:
    """A word-similarity list in ``wordsim353.tsv`` format built from the corpus's planted groups.

    Two words of the same group (two organs, two positive feelings, two cities ...) score 10, two
    words of different groups score 0: a model whose cosine similarities rank same-group pairs above
    cross-group pairs gets a high Spearman correlation. ``pairs_per_group`` pairs of each kind per
    group, drawn with a fixed seed, so every model is scored on the same list.
    """
    rng = np.random.default_rng(seed)
    names = sorted(g for g in groups if len(groups[g]) >= 2)
    if len(names) < 2:
        raise ValueError(f"need at least two groups of two or more words, got {sorted(groups)}")
    lines = ["# planted similarity: same group 10, different groups 0", "# word1\tword2\tscore"]
    for name in names:
        words = groups[name]
        others = [w for g in names if g != name for w in groups[g] if w not in set(words)]
        for _ in range(pairs_per_group):
            a, b = rng.choice(len(words), size=2, replace=False)
            lines.append(f"{words[a]}\t{words[b]}\t10")
            lines.append(f"{words[a]}\t{others[rng.integers(len(others))]}\t0")
    return "\n".join(lines) + "\n"


def _tmp_text(text: str) -> Path:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
    return Path(f.name)


def evaluate(kv, corpus) -> dict[str, float]:
    """Score gensim ``KeyedVectors`` (ours via :meth:`Word2Vec.to_keyed_vectors`, or gensim's
    ``model.wv``) on the corpus's planted analogies (3CosAdd, gensim's ``evaluate_word_analogies``)
    and planted similarity list (Spearman, gensim's ``evaluate_word_pairs``)."""
    analogy_path = _tmp_text(corpus.analogy_file())
    pairs_path = _tmp_text(planted_similarity_pairs(corpus.groups))
    try:
        total, sections = kv.evaluate_word_analogies(str(analogy_path))
        _, spearman, oov = kv.evaluate_word_pairs(str(pairs_path))
    finally:
        analogy_path.unlink()
        pairs_path.unlink()
    out = {"analogy": float(total)}
    for sec in sections:
        n = len(sec["correct"]) + len(sec["incorrect"])
        if sec["section"] != "Total accuracy" and n:
            out[f"analogy/{sec['section']}"] = len(sec["correct"]) / n
    out["similarity_spearman"] = float(spearman.statistic if hasattr(spearman, "statistic") else spearman[0])
    out["similarity_oov_%"] = float(oov)
    return out


def gensim_test_coverage(vocabulary: Iterable[str]) -> dict[str, str]:
    """How much of gensim's shipped English test sets (``questions-words.txt``, ``wordsim353.tsv``)
    a vocabulary covers: questions / pairs whose words are all known (case-insensitive)."""
    from gensim.test.utils import datapath

    vocab = {w.lower() for w in vocabulary}

    def covered(name: str, comment: str, words) -> tuple[int, int]:
        n = n_ok = 0
        with open(datapath(name), encoding="utf-8") as f:
            for line in f:
                if line.startswith(comment) or not line.strip():
                    continue
                n += 1
                n_ok += all(w.lower() in vocab for w in words(line))
        return n_ok, n

    n_q_ok, n_q = covered("questions-words.txt", ":", lambda line: line.split())
    n_p_ok, n_p = covered("wordsim353.tsv", "#", lambda line: line.split("\t")[:2])
    return {"questions-words.txt": f"{n_q_ok}/{n_q} questions", "wordsim353.tsv": f"{n_p_ok}/{n_p} pairs"}
