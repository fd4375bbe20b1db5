"""Language modelling with recurrent networks: batches, loss, perplexity, sampling, BPTT gradients.

A language model gives the probability of a text token by token (chain rule; course notation)

    L(x_1..x_M) = log P(x_1) + sum_{t=2..M} log P(x_t | x_{1:t-1})
    perplexity(x_1..x_M) = exp( -(1/M) L(x_1..x_M) )

Perplexity is 1 for a perfect model (probability 1 on every true token, L = 0) and |V| for a model
that knows nothing (probability 1/|V| for every token, L = -M log|V|). Training minimises the mean
cross-entropy ``-(1/M) L`` (in nats), i.e. the log of the perplexity.

* :func:`lm_windows` / :class:`LMBatches`: a token stream -> (input, target) pairs shifted by one;
* :class:`RNNLM`: embedding -> :mod:`neuraltext.rnn.cells` RNN/LSTM/GRU -> linear read-out to |V| logits;
* :func:`lm_loss`, :func:`perplexity`, :func:`evaluate_perplexity`;
* :func:`sample`: generation with a temperature;
* :func:`hidden_gradient_norms`, :func:`gradient_vs_distance`: ``||dL/dh_t||`` against the distance
  ``T - t`` between h_t and the loss, the picture of vanishing gradients in BPTT.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuraltext.rnn.layers import GRU, LSTM, RNN

__all__ = [
    "lm_windows", "LMBatches", "LMConfig", "RNNLM", "lm_loss", "perplexity", "perplexity_from_log_probs",
    "evaluate_perplexity", "sample", "temperature_probs", "hidden_gradient_norms", "gradient_vs_distance",
]


# ----------------------------------------------------------------------------------------------
# Data: a token stream -> (input, target) windows
# ----------------------------------------------------------------------------------------------
def lm_windows(ids: Sequence[int] | Tensor, seq_len: int) -> tuple[Tensor, Tensor]:
    """Cut a token stream into non-overlapping windows; targets are the inputs shifted by one.

    Window k covers tokens ``[k*T, k*T + T]`` (T+1 tokens): ``input = x[k*T : k*T+T]``,
    ``target = x[k*T+1 : k*T+T+1]``, so every position predicts the next token. Returns two
    (N, T) long tensors; the tail shorter than T+1 tokens is dropped.
    """
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    n = (ids.numel() - 1) // seq_len
    if n < 1:
        raise ValueError(f"a stream of {ids.numel()} tokens is too short for one window of seq_len={seq_len} (+1)")
    inputs = ids[: n * seq_len].view(n, seq_len)
    targets = ids[1 : n * seq_len + 1].view(n, seq_len)
    return inputs, targets


class LMBatches:
    """Re-iterable (input, target) batches of shape (B, T) from a token stream.

    Each pass (epoch) shuffles the windows with its own seed (``seed + epoch``), so passing this
    object to :func:`neuraltext.training.loop.train` gives a fresh, reproducible order every epoch.
    """

    def __init__(self, ids: Sequence[int] | Tensor, batch_size: int, seq_len: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.inputs, self.targets = lm_windows(ids, seq_len)
        self.batch_size, self.seq_len, self.shuffle, self.seed, self.drop_last = (
            batch_size, seq_len, shuffle, seed, drop_last)
        self._epoch = 0

    def __len__(self) -> int:
        n = self.inputs.size(0)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.inputs.size(0)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self._epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        self._epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.inputs[idx], self.targets[idx]

    @property
    def n_tokens(self) -> int:
        """Number of predicted tokens in one pass (N * T)."""
        return self.targets.numel()


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------
@dataclass
class LMConfig:
    vocab_size: int
    cell: str = "lstm"  # "rnn", "lstm" or "gru"
    embed_dim: int = 64
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LMConfig.{name} must be an integer >= 1, got {value!r}")
        if self.cell not in _SEQUENCE_MODULES:
            raise ValueError(f"LMConfig.cell must be one of {sorted(_SEQUENCE_MODULES)}, got {self.cell!r}")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"LMConfig.dropout must be in [0, 1), got {self.dropout!r}")


_SEQUENCE_MODULES = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class RNNLM(nn.Module):
    """Next-token model: ``P(x_{t+1} | x_{1:t}) = softmax(W_hy h_t + b_y)``, h_t from a recurrent net.

    ``forward(ids (B, T), state=None) -> (logits (B, T, |V|), state)``; pass the returned state back
    in to continue a text (that is how :func:`sample` generates one token at a time).
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        if config.cell not in _SEQUENCE_MODULES:
            raise ValueError(f"cell must be one of {sorted(_SEQUENCE_MODULES)}, got {config.cell!r}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)  # x_t: one-hot -> dense
        self.rnn = _SEQUENCE_MODULES[config.cell](
            config.embed_dim, config.hidden_size, num_layers=config.num_layers, dropout=config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)  # y_t = W_hy h_t + b_y

    def forward(self, ids: Tensor, state=None):
        if ids.dim() != 2:
            raise ValueError(f"ids should have shape (B, T), got {tuple(ids.shape)}")
        h, state = self.rnn(self.embed(ids), state)  # (B, T, H)
        return self.head(h), state  # (B, T, V)


# ----------------------------------------------------------------------------------------------
# Loss and perplexity
# ----------------------------------------------------------------------------------------------
def lm_loss(logits: Tensor, targets: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean cross-entropy ``-(1/M) sum_t log P(x_t | x_<t)`` in nats over the M targets.

    logits (B, T, V) (or (M, V)), targets (B, T) (or (M,)); positions equal to ``ignore_index`` are
    left out of both the sum and M.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} disagree: expected logits "
            f"of shape targets.shape + (V,)")
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=ignore_index)


_NO_FLOAT64 = {"mps"}  # device types without float64 (Apple's MPS raises on a float64 tensor)


def _wide_float(device: str | torch.device) -> torch.dtype:
    """The dtype perplexities and sampling probabilities are computed in on ``device``: float64, or
    float32 (the widest there is) on a device without float64."""
    return torch.float32 if torch.device(device).type in _NO_FLOAT64 else torch.float64


def perplexity_from_log_probs(log_probs: Tensor) -> Tensor:
    """``exp(-(1/M) sum_t log P(x_t | x_<t))`` from the M log-probabilities of the true tokens."""
    if log_probs.numel() == 0:
        raise ValueError("perplexity of an empty sequence is undefined (M = 0)")
    return torch.exp(-log_probs.mean())


def perplexity(logits: Tensor, targets: Tensor) -> Tensor:
    """Perplexity of a model's logits (..., V) on the true next tokens (...)."""
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} should have shape targets.shape + (V,), "
                         f"targets {tuple(targets.shape)}")
    log_p = torch.log_softmax(logits.to(_wide_float(logits.device)), dim=-1)
    log_p = log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return perplexity_from_log_probs(log_p)


@torch.no_grad()
def evaluate_perplexity(model: nn.Module, batches, device: str | torch.device | None = None) -> float:
    """Perplexity of an LM over all target tokens of ``batches`` (pooled: total NLL / total M).

    The negative log-likelihood is summed on the device (float64, float32 on MPS: :func:`_wide_float`)
    and read once at the end: no host synchronisation per batch.
    """
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    wide = _wide_float(device)
    total_nll = torch.zeros((), dtype=wide, device=device)
    total_m = 0
    for inputs, targets in batches:
        logits, _ = model(inputs.to(device))
        total_nll += F.cross_entropy(logits.reshape(-1, logits.size(-1)).to(wide),
                                     targets.to(device).reshape(-1), reduction="sum")
        total_m += targets.numel()
    model.train(was_training)
    if total_m == 0:
        raise ValueError("batches held no target tokens: perplexity is undefined (M = 0)")
    return math.exp(total_nll.item() / total_m)


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------
def _check_temperature(temperature: float) -> None:
    try:
        ok = math.isfinite(float(temperature)) and float(temperature) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")


def temperature_probs(logits: Tensor, temperature: float) -> Tensor:
    """``softmax(logits / T)``: T < 1 sharpens the distribution, T > 1 flattens it, T -> 0 is argmax."""
    _check_temperature(temperature)
    if temperature == 0:
        return F.one_hot(logits.argmax(-1), logits.size(-1)).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


@torch.no_grad()
def sample(model: RNNLM, prompt: Sequence[int], n_tokens: int, temperature: float = 1.0,
           generator: torch.Generator | None = None, stop_id: int | None = None) -> list[int]:
    """Continue ``prompt`` (token ids) by ``n_tokens`` tokens drawn from ``softmax(logits / T)``.

    ``temperature=0`` is greedy decoding. The recurrent state is carried from step to step, so each
    new token costs one cell step. Returns the new ids only (stops early at ``stop_id``). The tokens
    stay on the model's device (draws are made on the generator's device); the host reads them every
    ``_STOP_CHECK`` steps to look for ``stop_id``, and once at the end.
    """
    _check_temperature(temperature)
    if len(prompt) == 0:
        raise ValueError("the prompt needs at least one token (e.g. the <s> id)")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    draw_device = generator.device if generator is not None else device
    wide = _wide_float(device)
    logits, state = model(torch.tensor([list(prompt)], device=device))
    out: list[Tensor] = []
    for step in range(1, n_tokens + 1):
        probs = temperature_probs(logits[0, -1].to(wide), temperature)  # (V,)
        if temperature > 0:
            nxt = torch.multinomial(probs.to(draw_device), 1, generator=generator).to(device)  # (1,)
        else:
            nxt = probs.argmax(-1, keepdim=True)  # (1,)
        out.append(nxt)
        if stop_id is not None and step % _STOP_CHECK == 0 and (torch.cat(out[-_STOP_CHECK:]) == stop_id).any():
            break  # one host synchronisation per _STOP_CHECK tokens
        logits, state = model(nxt.view(1, 1), state)
    model.train(was_training)
    ids = torch.cat(out).tolist() if out else []
    if stop_id is not None and stop_id in ids:
        ids = ids[: ids.index(stop_id)]
    return ids


_STOP_CHECK = 16  # sample(): steps between two looks for stop_id (each one a host synchronisation)


# ----------------------------------------------------------------------------------------------
# BPTT: how far back does the gradient reach?
# ----------------------------------------------------------------------------------------------
def hidden_gradient_norms(cell: nn.Module, x: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``||dL/dh_t||`` for t = 1..T when the loss L = loss_fn(h_T) sees only the last hidden state.

    The cell (a :mod:`neuraltext.rnn.cells` cell) is unrolled explicitly over x (B, T, I) and every h_t is
    kept, so autograd returns the full BPTT gradient ``dL/dh_t = dL/dh_T prod_{k=t+1..T} dh_k/dh_{k-1}``
    (for the LSTM, through both h and the cell state C). Returns a (T,) tensor: entry t is the norm
    over the hidden units, averaged over the batch. Read it backwards: entry T-1-d is d steps away.
    """
    B, T, _ = x.shape
    state = cell.zero_state(B, x)
    xw = cell.project_input(x.transpose(0, 1)).unbind(0)  # T x (B, G*H)
    hs = []
    for t in range(T):
        state = cell.step(xw[t], state)
        h = state[0] if isinstance(state, tuple) else state
        h.retain_grad()
        hs.append(h)
    loss_fn(hs[-1]).backward()
    return torch.stack([h.grad.norm(dim=-1).mean() for h in hs]).detach()


def gradient_vs_distance(model: RNNLM, ids: Tensor) -> Tensor:
    """``||dL/dh_t||`` against the distance ``d = T - t``, for the loss on the *last* token of ``ids``.

    ``ids`` (B, T+1): the model reads ``ids[:, :T]`` and L is the cross-entropy of predicting
    ``ids[:, T]`` from h_T. Only one-layer models (the picture is about one recurrence). Returns a
    (T,) tensor whose entry d is the gradient norm d steps before the loss (entry 0: at h_T).
    """
    if model.config.num_layers != 1:
        raise ValueError(f"gradient_vs_distance needs a 1-layer model, got num_layers={model.config.num_layers}")
    if ids.dim() != 2 or ids.size(1) < 2:
        raise ValueError(f"ids should have shape (B, T+1) with T >= 1, got {tuple(ids.shape)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = ids.to(device)
    x = model.embed(ids[:, :-1]).detach()

    def loss_fn(h_T: Tensor) -> Tensor:
        return F.cross_entropy(model.head(h_T), ids[:, -1])

    norms = hidden_gradient_norms(model.rnn.cells[0], x, loss_fn)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return norms.flip(0).cpu()
