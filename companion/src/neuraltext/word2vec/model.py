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

It does so for a whole batch of examples at a time, with the closed form (no
autograd graph) and sparse row updates; that machinery (batches, Hogwild workers, an alias-table
noise sampler) is in :mod:`neuraltext.fast.word2vec`, and what each piece bought is measured in
``benchmarks/word2vec.py``. On the CPU, skip-gram trains by default with the same gradient one
example at a time in a compiled loop (:mod:`neuraltext.fast.word2vec_kernel`, when numba is
installed; ``engine="torch"`` keeps the batched PyTorch path).

The other ingredients follow the original word2vec code (and gensim, the reference we measure
against): frequent words are sub-sampled, the window size is drawn per word (dynamic window), and the
learning rate decays linearly from ``alpha`` to ``min_alpha`` over training.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuraltext.fast import word2vec as word2vec_fast
from neuraltext.fast import word2vec_kernel
from neuraltext.utils import cpu_threads, get_device
from neuraltext.word2vec.sampling import build_vocab, keep_probability, make_examples, noise_distribution

ENGINES = ("auto", "torch", "numba")

__all__ = [
    "Word2VecConfig",
    "Word2Vec",
    "sgns_loss",
    "sgns_gradients",
]


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
    batch_size: int = 1024          # examples per update (see benchmarks/word2vec.py for the choice)
    dynamic_window: bool = True
    shuffle: bool = True            # shuffle the examples of a chunk (False: sentence order, as gensim
                                    # and the original code train; see make_examples)
    chunk_tokens: int = 2_000_000   # tokens turned into examples at a time (bounds memory)
    seed: int = 0
    device: str | None = None       # None: neuraltext.utils.get_device()
    threads: int | None = None      # torch CPU threads per operation (None: leave torch's setting)
    workers: int = 1                # CPU: batches trained in parallel by this many Python threads,
                                    # each torch operation on one thread (Hogwild, like gensim's
                                    # workers; results then vary slightly from run to run)
    engine: str = "auto"            # "torch": the batched PyTorch path (any device); "numba": the
                                    # compiled one-example-at-a-time kernel (CPU, skip-gram); "auto":
                                    # numba for skip-gram on the CPU when it is installed, else torch

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
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.alpha is not None:
            check("alpha", lambda v: v > 0, "a finite learning rate > 0, or None for the default")

    @property
    def start_alpha(self) -> float:
        # The compiled kernel trains one example at a time, as gensim does: gensim's rate (0.025).
        if self.alpha is None and self.engine == "numba":
            return 0.025
        # Batched (engine "torch"): twice gensim's 0.025 for skip-gram: the sqrt(n) scaling of
        # repeated rows in a batch
        # (word2vec_fast) moves frequent words less than one-at-a-time SGD does. CBOW spreads dL/dh
        # over the context words (1/|C| each, the true gradient of the mean), where word2vec's code
        # gives each the full dL/dh: a larger rate makes up for it (sweep: benchmarks/word2vec.py).
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
        for name in ("vectors_", "context_vectors_", "loss_history_"):  # a failed refit leaves no
            self.__dict__.pop(name, None)                                # stale vectors behind
        self.vocabulary_, self.counts_ = build_vocab(sentences, cfg.min_count)
        self.index_ = {w: i for i, w in enumerate(self.vocabulary_)}
        device = get_device(cfg.device)
        self.engine_ = self._engine(device)
        threads = None
        if device.type == "cpu" and (cfg.threads is not None or cfg.workers > 1):
            threads = 1 if cfg.workers > 1 else cfg.threads  # each worker: one thread (Hogwild)
        with cpu_threads(threads):
            return self._fit(sentences, device, log_every, show_progress)

    def _engine(self, device: torch.device) -> str:
        """The training path ``fit`` takes: "numba" (the compiled kernel) or "torch"."""
        cfg = self.config
        if cfg.engine == "numba":
            if not word2vec_kernel.available():
                raise ImportError("engine='numba' needs numba (pip install numba); engine='torch' needs nothing more")
            if device.type != "cpu" or not cfg.sg:
                raise ValueError(f"engine='numba' trains skip-gram on the CPU; got sg={cfg.sg} on {device.type} "
                                 "(use engine='torch' or 'auto')")
            return "numba"
        if cfg.engine == "auto" and cfg.sg and device.type == "cpu" and word2vec_kernel.available():
            return "numba"
        return "torch"

    def _fit(self, sentences, device, log_every, show_progress) -> "Word2Vec":
        cfg = self.config
        ids, sentence_ids = self._token_stream(sentences)
        V, D = len(self.vocabulary_), cfg.dim
        gen = torch.Generator().manual_seed(cfg.seed)
        # word2vec's initialisation: small uniform input vectors, zero output vectors.
        W_in = ((torch.rand(V, D, generator=gen) - 0.5) / D).to(device)
        W_out = torch.zeros(V, D, device=device)
        start = time.perf_counter()
        noise = noise_distribution(self.counts_, cfg.ns_exponent)
        keep = keep_probability(self.counts_, cfg.sample)
        if self.engine_ == "numba":
            # SGD one example at a time, compiled: neuraltext.fast.word2vec_kernel
            self.loss_history_ = word2vec_kernel.train(
                W_in, W_out, ids, sentence_ids, noise, keep, replace(cfg, engine="numba"),
                log_every=log_every, show_progress=show_progress)
        else:
            # the batched SGD of the module docstring, made fast: neuraltext.fast.word2vec
            self.loss_history_ = word2vec_fast.train(
                W_in, W_out, ids, sentence_ids, noise=noise, keep=keep, cfg=cfg,
                make_examples=make_examples, log_every=log_every, show_progress=show_progress)
        self.train_seconds_ = time.perf_counter() - start
        self.words_per_second_ = cfg.epochs * len(ids) / max(self.train_seconds_, 1e-9)
        self.vectors_ = W_in.cpu().numpy()
        self.context_vectors_ = W_out.cpu().numpy()
        return self

    def _token_stream(self, sentences) -> tuple[np.ndarray, np.ndarray]:
        """The corpus as two flat arrays: the row of each in-vocabulary token, and its sentence."""
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        index = self.index_
        ids = np.fromiter((index.get(w, -1) for s in sentences for w in s), dtype=np.int64,
                          count=int(lengths.sum()))
        sentence_ids = np.repeat(np.arange(len(sentences)), lengths)
        in_vocab = ids >= 0
        ids, sentence_ids = ids[in_vocab], sentence_ids[in_vocab]
        if not (sentence_ids[1:] == sentence_ids[:-1]).any():
            # no word has a neighbour: there is no (centre, context) pair, nothing to learn from
            raise ValueError(
                "no training examples: every sentence has fewer than two words in the vocabulary "
                f"(min_count={self.config.min_count}), so no word has a context. Pass sentences of several "
                "words (a list of token lists, one per sentence, not one word per sentence)")
        return ids, sentence_ids

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
