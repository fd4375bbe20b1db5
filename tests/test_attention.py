"""neuraltext.transformer.multihead against its references: F.scaled_dot_product_attention and
torch.nn.MultiheadAttention, on the same inputs and the same weights (fp32, tolerance 1e-5)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.transformer import (MultiHeadAttention, attention, causal_mask, padding_mask,
                                    scaled_dot_product_attention)

TOL = dict(atol=1e-5, rtol=1e-5)
B, H, L, S, D = 2, 3, 5, 7, 8


def qkv(L=L, S=S, device="cpu"):
    return (torch.randn(B, H, L, D, device=device), torch.randn(B, H, S, D, device=device),
            torch.randn(B, H, S, D, device=device))


MASK_KINDS = ["none", "bool", "float", "padding", "bool_empty_row", "float_empty_row", "all_padding"]


def masks(L=L, S=S, device="cpu"):
    """The F.sdpa-convention masks the two paths must handle (True = may attend), including the
    three ways a query can be left with no allowed key at all (a row of the output that is zero)."""
    keep = torch.rand(B, 1, L, S) > 0.3
    keep[..., 0] = True  # every query keeps at least one key
    pad = padding_mask(torch.tensor([S, S - 3]), S)  # (B, S) True at padding
    keep_empty = keep.clone()
    keep_empty[1, :, 2] = False  # batch 1, query 2: every key blocked
    add = torch.randn(L, S)
    add[1] = float("-inf")  # query 1: every key blocked, the float way
    all_pad = padding_mask(torch.tensor([S, 0]), S)  # batch 1 is nothing but padding
    out = {
        "none": None,
        "bool": keep,
        "float": torch.randn(L, S),
        "padding": ~pad[:, None, None, :],
        "bool_empty_row": keep_empty,
        "float_empty_row": add,
        "all_padding": ~all_pad[:, None, None, :],
    }
    return {name: None if m is None else m.to(device) for name, m in out.items()}


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
def test_readable_equals_torch_sdpa(mask_name, is_causal, device):
    q, k, v = qkv(L=6, S=6, device=device)
    mask = masks(6, 6, device)[mask_name]
    ours = scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    if is_causal and mask is not None:  # torch takes one or the other: give it the combined mask
        tri = torch.ones(6, 6, dtype=torch.bool, device=device).tril()
        mask = mask & tri if mask.dtype == torch.bool else mask.masked_fill(~tri, float("-inf"))
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    else:
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    torch.testing.assert_close(ours, ref, **TOL)


@pytest.mark.parametrize("mask_name", MASK_KINDS)
@pytest.mark.parametrize("is_causal", [False, True])
def test_fused_and_readable_paths_agree_with_gradients(mask_name, is_causal, device):
    q, k, v = qkv(L=6, S=6, device=device)
    mask = masks(6, 6, device)[mask_name]
    outs, grads = [], []
    for backend in ("readable", "fused"):
        qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
        out = attention(qq, kk, vv, attn_mask=mask, is_causal=is_causal, backend=backend)
        (out * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
        outs.append(out.detach())
        grads.append([t.grad for t in (qq, kk, vv)])
    assert all(torch.isfinite(o).all() for o in outs)
    torch.testing.assert_close(outs[0], outs[1], **TOL)
    for g_readable, g_fused in zip(*grads):
        assert torch.isfinite(g_readable).all() and torch.isfinite(g_fused).all()
        torch.testing.assert_close(g_readable, g_fused, **TOL)


def _rowwise_reference(q, k, v, bias):
    """Attention one query at a time over its allowed keys only (float64, independent of both paths):
    ``bias`` (B, H, L, S) is added to the scores, -inf = blocked; zeros where nothing is allowed."""
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=torch.float64)
    q, k, v = q.double(), k.double(), v.double()
    for idx in itertools.product(*(range(n) for n in q.shape[:-1])):
        *lead, i = idx
        allowed = ~torch.isneginf(bias[idx])
        if allowed.any():
            scores = k[tuple(lead)][allowed] @ q[idx] / math.sqrt(q.shape[-1]) + bias[idx][allowed]
            out[idx] = torch.softmax(scores, 0) @ v[tuple(lead)][allowed]
    return out


@pytest.mark.parametrize("backend", ["readable", "fused"])
@pytest.mark.parametrize("mask_name", ["bool_empty_row", "float_empty_row", "all_padding"])
def test_query_with_no_allowed_key_gives_zeros_and_zero_gradient(backend, mask_name, device):
    """The semantics of the module docstring: a query whose keys are all blocked outputs zeros, its
    query gets a zero gradient, and it adds nothing to the keys' and values' gradients (the old
    readable path gave NaN here, and NaN gradients to the whole batch)."""
    q, k, v = qkv(L=6, S=6, device=device)
    mask = masks(6, 6, device)[mask_name]
    bias = mask.double() if mask.dtype != torch.bool else torch.zeros(mask.shape).masked_fill(~mask.cpu(), -math.inf)
    bias = bias.cpu().double().expand(B, H, 6, 6)  # (B, H, L, S): added to the scores, -inf = blocked
    empty = torch.isneginf(bias).all(-1)  # (B, H, L): the queries with nothing to attend to
    assert empty.any() and not empty.all()
    qq, kk, vv = (t.clone().requires_grad_(True) for t in (q, k, v))
    out = attention(qq, kk, vv, attn_mask=mask, backend=backend)
    assert torch.all(out[empty.to(device)] == 0.0)  # exactly zero
    ref = _rowwise_reference(q.cpu(), k.cpu(), v.cpu(), bias)
    torch.testing.assert_close(out.cpu().double(), ref, **TOL)
    weight = torch.randn(out.shape, device=device)
    (out * weight).sum().backward()
    assert torch.all(qq.grad[empty.to(device)] == 0.0)
    # the keys' and values' gradients are those of the allowed queries alone
    q2, k2, v2 = (t.clone().requires_grad_(True) for t in (q, k, v))
    out2 = attention(q2, k2, v2, attn_mask=mask, backend=backend)
    (out2 * weight.masked_fill(empty.to(device)[..., None], 0.0)).sum().backward()
    torch.testing.assert_close(kk.grad, k2.grad, **TOL)
    torch.testing.assert_close(vv.grad, v2.grad, **TOL)
    assert torch.isfinite(kk.grad).all() and torch.isfinite(vv.grad).all()
    if backend == "readable":  # the weights of such a row are all zero, the others sum to one
        _, alpha = scaled_dot_product_attention(q, k, v, attn_mask=mask, return_weights=True)
        sums = alpha.sum(-1).cpu()
        assert torch.all(sums[empty] == 0.0)
        torch.testing.assert_close(sums[~empty], torch.ones(int((~empty).sum())))


def test_causal_mask_combined_with_a_mask_can_empty_a_row():
    """is_causal lets query 0 see key 0 only; blocking key 0 leaves it nothing: zeros in both paths."""
    q, k, v = qkv(L=4, S=4)
    keep = torch.ones(4, 4, dtype=torch.bool)
    keep[:, 0] = False
    for backend in ("readable", "fused"):
        out = attention(q, k, v, attn_mask=keep, is_causal=True, backend=backend)
        assert torch.all(out[..., 0, :] == 0.0) and torch.isfinite(out).all()
        assert torch.all(out[..., 1:, :].abs().sum(-1) > 0)


@pytest.mark.parametrize("backend", ["readable", "fused"])
def test_multihead_all_padding_source_outputs_the_output_bias(backend, device):
    """Cross-attention to a source that is nothing but padding: every head is zero, so the output
    is W_o's bias; the other batch element is unaffected, and the gradients are finite."""
    mha = MultiHeadAttention(12, 3, backend=backend).to(device)
    query, memory = torch.randn(2, 4, 12, device=device), torch.randn(2, 5, 12, device=device)
    pad = padding_mask(torch.tensor([5, 0]), 5).to(device)
    out, _ = mha(query, memory, memory, key_padding_mask=pad)
    torch.testing.assert_close(out[1], mha.W_o.bias.detach().expand(4, 12), **TOL)
    alone, _ = mha(query[:1], memory[:1], memory[:1])
    torch.testing.assert_close(out[:1], alone, **TOL)
    out.pow(2).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in mha.parameters())


@pytest.mark.parametrize("backend", ["readable", "fused"])
def test_float64_mask_with_float32_queries_is_a_clear_error(backend):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"attn_mask must be bool or have the queries' dtype torch.float32, "
                                         r"got torch.float64.*attn_mask.to\(q.dtype\)"):
        attention(q, k, v, attn_mask=torch.zeros(L, S, dtype=torch.float64), backend=backend)
    # MultiHeadAttention casts its float attn_mask to its own dtype (documented): no error, same result
    mha = MultiHeadAttention(12, 3, backend=backend).eval()
    x = torch.randn(2, 5, 12)
    add = torch.randn(5, 5)
    torch.testing.assert_close(mha(x, attn_mask=add.double())[0], mha(x, attn_mask=add)[0], **TOL)


def test_zero_heads_is_a_value_error_naming_n_heads():
    for bad in (0, -2):
        with pytest.raises(ValueError, match=rf"n_heads must be a positive integer.*got {bad}"):
            MultiHeadAttention(12, bad)


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


def _mha_pair(d_model=12, n_heads=3, device="cpu"):
    ours = MultiHeadAttention(d_model, n_heads)
    theirs = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
    _copy_into_torch_mha(ours, theirs)
    return ours.eval().to(device), theirs.eval().to(device)


@pytest.mark.parametrize("backend", ["fused", "readable"])
@pytest.mark.parametrize("case", ["none", "key_padding", "bool_attn", "float_attn", "both", "causal"])
def test_multihead_equals_torch_multiheadattention(backend, case, device):
    ours, theirs = _mha_pair(device=device)
    ours.backend = backend
    Lq, Sk = (6, 6) if case == "causal" else (5, 7)
    query, memory = torch.randn(B, Lq, 12, device=device), torch.randn(B, Sk, 12, device=device)
    key_padding = padding_mask(torch.tensor([Sk, Sk - 2]), Sk) if case in ("key_padding", "both") else None
    attn = None
    if case in ("bool_attn", "both"):
        attn = torch.rand(Lq, Sk) > 0.7  # True = blocked
        attn[:, 0] = False
    elif case == "float_attn":
        attn = torch.randn(Lq, Sk)
    elif case == "causal":
        attn = causal_mask(Lq)
    key_padding = key_padding.to(device) if key_padding is not None else None
    attn = attn.to(device) if attn is not None else None
    key = query if case == "causal" else memory
    out, _ = ours(query, key, key, key_padding_mask=key_padding, attn_mask=attn)
    ref, _ = theirs(query, key, key, key_padding_mask=key_padding, attn_mask=attn, need_weights=False)
    torch.testing.assert_close(out, ref, **TOL)
    if case == "causal":  # is_causal=True is the same as passing the causal mask
        out2, _ = ours(query, is_causal=True)
        torch.testing.assert_close(out2, ref, **TOL)


def test_multihead_weights_and_gradients_match_torch(device):
    ours, theirs = _mha_pair(device=device)
    x = torch.randn(B, 6, 12, device=device)
    pad = padding_mask(torch.tensor([6, 4]), 6).to(device)
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
