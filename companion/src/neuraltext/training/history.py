"""What a training run records: the loss, gradient norm and learning rate of every step, and the
evaluations; kept on the device between synchronisations.

Reading a loss with ``.item()`` at every step makes the host wait for the device at every step;
:class:`Recorder` keeps the step values as device tensors and copies them to the
:class:`TrainHistory` in one transfer every ``sync_every`` steps, where a non-finite loss is caught.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = ["TrainHistory", "Recorder"]


@dataclass
class TrainHistory:
    """What happened during training: one entry per optimiser step (and per evaluation for ``eval``)."""

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)  #: norm *before* clipping
    lr: list[float] = field(default_factory=list)
    eval: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.loss)

    def smoothed(self, window: int = 50) -> list[float]:
        """Running mean of the loss over ``window`` steps (for a readable curve)."""
        out, acc = [], 0.0
        for i, value in enumerate(self.loss):
            acc += value
            if i >= window:
                acc -= self.loss[i - window]
            out.append(acc / min(i + 1, window))
        return out


class Recorder:
    """Keeps the per-step loss and gradient norm on the device; copies them to the history in one
    transfer every ``sync_every`` steps (the only host synchronisations of the loop)."""

    def __init__(self, history: TrainHistory, sync_every: int):
        self.history, self.sync_every = history, sync_every
        self.losses: list[torch.Tensor] = []
        self.norms: list[torch.Tensor] = []

    def add(self, loss: torch.Tensor, norm: torch.Tensor, lr: float) -> bool:
        """Record one step; returns True when this step synchronised (the history is up to date)."""
        self.losses.append(loss.detach().float())
        self.norms.append(torch.as_tensor(norm).detach().float())
        self.history.lr.append(lr)  # a Python float already: no synchronisation
        if len(self.losses) >= self.sync_every:
            self.sync()
            return True
        return False

    def sync(self) -> None:
        if not self.losses:
            return
        first = len(self.history.loss)
        values = torch.stack([torch.stack(self.losses), torch.stack(self.norms).to(self.losses[0].device)]).cpu()
        self.losses, self.norms = [], []
        losses, norms = values[0].tolist(), values[1].tolist()
        self.history.loss.extend(losses)
        self.history.grad_norm.extend(norms)
        bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(
                f"loss became {losses[bad[0]]} at step {first + bad[0]}: lower the learning rate or set "
                f"clip_norm (non-finite losses are detected every sync_every steps)"
            )
