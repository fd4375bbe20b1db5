"""neuraltext.attention against its references: F.scaled_dot_product_attention and
torch.nn.MultiheadAttention, on the same inputs and the same weights (fp32, tolerance 1e-5)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.attention import (
    MultiHeadAttention,
    attention,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
)

TOL = dict(atol=1e-5, rtol=1e-5)
B, H, L, S, D = 2, 3, 5, 7, 8


def qkv(L=L, S=S):
    return torch.randn(B, H, L, D), torch.randn(B, H, S, D), torch.randn(B, H, S, D)


def masks(L=L, S=S):
    """The F.sdpa-convention masks the two paths must handle (True = may attend)."""
    keep = torch.rand(B, 1, L, S) > 0.3
    keep[..., 0] = True  # every query keeps at least one key (a fully masked row is NaN in both)
    pad = padding_mask(torch.tensor([S, S - 3]), S)  # (B, S) True at padding
    return {
        "none": None,
        "bool": keep,
        "float": torch.randn(L, S),
        "padding": ~pad[:, None, None, :],
    }


def test_formula_by_hand():
    """One query, two keys: the course's Thinking / Machines example (scores 112 and 96, d_k = 64)."""
    q = torch.zeros(1, 64)
    q[0, 0] = 1.0
    k = torch.zeros(2, 64)
    k[0, 0], k[1, 0] = 112.0, 96.0
    v = torch.eye(2, 64)
    out, alpha = scaled_dot_product_attention(q, k, v, return_weights=True)
    expected = torch.softmax(torch.tensor([112.0, 96.0]) / 8.0, dim=0)  # 14 and 12 after / sqrt(64)
    torch.testing.assert_close(alpha[0], expected)
    assert [round(a, 2) for a in alpha[0].tolist()] == [0.88, 0.12]
    torch.testing.assert_close(out[0, :2], expected)


@pytest.mark.parametrize("mask_name", ["none", "bool", "float", "padding"])
@pytest.mark.parametrize("is_causal", [False, True])
def test_readable_equals_torch_sdpa(mask_name, is_causal):
    q, k, v = qkv(L=6, S=6)
    mask = masks(6, 6)[mask_name]
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    if is_causal and mask is not None:  # torch takes one or the other: give it the combined mask
        tri = torch.ones(6, 6, dtype=torch.bool).tril()
        mask = mask & tri if mask.dtype == torch.bool else mask.masked_fill(~tri, float("-inf"))
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("mask_name", ["none", "bool", "float", "padding"])
@pytest.mark.parametrize("is_causal", [False, True])
def test_fused_and_readable_paths_agree_with_gradients(mask_name, is_causal):
    q, k, v = qkv(L=6, S=6)
    mask = masks(6, 6)[mask_name]
    outs, grads = [], []
    for backend in ("readable", "fused"):
        qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
        out = attention(qq, kk, vv, attn_mask=mask, is_causal=is_causal, backend=backend)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append([t.grad for t in (qq, kk, vv)])
    torch.testing.assert_close(outs[0], outs[1], **TOL)
    for g_readable, g_fused in zip(*grads):
        torch.testing.assert_close(g_readable, g_fused, **TOL)


def test_cross_attention_lengths_and_custom_scale():
    q, k, v = qkv(L=3, S=9)
    ours = attention(q, k, v, scale=0.3, backend="readable")
    ref = F.scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(ours, ref, **TOL)
    assert ours.shape == (B, H, 3, D)


def test_weights_are_a_distribution_and_respect_masks():
    q, k, v = qkv(L=6, S=6)
    _, alpha = scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(B, H, 6))
    assert torch.all(alpha.masked_select(causal_mask(6)) == 0)  # nothing above the diagonal


def _copy_into_torch_mha(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.W_q.bias, ours.W_k.bias, ours.W_v.bias]))
        theirs.out_proj.weight.copy_(ours.W_o.weight)
        theirs.out_proj.bias.copy_(ours.W_o.bias)


def _mha_pair(d_model=12, n_heads=3):
    ours = MultiHeadAttention(d_model, n_heads)
    theirs = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
    _copy_into_torch_mha(ours, theirs)
    return ours.eval(), theirs.eval()


@pytest.mark.parametrize("backend", ["fused", "readable"])
@pytest.mark.parametrize("case", ["none", "key_padding", "bool_attn", "float_attn", "both", "causal"])
def test_multihead_equals_torch_multiheadattention(backend, case):
    ours, theirs = _mha_pair()
    ours.backend = backend
    Lq, Sk = (6, 6) if case == "causal" else (5, 7)
    query, memory = torch.randn(B, Lq, 12), torch.randn(B, Sk, 12)
    key_padding = padding_mask(torch.tensor([Sk, Sk - 2]), Sk) if case in ("key_padding", "both") else None
    attn = None
    if case in ("bool_attn", "both"):
        attn = torch.rand(Lq, Sk) > 0.7  # True = blocked
        attn[:, 0] = False
    elif case == "float_attn":
        attn = torch.randn(Lq, Sk)
    elif case == "causal":
        attn = causal_mask(Lq)
    key = query if case == "causal" else memory
    out, _ = ours(query, key, key, key_padding_mask=key_padding, attn_mask=attn)
    ref, _ = theirs(query, key, key, key_padding_mask=key_padding, attn_mask=attn, need_weights=False)
    torch.testing.assert_close(out, ref, **TOL)
    if case == "causal":  # is_causal=True is the same as passing the causal mask
        out2, _ = ours(query, is_causal=True)
        torch.testing.assert_close(out2, ref, **TOL)


def test_multihead_weights_and_gradients_match_torch():
    ours, theirs = _mha_pair()
    x = torch.randn(B, 6, 12)
    pad = padding_mask(torch.tensor([6, 4]), 6)
    out, w = ours(x, key_padding_mask=pad, need_weights=True)
    ref, w_ref = theirs(x, x, x, key_padding_mask=pad, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(w, w_ref, **TOL)  # (B, h, L, S), per head
    out.pow(2).sum().backward()
    ref.pow(2).sum().backward()
    d = 12
    torch.testing.assert_close(ours.W_q.weight.grad, theirs.in_proj_weight.grad[:d], **TOL)
    torch.testing.assert_close(ours.W_k.weight.grad, theirs.in_proj_weight.grad[d:2 * d], **TOL)
    torch.testing.assert_close(ours.W_v.weight.grad, theirs.in_proj_weight.grad[2 * d:], **TOL)
    torch.testing.assert_close(ours.W_o.weight.grad, theirs.out_proj.weight.grad, **TOL)


def test_fused_is_the_default_and_backends_switch():
    mha = MultiHeadAttention(8, 2)
    assert mha.backend == "fused"
    x = torch.randn(2, 4, 8)
    a, w = mha(x)
    assert w is None
    mha.backend = "readable"
    b, _ = mha(x)
    torch.testing.assert_close(a, b, **TOL)


def test_mask_helpers():
    assert padding_mask([3, 1], 4).tolist() == [[False, False, False, True], [False, True, True, True]]
    assert causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False, False, False]]


@pytest.mark.parametrize("backend", ["fused", "readable"])
def test_clear_errors_name_the_shapes(backend):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"query \(2, 3, 5, 8\) and key \(2, 3, 7, 4\)"):
        attention(q, k[..., :4], v, backend=backend)
    with pytest.raises(ValueError, match=r"key \(2, 3, 7, 8\) and value \(2, 3, 6, 8\)"):
        attention(q, k, v[..., :6, :], backend=backend)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 6\).*\(2, 3, 5, 7\)"):
        attention(q, k, v, attn_mask=torch.ones(5, 6, dtype=torch.bool), backend=backend)
    with pytest.raises(ValueError, match="backend must be one of"):
        attention(q, k, v, backend="flash")

    mha = MultiHeadAttention(12, 3, backend=backend)
    x = torch.randn(2, 5, 12)
    with pytest.raises(ValueError, match=r"d_model=12\), got \(2, 5, 10\)"):
        mha(torch.randn(2, 5, 10))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(B, S\) = \(2, 5\), got \(2, 4\)"):
        mha(x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(L, S\) = \(5, 5\).*got \(5, 4\)"):
        mha(x, attn_mask=torch.zeros(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="not a multiple"):
        MultiHeadAttention(10, 3)


def test_scale_is_one_over_sqrt_dk():
    q, k, v = qkv()
    _, alpha = scaled_dot_product_attention(q, k, v, return_weights=True)
    expected = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(D), dim=-1)
    torch.testing.assert_close(alpha, expected, **TOL)
