"""What word2vec trains on: the vocabulary, the noise distribution, sub-sampling and the windows.

* the vocabulary keeps the words seen at least ``min_count`` times, by decreasing count;
* the noise distribution of negative sampling is ``P_n(w) ∝ U(w)^{3/4}`` (:func:`noise_distribution`);
* sub-sampling keeps an occurrence of ``w`` with probability ``(sqrt(f/t) + 1) t/f`` (``f``: its
  frequency, ``t`` = ``sample``), as the original code does (:func:`keep_probability`);
* a window of size ``b`` drawn uniformly in ``1..window`` for each centre word (the dynamic window)
  gives the skip-gram pairs ``(w_t, w_{t+j})`` and the CBOW contexts (:func:`skipgram_pairs`,
  :func:`cbow_windows`), all vectorised with NumPy.

:func:`make_examples` turns a chunk of the corpus into the tensors the training loop of
:mod:`neuraltext.fast.word2vec` consumes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

__all__ = ["build_vocab", "noise_distribution", "keep_probability", "sample_noise", "skipgram_pairs", "cbow_windows", "make_examples"]


# --------------------------------------------------------------------------------------------------
# Counting, noise distribution, sub-sampling
# --------------------------------------------------------------------------------------------------

def build_vocab(sentences: Iterable[Sequence[str]], min_count: int = 5) -> tuple[list[str], np.ndarray]:
    """Words seen at least ``min_count`` times, most frequent first, and their counts ``U(w)``: the
    course's one :class:`~neuraltext.tokenize.Vocab`, without special tokens."""
    from neuraltext.vocab import Vocab

    sentences = list(sentences)
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, str):
            raise TypeError(f"sentence {i} is a string; expected a list of tokens (e.g. text.split())")
    vocab = Vocab.build(sentences, min_freq=min_count, specials=(), unk=None)
    if not len(vocab):  # count again (only here, on the error path) to say what went wrong
        counts = Counter(w for s in sentences for w in s)
        if not counts:
            raise ValueError("the corpus is empty: no sentences or no tokens to learn from")
        raise ValueError(f"no word occurs min_count={min_count} times or more "
                         f"({len(counts)} distinct words, the most frequent {counts.most_common(1)[0]})")
    return vocab.itos, np.array([vocab.counts[w] for w in vocab.itos], dtype=np.int64)


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


def make_examples(ids: np.ndarray, sentence_ids: np.ndarray, cfg, rng: np.random.Generator, device):
    """Training examples of one chunk as tensors on ``device``: shuffled, or with
    ``cfg.shuffle=False`` in sentence order (skip-gram: by centre position, as gensim trains).

    Skip-gram: ``(centres, contexts)``. CBOW: ``(targets, slots, contexts, offsets)``, the context
    words of example ``j`` being ``contexts[offsets[j]:offsets[j + 1]]`` (``slots`` says whose they
    are), so that a batch of examples is a slice of each array.
    """
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
