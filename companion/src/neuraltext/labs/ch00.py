"""Chapter 0's exercises: counting a model's parameters, mean pooling of token vectors with a mask.

The references are PyTorch's own parameter list (``model.parameters()``, which lists a shared
parameter once and leaves out buffers) and the course's masked-mean pooling
(:func:`neuraltext.bert_finetune.pool`, the pooling of sentence encoders such as all-MiniLM).
"""

from __future__ import annotations

import torch
from torch import nn

from neuraltext.bert_finetune import pool
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


def _pool_reference(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return pool(hidden, mask, "mean")


def _pool_cases() -> list[Case]:
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 5, 4, generator=g)
    lengths = torch.tensor([5, 2, 3])
    mask = (torch.arange(5)[None, :] < lengths[:, None]).long()          # 1 = token, 0 = padding
    h64 = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    mask64 = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    one = torch.randn(1, 1, 8, generator=g)
    empty = torch.randn(2, 4, 3, generator=g)
    return [
        Case("3 sentences of lengths 5, 2, 3 padded to 5", (h, mask)),
        Case("no padding", (h, torch.ones(3, 5, dtype=torch.long))),
        Case("float64 hidden states", (h64, mask64)),
        Case("a boolean mask", (h, mask.bool())),
        Case("one sentence of one token", (one, torch.ones(1, 1, dtype=torch.long))),
        Case("a row that is all padding gives zeros, not NaN", (empty, torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]]))),
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
        id="00.mean_pooling",
        title="mean of the token vectors, padding excluded",
        reference=_pool_reference,
        cases=_pool_cases,
        rtol=1e-5, atol=1e-6,
        hint="multiply by the mask (as a float of hidden's dtype), sum over the tokens, divide by the "
             "number of real tokens clamped to at least 1e-9.",
    ),
]
