"""One small training loop, shared by the chapters that train a network.

It does the five things every chapter needs and nothing more: move batches to the device, compute
the loss, back-propagate, clip the gradient norm (the fix for exploding gradients in recurrent
networks), step the optimiser, and record what happened so a loss curve can be drawn. Mixed
precision (AMP) is used on CUDA when asked; on the CPU it is off.

The chapter-specific part is the ``loss_fn(model, batch) -> loss`` callable: the loop does not
know whether the model is a word2vec, an LSTM or a transformer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuraltext.utils import get_device, progress

__all__ = ["TrainHistory", "train", "to_device"]


@dataclass
class TrainHistory:
    """What happened during training: one entry per optimiser step (and per epoch for ``eval``)."""

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


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor, or tensors nested in tuples/lists/dicts, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [to_device(v, device) for v in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
    return batch


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    batches: Iterable[Any] | Callable[[], Iterable[Any]],
    *,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    clip_norm: float | None = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
    max_steps: int | None = None,
    desc: str = "train",
    history: TrainHistory | None = None,
) -> TrainHistory:
    """Train ``model`` by gradient descent on ``loss_fn(model, batch)``.

    Each step: ``loss = loss_fn(model, batch)``; ``loss.backward()``; if ``clip_norm`` is set, rescale
    the gradient ``g`` to ``g * min(1, clip_norm / ||g||)`` (``clip_grad_norm_``); optimiser step;
    scheduler step (per batch).

    Args:
        model: the network; moved to ``device`` (default :func:`neuraltext.utils.get_device`).
        loss_fn: ``(model, batch) -> scalar tensor``; the batch arrives already on the device.
        batches: an iterable of batches, or a zero-argument callable returning a fresh iterable for
            each epoch (use the callable form for generators, which are exhausted after one pass).
        epochs: passes over ``batches``.
        lr: learning rate of the default optimiser (AdamW, no weight decay) when ``optimizer`` is None.
        scheduler: optional LR scheduler stepped after every optimiser step.
        clip_norm: maximum global gradient norm, or None for no clipping.
        amp: autocast to float16 on CUDA (ignored elsewhere).
        evaluate: optional ``model -> dict`` called (under ``torch.no_grad``, in eval mode) after each
            epoch; results go to ``history.eval``.
        max_steps: stop after this many optimiser steps in total.
        history: continue an earlier history (to train in several calls and keep one curve).

    Returns:
        the :class:`TrainHistory` (losses, gradient norms before clipping, learning rates, evals).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if clip_norm is not None and clip_norm <= 0:
        raise ValueError(f"clip_norm must be positive or None, got {clip_norm}")
    device = get_device(device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history = history or TrainHistory()
    start = time.perf_counter()

    step = 0
    for epoch in range(epochs):
        model.train()
        epoch_batches = batches() if callable(batches) else batches
        total = len(epoch_batches) if hasattr(epoch_batches, "__len__") else None
        bar = progress(epoch_batches, total=total, desc=f"{desc} {epoch + 1}/{epochs}", leave=False)
        for batch in bar:
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss became {loss.item()} at step {history.steps}: lower the learning rate "
                    f"or set clip_norm"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            max_norm = clip_norm if clip_norm is not None else math.inf
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            history.loss.append(loss.item())
            history.grad_norm.append(float(norm))
            history.lr.append(optimizer.param_groups[0]["lr"])
            if hasattr(bar, "set_postfix") and history.steps % 20 == 0:
                bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                history.eval.append({"epoch": epoch + 1, **evaluate(model)})
        if max_steps is not None and step >= max_steps:
            break
    model.eval()
    history.seconds += time.perf_counter() - start
    return history
