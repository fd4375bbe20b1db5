"""Scaled dot-product attention and multi-head attention, written from the course's formulas.

The two equations of the chapter:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,   head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

Two paths compute the same thing:

* ``backend="readable"``: :func:`scaled_dot_product_attention` below, the formula line by line. It
  builds the full ``(L, S)`` matrix of scores, so its memory grows with the square of the length.
* ``backend="fused"`` (the default): ``torch.nn.functional.scaled_dot_product_attention``, which
  dispatches to a flash / memory-efficient kernel where the device has one (never materialising the
  ``(L, S)`` matrix), and to PyTorch's own math kernel otherwise.

Both take the same arguments and agree within 1e-5, values and gradients (the tests check it), so
a student reads the readable path and runs the fused one.

Mask conventions (the same as the references each function mirrors, so one can be swapped for
the other):

* :func:`scaled_dot_product_attention` and :func:`attention` follow
  ``F.scaled_dot_product_attention``: a boolean ``attn_mask`` is True where a query **may** attend
  to a key; a float ``attn_mask`` is **added** to the scores (``-inf`` blocks); ``is_causal=True``
  lets position ``i`` see keys ``0..i`` only.
* :class:`MultiHeadAttention` follows ``torch.nn.MultiheadAttention``: ``key_padding_mask``
  ``(B, S)`` is True at **padding** keys, to be ignored; a boolean ``attn_mask`` ``(L, S)`` is True
  where attention is **blocked**; a float one is added to the scores.

A query with **no allowed key** (every key blocked by the masks: a fully padded source, a row of
``-inf``, a causal mask combined with a mask that blocks the first keys) has no distribution to
average with: softmax over nothing is 0 / 0. Both paths define its output as **zeros**, with zero
gradient to its query and no contribution to the keys' and values' gradients; its attention
weights (``return_weights=True``) are a row of zeros, not a distribution. (Left alone, the
readable formula gives NaN there, and one NaN poisons a whole batch's gradient.) In
:class:`MultiHeadAttention` such a row's heads are zero, so its output is ``W_o``'s bias.

A float ``attn_mask`` must have the queries' dtype (``F.scaled_dot_product_attention`` refuses
anything else, and adding a float64 mask would silently turn the readable path's scores into
float64): a mismatch is a ``ValueError``; cast with ``attn_mask.to(q.dtype)``.
:class:`MultiHeadAttention` does that cast itself, since its queries' dtype is its weights' (or
autocast's) and not the caller's.

Shapes: ``B`` batch, ``h`` heads, ``L`` query length, ``S`` key length, ``d_k`` size of one head,
``d_model = h * d_k``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BACKENDS",
    "scaled_dot_product_attention",
    "attention",
    "causal_mask",
    "padding_mask",
    "MultiHeadAttention",
    "set_attention_backend",
    "check_heads",
]

#: The two ways of computing attention; "fused" is the default everywhere.
BACKENDS = ("fused", "readable")


# ----------------------------------------------------------------------------------------- checks
def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() < 2 or k.dim() != q.dim() or v.dim() != q.dim():
        raise ValueError(
            f"query, key and value must have the same number of dimensions (..., length, features), "
            f"got query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"query and key must have the same last dimension d_k, got query {tuple(q.shape)} "
            f"and key {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"key and value must have the same length S (dimension -2), got key {tuple(k.shape)} "
            f"and value {tuple(v.shape)}"
        )
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(
            f"query, key and value must share their leading (batch, head) dimensions, got query "
            f"{tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}"
        )


def _check_mask(mask: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> None:
    """A mask must be bool or of the queries' float dtype, and broadcast to the (..., L, S) scores."""
    if mask.dtype != torch.bool and mask.dtype != q.dtype:
        raise ValueError(
            f"attn_mask must be bool or have the queries' dtype {q.dtype}, got {mask.dtype}: "
            f"cast it with attn_mask.to(q.dtype)"
        )
    target = (*q.shape[:-1], k.shape[-2])
    try:
        shape = torch.broadcast_shapes(mask.shape, target)
    except RuntimeError:
        shape = None
    if shape != target:
        raise ValueError(
            f"attn_mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{target} (query {tuple(q.shape)}, key {tuple(k.shape)}): it needs (L, S) = "
            f"({q.shape[-2]}, {k.shape[-2]}) in its last two dimensions"
        )


def check_heads(d_model: int, n_heads: int) -> None:
    """``n_heads`` heads of ``d_model // n_heads`` dimensions each: both positive, one dividing the other."""
    if not isinstance(n_heads, int) or n_heads < 1:
        raise ValueError(f"n_heads must be a positive integer (the number of heads h), got {n_heads!r}")
    if not isinstance(d_model, int) or d_model < 1:
        raise ValueError(f"d_model must be a positive integer, got {d_model!r}")
    if d_model % n_heads != 0:
        raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")


# ------------------------------------------------------------------------------ the two paths
def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    return_weights: bool = False,
):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V, step by step (the readable path).

    Args:
        q: queries ``(..., L, d_k)``; k: keys ``(..., S, d_k)``; v: values ``(..., S, d_v)``.
        attn_mask: bool (True = may attend) or float (added to the scores), broadcastable to
            ``(..., L, S)``. Same convention as ``F.scaled_dot_product_attention``.
        dropout_p: dropout on the attention weights (use 0 outside training).
        is_causal: query ``i`` sees keys ``j <= i`` only (a lower-triangular mask).
        scale: the factor on the scores; ``1 / sqrt(d_k)`` by default.
        return_weights: also return the weights ``alpha = softmax(...)`` of shape ``(..., L, S)``.

    Returns:
        ``(..., L, d_v)``, or ``(output, alpha)`` with ``return_weights=True``.
    """
    _check_qkv(q, k, v)
    L, S, d_k = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale

    scores = (q @ k.transpose(-2, -1)) * scale  # (..., L, S): how well query i matches key j
    if is_causal:
        allowed = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))  # no peeking at later positions
    if attn_mask is not None:
        _check_mask(attn_mask, q, k)
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))  # blocked pairs get weight 0
        else:
            scores = scores + attn_mask
    # a query with no allowed key: softmax of a row of -inf is 0/0 = NaN. Give such rows finite
    # scores, then zero their weights (and so their output and gradient): see the module docstring.
    empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., L, 1)
    scores = scores.masked_fill(empty, 0.0)
    alpha = torch.softmax(scores, dim=-1).masked_fill(empty, 0.0)  # (..., L, S): rows sum to 1 (or 0)
    if dropout_p > 0.0:
        alpha = F.dropout(alpha, p=dropout_p)
    out = alpha @ v  # (..., L, d_v): weighted average of the values
    return (out, alpha) if return_weights else out


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    backend: str = "fused",
) -> torch.Tensor:
    """Scaled dot-product attention by either path (see the module docstring); same arguments as
    :func:`scaled_dot_product_attention`. ``backend="fused"`` calls
    ``F.scaled_dot_product_attention`` after the same shape checks."""
    if backend == "readable":
        return scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale)
    if backend != "fused":
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _check_qkv(q, k, v)
    if attn_mask is not None:
        _check_mask(attn_mask, q, k)
        if is_causal:  # F.sdpa takes one or the other: fold the causal mask into attn_mask
            causal = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
            if attn_mask.dtype == torch.bool:
                attn_mask = attn_mask & causal
            else:
                attn_mask = attn_mask.masked_fill(~causal, float("-inf"))
            is_causal = False
    if attn_mask is None:  # (is_causal alone never empties a row: query i always sees key 0)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal, scale=scale)
    # rows with no allowed key -> zeros, as in the readable path; the kernels' own answer there
    # differs between backends and devices, so it is never asked for (all-allowed, then zeroed)
    if attn_mask.dtype == torch.bool:
        empty = ~attn_mask.any(dim=-1, keepdim=True)  # (..., L, 1)
        attn_mask = attn_mask | empty
    else:
        empty = torch.isneginf(attn_mask).all(dim=-1, keepdim=True)
        attn_mask = attn_mask.masked_fill(empty, 0.0)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale
    )
    return out.masked_fill(empty, 0.0)  # (..., L, d_v)


# ------------------------------------------------------------------------------------ masks
def causal_mask(length: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(length, length)`` bool, True where attention is **blocked** (above the diagonal): the
    ``torch.nn.MultiheadAttention`` / :class:`MultiHeadAttention` convention."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


def padding_mask(lengths: torch.Tensor | list[int], max_len: int | None = None) -> torch.Tensor:
    """``(B, max_len)`` bool, True at **padding** positions (index >= length of the sequence).

    ``max_len`` is the padded length, the ``T`` of the batch's ``(B, T)`` tensor: pass it. Left out, it
    is ``max(lengths)``, read back to the host: free on the CPU, a wait for the device when the lengths
    live on a GPU."""
    lengths = torch.as_tensor(lengths)
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


# ------------------------------------------------------------------------------ multi-head
class MultiHeadAttention(nn.Module):
    """MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O with head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V).

    The h matrices ``W_i^Q`` (``d_model x d_k``) are stored side by side as one linear layer
    ``W_q: d_model -> h * d_k``; same for ``W_k`` and ``W_v``. ``W_o`` maps the concatenated heads back
    to ``d_model``. Self-attention passes the same sequence as query, key and value; the decoder's
    cross-attention passes its own states as query and the encoder's output as key and value.

    Args:
        d_model: size of the token vectors (a multiple of ``n_heads``).
        n_heads: number of heads h; each works in ``d_k = d_model // n_heads`` dimensions.
        dropout: dropout on the attention weights (training only).
        bias: biases in the four projections.
        backend: ``"fused"`` (default, ``F.scaled_dot_product_attention``) or ``"readable"``; can be
            changed at any time (``module.backend = "readable"``). Asking for the weights
            (``need_weights=True``) always uses the readable path, which is the only one that
            materialises them.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True,
                 backend: str = "fused"):
        super().__init__()
        check_heads(d_model, n_heads)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.backend = backend
        self.W_q = nn.Linear(d_model, d_model, bias=bias)
        self.W_k = nn.Linear(d_model, d_model, bias=bias)
        self.W_v = nn.Linear(d_model, d_model, bias=bias)
        self.W_o = nn.Linear(d_model, d_model, bias=bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, T, d_k)

    def _merge_masks(self, B: int, L: int, S: int, key_padding_mask, attn_mask, dtype, device):
        """nn.MultiheadAttention's masks (True = blocked) -> one F.sdpa mask (True = may attend,
        or float added), broadcastable to (B, h, L, S); None when there is no mask."""
        mask = None
        if attn_mask is not None:
            if attn_mask.dim() == 2:
                expected = (L, S)
            elif attn_mask.dim() == 3:
                expected = (B, L, S)
            else:
                expected = None
            if expected is None or tuple(attn_mask.shape) != expected:
                raise ValueError(
                    f"attn_mask must have shape (L, S) = ({L}, {S}) or (B, L, S) = ({B}, {L}, {S}), "
                    f"got {tuple(attn_mask.shape)}"
                )
            if attn_mask.dim() == 3:
                attn_mask = attn_mask[:, None]  # (B, 1, L, S): the same mask for every head
            mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask.to(dtype)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (B, S):
                raise ValueError(
                    f"key_padding_mask must have shape (B, S) = ({B}, {S}), "
                    f"got {tuple(key_padding_mask.shape)}"
                )
            if key_padding_mask.dtype != torch.bool:
                raise ValueError(f"key_padding_mask must be bool (True = padding), got {key_padding_mask.dtype}")
            keep = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
            if mask is None:
                mask = keep
            elif mask.dtype == torch.bool:
                mask = mask & keep
            else:
                mask = mask.masked_fill(~keep, float("-inf"))
        return mask if mask is None else mask.to(device)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None = None,
        value: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ):
        """query ``(B, L, d_model)``, key/value ``(B, S, d_model)`` (default: the query, i.e.
        self-attention). Returns ``(output (B, L, d_model), weights (B, h, L, S) or None)``."""
        key = query if key is None else key
        value = key if value is None else value
        for name, x in (("query", query), ("key", key), ("value", value)):
            if x.dim() != 3 or x.shape[-1] != self.d_model:
                raise ValueError(
                    f"{name} must have shape (B, length, d_model={self.d_model}), got {tuple(x.shape)}"
                )
        if query.shape[0] != key.shape[0] or key.shape[:2] != value.shape[:2]:
            raise ValueError(
                f"query {tuple(query.shape)}, key {tuple(key.shape)} and value {tuple(value.shape)} "
                f"must share the batch size, and key and value the length"
            )
        B, L, S = query.shape[0], query.shape[1], key.shape[1]

        q = self._split_heads(self.W_q(query))  # (B, h, L, d_k): Q W_i^Q for every head i
        k = self._split_heads(self.W_k(key))  # (B, h, S, d_k): K W_i^K
        v = self._split_heads(self.W_v(value))  # (B, h, S, d_k): V W_i^V
        mask = self._merge_masks(B, L, S, key_padding_mask, attn_mask, q.dtype, q.device)
        p = self.dropout if self.training else 0.0

        weights = None
        if need_weights or self.backend == "readable":
            heads, alpha = scaled_dot_product_attention(q, k, v, mask, p, is_causal, return_weights=True)
            weights = alpha if need_weights else None  # (B, h, L, S)
        else:
            heads = attention(q, k, v, mask, p, is_causal, backend="fused")  # (B, h, L, d_k)
        concat = heads.transpose(1, 2).reshape(B, L, self.d_model)  # (B, L, h * d_k): Concat(head_1..h)
        return self.W_o(concat), weights  # (B, L, d_model)


def set_attention_backend(model: nn.Module, backend: str) -> int:
    """Switch every :class:`MultiHeadAttention` inside ``model`` to ``backend``; returns how many."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    n = 0
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.backend = backend
            n += 1
    return n
