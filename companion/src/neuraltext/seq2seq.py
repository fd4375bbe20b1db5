"""Sequence-to-sequence with attention: an RNN encoder-decoder, as in the course.

The **encoder** (a bidirectional GRU or LSTM from :mod:`neuraltext.rnn`) reads the source
x_1 .. x_{T_x} and returns one state per position, h̄_j = [h→_j ; h←_j]. The **decoder** writes the
target one symbol at a time from its own state h_t:

    h_t = f(y_{t-1}, h_{t-1}, c_{t-1})                  decoder step (course: s_t = f(y_{t-1}, s_{t-1}, C))
    α_tj = exp(score(h_t, h̄_j)) / Σ_k exp(score(h_t, h̄_k))    (4)  attention weights
    c_t = Σ_j α_tj h̄_j                                  (5)  context vector of step t
    h̃_t = tanh(W_c [c_t ; h_t])                          attentional state (Luong et al., 2015)
    p(y_t | y_<t, x) = softmax(W_s h̃_t)

with three scores (:class:`AdditiveAttention`, :class:`DotAttention`, :class:`GeneralAttention`):

    additive (Bahdanau et al., 2015)  score(h_t, h̄_j) = v_a^T tanh(W_1 h_t + W_2 h̄_j)
    dot      (Luong et al., 2015)     score(h_t, h̄_j) = h_t^T h̄_j
    general  (Luong et al., 2015)     score(h_t, h̄_j) = h_t^T W_a h̄_j

Padded source positions get score -inf, hence weight exactly 0. ``attention="none"`` is the
**baseline** the course criticises: one fixed context vector C = [h→_{T_x} ; h←_1] (the two final
encoder states) replaces c_t at every step, so the whole source must squeeze through it.

Training uses **teacher forcing** (the decoder reads the true y_{t-1}); inference uses **greedy
decoding** or **beam search** (:meth:`Seq2Seq.greedy`, :meth:`Seq2Seq.beam_search`), both returning
the attention weights for plotting. Helpers at the end train and evaluate the model on the date
normalisation task of :mod:`neuraltext.data.dates`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuraltext import rnn
from neuraltext.data.dates import CharVocab

__all__ = [
    "Seq2SeqConfig",
    "AdditiveAttention",
    "DotAttention",
    "GeneralAttention",
    "make_attention",
    "Encoder",
    "Decoder",
    "Seq2Seq",
    "Decoded",
    "seq2seq_loss",
    "make_batches",
    "train_seq2seq",
    "translate",
    "cpu_threads",
]

ATTENTION_KINDS = ("additive", "dot", "general", "none")


@dataclass
class Seq2SeqConfig:
    """Sizes and choices of a :class:`Seq2Seq` model (defaults: the date task on a CPU)."""

    src_vocab_size: int
    tgt_vocab_size: int
    emb_dim: int = 32
    hidden_size: int = 64  #: per encoder direction; the decoder state has 2 * hidden_size
    attention: str = "additive"  #: "additive" | "dot" | "general" | "none" (fixed context vector)
    attn_dim: int = 64  #: size of the additive score's hidden layer
    cell: str = "gru"  #: "gru" | "lstm" (encoder and decoder)
    pad_id: int = 0  #: the ids of <pad>, <s> and </s> in every neuraltext Vocab (chapter 1's table)
    bos_id: int = 2
    eos_id: int = 3

    def __post_init__(self):
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {self.attention!r}")
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")
        for name in ("src_vocab_size", "tgt_vocab_size", "emb_dim", "hidden_size", "attn_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        # the special ids index both embeddings (pad) and the output layer (all three)
        for name, size in (("pad_id", min(self.src_vocab_size, self.tgt_vocab_size)),
                           ("bos_id", self.tgt_vocab_size), ("eos_id", self.tgt_vocab_size)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
                raise ValueError(f"{name} must be a token id in [0, {size}) (the vocabulary), got {value!r}")


# ----------------------------------------------------------------------------------------------
# Attention: score, masked softmax (4), weighted sum (5)
# ----------------------------------------------------------------------------------------------
class _Attention(nn.Module):
    """Common part of every score: mask, softmax over source positions, context vector.

    ``forward(h_t, keys, values, mask) -> (c_t, alpha)`` with h_t (B, Dq), ``keys`` what
    :meth:`project_keys` returned for the encoder states (computed once per source, not per step),
    ``values`` = h̄ (B, S, Dv), ``mask`` (B, S) True on real source positions; c_t (B, Dv), alpha (B, S).
    """

    def project_keys(self, h_bar: Tensor) -> Tensor:
        return h_bar

    def score(self, h_t: Tensor, keys: Tensor) -> Tensor:  # (B, S)
        raise NotImplementedError

    def forward(self, h_t: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None = None):
        if h_t.dim() != 2 or values.dim() != 3 or h_t.size(0) != values.size(0):
            raise ValueError(f"{type(self).__name__}: expected h_t (B, Dq) and h̄ (B, S, Dv), "
                             f"got {tuple(h_t.shape)} and {tuple(values.shape)}")
        e = self.score(h_t, keys)  # score(h_t, h̄_j)                       (B, S)
        if mask is not None:
            if mask.shape != e.shape:
                raise ValueError(f"mask should have shape (B, S) = {tuple(e.shape)}, got {tuple(mask.shape)}")
            e = e.masked_fill(~mask, float("-inf"))  # padding: exp(-inf) = 0
        alpha = torch.softmax(e, dim=-1)  # α_tj, eq. (4)                  (B, S)
        c_t = torch.bmm(alpha.unsqueeze(1), values).squeeze(1)  # Σ_j α_tj h̄_j, eq. (5)   (B, Dv)
        return c_t, alpha


class AdditiveAttention(_Attention):
    """Bahdanau's score: ``score(h_t, h̄_j) = v_a^T tanh(W_1 h_t + W_2 h̄_j)``."""

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        self.W_1 = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_2 = nn.Linear(key_dim, attn_dim, bias=True)
        self.v_a = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, h_bar: Tensor) -> Tensor:
        return self.W_2(h_bar)  # W_2 h̄_j for every j, once per source   (B, S, A)

    def score(self, h_t: Tensor, keys: Tensor) -> Tensor:
        return self.v_a(torch.tanh(self.W_1(h_t).unsqueeze(1) + keys)).squeeze(-1)  # (B, S)


class DotAttention(_Attention):
    """Luong's dot score: ``score(h_t, h̄_j) = h_t^T h̄_j`` (no parameters; h_t and h̄_j same size)."""

    def score(self, h_t: Tensor, keys: Tensor) -> Tensor:
        if h_t.size(-1) != keys.size(-1):
            raise ValueError(f"dot attention needs h_t and h̄_j of the same size, got {h_t.size(-1)} "
                             f"and {keys.size(-1)}")
        return torch.bmm(keys, h_t.unsqueeze(-1)).squeeze(-1)  # (B, S)


class GeneralAttention(DotAttention):
    """Luong's general score: ``score(h_t, h̄_j) = h_t^T W_a h̄_j`` (the dot score on W_a h̄_j)."""

    def __init__(self, query_dim: int, key_dim: int):
        super().__init__()
        self.W_a = nn.Linear(key_dim, query_dim, bias=False)

    def project_keys(self, h_bar: Tensor) -> Tensor:
        return self.W_a(h_bar)  # (B, S, Dq)


def make_attention(kind: str, query_dim: int, key_dim: int, attn_dim: int = 64) -> _Attention | None:
    """The attention module named ``kind`` ("additive", "dot", "general"), or None for "none"."""
    if kind == "additive":
        return AdditiveAttention(query_dim, key_dim, attn_dim)
    if kind == "dot":
        return DotAttention()
    if kind == "general":
        return GeneralAttention(query_dim, key_dim)
    if kind == "none":
        return None
    raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {kind!r}")


# ----------------------------------------------------------------------------------------------
# Encoder and decoder
# ----------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """Embedding + bidirectional recurrent layer: ``x (B, S) -> h̄ (B, S, 2H), C (B, 2H)``.

    C = [h→_{T_x} ; h←_1], the final state of each direction (at each sequence's own last real
    token: the recurrent layer skips padding), is the fixed context vector of the baseline.
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.embed = nn.Embedding(config.src_vocab_size, config.emb_dim, padding_idx=config.pad_id)
        rnn_class = rnn.GRU if config.cell == "gru" else rnn.LSTM
        self.rnn = rnn_class(config.emb_dim, config.hidden_size, bidirectional=True, batch_first=True)

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        h_bar, h_n = self.rnn(self.embed(src), lengths=lengths)  # (B, S, 2H); (2, B, H)
        if isinstance(h_n, tuple):  # LSTM: (h_n, c_n)
            h_n = h_n[0]
        C = torch.cat([h_n[0], h_n[1]], dim=-1)  # [h→_T ; h←_1]   (B, 2H)
        return h_bar, C


class Decoder(nn.Module):
    """One decoder step: ``h_t = f([E y_{t-1} ; c_{t-1}], h_{t-1})``, then c_t, h̃_t and logits."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        D = 2 * config.hidden_size  # decoder state size = encoder state size (dot score needs it)
        self.config = config
        self.embed = nn.Embedding(config.tgt_vocab_size, config.emb_dim, padding_idx=config.pad_id)
        cell_class = rnn.GRUCell if config.cell == "gru" else rnn.LSTMCell
        self.cell = cell_class(config.emb_dim + D, D)  # input feeding: the previous context c_{t-1}
        self.init = nn.Linear(D, D)  # h_0 = tanh(W_init C)
        self.attention = make_attention(config.attention, D, D, config.attn_dim)
        self.W_c = nn.Linear(2 * D, D)  # h̃_t = tanh(W_c [c_t ; h_t])
        self.W_s = nn.Linear(D, config.tgt_vocab_size)  # logits = W_s h̃_t

    def init_state(self, C: Tensor):
        h0 = torch.tanh(self.init(C))
        return (h0, torch.zeros_like(h0)) if self.config.cell == "lstm" else h0

    def step(self, y_prev: Tensor, state, c_prev: Tensor, keys, h_bar: Tensor, mask: Tensor, C: Tensor):
        """One step from y_{t-1} (B,), returns (logits (B, V), state, c_t (B, D), alpha (B, S) or None)."""
        state = self.cell(torch.cat([self.embed(y_prev), c_prev], dim=-1), state)
        h_t = state[0] if isinstance(state, tuple) else state  # (B, D)
        if self.attention is None:
            c_t, alpha = C, None  # the baseline: the same C at every step
        else:
            c_t, alpha = self.attention(h_t, keys, h_bar, mask)  # eqs. (4)-(5)
        h_tilde = torch.tanh(self.W_c(torch.cat([c_t, h_t], dim=-1)))  # (B, D)
        return self.W_s(h_tilde), state, c_t, alpha


#: decoding loops ask the device whether every sequence has finished (a host synchronisation) only
#: every this many steps; the steps taken after that are padding, trimmed at the end
SYNC_EVERY = 8


def _check_max_len(max_len) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer (output symbols to generate), got {max_len!r}")


@dataclass
class Decoded:
    """Decoder output: ``ids`` (B, L) without <bos>, padded with <pad> after <eos>; ``logprob`` (B,)
    the sum of log p(y_t | y_<t, x) over the emitted symbols (including <eos>); ``alpha`` (B, L, S)
    the attention weights of each output step (None for the no-attention baseline)."""

    ids: Tensor
    logprob: Tensor
    alpha: Tensor | None


def _select_state(state, index: Tensor):
    return tuple(s[index] for s in state) if isinstance(state, tuple) else state[index]


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention (or the fixed-context baseline, ``attention="none"``)."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    # -- shared start ---------------------------------------------------------------------------
    def _check(self, src: Tensor, src_lengths: Tensor) -> None:
        if src.dim() != 2 or src.dtype != torch.long:
            raise ValueError(f"src should be a (B, S) long tensor of ids, got {tuple(src.shape)} {src.dtype}")
        if src_lengths.shape != (src.size(0),):
            raise ValueError(f"src_lengths should have shape (B,) = ({src.size(0)},), got {tuple(src_lengths.shape)}")

    def encode(self, src: Tensor, src_lengths: Tensor):
        """Encoder states, source mask (B, S), projected keys, baseline context C, decoder state h_0, c_0."""
        self._check(src, src_lengths)
        src_lengths = src_lengths.to(src.device)
        h_bar, C = self.encoder(src, src_lengths)
        mask = torch.arange(src.size(1), device=src.device)[None, :] < src_lengths[:, None]  # (B, S)
        att = self.decoder.attention
        keys = att.project_keys(h_bar) if att is not None else None
        return h_bar, mask, keys, C, self.decoder.init_state(C), C  # c_0 = C

    # -- training: teacher forcing ----------------------------------------------------------------
    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: ``tgt_in`` (B, T) = <bos> y_1 .. y_{T-1}; returns logits (B, T, V) and
        the attention weights (B, T, S) (None for the baseline)."""
        h_bar, mask, keys, C, state, c = self.encode(src, src_lengths)
        logits, alphas = [], []
        for t in range(tgt_in.size(1)):
            out, state, c, alpha = self.decoder.step(tgt_in[:, t], state, c, keys, h_bar, mask, C)
            logits.append(out)
            alphas.append(alpha)
        alpha = torch.stack(alphas, dim=1) if alphas[0] is not None else None
        return torch.stack(logits, dim=1), alpha

    # -- inference --------------------------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Tensor, max_len: int = 12) -> Decoded:
        """Greedy decoding: y_t = argmax p(y | y_<t, x), until every sequence has emitted <eos>."""
        _check_max_len(max_len)
        cfg = self.config
        h_bar, mask, keys, C, state, c = self.encode(src, src_lengths)
        B = src.size(0)
        y = torch.full((B,), cfg.bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        logprob = torch.zeros(B, device=src.device, dtype=h_bar.dtype)
        ids, alphas, alive = [], [], []
        for t in range(max_len):
            alive.append(~done.all())  # was any sequence unfinished before this step? (on the device)
            logits, state, c, alpha = self.decoder.step(y, state, c, keys, h_bar, mask, C)
            logp = torch.log_softmax(logits, dim=-1)
            y = logp.argmax(dim=-1)
            logprob += torch.where(done, 0.0, logp.gather(1, y[:, None]).squeeze(1))
            y = torch.where(done, cfg.pad_id, y)
            ids.append(y)
            alphas.append(alpha)
            done |= y == cfg.eos_id
            if (t + 1) % SYNC_EVERY == 0 and done.all():  # a host sync: every few steps only
                break
        n = int(torch.stack(alive).sum())  # steps taken before all had finished (the rest is padding)
        alpha = torch.stack(alphas[:n], dim=1) if alphas[0] is not None else None
        return Decoded(torch.stack(ids[:n], dim=1), logprob, alpha)

    @torch.no_grad()
    def beam_search(self, src: Tensor, src_lengths: Tensor, width: int = 5, max_len: int = 12,
                    length_penalty: float = 0.0) -> Decoded:
        """Beam search: keep the ``width`` most probable prefixes at every step.

        A prefix's score is Σ_t log p(y_t | y_<t, x); finished hypotheses (ended by <eos>) keep their
        score. The winner maximises score / L^length_penalty (L = its length with <eos>; the default
        0 compares raw log-probabilities, so width 1 is exactly greedy decoding). All B sources are
        searched at once, as B * width rows.
        """
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width (the beam width) must be a positive integer, got {width!r}")
        _check_max_len(max_len)
        cfg = self.config
        h_bar, mask, keys, C, state, c = self.encode(src, src_lengths)
        B, K, dev = src.size(0), width, src.device
        rows = torch.arange(B, device=dev).repeat_interleave(K)  # every source K times   (B*K,)
        h_bar, mask, C, c = h_bar[rows], mask[rows], C[rows], c[rows]
        keys = keys[rows] if keys is not None else None
        state = _select_state(state, rows)
        # only the first beam is alive at the start, so the K beams do not all expand the same prefix
        score = torch.full((B, K), float("-inf"), device=dev)
        score[:, 0] = 0.0
        y = torch.full((B * K,), cfg.bos_id, dtype=torch.long, device=dev)
        done = torch.zeros(B * K, dtype=torch.bool, device=dev)
        length = torch.zeros(B * K, device=dev)
        ids = torch.empty(B * K, 0, dtype=torch.long, device=dev)
        alphas = torch.empty(B * K, 0, h_bar.size(1), device=dev) if keys is not None else None
        alive = []
        for t in range(max_len):
            alive.append(~done.all())
            logits, state, c, alpha = self.decoder.step(y, state, c, keys, h_bar, mask, C)
            logp = torch.log_softmax(logits, dim=-1)  # (B*K, V)
            V = logp.size(-1)
            # a finished hypothesis can only be extended by <pad>, at no cost
            finished = torch.full_like(logp, float("-inf"))
            finished[:, cfg.pad_id] = 0.0
            logp = torch.where(done[:, None], finished, logp)
            cand = (score.view(B * K, 1) + logp).view(B, K * V)  # every one-symbol extension
            score, flat = cand.topk(K, dim=-1)  # (B, K)
            beam, y = flat // V, (flat % V).view(-1)  # which prefix, which new symbol
            src_row = (torch.arange(B, device=dev)[:, None] * K + beam).view(-1)  # (B*K,)
            state = _select_state(state, src_row)
            c, done, length = c[src_row], done[src_row], length[src_row]
            ids = torch.cat([ids[src_row], y[:, None]], dim=1)
            if alphas is not None:
                alphas = torch.cat([alphas[src_row], alpha[src_row].unsqueeze(1)], dim=1)
            length = length + (~done).float()
            done = done | (y == cfg.eos_id)
            if (t + 1) % SYNC_EVERY == 0 and done.all():  # a host sync: every few steps only
                break
        n = int(torch.stack(alive).sum())  # finished hypotheses only append <pad> at no cost: trim them
        ids = ids[:, :n]
        alphas = alphas[:, :n] if alphas is not None else None
        norm = score.view(-1) / length.clamp(min=1) ** length_penalty if length_penalty else score.view(-1)
        best = norm.view(B, K).argmax(dim=-1)  # (B,)
        pick = torch.arange(B, device=dev) * K + best
        return Decoded(ids[pick], score.view(-1)[pick], alphas[pick] if alphas is not None else None)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ----------------------------------------------------------------------------------------------
# Training and evaluation on (source, target) string pairs
# ----------------------------------------------------------------------------------------------
@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` CPU threads (None: leave the settings alone), restored afterwards.

    A character-level RNN multiplies tiny matrices step after step: threads cost more to wake than
    they save, and on a busy machine two OpenMP threads fighting for cores were measured 10x slower
    than one. Training and decoding here therefore default to one thread on the CPU (never on a
    GPU, where the CPU only launches kernels). ``threadpoolctl`` sets the OpenMP pool PyTorch uses
    (and NumPy's BLAS); PyTorch's own setting is also applied in case its build uses another pool.
    """
    if n is None:
        yield
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a positive integer or None, got {n!r}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        old = torch.get_num_threads()
        if old != n:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if old != n:
                torch.set_num_threads(old)


def _cpu_threads_for(device: torch.device, threads: int | None) -> int | None:
    """The thread limit to apply: ``threads`` on the CPU, none on an accelerator."""
    return threads if device.type == "cpu" else None


def seq2seq_loss(model: Seq2Seq, batch) -> Tensor:
    """Cross-entropy of teacher-forced predictions, averaged over real (non-pad) target symbols.

    ``batch = (src (B, S), src_lengths (B,), tgt_in (B, T), tgt_out (B, T))``, as from
    :func:`make_batches`: tgt_in = <bos> y_1 .. y_n, tgt_out = y_1 .. y_n <eos>.
    """
    src, src_lengths, tgt_in, tgt_out = batch
    logits, _ = model(src, src_lengths, tgt_in)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt_out.reshape(-1),
                           ignore_index=model.config.pad_id)


def make_batches(pairs: Sequence[tuple[str, str]], src_vocab: CharVocab, tgt_vocab: CharVocab,
                 batch_size: int = 64, shuffle: bool = True, seed: int = 0, bucket: bool = True):
    """Tensor batches ``(src, src_lengths, tgt_in, tgt_out)`` from (source, target) pairs.

    With ``bucket`` the pairs are grouped by source length (sorted within chunks of 50 batches) so
    that a batch holds sequences of similar length and the recurrent loops waste little time on
    padding; the order of the batches is then shuffled with ``seed``.
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("make_batches: no pairs")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = list(range(len(pairs)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    if bucket:
        chunk = 50 * batch_size
        order = [i for k in range(0, len(order), chunk)
                 for i in sorted(order[k:k + chunk], key=lambda i: len(pairs[i][0]))]
    batches = []
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        src, src_lengths = src_vocab.batch([pairs[i][0] for i in idx], eos=True)
        tgt, _ = tgt_vocab.batch([pairs[i][1] for i in idx], bos=True, eos=True)
        tgt_in, tgt_out = tgt[:, :-1].clone(), tgt[:, 1:].clone()
        tgt_in[tgt_in == tgt_vocab.eos_id] = tgt_vocab.pad_id  # <eos> is never an input
        batches.append((src, src_lengths, tgt_in, tgt_out))
    if shuffle:
        rng.shuffle(batches)
    return batches


def train_seq2seq(model: Seq2Seq, pairs: Sequence[tuple[str, str]], src_vocab: CharVocab,
                  tgt_vocab: CharVocab, epochs: int = 5, batch_size: int = 64, lr: float = 3e-3,
                  clip_norm: float | None = 1.0, seed: int = 0, device=None, threads: int | None = 1,
                  **train_kwargs):
    """Teacher-forced training with the shared loop :func:`neuraltext.train.train`.

    The batches are reshuffled every epoch (seeded: ``seed + epoch``); the learning rate decays
    linearly to 10% over the run; ``threads`` CPU threads when training on the CPU (see
    :func:`cpu_threads`; ignored on a GPU). Returns the
    :class:`neuraltext.train.TrainHistory`.
    """
    from neuraltext.train import train
    from neuraltext.utils import get_device

    epoch = {"n": 0}

    def batches():
        epoch["n"] += 1
        return make_batches(pairs, src_vocab, tgt_vocab, batch_size, shuffle=True, seed=seed + epoch["n"])

    steps_per_epoch = math.ceil(len(pairs) / batch_size)
    total = epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 - 0.9 * min(s, total) / total)
    device = get_device(device)
    with cpu_threads(_cpu_threads_for(device, threads)):
        return train(model, seq2seq_loss, batches, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                     clip_norm=clip_norm, device=device, desc="seq2seq", **train_kwargs)


@torch.no_grad()
def translate(model: nn.Module, sources: Sequence[str], src_vocab: CharVocab, tgt_vocab: CharVocab,
              beam_width: int = 1, max_len: int = 12, batch_size: int = 256,
              return_alpha: bool = False, threads: int | None = 1):
    """Decode ``sources`` to strings with a :class:`Seq2Seq` or a
    :class:`neuraltext.transformer.Transformer` (greedy when ``beam_width`` is 1, else beam search,
    which only the recurrent model has). The one ``translate`` of the package
    (``neuraltext.transformer.translate`` is this function).

    Returns the list of predictions, and with ``return_alpha`` (recurrent model only) also a list of
    attention matrices (output steps incl. <eos> x source characters incl. <eos>), one per source
    (None for the baseline). ``threads``: CPU threads when the model is on the CPU (see
    :func:`cpu_threads`).
    """
    is_seq2seq = isinstance(model, Seq2Seq)
    if not is_seq2seq and (beam_width != 1 or return_alpha):
        raise ValueError(
            f"{type(model).__name__} decodes greedily only: beam_width must be 1 and return_alpha False "
            f"(got beam_width={beam_width!r}, return_alpha={return_alpha!r}); attention maps: "
            f"Transformer.attention_maps"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    _check_max_len(max_len)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with cpu_threads(_cpu_threads_for(device, threads)):
            if not is_seq2seq:
                return _translate_greedy(model, sources, src_vocab, tgt_vocab, max_len, batch_size, device)
            return _translate(model, sources, src_vocab, tgt_vocab, beam_width, max_len, batch_size,
                              return_alpha, device)
    finally:
        model.train(was_training)


def _translate_greedy(model, sources, src_vocab, tgt_vocab, max_len, batch_size, device):
    from neuraltext.transformer import greedy_decode

    preds = []
    for k in range(0, len(sources), batch_size):
        src, _ = src_vocab.batch(list(sources[k:k + batch_size]), eos=True, device=device)  # (B, S)
        ids = greedy_decode(model, src, tgt_vocab.bos_id, tgt_vocab.eos_id, max_len)  # (B, <= max_len)
        preds.extend(tgt_vocab.decode(row) for row in ids.tolist())
    return preds


def _translate(model, sources, src_vocab, tgt_vocab, beam_width, max_len, batch_size, return_alpha, device):
    preds, alphas = [], []
    for k in range(0, len(sources), batch_size):
        chunk = list(sources[k:k + batch_size])
        src, src_lengths = src_vocab.batch(chunk, eos=True, device=device)
        out = (model.greedy(src, src_lengths, max_len) if beam_width == 1
               else model.beam_search(src, src_lengths, beam_width, max_len))
        lengths = src_lengths.tolist()  # one transfer per batch, not one per sequence
        alpha = out.alpha.cpu() if return_alpha and out.alpha is not None else None
        for i, row in enumerate(out.ids.tolist()):
            text = tgt_vocab.decode(row)
            preds.append(text)
            if return_alpha:
                if alpha is None:
                    alphas.append(None)
                else:
                    n_out = min(len(text) + 1, alpha.size(1))
                    alphas.append(alpha[i, :n_out, : lengths[i]])
    return (preds, alphas) if return_alpha else preds
