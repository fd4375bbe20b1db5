"""Chapter 0's exercises: counting a model's parameters, cosine similarities of sentence vectors.

The references are PyTorch's own parameter list (``model.parameters()``, which lists a shared
parameter once and leaves out buffers) and ``F.cosine_similarity`` (a zero vector gives 0). Mean
pooling with a padding mask, the step before, is chapter 7's exercise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuraltext.labs.check import Case, Exercise


def _count_reference(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _tied_model() -> nn.Module:
    """An embedding and an output layer that share one weight matrix (as in GPT-2 or BERT)."""
    emb, out = nn.Embedding(20, 6), nn.Linear(6, 20, bias=False)
    out.weight = emb.weight
    return nn.ModuleList([emb, out])


def _frozen_model() -> nn.Module:
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 2))
    model[0].requires_grad_(False)
    return model


def _count_cases() -> list[Case]:
    # built once, under a fixed seed, without touching the global random state of the caller
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return [
            Case("nn.Linear(10, 3)", (nn.Linear(10, 3),)),
            Case("a linear layer without bias", (nn.Linear(4, 2, bias=False),)),
            Case("an embedding and an LSTM", (nn.Sequential(nn.Embedding(50, 8), nn.LSTM(8, 16, batch_first=True)),)),
            Case("tied weights: a shared matrix counts once", (_tied_model(),)),
            Case("a frozen first layer still counts", (_frozen_model(),)),
            Case("batch norm: running statistics are buffers, not parameters", (nn.BatchNorm1d(12),)),
            Case("no parameters at all", (nn.ReLU(),)),
        ]


_COUNT_CASES = _count_cases()   # a fixed list: the same module objects each time the cases are asked for


def _cosine_reference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)


def _cosine_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 6, generator=g), torch.randn(3, 6, generator=g)
    zero = a.clone()
    zero[2] = 0.0
    a64 = torch.randn(2, 5, generator=g, dtype=torch.float64)
    return [
        Case("4 sentences against 3", (a, b)),
        Case("a set against itself (1 on the diagonal)", (a, a.clone())),
        Case("one vector against one", (a[:1], b[:1])),
        Case("scaled vectors: only the direction counts", (1000 * a, 0.001 * b)),
        Case("a zero vector gives 0, not NaN", (zero, b)),
        Case("float64", (a64, a64.flip(0))),
    ]


EXERCISES = [
    Exercise(
        id="00.count_parameters",
        title="count the parameters of a model",
        reference=_count_reference,
        cases=lambda: _COUNT_CASES,
        hint="iterate over model.parameters() (it lists a shared parameter once) and add up numel().",
    ),
    Exercise(
        id="00.cosine_matrix",
        title="the cosine similarities of two sets of sentence vectors",
        reference=_cosine_reference,
        cases=_cosine_cases,
        rtol=1e-5, atol=1e-6,
        hint="divide each row by its norm (a zero row stays zero: clamp the norm at a tiny value), then one matrix product.",
    ),
]
