"""Positional encodings: attention sees a set, so the position is added to each token's vector.

Sinusoidal positional encoding, exactly as the course gives it (Vaswani et al. 2017):

    PE(pos, 2i) = sin(pos / 10000^(2i/d)),   PE(pos, 2i+1) = cos(pos / 10000^(2i/d))

so that ``PE(pos + k)`` is a rotation of ``PE(pos)`` in each (sin, cos) pair; or a learned vector per
position (BERT, GPT-2). Both add to ``x`` of shape ``(B, T, d)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["sinusoidal_positional_encoding", "SinusoidalPositionalEncoding", "LearnedPositionalEncoding"]


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """``(max_len, d_model)`` matrix with PE[pos, 2i] = sin(pos / 10000^(2i/d)) and
    PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    if d_model % 2 != 0:
        raise ValueError(f"the sinusoidal encoding pairs dimensions (sin, cos): d_model must be even, got {d_model}")
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d/2,): the even indices 2i
    angle = pos / 10000.0 ** (two_i / d_model)  # (max_len, d/2)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


def _check_length(T: int, max_len: int) -> None:
    if T > max_len:
        raise ValueError(f"sequence of length {T} is longer than the positional encoding's max_len={max_len}")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encoding to ``x`` ``(B, T, d)``; nothing is learned."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x.shape[1], self.pe.shape[0])
        return x + self.pe[: x.shape[1]]  # (B, T, d)


class LearnedPositionalEncoding(nn.Module):
    """Adds a learned vector per position (BERT, GPT-2): an embedding table indexed by position."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x.shape[1], self.embedding.num_embeddings)
        positions = torch.arange(x.shape[1], device=x.device)
        return x + self.embedding(positions)  # (B, T, d)
