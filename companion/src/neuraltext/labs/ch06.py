"""Chapter 6's exercises: attention with a causal mask, layer normalisation, sinusoidal positions.

The references are PyTorch's fused attention and layer norm (what the chapter compares against) and
the chapter's own positional encoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neuraltext.labs.check import Case, Exercise
from neuraltext.transformer import sinusoidal_positional_encoding


def _qkv(seed: int, shape_q, shape_k, d_v: int, dtype=torch.float32, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    q = scale * torch.randn(*shape_q, generator=g, dtype=dtype)
    k = scale * torch.randn(*shape_k, generator=g, dtype=dtype)
    v = torch.randn(*shape_k[:-1], d_v, generator=g, dtype=dtype)
    return q, k, v


def _attention_cases() -> list[Case]:
    return [
        Case("batch 2, 3 heads, 5 positions, d_k 4", _qkv(0, (2, 3, 5, 4), (2, 3, 5, 4), 4)),
        Case("one position: it sees only itself", _qkv(1, (1, 1, 1, 8), (1, 1, 1, 8), 8)),
        Case("d_v different from d_k", _qkv(2, (2, 6, 8), (2, 6, 8), 3)),
        Case("large scores: does your softmax overflow?", _qkv(3, (1, 7, 16), (1, 7, 16), 5, scale=30.0)),
        Case("float64 in, float64 out", _qkv(4, (3, 4, 6), (3, 4, 6), 6, dtype=torch.float64)),
    ]


def _causal_reference(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _layer_norm_reference(x, gamma, beta, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], gamma, beta, eps)


def _layer_norm_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 10, generator=g) * 3 + 1
    gamma, beta = torch.rand(10, generator=g) + 0.5, torch.randn(10, generator=g)
    x3 = torch.randn(2, 5, 8, generator=g, dtype=torch.float64)
    constant = torch.full((3, 6), 2.5)                       # variance 0: only eps keeps it finite
    return [
        Case("4 rows of 10 features", (x, gamma, beta)),
        Case("(batch, length, features) input", (x3, torch.ones(8, dtype=torch.float64), torch.zeros(8, dtype=torch.float64))),
        Case("constant rows (variance 0)", (constant, torch.ones(6), torch.full((6,), 0.5))),
        Case("another eps", (x, gamma, beta), {"eps": 0.1}),
    ]


def _positions_cases() -> list[Case]:
    return [Case("10 positions, d_model 8", (10, 8)), Case("one position", (1, 4)),
            Case("50 positions, d_model 64", (50, 64))]


EXERCISES = [
    Exercise(
        id="06.causal_attention",
        title="scaled dot-product attention with a causal mask",
        reference=_causal_reference,
        cases=_attention_cases,
        hint="scores = q k^T / sqrt(d_k); position i may look at keys j <= i only.",
    ),
    Exercise(
        id="06.layer_norm",
        title="layer normalisation over the last dimension",
        reference=_layer_norm_reference,
        cases=_layer_norm_cases,
        hint="use the biased variance (divide by n, not n - 1) and put eps inside the square root.",
    ),
    Exercise(
        id="06.sinusoidal_positions",
        title="the sinusoidal positional encoding",
        reference=sinusoidal_positional_encoding,
        cases=_positions_cases,
        rtol=1e-4, atol=1e-5,
        hint="even columns sin(pos / 10000^(2i/d)), odd columns cos of the same angle; float32 out.",
    ),
]
