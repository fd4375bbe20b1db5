"""Generating text with a decoder-only language model: temperature, top-k, top-p, a KV cache.

A language model gives the probability of the next token given the ones before it. The lecture
notes write it with the de-embedding matrix ``D`` (``|V| x d``), the final embedding ``E_t`` of the
last position (the output of the last transformer layer) and a temperature ``T``:

    P(w_t | w_<t) = softmax(D E_t / T)

``D E_t`` are the *logits*. ``T = 1`` is the model's own distribution; ``T < 1`` sharpens it
(``T -> 0`` is greedy decoding: always the most probable token); ``T > 1`` flattens it. Two filters
then cut the long tail before sampling:

* top-k keeps the ``k`` most probable tokens;
* top-p (nucleus sampling, Holtzman et al. 2020) keeps the *smallest* set of most probable tokens
  whose probability mass is at least ``p``.

Both set the logits of the tokens they drop to ``-inf`` and the softmax renormalises what is left.
They are applied in that order (temperature, top-k, top-p), as in ``transformers``.

The model contract (both :mod:`neuraltext.gpt.model` and :mod:`neuraltext.gpt.llama` implement it)::

    logits, present = model(input_ids, attention_mask=None, position_ids=None, past=None)

* ``input_ids`` ``(B, T)`` long: the new tokens;
* ``attention_mask`` ``(B, S_past + T)``: 1/True at real tokens, 0/False at padding, for the
  cached tokens *and* the new ones;
* ``position_ids`` ``(B, T)`` long: the position of each new token. For a left-padded batch the
  default is ``cumsum(attention_mask) - 1`` clamped at 0, so every prompt starts at position 0 however
  much padding sits in front of it;
* ``past``/``present``: one ``(k, v)`` pair per layer, each ``(B, n_kv_heads, S, d_head)``, or
  ``None``. The model builds and extends its own cache; :func:`generate` only hands it back.
* ``logits`` ``(B, T, V)``.

The KV cache: at step ``t`` the keys and values of the tokens ``< t`` do not change (causal
attention: a token never looks at later ones), so the model keeps them and computes only the new
token's query, key and value: one token per step instead of the whole prefix. The tests check that
the tokens and logits with and without the cache agree (1e-5).

Batches of prompts of different lengths are **left**-padded, so that every row's next token is
written in the same column; the padding is masked out of attention and the position ids skip it.
Shapes: ``B`` batch, ``T`` new tokens, ``S`` cached tokens, ``V`` vocabulary size.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence

import torch

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "filter_logits",
    "sample_next",
    "default_position_ids",
    "position_ids_for",
    "next_token_distribution",
    "top_tokens",
    "generate",
    "pad_left",
]


# ----------------------------------------------------------------------------------------- checks
def _check_temperature(temperature: float) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature must be a number >= 0, got {temperature!r}") from None
    if math.isnan(t) or t < 0 or math.isinf(t):
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    return t


def _check_top_k(top_k) -> int | None:
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    return top_k


def _check_top_p(top_p) -> float | None:
    if top_p is None:
        return None
    try:
        p = float(top_p)
    except (TypeError, ValueError):
        raise TypeError(f"top_p must be None or a number in (0, 1], got {top_p!r}") from None
    if not (0.0 < p <= 1.0):  # also rejects nan
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}")
    return p


# ---------------------------------------------------------------------------------- the filters
def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / T`` (the ``D E_t / T`` of the equation). ``T = 0`` is the limit ``T -> 0``: only
    the most probable token keeps a finite logit (the first one if several tie), so sampling from
    the result is greedy decoding."""
    t = _check_temperature(temperature)
    if t == 0.0:
        best = logits.argmax(dim=-1, keepdim=True)
        out = torch.full_like(logits, float("-inf"))
        return out.scatter(-1, best, logits.gather(-1, best))
    return logits / t


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row (``(..., V)``), set the others to ``-inf``.

    Tokens tied with the k-th largest are all kept (the choice must not depend on token ids), so a
    row can keep more than ``k`` when there are ties; ``k >= V`` keeps everything.
    """
    k = _check_top_k(k)
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest value
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most probable tokens whose probability mass is at
    least ``p``; set the other logits to ``-inf``.

    Sorted by decreasing probability ``pi_(1) >= pi_(2) >= ...``, token ``(i)`` is kept when the
    mass of the tokens before it is still below ``p``: ``sum_{j<i} pi_(j) < p``. So the most probable
    token is always kept (a very small ``p`` is greedy), one token holding ``p`` or more alone is the
    whole nucleus, and ``p = 1`` keeps every token. Boundary rules, made explicit because the tests
    check them:

    * a mass within a few float ulps of ``p`` counts as reaching it (``0.5 + 0.3`` is ``0.8``);
    * tokens tied with the least probable kept token are all kept (the set then holds more than ``p``
      by the ties, but the choice never depends on the order of token ids).
    """
    p = _check_top_p(p)
    if p == 1.0:
        return logits
    work = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    sorted_logits, _ = torch.sort(work, dim=-1, descending=True)  # (..., V)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # (..., V): sum_{j<i} pi_(j)
    tol = 8 * torch.finfo(probs.dtype).eps  # float error of the cumulative sum
    keep_sorted = mass_before < p - tol  # a prefix of the sorted tokens
    n_keep = keep_sorted.sum(dim=-1, keepdim=True).clamp(min=1)  # (..., 1): the argmax always stays
    threshold = sorted_logits.gather(-1, n_keep - 1)  # the smallest kept logit
    return logits.masked_fill(work < threshold, float("-inf"))  # ties with it stay


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Temperature, then top-k, then top-p (the order ``transformers`` uses); ``(..., V)``."""
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return logits


def _as_generator(generator, device: torch.device) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator(device=device).manual_seed(generator)
    raise TypeError(f"generator must be None, an int seed or a torch.Generator, got {generator!r}")


def _check_logits(logits: torch.Tensor) -> None:
    """NaN logits have no most probable token (argmax would return an arbitrary id) and no
    distribution: refuse them, naming the rows. Checked on CPU tensors only (no host wait on a GPU;
    :func:`generate` checks a GPU's logits once, at the end)."""
    if logits.device.type == "cpu":
        bad = torch.isnan(logits).any(-1)
        if bool(bad.any()):
            rows = bad.nonzero().flatten().tolist()
            raise ValueError(f"logits hold NaN in row(s) {rows[:10]}: the model's output is broken (a NaN "
                             f"weight or input?); no token can be chosen, at any temperature")


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | int | None = None) -> torch.Tensor:
    """One token per row from ``logits`` ``(B, V)``: ``(B,)`` long. ``temperature=0`` is greedy
    (the argmax of the raw logits; no randomness is drawn)."""
    _check_logits(logits)
    if _check_temperature(temperature) == 0.0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p).float(), dim=-1)
    gen = _as_generator(generator, logits.device)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


# ------------------------------------------------------------------------------- model helpers
def default_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """``cumsum(mask) - 1`` clamped at 0: ``(B, S)`` positions that start at 0 at each row's first
    real token (a left-padded row's padding gets position 0; it is masked out anyway)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def position_ids_for(attention_mask: torch.Tensor | None, B: int, T: int, S_past: int,
                     device: torch.device) -> torch.Tensor:
    """Position ids ``(B, T)`` of ``T`` new tokens after ``S_past`` cached ones: the last ``T`` columns of
    :func:`default_position_ids` of the whole ``(B, S_past + T)`` mask, or ``S_past .. S_past + T - 1``
    without a mask. The default of both decoders' ``forward`` and of :func:`generate`'s cached steps."""
    if attention_mask is None:
        return torch.arange(S_past, S_past + T, device=device).expand(B, T)
    return default_position_ids(attention_mask)[:, S_past:]


def _check_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        what = f"{tuple(input_ids.shape)} {input_ids.dtype}" if isinstance(input_ids, torch.Tensor) else repr(input_ids)
        raise ValueError(f"input_ids must be a (B, T) long tensor, got {what}")
    if input_ids.shape[1] == 0:
        raise ValueError("input_ids must hold at least one token per row, got T = 0")
    if attention_mask is None:
        return torch.ones_like(input_ids, dtype=torch.bool)
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(
            f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
            f"got {tuple(attention_mask.shape)}"
        )
    mask = attention_mask.to(device=input_ids.device, dtype=torch.bool)
    if not bool(mask[:, -1].all()):
        raise ValueError(
            "attention_mask: every row's last token must be real (1): pad prompts on the LEFT "
            "for generation, so that each row's next token goes in the same column"
        )
    return mask


@torch.no_grad()
def next_token_distribution(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                            temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> torch.Tensor:
    """``P(w_t | w_<t) = softmax(D E_t / T)`` after each prompt, with the filters: ``(B, V)``."""
    mask = _check_inputs(input_ids, attention_mask)
    logits, _ = model(input_ids, attention_mask=mask, position_ids=default_position_ids(mask))
    last = filter_logits(logits[:, -1].float(), temperature, top_k, top_p)  # (B, V)
    return torch.softmax(last, dim=-1)


def top_tokens(probs: torch.Tensor, k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` most probable token ids of a ``(V,)`` distribution, with their probabilities."""
    if probs.dim() != 1:
        raise ValueError(f"probs must be one distribution of shape (V,), got {tuple(probs.shape)}")
    values, ids = torch.topk(probs, min(k, probs.numel()))
    return [(int(i), float(v)) for i, v in zip(ids.tolist(), values.tolist())]


# -------------------------------------------------------------------------------- generation
def _check_generate_args(model, input_ids, max_new_tokens, temperature, top_k, top_p, stop_ids, pad_id):
    """The arguments of :func:`generate`, each refused with its name, value and what is allowed. Token
    ids are checked against the model's vocabulary when it is known (``model.config.vocab_size``):
    the prompt with one ``aminmax`` per call, not per step. Returns the stop ids as a sorted list."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    _check_temperature(temperature), _check_top_k(top_k), _check_top_p(top_p)
    V = getattr(getattr(model, "config", None), "vocab_size", None)
    allowed = f"a token id in [0, {V}) (the vocabulary)" if isinstance(V, int) else "a token id >= 0"
    in_vocab = (lambda i: 0 <= i < V) if isinstance(V, int) else (lambda i: i >= 0)
    if isinstance(pad_id, bool) or not isinstance(pad_id, int) or not in_vocab(pad_id):
        raise ValueError(f"pad_id must be {allowed} (it is fed to the model, masked), got {pad_id!r}")
    if stop_ids is None:  # no stop id: generate max_new_tokens tokens
        stop_ids = ()
    if isinstance(stop_ids, int) and not isinstance(stop_ids, bool):
        stop_ids = (stop_ids,)
    if isinstance(stop_ids, (str, bytes)) or not isinstance(stop_ids, Iterable):
        raise TypeError(f"stop_ids must be None, a token id or an iterable of token ids, got {stop_ids!r}")
    stops = list(stop_ids)
    bad = [s for s in stops if isinstance(s, bool) or not isinstance(s, int) or not in_vocab(s)]
    if bad:
        raise ValueError(f"stop_ids must hold token ids ({allowed}), got {bad[0]!r} in {stops!r}")
    if isinstance(V, int) and input_ids.numel():
        lo, hi = (int(v) for v in torch.aminmax(input_ids))
        if lo < 0 or hi >= V:
            raise ValueError(f"input_ids must hold ids in [0, {V}) (the vocabulary), got {lo if lo < 0 else hi}")
    return sorted(set(stops))


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_ids: Iterable[int] | int | None = (),
    pad_id: int = 0,
    use_cache: bool = True,
    generator: torch.Generator | int | None = None,
    return_logits: bool = False,
):
    """Continue each prompt of ``input_ids`` ``(B, T)`` by up to ``max_new_tokens`` tokens.

    Args:
        model: follows the contract of the module docstring.
        attention_mask: ``(B, T)``, 1 at real tokens; prompts of different lengths are left-padded.
        temperature: ``T`` of ``softmax(D E_t / T)``; 0 is greedy decoding.
        top_k, top_p: the filters (:func:`top_k_filter`, :func:`top_p_filter`); None = off.
        stop_ids: token ids (or one id; None = none); a row is finished once it has produced one of
            them (it is kept in the output); afterwards the row receives ``pad_id`` (a valid token id:
            it goes through the model, masked out). The loop ends early when every row is finished.
        use_cache: reuse the keys and values of earlier tokens (the KV cache); False recomputes the
            whole sequence at every step (same result, slower; the tests compare the two).
        generator: None (the global RNG), an int seed, or a ``torch.Generator``: a fixed seed gives
            the same sample.
        return_logits: also return the raw logits of every step, ``(B, new, V)``.

    Returns:
        ``(B, T + new)`` long, the prompts followed by the new tokens (``new <= max_new_tokens``), or
        ``(ids, logits)`` with ``return_logits=True``. NaN logits raise a ValueError (on a GPU, checked
        once at the end).
    """
    stops = _check_generate_args(model, input_ids, max_new_tokens, temperature, top_k, top_p, stop_ids, pad_id)
    mask = _check_inputs(input_ids, attention_mask)
    gen = _as_generator(generator, input_ids.device)
    ids, steps = _decode(model, input_ids, mask, max_new_tokens, lambda last: sample_next(
        last, temperature, top_k, top_p, gen), stops, pad_id, use_cache, return_logits)
    if return_logits:
        B, V = input_ids.shape[0], steps[0].shape[-1] if steps else 0
        return ids, (torch.stack(steps, dim=1) if steps else input_ids.new_zeros(B, 0, V, dtype=torch.float))
    return ids


def _decode(model, ids, mask, max_new_tokens: int, choose, stop_ids: list[int], pad_id: int, use_cache: bool,
            keep_logits: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loop of :func:`generate`: prefill, then one token per step (``choose(logits (B, V)) -> (B,)``),
    the cache handed back to the model. Returns the ids and, with ``keep_logits``, each step's logits."""
    B, device = ids.shape[0], ids.device
    stops = torch.tensor(stop_ids, dtype=torch.long, device=device)
    steps, past = [], None
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    saw_nan = torch.zeros((), dtype=torch.bool, device=device)  # read once, at the end
    # a model that can skip the de-embedding of all but the last position (neuraltext.gpt.llama) is asked to
    extra = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    for step in range(max_new_tokens):
        if step == 0 or not use_cache:  # the whole sequence (prefill, or no cache at all)
            logits, present = model(ids, attention_mask=mask, position_ids=default_position_ids(mask), **extra)
        else:  # only the last token; the model extends its cache
            position = position_ids_for(mask, B, 1, mask.shape[1] - 1, device)  # (B, 1)
            logits, present = model(ids[:, -1:], attention_mask=mask, position_ids=position, past=past)
        past = present if use_cache else None
        last = logits[:, -1]  # (B, V): D E_t for the last position
        saw_nan |= torch.isnan(last).any()
        if keep_logits:
            steps.append(last.float())
        token = torch.where(finished, torch.full_like(finished, pad_id, dtype=torch.long), choose(last))  # (B,)
        ids = torch.cat([ids, token[:, None]], dim=1)
        mask = torch.cat([mask, ~finished[:, None]], dim=1)  # a finished row's padding is masked
        if stops.numel():
            finished = finished | torch.isin(token, stops)
            if bool(finished.all()):  # one host sync per step, only when there are stop ids
                break
    if bool(saw_nan):
        raise ValueError("the model gave NaN logits during generation: its output is broken (a NaN weight or "
                         "input?); no token can be chosen")
    return ids, steps


def pad_left(sequences: Sequence[Sequence[int]], pad_id: int = 0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad lists of token ids into ``(ids (B, T), attention_mask (B, T))`` for :func:`generate`."""
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("sequences must be a non-empty list of non-empty token lists")
    T = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sequences), T, dtype=torch.bool)
    for i, s in enumerate(sequences):
        ids[i, T - len(s):] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, T - len(s):] = True
    return ids.to(device), mask.to(device)

