"""Chapter 5's exercises: additive attention, Luong's dot and general scores, exact match.

The references are the package's own: :class:`neuraltext.seq2seq.model.AdditiveAttention`,
:class:`~neuraltext.seq2seq.model.DotAttention` and :class:`~neuraltext.seq2seq.model.GeneralAttention` loaded
with the student's weights (the chapter checks the last two against ``F.scaled_dot_product_attention``),
and :func:`neuraltext.data.exact_match`.
"""

from __future__ import annotations

import torch

from neuraltext.data.dates import exact_match
from neuraltext.labs.check import Case, Exercise
from neuraltext.seq2seq import AdditiveAttention, DotAttention, GeneralAttention


def _mask(lengths, S: int) -> torch.Tensor:
    return torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]  # (B, S), True on real positions


def _additive_inputs(seed: int, lengths, Dq: int, Dv: int, A: int, dtype=torch.float32, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    B, S = len(lengths), max(lengths)
    h_t = torch.randn(B, Dq, generator=g, dtype=dtype)
    h_bar = torch.randn(B, S, Dv, generator=g, dtype=dtype)
    W_1 = torch.randn(A, Dq, generator=g, dtype=dtype) / Dq ** 0.5
    W_2 = torch.randn(A, Dv, generator=g, dtype=dtype) / Dv ** 0.5
    b_2 = torch.randn(A, generator=g, dtype=dtype)
    v_a = scale * torch.randn(A, generator=g, dtype=dtype)
    return h_t, h_bar, W_1, W_2, b_2, v_a, _mask(lengths, S)


@torch.no_grad()
def _additive_reference(h_t, h_bar, W_1, W_2, b_2, v_a, mask):
    att = AdditiveAttention(h_t.shape[1], h_bar.shape[2], W_1.shape[0]).to(h_t.dtype)
    att.W_1.weight.copy_(W_1)
    att.W_2.weight.copy_(W_2)
    att.W_2.bias.copy_(b_2)
    att.v_a.weight.copy_(v_a[None, :])
    return att(h_t, att.project_keys(h_bar), h_bar, mask)  # (c_t, alpha)


def _additive_cases() -> list[Case]:
    return [
        Case("batch 3, padded sources of lengths 5, 3, 1", _additive_inputs(0, [5, 3, 1], 6, 8, 4)),
        Case("no padding (mask all True)", _additive_inputs(1, [4, 4], 5, 5, 3)),
        Case("one source position: weight 1", _additive_inputs(2, [1], 3, 4, 2)),
        Case("large scores: does your softmax overflow?", _additive_inputs(3, [6, 2], 4, 6, 5, scale=200.0)),
        Case("float64 in, float64 out", _additive_inputs(4, [7, 5, 7], 8, 6, 4, dtype=torch.float64)),
    ]


def _luong_inputs(seed: int, B: int, S: int, Dq: int, Dv: int, general: bool, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    h_t = torch.randn(B, Dq, generator=g, dtype=dtype)
    h_bar = torch.randn(B, S, Dv, generator=g, dtype=dtype)
    if not general:
        return h_t, h_bar
    return h_t, h_bar, torch.randn(Dq, Dv, generator=g, dtype=dtype) / Dv ** 0.5


@torch.no_grad()
def _luong_reference(h_t, h_bar, W_a=None):
    if W_a is None:
        return DotAttention().score(h_t, h_bar)
    att = GeneralAttention(h_t.shape[1], h_bar.shape[2]).to(h_t.dtype)
    att.W_a.weight.copy_(W_a)  # nn.Linear(key_dim, query_dim): weight (Dq, Dv) = W_a
    return att.score(h_t, att.project_keys(h_bar))


def _luong_cases() -> list[Case]:
    return [
        Case("dot score: batch 3, 5 positions, size 4", _luong_inputs(0, 3, 5, 4, 4, general=False)),
        Case("dot score: one position", _luong_inputs(1, 2, 1, 6, 6, general=False)),
        Case("general score, W_a square", _luong_inputs(2, 3, 5, 4, 4, general=True)),
        Case("general score, h_t and h̄_j of different sizes", _luong_inputs(3, 2, 6, 3, 7, general=True)),
        Case("general score in float64", _luong_inputs(4, 2, 4, 5, 5, general=True, dtype=torch.float64)),
    ]


def _exact_match_cases() -> list[Case]:
    return [
        Case("three right out of five", (["2024-03-01", "1999-12-31", "2001-01-02", "2010-10-10", "1987-05-06"],
                                         ["2024-03-01", "1999-12-13", "2001-01-02", "2010-10-01", "1987-05-06"])),
        Case("all right", (["2024-03-01", "1999-12-31"], ["2024-03-01", "1999-12-31"])),
        Case("none right", (["2024-03-02", "1999-12-30", ""], ["2024-03-01", "1999-12-31", "2000-01-01"])),
        Case("one pair", (["2015-11-24"], ["2015-11-24"])),
        Case("near misses: a space, a missing zero, a longer string",
             (["2015-11-24 ", "2015-1-24", "2015-11-244", "2015-11-24"],
              ["2015-11-24", "2015-01-24", "2015-11-24", "2015-11-24"])),
    ]


EXERCISES = [
    Exercise(
        id="05.additive_attention",
        title="additive attention: weights and context vector",
        reference=_additive_reference,
        cases=_additive_cases,
        hint="score_j = v_a . tanh(W_1 h_t + W_2 h̄_j + b_2); padded positions get -inf before the "
             "softmax over j; return (c_t, alpha).",
    ),
    Exercise(
        id="05.luong_scores",
        title="Luong's dot and general scores",
        reference=_luong_reference,
        cases=_luong_cases,
        hint="dot: h_t . h̄_j; general: h_t . (W_a h̄_j); one score per source position, shape (B, S).",
    ),
    Exercise(
        id="05.exact_match",
        title="exact match of predicted dates",
        reference=exact_match,
        cases=_exact_match_cases,
        rtol=0.0, atol=1e-12,
        hint="the fraction of predictions equal to their target, character for character.",
    ),
]
