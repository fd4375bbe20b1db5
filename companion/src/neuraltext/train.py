"""One small training loop, shared by the chapters that train a network.

It does the five things every chapter needs and nothing more: move batches to the device, compute
the loss, back-propagate, clip the gradient norm (the fix for exploding gradients in recurrent
networks), step the optimiser, and record what happened so a loss curve can be drawn.

Two things it does for speed, so that the same loop is right on a GPU:

* **No host synchronisation per step.** Reading a loss with ``.item()`` (or ``float(...)``, or
  ``if not torch.isfinite(loss)``) makes the CPU wait for the GPU to finish every queued kernel,
  so the GPU idles while Python prepares the next batch. The losses and gradient norms stay on the
  device and are copied to :class:`TrainHistory` every ``sync_every`` steps (and at the end of
  each epoch); a non-finite loss is detected there, and the error names the step it happened at.
* **Mixed precision** (``amp=True``): the forward pass runs under ``torch.autocast`` in bfloat16
  on the CPU and on GPUs that support it, in float16 otherwise (with a ``GradScaler``, since
  float16 gradients underflow). The weights and the optimiser stay in float32.

The chapter-specific part is the ``loss_fn(model, batch) -> loss`` callable: the loop does not
know whether the model is a word2vec, an LSTM or a transformer.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from neuraltext.utils import get_device, progress

__all__ = ["TrainHistory", "train", "to_device", "amp_settings"]


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


def amp_settings(device: torch.device, amp: bool) -> tuple[bool, torch.dtype, bool]:
    """``(autocast enabled, autocast dtype, use a GradScaler)`` for ``train(amp=...)`` on ``device``:
    bfloat16 on the CPU and on CUDA GPUs that support it (no scaler needed: bfloat16 has float32's
    range), float16 + ``GradScaler`` on older CUDA GPUs; elsewhere (MPS) AMP is off, with a warning."""
    if not amp:
        return False, torch.float32, False
    if device.type == "cpu":
        return True, torch.bfloat16, False
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return True, torch.bfloat16, False
        return True, torch.float16, True
    warnings.warn(f"train(amp=True): mixed precision is not set up for device {device}; training in float32",
                  stacklevel=3)
    return False, torch.float32, False


class _Recorder:
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
    sync_every: int = 50,
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
        amp: mixed precision (see :func:`amp_settings`): bfloat16 autocast on the CPU and on CUDA
            GPUs with bfloat16, float16 with a ``GradScaler`` on older GPUs.
        evaluate: optional ``model -> dict`` called (under ``torch.no_grad``, in eval mode) after each
            epoch; results go to ``history.eval``.
        max_steps: stop after this many optimiser steps in total.
        history: continue an earlier history (to train in several calls and keep one curve).
        sync_every: copy the losses from the device every this many steps (1 = every step, as a
            debugging aid: a non-finite loss then stops training before its update is applied;
            otherwise up to ``sync_every - 1`` more steps run before the error).

    Returns:
        the :class:`TrainHistory` (losses, gradient norms before clipping, learning rates, evals),
        one entry per step.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if clip_norm is not None and clip_norm <= 0:
        raise ValueError(f"clip_norm must be positive or None, got {clip_norm}")
    if not isinstance(sync_every, int) or sync_every < 1:
        raise ValueError(f"sync_every must be a positive integer, got {sync_every!r}")
    device = get_device(device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if optimizer is None:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    autocast, amp_dtype, use_scaler = amp_settings(device, amp)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    history = history or TrainHistory()
    recorder = _Recorder(history, sync_every)
    max_norm = clip_norm if clip_norm is not None else math.inf
    start = time.perf_counter()

    step = 0
    for epoch in range(epochs):
        model.train()
        epoch_batches = batches() if callable(batches) else batches
        total = len(epoch_batches) if hasattr(epoch_batches, "__len__") else None
        bar = progress(epoch_batches, total=total, desc=f"{desc} {epoch + 1}/{epochs}", leave=False)
        for batch in bar:
            batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=autocast):
                loss = loss_fn(model, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)  # a device tensor: no sync
            scaler.step(optimizer)  # (with float16's GradScaler this step synchronises, unavoidably)
            scaler.update()
            if scheduler is not None:
                scheduler.step()
            if recorder.add(loss, norm, optimizer.param_groups[0]["lr"]) and hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        recorder.sync()
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                history.eval.append({"epoch": epoch + 1, **evaluate(model)})
        if max_steps is not None and step >= max_steps:
            break
    model.eval()
    history.seconds += time.perf_counter() - start
    return history
